package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/web"
)

type sink struct {
	mu  sync.Mutex
	all []security.Event
}

func (s *sink) Record(e security.Event) { s.mu.Lock(); s.all = append(s.all, e); s.mu.Unlock() }
func (s *sink) count() int              { s.mu.Lock(); defer s.mu.Unlock(); return len(s.all) }

// TestDeviceTokenPushesOnlyItsOwnDevice: a device token is accepted as Bearer, as the HTTP
// Basic password (any user name) and as ?token=, for its own device's push route only; every
// other caller of that route, and the device token anywhere else, is refused with an event.
func TestDeviceTokenPushesOnlyItsOwnDevice(t *testing.T) {
	a := configs.Auth{Tokens: []configs.APIToken{
		{Name: "ms-1", SHA256: hexSum("tok-ms-1"), Role: "device", Device: "ms-1"},
		{Name: "mgr", SHA256: hexSum("tok-mgr"), Role: "admin"},
		{Name: "door", SHA256: hexSum("tok-door"), Role: "display", Screen: "door"},
	}}
	events := &sink{}
	z, err := New(a, Options{Events: events})
	if err != nil {
		t.Fatal(err)
	}
	defer z.Close()
	var pushed []string
	ingest := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pushed = append(pushed, r.PathValue("device"))
		w.WriteHeader(http.StatusOK)
	})
	h := web.NewHandler(web.Options{Engine: fakeEngine{ch: make(chan struct{})}, Broker: up{}, Gatherer: prometheus.NewRegistry(),
		Auth: z, Ingest: ingest})
	do := func(method, target string, set func(*http.Request)) int {
		r := httptest.NewRequestWithContext(context.Background(), method, target, nil)
		if set != nil {
			set(r)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	bearer := func(tok string) func(*http.Request) {
		return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
	}
	accepted := map[string]func(*http.Request){
		"bearer": bearer("tok-ms-1"),
		"basic":  func(r *http.Request) { r.SetBasicAuth("anyone", "tok-ms-1") },
	}
	for name, set := range accepted {
		if code := do("POST", "/ingest/v1/ms-1", set); code != http.StatusOK {
			t.Errorf("%s: push answered %d, want 200", name, code)
		}
	}
	if code := do("POST", "/ingest/v1/ms-1?token=tok-ms-1", nil); code != http.StatusOK {
		t.Errorf("?token=: push answered %d, want 200", code)
	}
	if len(pushed) != 3 || events.count() != 0 {
		t.Fatalf("pushed %v, events %d", pushed, events.count())
	}
	refused := []struct {
		name, target string
		set          func(*http.Request)
		code         int
	}{
		{"no token", "/ingest/v1/ms-1", nil, http.StatusUnauthorized},
		{"wrong token", "/ingest/v1/ms-1", bearer("nope"), http.StatusUnauthorized},
		{"wrong basic password", "/ingest/v1/ms-1", func(r *http.Request) { r.SetBasicAuth("ms-1", "nope") }, http.StatusUnauthorized},
		{"another device's route", "/ingest/v1/ms-2", bearer("tok-ms-1"), http.StatusUnauthorized},
		{"an admin token", "/ingest/v1/ms-1", bearer("tok-mgr"), http.StatusUnauthorized},
		{"a display token", "/ingest/v1/ms-1?token=tok-door", nil, http.StatusUnauthorized},
		{"basic with an admin token", "/ingest/v1/ms-1", func(r *http.Request) { r.SetBasicAuth("x", "tok-mgr") }, http.StatusUnauthorized},
	}
	for i, c := range refused {
		if code := do("POST", c.target, c.set); code != c.code {
			t.Errorf("%s: answered %d, want %d", c.name, code, c.code)
		}
		if events.count() != i+1 {
			t.Errorf("%s: %d security events, want %d", c.name, events.count(), i+1)
		}
	}
	if len(pushed) != 3 {
		t.Fatalf("refused pushes reached the handler: %v", pushed)
	}
	// HTTP Basic carries device tokens only: an admin token as a Basic password is no one.
	if code := do("GET", "/api/v1/zones", func(r *http.Request) { r.SetBasicAuth("x", "tok-mgr") }); code != http.StatusUnauthorized {
		t.Errorf("an admin token as a Basic password read the zones: %d", code)
	}
	// A device token does nothing else anywhere, in any form.
	n := events.count()
	for _, target := range []string{"/api/v1/zones", "/api/v1/devices", "/metrics", "/api/v1/audit"} {
		if code := do("GET", target, bearer("tok-ms-1")); code != http.StatusForbidden && code != http.StatusUnauthorized {
			t.Errorf("device token on %s: answered %d", target, code)
		}
		if code := do("GET", target+"?token=tok-ms-1", nil); code == http.StatusOK {
			t.Errorf("device token in the URL of %s: answered 200", target)
		}
	}
	if events.count() < n+4 {
		t.Errorf("device tokens refused elsewhere raised %d events, want at least 4", events.count()-n)
	}
}
