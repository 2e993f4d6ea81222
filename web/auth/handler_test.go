package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web"
	"github.com/crowdwatch/crowdwatch/zones"
)

type fakeEngine struct{ ch chan struct{} }

func (f fakeEngine) Snapshot() *zones.Snapshot {
	return &zones.Snapshot{Zones: []zones.ZoneState{{ID: "hall", Capacity: 100}, {ID: "door-zone", Capacity: 10}}}
}
func (f fakeEngine) Subscribe() (<-chan struct{}, func()) { return f.ch, func() {} }
func (f fakeEngine) Healthy() bool                        { return true }
func (f fakeEngine) Correct(_ context.Context, id string, v int64, _, _ string) (zones.ZoneState, error) {
	return zones.ZoneState{ID: id, Occupancy: v}, nil
}

type up struct{}

func (up) Connected() bool { return true }

func hexSum(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// newHandler is the service's handler with sign-in from a store file's auth section.
func newHandler(t *testing.T, a configs.Auth) (http.Handler, *Authorizer) {
	t.Helper()
	a.SessionTTL = time.Hour
	cfg := &configs.Config{Site: configs.Site{ID: "s"}, Auth: a,
		Zones:   []configs.Zone{{ID: "hall", Capacity: 100}, {ID: "door-zone", Capacity: 10}},
		Signage: configs.Signage{Hold: time.Second, StaleAfter: 10 * time.Second},
		Screens: []configs.Screen{{ID: "door", Zone: "door-zone"}, {ID: "other", Zone: "hall"}}}
	z, err := New(a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	eng := fakeEngine{ch: make(chan struct{})}
	live := web.NewLive(web.LiveOptions{Layout: web.LayoutOf(cfg, nil), Engine: eng})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); live.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; z.Close() })
	for _, ok := live.Guidance("door"); !ok; _, ok = live.Guidance("door") {
		time.Sleep(time.Millisecond) // the feed's first view
	}
	h := web.NewHandler(web.Options{Engine: eng, Broker: up{}, Gatherer: prometheus.NewRegistry(), Auth: z, SignIn: z, Live: live,
		Alerting: fakeAlerting{}})
	return h, z
}

// fakeAlerting accepts every action, so only the role and cross-site checks can refuse one.
type fakeAlerting struct{}

func (fakeAlerting) Status() *alerting.Status { return &alerting.Status{} }
func (fakeAlerting) Alerts(context.Context, alerting.Filter) ([]alerting.Alert, error) {
	return nil, nil
}
func (fakeAlerting) Ack(_ context.Context, id, by, note string) (alerting.Alert, error) {
	return alerting.Alert{ID: id, AckBy: by, AckNote: note, State: alerting.StateAcknowledged}, nil
}
func (fakeAlerting) AckZone(_ context.Context, zone, by, note string) ([]alerting.Alert, error) {
	return []alerting.Alert{{ID: "level:" + zone, AckBy: by, AckNote: note, State: alerting.StateAcknowledged}}, nil
}
func (fakeAlerting) Declare(_ context.Context, zone, by, reason string) (alerting.Evacuation, error) {
	return alerting.Evacuation{Zone: zone, By: by, Reason: reason}, nil
}
func (fakeAlerting) StandDown(context.Context, string, string, string) error { return nil }
func (fakeAlerting) Silences(context.Context) ([]alerting.Silence, error)    { return nil, nil }
func (fakeAlerting) AddSilence(_ context.Context, s alerting.Silence) (alerting.Silence, error) {
	return s, nil
}
func (fakeAlerting) DeleteSilence(context.Context, string, string) error { return nil }

// caller is one kind of client: how it dresses its requests.
type caller struct {
	name  string
	dress func(*http.Request)
	may   bool // may take security actions
}

