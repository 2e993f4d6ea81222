package web

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

// A JSON body is one JSON value; anything after it is refused and changes
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

// /static/ lists nothing, and JSON answers say nosniff.
func TestStaticListsNoDirectoryAndJSONIsNosniff(t *testing.T) {
	l := NewLive(LiveOptions{Layout: LayoutOf(liveConfig(), nil), Engine: newLiveEngine(0)})
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

// One remote address cannot open the feed without bound; the refusal says
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

// The feed as a whole is bounded too (503, it is not the caller's fault), and
// every refusal is counted in crowdwatch_http_feed_refused_total{limit}.
func TestFeedTotalLimitAndMetric(t *testing.T) {
	eng := newLiveEngine(0)
	l := NewLive(LiveOptions{Layout: LayoutOf(liveConfig(), nil), Engine: eng, Limits: FeedLimits{Total: 2}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); l.Run(ctx) }()
	reg := prometheus.NewRegistry()
	srv := httptest.NewServer(NewHandler(Options{Engine: eng, Broker: fakeBroker(true), Gatherer: reg, Registerer: reg, Live: l}))
	defer func() { srv.Close(); cancel(); <-done }()
	url := "ws" + strings.TrimPrefix(srv.URL, "http") + "/api/v1/live?screen=door"
	for i := 0; i < 2; i++ {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatalf("feed %d: %v", i, err)
		}
		defer c.Close()
	}
	_, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("3rd feed with a total of 2: %v %v, want 503", err, resp)
	}
	if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "http.feed.max_total") {
		t.Errorf("refusal says %s", body)
	}
	if r, n := testkit.Metric(t, reg, "crowdwatch_http_feed_refused_total", "total"), testkit.Metric(t, reg, "crowdwatch_http_feed_connections"); r != 1 || n != 2 {
		t.Errorf("metrics: %v refused for the total, %v connections; want 1 and 2", r, n)
	}
}

func FuzzParseAuditQuery(f *testing.F) {
	f.Add("limit=10&before=5&since=2026-11-27T08:00:00Z&event=signin&who=guard")
	f.Add("limit=0")
	f.Add("before=x&until=2026-11-27T08:00:00+08:00")
	f.Fuzz(func(t *testing.T, query string) {
		r := httptest.NewRequest("GET", "/api/v1/audit", nil)
		r.URL.RawQuery = query
		q, err := parseAuditQuery(r)
		if err == nil && (q.Limit < 1 || q.Limit > auditMaxLimit || len(q.Who) > 200 || len(q.Event) > 64) {
			t.Errorf("accepted %q as %+v", query, q)
		}
	})
}

func TestRemoteHost(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1:1234":             "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[::ffff:192.0.2.1]:80":      "192.0.2.1",
		"pipe":                       "pipe",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = in
		if got := RemoteHost(r); got != want {
			t.Errorf("RemoteHost(%q) = %q, want %q", in, got, want)
		}
	}
}
