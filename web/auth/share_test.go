package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// relay is a Sharer that applies each change on another instance at once, as the action
// log does (app/hasessions.go); down drops them, as an unreachable coordinator would.
type relay struct {
	to   *Authorizer
	down bool
	t    *testing.T
}

func (r *relay) SessionCreated(ctx context.Context, s SharedSession) {
	if !r.down {
		if err := r.to.ImportSession(ctx, s); err != nil {
			r.t.Errorf("import: %v", err)
		}
	}
}

func (r *relay) SessionEnded(ctx context.Context, id string) {
	if !r.down {
		if err := r.to.EndSession(ctx, id); err != nil {
			r.t.Errorf("end: %v", err)
		}
	}
}

func (r *relay) UserSignedOut(ctx context.Context, user string, at time.Time) {
	if !r.down {
		if _, err := r.to.EndUserSessions(ctx, user, at); err != nil {
			r.t.Errorf("end user: %v", err)
		}
	}
}

func withCookie(c *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/api/v1/session", nil)
	r.AddCookie(c)
	return r
}

// TestSessionSharedWithTheOtherInstance: a sign-in on a holds on b; a sign-out or a sign-out
// everywhere on a ends it on b; with the coordinator down the session holds on a only.
func TestSessionSharedWithTheOtherInstance(t *testing.T) {
	ctx := context.Background()
	a, b := testAuthorizer(t), testAuthorizer(t)
	r := &relay{to: b, t: t}
	a.Share(r)
	a.Domain("store.lan")

	c, _, err := a.Login(ctx, "guard", "secret-pw", "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "store.lan" {
		t.Errorf("cookie domain %q, want store.lan", c.Domain)
	}
	if who, _, ok := b.Whoami(withCookie(c)); !ok || who != "guard" {
		t.Fatalf("the session does not hold on the other instance: %q %v", who, ok)
	}
	clear, _, err := a.Logout(ctx, withCookie(c))
	if err != nil || clear.Domain != "store.lan" || clear.MaxAge >= 0 {
		t.Fatalf("logout: %v %+v", err, clear)
	}
	if _, _, ok := b.Whoami(withCookie(c)); ok {
		t.Fatal("signed out on a, still signed in on b")
	}

	// Sign out everywhere on a ends b's copies too.
	c1, _, _ := a.Login(ctx, "guard", "secret-pw", "192.0.2.9")
	c2, _, _ := a.Login(ctx, "guard", "secret-pw", "192.0.2.10")
	if n, err := a.SignOutEverywhere(ctx, "guard"); err != nil || n != 2 {
		t.Fatalf("sign out everywhere: %d %v", n, err)
	}
	for _, c := range []*http.Cookie{c1, c2} {
		if _, _, ok := b.Whoami(withCookie(c)); ok {
			t.Fatal("signed out everywhere on a, still signed in on b")
		}
	}

	// The coordinator is down: the sign-in works here, not on b.
	r.down = true
	c3, _, err := a.Login(ctx, "guard", "secret-pw", "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, ok := a.Whoami(withCookie(c3)); !ok {
		t.Fatal("a local session must hold locally while the coordinator is down")
	}
	if _, _, ok := b.Whoami(withCookie(c3)); ok {
		t.Fatal("b cannot know a session it was never told of")
	}
}

// TestSharedSessionNeverComesBack: a late or repeated copy of a session ended here, or of
// one created before its user was signed out everywhere, or an expired one, is not taken.
func TestSharedSessionNeverComesBack(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	b := testAuthorizer(t)
	s := SharedSession{ID: strings.Repeat("ab", 32), User: "guard", Created: now, Expires: now.Add(time.Hour)}
	if err := b.EndSession(ctx, s.ID); err != nil { // the end arrives first
		t.Fatal(err)
	}
	if err := b.ImportSession(ctx, s); err != nil {
		t.Fatal(err)
	}
	if n := len(sessionsOf(t, b)); n != 0 {
		t.Fatalf("an ended session came back: %d held", n)
	}
	if _, err := b.EndUserSessions(ctx, "guard", now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	old := s
	old.ID = strings.Repeat("cd", 32)
	if err := b.ImportSession(ctx, old); err != nil {
		t.Fatal(err)
	}
	expired := SharedSession{ID: strings.Repeat("ef", 32), User: "guard", Created: now.Add(-2 * time.Hour), Expires: now.Add(-time.Hour)}
	if err := b.ImportSession(ctx, expired); err != nil {
		t.Fatal(err)
	}
	if n := len(sessionsOf(t, b)); n != 0 {
		t.Fatalf("a session from before a sign-out everywhere, or an expired one, was taken: %d held", n)
	}
	later := s
	later.ID, later.Created = strings.Repeat("12", 32), now.Add(2*time.Second)
	for range 2 { // a repeat is harmless
		if err := b.ImportSession(ctx, later); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(sessionsOf(t, b)); n != 1 {
		t.Fatalf("a session created after the sign-out everywhere: %d held, want 1", n)
	}
	for _, bad := range []SharedSession{{ID: "xyz", User: "guard", Created: now, Expires: now.Add(time.Hour)},
		{ID: strings.Repeat("34", 32), Created: now, Expires: now.Add(time.Hour)}} {
		if err := b.ImportSession(ctx, bad); err == nil {
			t.Errorf("import of %+v accepted", bad)
		}
	}
}

func sessionsOf(t *testing.T, z *Authorizer) map[[32]byte]session {
	out := map[[32]byte]session{}
	if err := z.store.do(context.Background(), func(st *storeState) {
		for k, v := range st.sessions {
			out[k] = v
		}
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