func callers(t *testing.T, z *Authorizer, tokens map[string]string) []caller {
	cookie, _, err := z.Login(context.Background(), "guard", "guard-pw", "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	mcookie, _, err := z.Login(context.Background(), "boss", "boss-pw", "192.0.2.9")
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	return []caller{
		{"nobody", func(*http.Request) {}, false},
		{"wrong token", bearer("cw_not-a-token"), false},
		{"display token in the URL", func(r *http.Request) {
			q := r.URL.Query()
			q.Set("token", tokens["display"])
			r.URL.RawQuery = q.Encode()
		}, false},
		{"display token", bearer(tokens["display"]), false},
		{"manager token", bearer(tokens["manager"]), false},
		{"manager session", func(r *http.Request) { r.AddCookie(mcookie) }, false},
		{"security session", func(r *http.Request) { r.AddCookie(cookie) }, true},
		{"security token", bearer(tokens["security"]), true},
		{"admin token", bearer(tokens["admin"]), true},
	}
}

func fullAuth(t *testing.T) (configs.Auth, map[string]string) {
	hash := func(pw string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return string(h)
	}
	tokens := map[string]string{}
	a := configs.Auth{Users: []configs.WebUser{
		{Username: "guard", PasswordHash: hash("guard-pw"), Role: "security"},
		{Username: "boss", PasswordHash: hash("boss-pw"), Role: "manager"},
	}}
	for _, role := range []string{"display", "manager", "security", "admin"} {
		tok, sum, err := NewToken()
		if err != nil {
			t.Fatal(err)
		}
		tokens[role] = tok
		screen := ""
		if role == "display" {
			screen = "door"
		}
		a.Tokens = append(a.Tokens, configs.APIToken{Name: role, SHA256: sum, Role: role, Screen: screen})
	}
	return a, tokens
}

// Every state-changing endpoint that needs the security role.
var securityActions = []struct{ method, path, body string }{
	{"POST", "/api/v1/zones/hall/correction", `{"occupancy": 3, "by": "x", "reason": "head count"}`},
	{"POST", "/api/v1/alerts/level:hall/ack", `{"note": "seen"}`},
	{"POST", "/api/v1/alerts/ack", `{"zone": "hall", "note": "seen"}`},
	{"POST", "/api/v1/evacuation", `{"zone": "hall", "reason": "drill"}`},
	{"POST", "/api/v1/evacuation/stand-down", `{"zone": "hall", "reason": "drill over"}`},
	{"POST", "/api/v1/silences", `{"zone": "hall", "duration": "30m", "comment": "drill"}`},
	{"DELETE", "/api/v1/silences/abc", ``},
}

func do(h http.Handler, method, path, body string, dress func(*http.Request)) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if dress != nil {
		dress(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestSecurityActionsRefuseWrongRole(t *testing.T) {
	a, tokens := fullAuth(t)
	h, z := newHandler(t, a)
	for _, act := range securityActions {
		t.Run(act.method+" "+act.path, func(t *testing.T) {
			probe := do(h, act.method, act.path, act.body, func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["admin"]) })
			if probe.Code >= 300 {
				t.Fatalf("admin could not act: %d %s", probe.Code, probe.Body)
			}
			for _, c := range callers(t, z, tokens) {
				w := do(h, act.method, act.path, act.body, c.dress)
				refused := w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden
				if refused == c.may {
					t.Errorf("%s: %d %s (may act: %v)", c.name, w.Code, w.Body, c.may)
				}
				if c.name == "nobody" && w.Code != http.StatusUnauthorized {
					t.Errorf("nobody: %d, want 401 (sign in)", w.Code)
				}
			}
		})
	}
}

// A request from another site's page is refused before anything else, even with a valid
// session cookie; the same request from the service's own page goes through.
func TestStateChangesRefuseCrossSite(t *testing.T) {
	a, _ := fullAuth(t)
	h, z := newHandler(t, a)
	cookie, _, _ := z.Login(context.Background(), "guard", "guard-pw", "192.0.2.9")
	actions := append(securityActions[:1:1],
		struct{ method, path, body string }{"POST", "/api/v1/session", `{"username":"guard","password":"guard-pw"}`},
		struct{ method, path, body string }{"DELETE", "/api/v1/session", ``})
	for _, act := range append(actions, securityActions[1:]...) {
		for name, dress := range map[string]func(*http.Request){
			"Sec-Fetch-Site cross-site": func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") },
			"Sec-Fetch-Site same-site":  func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") },
			"foreign Origin":            func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") },
		} {
			w := do(h, act.method, act.path, act.body, func(r *http.Request) { r.AddCookie(cookie); dress(r) })
			if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "cross-site") {
				t.Errorf("%s %s with %s: %d %s, want 403 cross-site", act.method, act.path, name, w.Code, w.Body)
			}
		}
	}
	w := do(h, "POST", securityActions[0].path, securityActions[0].body, func(r *http.Request) {
		r.AddCookie(cookie)
		r.Header.Set("Sec-Fetch-Site", "same-origin")
		r.Header.Set("Origin", "http://example.com") // httptest's Host
	})
	if w.Code != http.StatusOK {
		t.Errorf("same-origin correction: %d %s", w.Code, w.Body)
	}
}

