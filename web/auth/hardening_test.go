package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/web"
)

// A display token reads its own screen's routes and nothing else, whatever it
// puts in the query (Authorize used to take ?screen= on routes without {screen}).
func TestDisplayTokenCannotBorrowScreenFromQuery(t *testing.T) {
	a, tokens := fullAuth(t)
	h, _ := newHandler(t, a)
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["display"]) }
	for _, path := range []string{
		"/api/v1/zones?screen=door", "/api/v1/zones/hall?screen=door", "/api/v1/status?screen=door",
		"/api/v1/evacuation?screen=door", "/api/v1/alerts?screen=door", "/api/v1/silences?screen=door",
	} {
		if w := do(h, "GET", path, "", bearer); w.Code != http.StatusForbidden {
			t.Errorf("display token: GET %s: %d %s, want 403", path, w.Code, w.Body)
		}
	}
	if w := do(h, "GET", "/api/v1/signage/door", "", bearer); w.Code != http.StatusOK {
		t.Errorf("display token: own screen: %d %s", w.Code, w.Body)
	}
}

// Sign-out answers the service's real state; a cookie copied before sign-out
// is refused afterwards.
func TestSignOutRevokesTheSession(t *testing.T) {
	a, _ := fullAuth(t)
	h, _ := newHandler(t, a)
	w := do(h, "POST", "/api/v1/session", `{"username":"guard","password":"guard-pw"}`, nil)
	if w.Code != http.StatusOK || len(w.Result().Cookies()) != 1 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	cookie := w.Result().Cookies()[0]
	withCookie := func(r *http.Request) { r.AddCookie(cookie) }
	if w := do(h, "GET", "/api/v1/zones", "", withCookie); w.Code != http.StatusOK {
		t.Fatalf("signed in: %d", w.Code)
	}
	w = do(h, "DELETE", "/api/v1/session", "", withCookie)
	var info map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &info)
	if w.Code != http.StatusOK || info["auth_enabled"] != true || info["signed_in"] != false {
		t.Errorf("sign-out answer: %d %s, want auth_enabled true, signed_in false", w.Code, w.Body)
	}
	if w := do(h, "GET", "/api/v1/zones", "", withCookie); w.Code != http.StatusUnauthorized {
		t.Errorf("signed-out cookie still reads: %d, want 401", w.Code)
	}
	if w := do(h, "POST", securityActions[0].path, securityActions[0].body, withCookie); w.Code != http.StatusUnauthorized {
		t.Errorf("signed-out cookie still acts: %d, want 401", w.Code)
	}
}

// Repeated wrong passwords are throttled with 429 and Retry-After.
func TestSignInIsThrottled(t *testing.T) {
	a, _ := fullAuth(t)
	h, _ := newHandler(t, a)
	throttled := 0
	for i := 0; i < 50; i++ {
		w := do(h, "POST", "/api/v1/session", `{"username":"guard","password":"wrong-pw"}`, nil)
		if w.Code == http.StatusTooManyRequests {
			throttled++
			if w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "too many") {
				t.Fatalf("429 without Retry-After or reason: %v %s", w.Header(), w.Body)
			}
		} else if w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i, w.Code, w.Body)
		}
	}
	if throttled < 40 {
		t.Errorf("50 wrong passwords: %d throttled, want most of them", throttled)
	}
}

