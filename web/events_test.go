package web

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/promotion"
)

type memAudit struct {
	mu sync.Mutex
	es []AuditEntry
}

func (m *memAudit) Append(e AuditEntry) { m.mu.Lock(); m.es = append(m.es, e); m.mu.Unlock() }
func (m *memAudit) Query(context.Context, AuditQuery) ([]AuditEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]AuditEntry(nil), m.es...), nil
}
func (m *memAudit) last() AuditEntry { m.mu.Lock(); defer m.mu.Unlock(); return m.es[len(m.es)-1] }

const eventsStore = `
site: {id: s1, timezone: UTC}
zones:
  - {id: store, capacity: 1000, area_m2: 100}
  - {id: hall, parent: store, capacity: 300, area_m2: 50}
doors:
  - {id: main, from: outside, to: hall, width_m: 2}
  - {id: back, from: outside, to: store, width_m: 1}
events:
  - {id: d11, kind: double11, start: "2026-11-11 07:00", end: "2026-11-11 22:00", capacities: {hall: 150}}
`

func newEventsAPI(t *testing.T) (http.Handler, *memAudit) {
	t.Helper()
	cfg, err := configs.Parse([]byte(eventsStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	plans, err := promotion.OpenPlans(cfg, promotion.PlansOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- plans.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	audit := &memAudit{}
	f := &fakeEngine{healthy: true}
	h := NewHandler(Options{Engine: f, Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Audit: audit,
		Auth: roleAuth{RoleManager: true, RoleDisplay: true}, Promotion: &promotion.Service{Plans: plans, Config: cfg}})
	return h, audit
}

func call(h http.Handler, method, path, body string) (int, map[string]any, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer t")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out, rec.Body.String()
}

func TestEventsAPI(t *testing.T) {
	h, audit := newEventsAPI(t)
	now := time.Now().UTC()
	running := `{"id":"flash","name":{"en":"Flash sale","zh":"闪购"},"kind":"flash","start":"` + now.Add(-time.Hour).Format(time.RFC3339) +
		`","end":"` + now.Add(time.Hour).Format(time.RFC3339) + `","capacities":{"hall":120},"metered":[{"door":"main","rate_per_min":30,"queue":"hall"}]}`
	if st, body, _ := call(h, "POST", "/api/v1/events", running); st != 201 || body["running"] != true || body["name"] != "Flash sale" ||
		body["metered"].([]any)[0].(map[string]any)["rate_per_min"] != 30.0 {
		t.Fatalf("create: %d %v", st, body)
	}
	if e := audit.last(); e.Who != "guard-7" || e.Status != 201 || !strings.Contains(e.Detail, "created plan flash") || !strings.Contains(e.Detail, "hall=120") {
		t.Errorf("audit of the create: %+v", e)
	}
	st, body, _ := call(h, "GET", "/api/v1/events", "")
	if st != 200 || body["running"] != "flash" || len(body["plans"].([]any)) != 2 {
		t.Fatalf("list: %d %v", st, body)
	}
	changed := strings.Replace(running, `"hall":120`, `"hall":200`, 1)
	if st, body, _ := call(h, "PUT", "/api/v1/events/flash", changed); st != 409 || !strings.Contains(body["error"].(string), "force") {
		t.Fatalf("unforced change while running: %d %v", st, body)
	}
	if e := audit.last(); e.Status != 409 || !strings.Contains(e.Detail, "refused") {
		t.Errorf("audit of the refusal: %+v", e)
	}
	if st, body, _ := call(h, "PUT", "/api/v1/events/flash?force=true", changed); st != 200 || body["capacities"].(map[string]any)["hall"] != 200.0 {
		t.Fatalf("forced change: %d %v", st, body)
	}
	if e := audit.last(); !strings.Contains(e.Detail, "forced while running") || !strings.Contains(e.Detail, "hall=200") {
		t.Errorf("audit of the forced change: %+v", e)
	}
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/api/v1/events", running, 409},                                             // exists
		{"PUT", "/api/v1/events/d11", running, 400},                                          // id differs from the path
		{"PUT", "/api/v1/events/d11", strings.Replace(running, `"id":"flash",`, "", 1), 409}, // the file's plan
		{"POST", "/api/v1/events", `{"id":"x","start":"2026-12-01 08:00","end":"2026-12-01 07:00"}`, 400},
		{"POST", "/api/v1/events", `{"id":"x","start":"2026-12-01 08:00","end":"2026-12-01 09:00","surprise":1}`, 400},
		{"POST", "/api/v1/events", `{"id":"x","start":"2026-12-01 08:00","end":"2026-12-01 09:00","capacities":{"ghost":3}}`, 400},
		{"PUT", "/api/v1/events/flash?force=maybe", changed, 400},
		{"DELETE", "/api/v1/events/flash", "", 409},
		{"DELETE", "/api/v1/events/nope", "", 404},
		{"GET", "/api/v1/events/nope", "", 404},
		{"GET", "/api/v1/assessment?event=nope", "", 404},
		{"GET", "/api/v1/events/d11/review", "", 503}, // no history in this test
	} {
		if st, body, _ := call(h, c.method, c.path, c.body); st != c.status {
			t.Errorf("%s %s: %d, want %d: %v", c.method, c.path, st, c.status, body)
		}
	}
	st, body, _ = call(h, "GET", "/api/v1/assessment?event=d11", "")
	zs := body["zones"].([]any)
	hall := zs[1].(map[string]any)
	// 50 m² x 3.5 = 175; exits main 2 m and, across the hall's boundary, nothing else: one exit,
	// 2 x 80 x 1.5 min = 240.
	if st != 200 || hall["density_limit"] != 175.0 || hall["egress_limit"] != 240.0 || hall["event_capacity"] != 150.0 {
		t.Errorf("assessment: %d %v", st, hall)
	}
	st, body, _ = call(h, "GET", "/api/v1/events/d11/plan", "")
	if st != 200 || body["forecast"].(map[string]any)["basis"] != "none" || len(body["roster"].(map[string]any)["total"].([]any)) != 30 {
		t.Errorf("plan: %d %v", st, body)
	}
	if st, _, _ := call(h, "DELETE", "/api/v1/events/flash?force=true", ""); st != 204 {
		t.Errorf("forced delete: %d", st)
	}
	if e := audit.last(); e.Detail != "deleted plan flash (forced)" {
		t.Errorf("audit of the delete: %+v", e)
	}
}

func TestEventsNeedManager(t *testing.T) {
	cfg, _ := configs.Parse([]byte(eventsStore), nil)
	plans, _ := promotion.OpenPlans(cfg, promotion.PlansOptions{})
	h := NewHandler(Options{Engine: &fakeEngine{healthy: true}, Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(),
		Auth: roleAuth{RoleDisplay: true}, Promotion: &promotion.Service{Plans: plans, Config: cfg}})
	for _, p := range []string{"/api/v1/events", "/api/v1/assessment", "/api/v1/events/d11/plan"} {
		if st, _, _ := call(h, "GET", p, ""); st != 403 {
			t.Errorf("%s as display: %d", p, st)
		}
	}
	if st, _, _ := call(h, "POST", "/api/v1/events", `{"id":"x"}`); st != 403 {
		t.Errorf("create as display: %d", st)
	}
}
