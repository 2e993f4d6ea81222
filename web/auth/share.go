package auth

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
)

// With ha.enabled a sign-in holds on every instance of the store (docs/security.md,
// "Sessions on a pair"): each instance keeps its own sessions in its own file, and tells a
// Sharer of every session it creates or ends; the other instances apply the same change
// (ImportSession, EndSession, EndUserSessions), so a dashboard that moves to another
// instance stays signed in, and a sign-out or revocation ends the session everywhere. What
// travels is the session's SHA-256 (the key the store files keep), never the cookie's secret.

// SharedSession is a session as the other instances get it.
type SharedSession struct {
	ID      string    `json:"id"` // hex SHA-256 of the cookie's secret
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Remote  string    `json:"remote,omitempty"`
}

// Sharer hears of this instance's session changes once they hold here. A sign-in and a
// sign-out wait for it, so it returns within a few seconds; what it cannot pass on at once
// (the coordinator is down) is its to retry: the change already holds on this instance.
type Sharer interface {
	SessionCreated(ctx context.Context, s SharedSession)
	SessionEnded(ctx context.Context, id string)
	UserSignedOut(ctx context.Context, user string, at time.Time)
}

// Share makes z tell s of every session created or ended here (call before serving).
func (z *Authorizer) Share(s Sharer) { z.sharer = s }

// Domain sets the Domain of the session cookie (ha.cookie_domain): the one sign-in is sent
// to every host name under it. Call before serving.
func (z *Authorizer) Domain(d string) { z.domain = d }

// ErrBadSessionID refuses a shared session whose id is not 64 hex digits.
var ErrBadSessionID = errors.New("a shared session id is the hex SHA-256 of its secret (64 hex digits)")

func sessionID(s string) ([32]byte, error) {
	var id [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return id, fmt.Errorf("%w, not %q", ErrBadSessionID, s)
	}
	copy(id[:], b)
	return id, nil
}

// ImportSession stores a session another instance created. It is idempotent (a session held
// already is left as it is), and does nothing for a session that has expired or was ended
// here, or whose user was signed out everywhere here after it was created: a late or
// repeated copy never brings a session back.
func (z *Authorizer) ImportSession(ctx context.Context, s SharedSession) error {
	id, err := sessionID(s.ID)
	if err != nil {
		return err
	}
	if s.User == "" || !s.Expires.After(s.Created) {
		return fmt.Errorf("auth: a shared session needs a user and an expiry after its creation (%q, %v..%v)", s.User, s.Created, s.Expires)
	}
	return z.store.importSession(ctx, id, session{User: s.User, Created: s.Created, Expires: s.Expires, Remote: s.Remote})
}

// EndSession ends a session another instance ended (idempotent).
func (z *Authorizer) EndSession(ctx context.Context, id string) error {
	sid, err := sessionID(id)
	if err != nil {
		return err
	}
	return z.store.endShared(ctx, sid)
}

// EndUserSessions ends a user's sessions created up to at, as another instance's "sign out
// everywhere" did at that moment.
func (z *Authorizer) EndUserSessions(ctx context.Context, user string, at time.Time) (int, error) {
	return z.store.revokeUserBefore(ctx, user, at)
}

func (z *Authorizer) shareCreated(ctx context.Context, id [32]byte, sess session) {
	if z.sharer != nil {
		z.sharer.SessionCreated(ctx, SharedSession{ID: hex.EncodeToString(id[:]), User: sess.User, Created: sess.Created,
			Expires: sess.Expires, Remote: sess.Remote})
	}
}

func (z *Authorizer) shareEnded(ctx context.Context, id [32]byte) {
	if z.sharer != nil {
		z.sharer.SessionEnded(ctx, hex.EncodeToString(id[:]))
	}
}

// importSession stores a copy of another instance's session (ImportSession), the check and
// the write in one step on the owner goroutine.
func (s *Store) importSession(ctx context.Context, id [32]byte, sess session) error {
	now := s.o.Now()
	var err error
	if derr := s.do(ctx, func(st *storeState) {
		_, held := st.sessions[id]
		_, ended := st.revoked[id]
		out, signedOut := st.userRevoked[sess.User]
		if held || ended || !now.Before(sess.Expires) || (signedOut && !sess.Created.After(out)) {
			return
		}
		err = s.putSession(st, id, sess)
	}); derr != nil {
		return derr
	}
	return err
}

// endShared ends a session another instance ended, and remembers it as ended even when it
// is not held here (yet), so that no copy of it is taken later.
func (s *Store) endShared(ctx context.Context, id [32]byte) error {
	var err error
	if derr := s.do(ctx, func(st *storeState) {
		until := s.o.Now().Add(maxSessionLife)
		if sess, ok := st.sessions[id]; ok {
			if err = s.deleteSessions(st, [][32]byte{id}); err != nil {
				return
			}
			until = sess.Expires
		}
		st.revoked[id] = until
	}); derr != nil {
		return derr
	}
	if err != nil {
		return fmt.Errorf("auth: revoking the session: %w", err)
	}
	return nil
}

// revokeUserBefore ends a user's sessions created up to at.
func (s *Store) revokeUserBefore(ctx context.Context, user string, at time.Time) (int, error) {
	var n int
	var err error
	if derr := s.do(ctx, func(st *storeState) {
		var ids [][32]byte
		for k, v := range st.sessions {
			if v.User == user && !v.Created.After(at) {
				ids = append(ids, k)
			}
		}
		if err = s.deleteSessions(st, ids); err == nil {
			n = len(ids)
			if at.After(st.userRevoked[user]) {
				st.userRevoked[user] = at
			}
		}
	}); derr != nil {
		return 0, derr
	}
	if err != nil {
		return 0, fmt.Errorf("auth: revoking %s's sessions: %w", user, err)
	}
	return n, nil
}

// forgetRevoked drops what revoked and userRevoked no longer need: a session past its
// expiry cannot come back anyway, nor one created before a sign-out older than the
// longest session (a day beyond the default 12 h, as a margin for other settings).
func (st *storeState) forgetRevoked(now time.Time) {
	for id, exp := range st.revoked {
		if now.After(exp) {
			delete(st.revoked, id)
		}
	}
	for u, at := range st.userRevoked {
		if now.Sub(at) > maxSessionLife {
			delete(st.userRevoked, u)
		}
	}
}

// maxSessionLife bounds how long a sign-out everywhere is remembered against late copies.
const maxSessionLife = 7 * 24 * time.Hour