// newStoreHandler is newHandler with a store file at path and a sink for security events.
func newStoreHandler(t *testing.T, a configs.Auth, path string, sink security.Sink, now func() time.Time) (http.Handler, *Authorizer, *Store) {
	t.Helper()
	a.SessionTTL = time.Hour
	st, err := OpenStore(path, StoreOptions{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	z, err := New(a, Options{Store: st, Events: sink, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	cfg := &configs.Config{Site: configs.Site{ID: "s"}, Auth: a,
		Zones:   []configs.Zone{{ID: "hall", Capacity: 100}, {ID: "door-zone", Capacity: 10}},
		Signage: configs.Signage{Hold: time.Second, StaleAfter: 10 * time.Second},
		Screens: []configs.Screen{{ID: "door", Zone: "door-zone"}, {ID: "other", Zone: "hall"}}}
	eng := fakeEngine{ch: make(chan struct{})}
	live := web.NewLive(web.LiveOptions{Layout: web.LayoutOf(cfg, nil), Engine: eng, Limits: web.FeedLimits{PerPrincipal: 3, PerAddress: 100, Total: 100}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); live.Run(ctx) }()
	h := web.NewHandler(web.Options{Engine: eng, Broker: up{}, Gatherer: prometheus.NewRegistry(), Auth: z, SignIn: z, Live: live,
		Alerting: fakeAlerting{}, Audit: st, Events: sink})
	t.Cleanup(func() {
		cancel()
		<-done
		{
			st.Close()
		}
	})
	return h, z, st
}

// sourced counts the events of kind k that name their source.
func sourced(sink *testkit.Events, k security.Kind) int {
	n := 0
	for _, ev := range sink.Of(k) {
		if ev.Source != "" {
			n++
		}
	}
	return n
}

// A guard being guessed at waits at most userCap; the right password then
// works, and the attempts were reported with their source.
func TestThrottleCapsTheWaitAndReports(t *testing.T) {
	a, _ := fullAuth(t)
	var mu sync.Mutex
	clock := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	sink := &testkit.Events{}
	h, _, _ := newStoreHandler(t, a, "", sink, now)
	for i := 0; i < 200; i++ { // an attacker who never stops, one attempt per second
		do(h, "POST", "/api/v1/session", `{"username":"guard","password":"wrong-pw"}`, nil)
		advance(time.Second)
	}
	w := do(h, "POST", "/api/v1/session", `{"username":"guard","password":"guard-pw"}`, func(r *http.Request) { r.RemoteAddr = "198.51.100.7:4000" })
	if w.Code == http.StatusTooManyRequests {
		ra, _ := strconv.Atoi(w.Header().Get("Retry-After"))
		if ra < 1 || time.Duration(ra)*time.Second > userCap {
			t.Errorf("the guard is told to wait %d s, more than the cap %v", ra, userCap)
		}
		advance(userCap)
		w = do(h, "POST", "/api/v1/session", `{"username":"guard","password":"guard-pw"}`, func(r *http.Request) { r.RemoteAddr = "198.51.100.7:4000" })
	}
	if w.Code != http.StatusOK {
		t.Errorf("guard after %v: %d %s", userCap, w.Code, w.Body)
	}
	if sourced(sink, security.SignInFailed) == 0 || sourced(sink, security.SignInThrottled) == 0 {
		t.Errorf("events: %d failed, %d throttled; want both reported with a source", sourced(sink, security.SignInFailed), sourced(sink, security.SignInThrottled))
	}
}

func TestThrottleDelays(t *testing.T) {
	th := newThrottle()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var waits []time.Duration
	for i := 0; i < 12; i++ {
		w, _ := th.attempt("guard", "h", at)
		waits = append(waits, w)
		at = at.Add(w) // the attacker comes back exactly when allowed
		if w > 0 {
			if w, _ := th.attempt("guard", "h", at); w != 0 {
				t.Fatalf("refused when the wait was over")
			}
		}
	}
	for _, w := range waits {
		if w > userCap {
			t.Errorf("wait %v beyond the cap %v", w, userCap)
		}
	}
	if waits[userFree+1] != userBase || waits[len(waits)-1] != userCap {
		t.Errorf("waits %v: want %v after %d free attempts, growing to %v", waits, userBase, userFree, userCap)
	}
	th.succeeded("guard", "h", at)
	if w, _ := th.attempt("guard", "other-host", at); w != 0 {
		t.Errorf("after a right password the user still waits %v", w)
	}
	// Quiet for forgetAfter: everything is forgotten, and the tables stay bounded.
	for i := 0; i < throttleMax+10; i++ {
		th.attempt(fmt.Sprintf("u%d", i), fmt.Sprintf("h%d", i), at)
	}
	if len(th.users.m) > throttleMax || len(th.hosts.m) > throttleMax {
		t.Errorf("throttle tables grew to %d, %d", len(th.users.m), len(th.hosts.m))
	}
}

// Sign-out and revocation hold across a restart; a session that was not
// revoked survives it; an admin signs a user out everywhere.
func TestSessionsSurviveRestartRevocationsToo(t *testing.T) {
	a, tokens := fullAuth(t)
	path := filepath.Join(t.TempDir(), "s.auth.db")
	h, _, st := newStoreHandler(t, a, path, nil, nil)
	signIn := func(h http.Handler) *http.Cookie {
		w := do(h, "POST", "/api/v1/session", `{"username":"guard","password":"guard-pw"}`, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("sign-in: %d %s", w.Code, w.Body)
		}
		return w.Result().Cookies()[0]
	}
	reads := func(h http.Handler, c *http.Cookie) int {
		return do(h, "GET", "/api/v1/zones", "", func(r *http.Request) { r.AddCookie(c) }).Code
	}
	kept, out, tablet, phone := signIn(h), signIn(h), signIn(h), signIn(h)
	do(h, "DELETE", "/api/v1/session", "", func(r *http.Request) { r.AddCookie(out) })
	st.Close()

	h, _, st = newStoreHandler(t, a, path, nil, nil)
	if got := reads(h, kept); got != http.StatusOK {
		t.Errorf("session kept across the restart: %d", got)
	}
	if got := reads(h, out); got != http.StatusUnauthorized {
		t.Errorf("signed-out session after a restart: %d, want 401", got)
	}
	// Sign out everywhere: admin only, unknown users 404.
	admin := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["admin"]) }
	if w := do(h, "DELETE", "/api/v1/users/guard/sessions", "", func(r *http.Request) { r.AddCookie(kept) }); w.Code != http.StatusForbidden {
		t.Errorf("a security user signs others out: %d", w.Code)
	}
	if w := do(h, "DELETE", "/api/v1/users/nobody/sessions", "", admin); w.Code != http.StatusNotFound {
		t.Errorf("unknown user: %d", w.Code)
	}
	w := do(h, "DELETE", "/api/v1/users/guard/sessions", "", admin)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `"revoked":3`) {
		t.Errorf("sign out everywhere: %d %s, want 3 revoked", w.Code, w.Body)
	}
	st.Close()
	h, _, _ = newStoreHandler(t, a, path, nil, nil)
	for name, c := range map[string]*http.Cookie{"kept": kept, "tablet": tablet, "phone": phone} {
		if got := reads(h, c); got != http.StatusUnauthorized {
			t.Errorf("%s after sign-out everywhere and a restart: %d, want 401", name, got)
		}
	}
}

// Sign-ins, sign-outs and every state-changing call (who, role, remote,
// method, path, status) are in the audit log, which managers read and others may not.
func TestAuditLog(t *testing.T) {
	a, tokens := fullAuth(t)
	path := filepath.Join(t.TempDir(), "s.auth.db")
	h, _, st := newStoreHandler(t, a, path, nil, nil)
	from := func(r *http.Request) { r.RemoteAddr = "203.0.113.5:5555" }
	do(h, "POST", "/api/v1/session", `{"username":"guard","password":"nope-nope"}`, from)
	w := do(h, "POST", "/api/v1/session", `{"username":"guard","password":"guard-pw"}`, from)
	cookie := w.Result().Cookies()[0]
	do(h, "POST", securityActions[0].path, securityActions[0].body, func(r *http.Request) { from(r); r.AddCookie(cookie) })
	do(h, "POST", "/api/v1/evacuation", `{"zone":"hall","reason":"drill"}`, func(r *http.Request) {
		from(r)
		r.Header.Set("Authorization", "Bearer "+tokens["security"])
	})
	do(h, "POST", "/api/v1/evacuation", `{"zone":"hall","reason":"drill"}`, func(r *http.Request) {
		from(r)
		r.Header.Set("Authorization", "Bearer "+tokens["manager"]) // refused, and audited
	})
	do(h, "DELETE", "/api/v1/session", "", func(r *http.Request) { from(r); r.AddCookie(cookie) })
	st.Close() // flushes the queue; the log is read back from the file
	h, _, _ = newStoreHandler(t, a, path, nil, nil)

	manager := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["manager"]) }
	for _, tok := range []string{"display"} {
		if w := do(h, "GET", "/api/v1/audit", "", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens[tok]) }); w.Code != http.StatusForbidden {
			t.Errorf("%s token reads the audit: %d", tok, w.Code)
		}
	}
	w = do(h, "GET", "/api/v1/audit", "", manager)
	var page struct {
		Entries []web.AuditEntry `json:"entries"`
		Next    string           `json:"next"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || w.Code != http.StatusOK {
		t.Fatalf("audit: %d %s", w.Code, w.Body)
	}
	want := []string{ // newest first
		"signout guard  DELETE /api/v1/session 200",
		"action token:manager manager POST /api/v1/evacuation 403",
		"action token:security security POST /api/v1/evacuation 200",
		"action guard security POST /api/v1/zones/hall/correction 200",
		"signin guard security POST /api/v1/session 200",
		"signin_failed guard  POST /api/v1/session 401",
	}
	var got []string
	for _, e := range page.Entries {
		if e.Remote != "203.0.113.5:5555" || e.At.IsZero() || e.Seq == 0 {
			t.Errorf("entry without remote, time or seq: %+v", e)
		}
		got = append(got, fmt.Sprintf("%s %s %s %s %s %d", e.Event, e.Who, e.Role, e.Method, e.Path, e.Status))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Pages: two at a time, following next.
	var all []uint64
	next := ""
	for i := 0; i < 10; i++ {
		q := "/api/v1/audit?limit=2"
		if next != "" {
			q += "&before=" + next
		}
		w := do(h, "GET", q, "", manager)
		page.Next = ""
		page.Entries = nil
		_ = json.Unmarshal(w.Body.Bytes(), &page)
		for _, e := range page.Entries {
			all = append(all, e.Seq)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if len(all) != len(want) {
		t.Errorf("paging gave %v, want %d entries", all, len(want))
	}
	for i := 1; i < len(all); i++ {
		if all[i] >= all[i-1] {
			t.Errorf("paging order %v", all)
		}
	}
	for _, bad := range []string{"?limit=0", "?limit=5000", "?since=yesterday", "?before=x"} {
		if w := do(h, "GET", "/api/v1/audit"+bad, "", manager); w.Code != http.StatusBadRequest {
			t.Errorf("audit%s: %d, want 400", bad, w.Code)
		}
	}
	if w := do(h, "GET", "/api/v1/audit?event=signin_failed", "", manager); strings.Count(w.Body.String(), `"seq"`) != 1 {
		t.Errorf("event filter: %s", w.Body)
	}
}

// One token opens at most its limit of feeds; the refusal is a 429 that says
// which limit, reported as a connection_limit event. A closed feed frees its place.
func TestFeedLimitPerToken(t *testing.T) {
	a, tokens := fullAuth(t)
	sink := &testkit.Events{}
	h, _, _ := newStoreHandler(t, a, "", sink, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/live?screen=door&token=" + tokens["display"]
	var open []*websocket.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < 3; i++ {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("feed %d: %v", i, err)
		}
		open = append(open, c)
	}
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("4th feed on one token: %v %v, want 429", err, resp)
	}
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), "token:display") || !strings.Contains(string(body), "max_per_user") {
		t.Errorf("refusal says %s", body)
	}
	if sourced(sink, security.ConnectionLimit) != 1 {
		t.Errorf("%d connection_limit events, want 1", sourced(sink, security.ConnectionLimit))
	}
	// Another principal is not affected by this token's limit.
	mgr := http.Header{"Authorization": {"Bearer " + tokens["manager"]}}
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/live", mgr)
	if err != nil {
		t.Fatalf("manager's feed: %v", err)
	}
	open = append(open, c)
	open[0].Close()
	ok := false
	for i := 0; i < 200 && !ok; i++ { // the feed lets go of a closed connection soon
		if c, _, err := websocket.DefaultDialer.Dial(url, nil); err == nil {
			open, ok = append(open, c), true
		} else {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !ok {
		t.Errorf("a closed feed did not free its place")
	}
}

// A token that matches nothing, or is used outside its role or screen, is a
// token_refused event with its source; a valid use is not.
func TestTokenRefusedEvents(t *testing.T) {
	a, tokens := fullAuth(t)
	sink := &testkit.Events{}
	h, _, _ := newStoreHandler(t, a, "", sink, nil)
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	do(h, "GET", "/api/v1/signage/door", "", bearer(tokens["display"]))
	do(h, "GET", "/api/v1/zones", "", bearer(tokens["manager"]))
	if n := sourced(sink, security.TokenRefused); n != 0 {
		t.Fatalf("%d token_refused events for valid uses", n)
	}
	do(h, "GET", "/api/v1/zones", "", bearer("cw_guessed"))
	do(h, "GET", "/api/v1/zones?screen=door", "", bearer(tokens["display"]))
	do(h, "POST", "/api/v1/evacuation", `{"zone":"hall","reason":"x"}`, bearer(tokens["manager"]))
	if n := sourced(sink, security.TokenRefused); n != 3 {
		t.Errorf("%d token_refused events, want 3: %+v", n, sink.All())
	}
	for _, e := range sink.All() {
		if e.Source != "192.0.2.1" || e.Subject == "" {
			t.Errorf("event without source or subject: %+v", e)
		}
	}
}

// Hammering costs the attacker nothing, so it must not fill the audit log: one throttled
// entry per wait, and refused calls from nobody at a bounded rate, the rest counted.
func TestAuditSurvivesHammering(t *testing.T) {
	a, _ := fullAuth(t)
	path := filepath.Join(t.TempDir(), "s.auth.db")
	h, _, st := newStoreHandler(t, a, path, nil, nil)
	for i := 0; i < 300; i++ {
		do(h, "POST", "/api/v1/session", `{"username":"guard","password":"wrong-pw"}`, nil)
	}
	for i := 0; i < 1000; i++ {
		do(h, "POST", "/api/v1/evacuation", `{"zone":"hall","reason":"x"}`, nil)
	}
	time.Sleep(100 * time.Millisecond) // room for one more entry (20 a second), which says how many were left out
	do(h, "POST", "/api/v1/evacuation", `{"zone":"hall","reason":"x"}`, nil)
	st.Close()
	_, _, st = newStoreHandler(t, a, path, nil, nil)
	count := func(event string) (int, string) {
		list, err := st.Query(context.Background(), web.AuditQuery{Limit: 1000, Event: event})
		if err != nil {
			t.Fatal(err)
		}
		detail := ""
		for _, e := range list {
			if e.Detail != "" {
				detail = e.Detail
			}
		}
		return len(list), detail
	}
	if n, _ := count(web.AuditSignInThrottled); n < 1 || n > 5 {
		t.Errorf("%d signin_throttled entries for 300 attempts in one wait, want 1 to 5", n)
	}
	if n, detail := count(web.AuditAction); n > 400 || n < 50 || !strings.Contains(detail, "left out") {
		t.Errorf("%d entries for 1000 refused calls from nobody (detail %q), want a bounded number and a count of the rest", n, detail)
	}
}
