package web

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestDecodeLogin(t *testing.T) {
	cases := []struct {
		body, user, err string
	}{
		{`{"username":" guard ","password":"pw"}`, "guard", ""},
		{`{"username":"guard"}`, "", "required"},
		{`{"username":"","password":"pw"}`, "", "required"},
		{`{"username":"g","password":"pw","role":"admin"}`, "", "unknown field"},
		{`username=g&password=pw`, "", "must be JSON"},
		{`{"username":"` + strings.Repeat("a", 5000) + `","password":"pw"}`, "", "must be JSON"},
	}
	for _, c := range cases {
		req, err := DecodeLogin(strings.NewReader(c.body))
		if c.err == "" && (err != nil || req.Username != c.user) {
			t.Errorf("%s: %+v %v", c.body, req, err)
		}
		if c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: error %v, want %q", c.body, err, c.err)
		}
	}
}

func FuzzDecodeLogin(f *testing.F) {
	f.Add(`{"username":"guard","password":"pw"}`)
	f.Add(`{"username":1}`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, body string) {
		req, err := DecodeLogin(strings.NewReader(body))
		if err == nil && (req.Username == "" || req.Password == "" || req.Username != strings.TrimSpace(req.Username)) {
			t.Errorf("accepted %q as %+v", body, req)
		}
	})
}

// A floor's plan image is served to managers with a sandbox policy; pages carry a CSP.
func TestPlanAndPages(t *testing.T) {
	dir := t.TempDir()
	plan := filepath.Join(dir, "ground.svg")
	if err := os.WriteFile(plan, []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := liveConfig()
	cfg.Floors[0].Plan = plan
	l := NewLive(LiveOptions{Layout: LayoutOf(cfg, nil), Engine: newLiveEngine(0)})
	h := NewHandler(Options{Engine: newLiveEngine(0), Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Live: l})
	cases := []struct {
		path, header, want string
		status             int
	}{
		{"/plans/g", "Content-Security-Policy", "sandbox", 200},
		{"/plans/nope", "", "", 404},
		{"/dashboard", "Content-Security-Policy", "script-src 'self'", 200},
		{"/login", "Content-Security-Policy", "frame-ancestors 'none'", 200},
		{"/signage/door", "Content-Type", "text/html", 200},
		{"/signage/nope", "", "", 404},
		{"/static/i18n.json", "Content-Type", "application/json", 200},
		{"/static/nope.js", "", "", 404},
	}
	for _, c := range cases {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", c.path, nil))
		if rec.Code != c.status || (c.header != "" && !strings.Contains(rec.Header().Get(c.header), c.want)) {
			t.Errorf("GET %s: %d, %s: %q", c.path, rec.Code, c.header, rec.Header().Get(c.header))
		}
	}
	if fv := l.floors[0]; fv.Plan != "/plans/g" {
		t.Errorf("floor plan URL %q", fv.Plan)
	}
	// A browser asking for / gets the dashboard.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/dashboard" {
		t.Errorf("GET / from a browser: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}
