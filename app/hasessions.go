package app

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/crowdwatch/crowdwatch/ha"
	"github.com/crowdwatch/crowdwatch/web/auth"
)

// With HA on, a sign-in holds on every instance (docs/security.md, "Sessions on a pair"): the
// instance that signs someone in (or out) makes the change in its own sign-in file first, so
// it holds here whatever the coordinator does, then appends a "session" action to the
// operator action log; every other instance's log applies it to its own file. A dashboard
// that moves to the other instance (docs/ha.md) is then still signed in there, and a
// sign-out or a revocation ends the session on every instance.

// actionSession is the action kind of a session created or ended on one instance.
const actionSession = "session"

// Session operations in a session action's body.
const (
	sessionCreated       = "created"
	sessionEnded         = "ended"
	sessionUserSignedOut = "user_signed_out"
)

type sessionBody struct {
	Op      string              `json:"op"`
	Session *auth.SharedSession `json:"session,omitempty"` // created
	ID      string              `json:"id,omitempty"`      // ended: the session's SHA-256
	User    string              `json:"user,omitempty"`    // user_signed_out
	At      time.Time           `json:"at,omitzero"`       // user_signed_out: sessions created up to then
}

// sessionApplier is the sign-in side the log applies other instances' session actions to.
type sessionApplier interface {
	ImportSession(ctx context.Context, s auth.SharedSession) error
	EndSession(ctx context.Context, id string) error
	EndUserSessions(ctx context.Context, user string, at time.Time) (int, error)
}

// applySession applies another instance's session action here; this instance's own is
// already in its file (it was made there before it was appended).
func (x *actions) applySession(ctx context.Context, a ha.Action) (any, error) {
	if a.Instance == x.self {
		return nil, nil
	}
	if x.sessions == nil {
		return nil, fmt.Errorf("session action from %s: sign-in is not wired to the action log", a.Instance)
	}
	var b sessionBody
	if err := json.Unmarshal(a.Body, &b); err != nil {
		return nil, fmt.Errorf("session action from %s: %w", a.Instance, err)
	}
	switch {
	case b.Op == sessionCreated && b.Session != nil:
		return nil, x.sessions.ImportSession(ctx, *b.Session)
	case b.Op == sessionEnded:
		return nil, x.sessions.EndSession(ctx, b.ID)
	case b.Op == sessionUserSignedOut:
		_, err := x.sessions.EndUserSessions(ctx, b.User, b.At)
		return nil, err
	}
	return nil, fmt.Errorf("session action from %s: unknown operation %q", a.Instance, b.Op)
}

// Bounds of the session sharer.
const (
	shareQueue = 256             // session changes waiting for the coordinator
	shareWait  = 3 * time.Second // how long a sign-in or sign-out waits for its change to be in the log
	shareRetry = 2 * time.Second // between attempts while the coordinator does not answer
)

// sessionShare is auth.Sharer through the action log. One goroutine (run) owns the queue and
// appends in order: a change the coordinator does not take at once stays queued and is
// appended when it answers, before anything later (a sign-out never overtakes its sign-in).
// The queue is in memory: a change still queued when the instance stops is lost for the
// other instances (a session then holds there until it expires, or until a sign-out
// everywhere).
type sessionShare struct {
	appendf func(ctx context.Context, a ha.Action) (int64, error)
	log     *slog.Logger
	in      chan shareItem
}

type shareItem struct {
	a    ha.Action
	done chan error // buffered: the first outcome, read by the caller if it still waits
}

func newSessionShare(appendf func(ctx context.Context, a ha.Action) (int64, error), log *slog.Logger) *sessionShare {
	return &sessionShare{appendf: appendf, log: log, in: make(chan shareItem, shareQueue)}
}

func (s *sessionShare) SessionCreated(ctx context.Context, ss auth.SharedSession) {
	s.submit(ctx, ss.User, sessionBody{Op: sessionCreated, Session: &ss})
}

func (s *sessionShare) SessionEnded(ctx context.Context, id string) {
	s.submit(ctx, "", sessionBody{Op: sessionEnded, ID: id})
}

func (s *sessionShare) UserSignedOut(ctx context.Context, user string, at time.Time) {
	s.submit(ctx, user, sessionBody{Op: sessionUserSignedOut, User: user, At: at})
}

// submit queues a change and waits up to shareWait for it to be in the log.
func (s *sessionShare) submit(ctx context.Context, by string, b sessionBody) {
	raw, err := json.Marshal(b)
	if err != nil {
		s.log.Error("ha: a session change cannot be encoded", "op", b.Op, "error", err)
		return
	}
	it := shareItem{a: ha.Action{Kind: actionSession, By: by, Body: raw}, done: make(chan error, 1)}
	select {
	case s.in <- it:
	default:
		s.log.Error("ha: too many session changes wait for the coordinator: this one holds on this instance only", "op", b.Op, "user", by)
		return
	}
	t := time.NewTimer(shareWait)
	defer t.Stop()
	select {
	case err := <-it.done:
		if err != nil {
			s.log.Warn("ha: the coordinator did not take a session change: it holds on this instance now, on the others once it answers",
				"op", b.Op, "user", by, "error", err)
		}
	case <-t.C:
		s.log.Warn("ha: a session change waits for the coordinator: it holds on this instance now, on the others once it answers", "op", b.Op, "user", by)
	case <-ctx.Done():
	}
}

// run appends the queued changes in order until ctx ends.
func (s *sessionShare) run(ctx context.Context) error {
	var queue []shareItem
	tick := time.NewTicker(shareRetry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			if len(queue) > 0 {
				s.log.Warn("ha: stopping with session changes the other instances never got", "count", len(queue))
			}
			return nil
		case it := <-s.in:
			queue = append(queue, it)
		case <-tick.C:
		}
		for len(queue) > 0 {
			actx, cancel := context.WithTimeout(ctx, appendWait)
			_, err := s.appendf(actx, queue[0].a)
			cancel()
			if err != nil {
				for _, it := range queue { // every waiting caller learns it is not shared yet
					select {
					case it.done <- err:
					default:
					}
				}
				break
			}
			select {
			case queue[0].done <- nil:
			default:
			}
			queue = queue[1:]
		}
	}
}

// shareSessions shares this instance's sessions with the others through the action log
// (before start); without HA it does nothing.
func (w *webSide) shareSessions(h *haSide, cookieDomain string, log *slog.Logger) {
	if h == nil || w == nil {
		return
	}
	w.share = newSessionShare(h.actions.Append, log.With("component", "ha-sessions"))
	w.authz.Share(w.share)
	w.authz.Domain(cookieDomain)
	h.x.sessions = w.authz
}
