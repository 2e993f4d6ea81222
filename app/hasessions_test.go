package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/ha"
	"github.com/crowdwatch/crowdwatch/web/auth"
)

// flakyLog is an action log whose coordinator refuses while down is set.
type flakyLog struct {
	mu   sync.Mutex
	down bool
	got  []sessionBody
}

func (f *flakyLog) append(_ context.Context, a ha.Action) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errors.New("etcd unreachable")
	}
	var b sessionBody
	_ = json.Unmarshal(a.Body, &b)
	f.got = append(f.got, b)
	return int64(len(f.got)), nil
}

func (f *flakyLog) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, b := range f.got {
		out = append(out, b.Op)
	}
	return out
}

// TestSessionChangesQueuedWhileTheCoordinatorIsDown: with etcd down, a sign-in and its
// sign-out return (after shareWait at most) and are appended, in their order, once it
// answers.
func TestSessionChangesQueuedWhileTheCoordinatorIsDown(t *testing.T) {
	f := &flakyLog{down: true}
	s := newSessionShare(f.append, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.run(ctx) }()
	defer func() { cancel(); <-done }()

	now := time.Now()
	s.SessionCreated(ctx, auth.SharedSession{ID: strings.Repeat("ab", 32), User: "guard", Created: now, Expires: now.Add(time.Hour)})
	s.SessionEnded(ctx, strings.Repeat("ab", 32))
	if got := f.ops(); len(got) != 0 {
		t.Fatalf("appended while the coordinator is down: %v", got)
	}
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for len(f.ops()) < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := f.ops(); strings.Join(got, ",") != "created,ended" {
		t.Fatalf("appended %v, want created then ended", got)
	}
	s.UserSignedOut(ctx, "guard", now) // the coordinator answers: appended before it returns
	if got := f.ops(); len(got) != 3 || got[2] != sessionUserSignedOut {
		t.Fatalf("appended %v, want the sign-out everywhere third", got)
	}
}

type fakeSessions struct{ calls []string }

func (f *fakeSessions) ImportSession(_ context.Context, s auth.SharedSession) error {
	f.calls = append(f.calls, "import "+s.User)
	return nil
}
func (f *fakeSessions) EndSession(_ context.Context, id string) error {
	f.calls = append(f.calls, "end "+id)
	return nil
}
func (f *fakeSessions) EndUserSessions(_ context.Context, user string, _ time.Time) (int, error) {
	f.calls = append(f.calls, "end user "+user)
	return 0, nil
}

// TestSessionActionsApplied: another instance's session actions reach sign-in; this
// instance's own are skipped (made here before they were appended); a bad one is refused.
func TestSessionActionsApplied(t *testing.T) {
	x := newActions("b", slog.New(slog.DiscardHandler))
	f := &fakeSessions{}
	x.sessions = f
	body := func(b sessionBody) json.RawMessage { raw, _ := json.Marshal(b); return raw }
	for _, a := range []ha.Action{
		{Kind: actionSession, Instance: "a", Body: body(sessionBody{Op: sessionCreated, Session: &auth.SharedSession{User: "guard"}})},
		{Kind: actionSession, Instance: "b", Body: body(sessionBody{Op: sessionEnded, ID: "own"})},
		{Kind: actionSession, Instance: "a", Body: body(sessionBody{Op: sessionEnded, ID: "x"})},
		{Kind: actionSession, Instance: "a", Body: body(sessionBody{Op: sessionUserSignedOut, User: "guard"})},
	} {
		if _, err := x.run(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(f.calls, "; "); got != "import guard; end x; end user guard" {
		t.Fatalf("applied %q", got)
	}
	if _, err := x.run(context.Background(), ha.Action{Kind: actionSession, Instance: "a", Body: body(sessionBody{Op: "nonsense"})}); err == nil {
		t.Fatal("an unknown session operation was accepted")
	}
}
