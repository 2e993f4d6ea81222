package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestPeersAllowedAndNoOthers: with ha.peers, the pages may fetch from the configured
// peers (CSP connect-src), /readyz lists them and lets a configured peer's page read it; any
// other origin gets no allowance. Without peers nothing changes.
func TestPeersAllowedAndNoOthers(t *testing.T) {
	peers := []string{"https://a.store.lan:8080", "https://b.store.lan:8080"}
	handler := func(peers []string) http.Handler {
		cfg := liveConfig()
		layout := LayoutOf(cfg, nil)
		layout.Peers = peers
		l := NewLive(LiveOptions{Layout: layout, Engine: newLiveEngine(0)})
		return NewHandler(Options{Engine: newLiveEngine(0), Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Live: l})
	}
	h := handler(peers)
	for _, page := range []string{"/dashboard", "/signage/door", "/static/signage.js"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", page, nil))
		if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' https://a.store.lan:8080 https://b.store.lan:8080;") {
			t.Errorf("%s: CSP %q does not let the page ask the peers", page, csp)
		}
	}
	for origin, allowed := range map[string]bool{"https://b.store.lan:8080": true, "https://evil.example": false, "https://b.store.lan": false, "": false} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/readyz", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		h.ServeHTTP(rec, req)
		got := rec.Header().Get("Access-Control-Allow-Origin")
		if (allowed && got != origin) || (!allowed && got != "") {
			t.Errorf("/readyz from %q: Access-Control-Allow-Origin %q", origin, got)
		}
		if rec.Header().Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("/readyz must never allow credentials across origins")
		}
		var body struct {
			Peers []string `json:"peers"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || !slices.Equal(body.Peers, peers) {
			t.Errorf("/readyz peers %v (%v), want %v", body.Peers, err, peers)
		}
	}
	// Without peers: the CSP is the page's own origin only, /readyz allows nobody.
	h = handler(nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/dashboard", nil))
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self';") {
		t.Errorf("CSP without peers: %q", csp)
	}
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/readyz", nil)
	req.Header.Set("Origin", "https://b.store.lan:8080")
	h.ServeHTTP(rec, req)
	if got := rec.Header().Get("Access-Control-Allow-Origin"); got != "" || strings.Contains(rec.Body.String(), "peers") {
		t.Errorf("/readyz without peers: allow %q, body %s", got, rec.Body)
	}
}