// A display token reads its own screen's guidance and feed and nothing else.
func TestDisplayTokenReadsOnlyItsScreen(t *testing.T) {
	a, tokens := fullAuth(t)
	h, _ := newHandler(t, a)
	for _, how := range []string{"header", "url"} {
		dress := func(r *http.Request) {
			if how == "header" {
				r.Header.Set("Authorization", "Bearer "+tokens["display"])
				return
			}
			q := r.URL.Query()
			q.Set("token", tokens["display"])
			r.URL.RawQuery = q.Encode()
		}
		cases := []struct {
			path string
			ok   bool
		}{
			{"/api/v1/signage/door", true},
			{"/api/v1/signage/other", false},
			{"/api/v1/live?screen=other", false},
			{"/api/v1/live", false},
			{"/api/v1/zones", false},
			{"/api/v1/zones/hall", false},
			{"/api/v1/devices", false},
			{"/api/v1/doors", false},
			{"/metrics", false},
			{"/plans/g", false},
		}
		for _, c := range cases {
			w := do(h, "GET", c.path, "", dress)
			if (w.Code == http.StatusOK) != c.ok || (!c.ok && w.Code != http.StatusForbidden) {
				t.Errorf("display token in the %s: GET %s: %d %s (want allowed: %v)", how, c.path, w.Code, w.Body, c.ok)
			}
		}
	}
	// The feed of its own screen passes the check (the upgrade then fails on a recorder).
	w := do(h, "GET", "/api/v1/live?screen=door", "", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["display"]) })
	if w.Code == http.StatusForbidden || w.Code == http.StatusUnauthorized {
		t.Errorf("own screen's feed refused: %d %s", w.Code, w.Body)
	}
	// Other tokens in the URL are ignored: they would end up in logs.
	w = do(h, "GET", "/api/v1/zones?token="+tokens["manager"], "", nil)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("manager token in the URL: %d, want 401", w.Code)
	}
}

// Without users, reads stay open and security actions are refused with the reason.
func TestNoUsersRefusesSecurityActions(t *testing.T) {
	h, _ := newHandler(t, configs.Auth{})
	if w := do(h, "GET", "/api/v1/zones", "", nil); w.Code != http.StatusOK {
		t.Errorf("read without users: %d", w.Code)
	}
	w := do(h, "POST", securityActions[0].path, securityActions[0].body, nil)
	if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "no users are configured") {
		t.Errorf("correction without users: %d %s", w.Code, w.Body)
	}
	w = do(h, "POST", "/api/v1/session", `{"username":"a","password":"b"}`, nil)
	if w.Code != http.StatusForbidden {
		t.Errorf("sign-in without users: %d %s", w.Code, w.Body)
	}
	w = do(h, "GET", "/api/v1/session", "", nil)
	if !strings.Contains(w.Body.String(), `"security_actions":false`) {
		t.Errorf("session info without users: %s", w.Body)
	}
}

func TestSignInOverHTTP(t *testing.T) {
	a, _ := fullAuth(t)
	h, _ := newHandler(t, a)
	w := do(h, "POST", "/api/v1/session", `{"username":"guard","password":"nope"}`, nil)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d", w.Code)
	}
	w = do(h, "POST", "/api/v1/session", `{"username":"guard","password":"guard-pw"}`, nil)
	cookies := w.Result().Cookies()
	if w.Code != http.StatusOK || len(cookies) != 1 || !cookies[0].HttpOnly || cookies[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("sign-in: %d %s %v", w.Code, w.Body, cookies)
	}
	w = do(h, "GET", "/api/v1/session", "", func(r *http.Request) { r.AddCookie(cookies[0]) })
	if !strings.Contains(w.Body.String(), `"user":"guard"`) || !strings.Contains(w.Body.String(), `"role":"security"`) {
		t.Errorf("session: %s", w.Body)
	}
	w = do(h, "DELETE", "/api/v1/session", "", func(r *http.Request) { r.AddCookie(cookies[0]) })
	if c := w.Result().Cookies(); len(c) != 1 || c[0].MaxAge >= 0 {
		t.Errorf("sign-out cookie %v", c)
	}
}
