package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// Issue item 12: a JSON body is one JSON value; anything after it is refused and changes
// nothing.
func TestJSONBodiesRefuseTrailingBytes(t *testing.T) {
	f, h := newTestAPI(true, true, Open{})
	_, ah := alertAPI()
	cases := []struct {
		h            http.Handler
		method, path string
		body         string
	}{
		{h, "POST", "/api/v1/zones/hall/correction", `{"occupancy": 3, "by": "x", "reason": "count"}{"occupancy": 9}`},
		{h, "POST", "/api/v1/zones/hall/correction", `{"occupancy": 3, "by": "x", "reason": "count"} x`},
		{ah, "POST", "/api/v1/evacuation", `{"zone": "hall", "reason": "drill", "by": "x"} []`},
		{ah, "POST", "/api/v1/silences", `{"zone": "hall", "duration": "30m", "comment": "c", "by": "x"}garbage`},
		{ah, "POST", "/api/v1/alerts/a1/ack", `{"note": "n", "by": "x"}{}`},
		{h, "POST", "/api/v1/zones/hall/correction", `{"occupancy": 3, "by": "x", "reason": "` + strings.Repeat("a", 16<<10) + `"}`},
	}
	for _, c := range cases {
		if code, out := do(c.h, c.method, c.path, c.body); code != http.StatusBadRequest {
			t.Errorf("%s %s with %.60q: %d %v, want 400", c.method, c.path, c.body, code, out)
		}
	}
	if f.corrected != nil {
		t.Errorf("a refused body changed a zone: %+v", f.corrected)
	}
	// Trailing white space is still one value.
	if code, out := do(h, "POST", "/api/v1/zones/hall/correction", "{\"occupancy\": 3, \"by\": \"x\", \"reason\": \"count\"}\n \n"); code != http.StatusOK {
		t.Errorf("trailing newline: %d %v", code, out)
	}
	if _, err := DecodeLogin(strings.NewReader(`{"username":"g","password":"p"}{"username":"admin"}`)); err == nil {
		t.Errorf("sign-in body with a second value accepted")
	}
}

// Issue item 12: /static/ lists nothing, and JSON answers say nosniff.
func TestStaticListsNoDirectoryAndJSONIsNosniff(t *testing.T) {
	l := NewLive(LiveOptions{Config: liveConfig(), Engine: newLiveEngine(0)})
	h := NewHandler(Options{Engine: newLiveEngine(0), Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Live: l})
	for _, path := range []string{"/static/", "/static", "/static/vendor/", "/static/vendor", "/static/./", "/static//"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Code == http.StatusOK || strings.Contains(rec.Body.String(), "common.js") {
			t.Errorf("GET %s: %d %.200s: a directory listing", path, rec.Code, rec.Body)
		}
	}
	for _, path := range []string{"/api/v1/zones", "/healthz", "/nope", "/api/v1/session", "/static/i18n.json"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: %d without X-Content-Type-Options: nosniff", path, rec.Code)
		}
	}
}

// Issue item 10: one remote address cannot open the feed without bound; the refusal says
// why, and a closed connection frees its place.
func TestFeedLimitsConnectionsPerAddress(t *testing.T) {
	f := startLive(t, nil, 8)
	url := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/api/v1/live?screen=door"
	var open []*websocket.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	var refused *http.Response
	for i := 0; i < 200 && refused == nil; i++ {
		c, resp, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			if resp == nil {
				t.Fatalf("dial %d: %v", i, err)
			}
			refused = resp
			break
		}
		open = append(open, c)
	}
	if refused == nil {
		t.Fatalf("%d feed connections from one address all accepted", len(open))
	}
	if refused.StatusCode != http.StatusTooManyRequests {
		t.Errorf("refusal: HTTP %d, want 429", refused.StatusCode)
	}
	if len(open) != 50 {
		t.Errorf("%d connections accepted before the refusal, want the default 50 per address", len(open))
	}
}
