package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/zones"
)

type fakeEngine struct {
	snap      *zones.Snapshot
	healthy   bool
	corrected []string
}

func (f *fakeEngine) Snapshot() *zones.Snapshot { return f.snap }
func (f *fakeEngine) Healthy() bool             { return f.healthy }
func (f *fakeEngine) Correct(_ context.Context, zone string, v int64, by, reason string) (zones.ZoneState, error) {
	if zone == "broken" {
		return zones.ZoneState{}, errors.New("storage: disk full")
	}
	if v > 100 { // as zones.Engine does above 10 × capacity
		return zones.ZoneState{}, fmt.Errorf("%w: occupancy %d must be between 0 and 100", zones.ErrCorrectionRange, v)
	}
	f.corrected = append(f.corrected, fmt.Sprintf("%s=%d by %s: %s", zone, v, by, reason))
	z, _ := f.snap.Zone(zone)
	z.Occupancy = v
	return z, nil
}

type fakeBroker bool

func (b fakeBroker) Connected() bool { return bool(b) }

func newTestAPI(healthy, connected bool, auth Authorizer) (*fakeEngine, http.Handler) {
	f := &fakeEngine{healthy: healthy, snap: &zones.Snapshot{Zones: []zones.ZoneState{
		{ID: "hall", Name: "Hall", Occupancy: 4, Capacity: 10, Ratio: 0.4},
		{ID: "broken", Name: "Broken", Capacity: 10},
	}, Devices: []zones.DeviceStatus{{ID: "dc-01", Kind: zones.KindCounter, Doors: []string{"main"}}}}}
	return f, NewHandler(Options{Engine: f, Broker: fakeBroker(connected), Gatherer: prometheus.NewRegistry(), Auth: auth})
}

func do(h http.Handler, method, path, body string) (int, map[string]any) {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var out map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &out)
	return rec.Code, out
}

func TestAPI(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		status                   int
		check                    func(map[string]any) bool
	}{
		{"zones", "GET", "/api/v1/zones", "", 200, func(m map[string]any) bool { return len(m["zones"].([]any)) == 2 }},
		{"zone", "GET", "/api/v1/zones/hall", "", 200, func(m map[string]any) bool { return m["occupancy"].(float64) == 4 }},
		{"unknown zone", "GET", "/api/v1/zones/nope", "", 404, func(m map[string]any) bool { return strings.Contains(m["error"].(string), "nope") }},
		{"devices", "GET", "/api/v1/devices", "", 200, func(m map[string]any) bool { return len(m["devices"].([]any)) == 1 }},
		{"correction", "POST", "/api/v1/zones/hall/correction", `{"occupancy":7,"by":"guard","reason":"head count"}`, 200,
			func(m map[string]any) bool { return m["occupancy"].(float64) == 7 }},
		{"correction of unknown zone", "POST", "/api/v1/zones/nope/correction", `{"occupancy":7,"by":"g","reason":"r"}`, 404, nil},
		{"correction without reason", "POST", "/api/v1/zones/hall/correction", `{"occupancy":7,"by":"g"}`, 400,
			func(m map[string]any) bool { return strings.Contains(m["error"].(string), "reason is required") }},
		{"negative correction", "POST", "/api/v1/zones/hall/correction", `{"occupancy":-1,"by":"g","reason":"r"}`, 400, nil},
		{"correction with unknown field", "POST", "/api/v1/zones/hall/correction", `{"occupancy":1,"by":"g","reason":"r","zone":"x"}`, 400, nil},
		{"correction not JSON", "POST", "/api/v1/zones/hall/correction", `occupancy=1`, 400, nil},
		{"correction storage failure", "POST", "/api/v1/zones/broken/correction", `{"occupancy":1,"by":"g","reason":"r"}`, 503, nil},
		{"correction beyond ten times capacity", "POST", "/api/v1/zones/hall/correction", `{"occupancy":9223372036854775807,"by":"g","reason":"r"}`, 400, nil},
		{"wrong method", "DELETE", "/api/v1/zones", "", 405, func(m map[string]any) bool { return m["error"] != nil }},
		{"unknown path", "GET", "/api/v2/everything", "", 404, func(m map[string]any) bool { return m["error"] != nil }},
		{"healthz", "GET", "/healthz", "", 200, nil},
		{"readyz", "GET", "/readyz", "", 200, func(m map[string]any) bool { return m["ready"] == true }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, h := newTestAPI(true, true, nil)
			status, body := do(h, tc.method, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %v", status, tc.status, body)
			}
			if status >= 400 {
				if _, ok := body["error"].(string); !ok {
					t.Fatalf("error response is not {\"error\": ...}: %v", body)
				}
			}
			if tc.check != nil && !tc.check(body) {
				t.Fatalf("unexpected body %v", body)
			}
			if tc.status != 200 && len(f.corrected) > 0 {
				t.Fatalf("a refused call changed state: %v", f.corrected)
			}
		})
	}
}

func TestReadyzSaysWhatIsWrong(t *testing.T) {
	_, h := newTestAPI(false, false, nil)
	status, body := do(h, "GET", "/readyz", "")
	checks, _ := body["checks"].(map[string]any)
	if status != 503 || checks["broker"] == "ok" || checks["storage"] == "ok" {
		t.Fatalf("readyz %d %v", status, body)
	}
}

type roleAuth map[Role]bool

func (a roleAuth) Authorize(r *http.Request, need Role) (string, error) {
	if r.Header.Get("Authorization") == "" {
		return "", ErrUnauthenticated
	}
	if !a[need] {
		return "", errors.New("your role may not do this")
	}
	return "guard-7", nil
}

func TestRolesSlotIn(t *testing.T) {
	f, h := newTestAPI(true, true, roleAuth{RoleDisplay: true})
	if status, _ := do(h, "GET", "/api/v1/zones", ""); status != 401 {
		t.Fatalf("no credentials: %d", status)
	}
	req := httptest.NewRequest("POST", "/api/v1/zones/hall/correction", strings.NewReader(`{"occupancy":1,"by":"x","reason":"r"}`))
	req.Header.Set("Authorization", "Bearer t")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 403 || len(f.corrected) != 0 {
		t.Fatalf("display role corrected a zone: %d %v", rec.Code, f.corrected)
	}
	f, h = newTestAPI(true, true, roleAuth{RoleSecurity: true})
	req = httptest.NewRequest("POST", "/api/v1/zones/hall/correction", strings.NewReader(`{"occupancy":1,"by":"someone-else","reason":"r"}`))
	req.Header.Set("Authorization", "Bearer t")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || len(f.corrected) != 1 || !strings.Contains(f.corrected[0], "by guard-7") {
		t.Fatalf("security correction: %d %v", rec.Code, f.corrected)
	}
}

// The profiler is for admins only: a manager (who may read metrics) gets 403, an admin a heap
// profile.
func TestProfilerIsAdminOnly(t *testing.T) {
	get := func(auth roleAuth) *httptest.ResponseRecorder {
		_, h := newTestAPI(true, true, auth)
		req := httptest.NewRequest("GET", "/debug/pprof/heap", nil)
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec
	}
	if rec := get(roleAuth{RoleManager: true}); rec.Code != 403 {
		t.Errorf("manager: %d, want 403", rec.Code)
	}
	if rec := get(roleAuth{RoleAdmin: true}); rec.Code != 200 || rec.Body.Len() == 0 {
		t.Errorf("admin: %d with %d bytes, want 200 and a profile", rec.Code, rec.Body.Len())
	}
}
