package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/announce"
)

type fakeDrills struct{ started, ended []string }

func (f *fakeDrills) StartDrill(_ context.Context, zone, by string) (alerting.Drill, error) {
	if zone == "nowhere" {
		return alerting.Drill{}, alerting.ErrNotFound
	}
	f.started = append(f.started, zone+" by "+by)
	return alerting.Drill{ID: "d1", Zone: zone, By: by}, nil
}
func (f *fakeDrills) EndDrill(_ context.Context, zone, by string) (alerting.Drill, error) {
	f.ended = append(f.ended, zone+" by "+by)
	return alerting.Drill{ID: "d1", Zone: zone, By: by}, nil
}
func (f *fakeDrills) DrillReports(from, to time.Time) ([]alerting.Drill, error) {
	return []alerting.Drill{{ID: "d1"}}, nil
}

type fakePA struct{ sent []string }

func (f *fakePA) Preview(zone, state string) ([]announce.Message, error) {
	if zone == "nowhere" {
		return nil, announce.ErrInvalid
	}
	return []announce.Message{{Zone: zone, State: state, Language: "en", Text: "This is a drill"}}, nil
}
func (f *fakePA) Announce(_ context.Context, zone, state, by string) ([]announce.Message, error) {
	f.sent = append(f.sent, zone+"/"+state+" by "+by)
	return f.Preview(zone, state)
}

func TestDrillAndAnnouncementEndpoints(t *testing.T) {
	for _, c := range []struct {
		name         string
		role         Role
		method, path string
		body         string
		code         int
	}{
		{"a manager lists drills", RoleManager, "GET", "/api/v1/drills?from=2026-11-27T00:00:00Z", "", 200},
		{"a bad range", RoleManager, "GET", "/api/v1/drills?from=yesterday", "", 400},
		{"a manager may not start a drill", RoleManager, "POST", "/api/v1/drills", `{"zone":"store"}`, 403},
		{"security starts a drill", RoleSecurity, "POST", "/api/v1/drills", `{"zone":"store"}`, 200},
		{"of an unknown zone", RoleSecurity, "POST", "/api/v1/drills", `{"zone":"nowhere"}`, 404},
		{"a body that is not JSON", RoleSecurity, "POST", "/api/v1/drills", `zone=store`, 400},
		{"security ends it", RoleSecurity, "POST", "/api/v1/drills/end", `{"zone":"store"}`, 200},
		{"a manager may not read the PA text", RoleManager, "GET", "/api/v1/announcements/hall", "", 403},
		{"security previews", RoleSecurity, "GET", "/api/v1/announcements/hall?state=drill", "", 200},
		{"an unknown zone", RoleSecurity, "GET", "/api/v1/announcements/nowhere", "", 400},
		{"security sends", RoleSecurity, "POST", "/api/v1/announcements/hall", `{"state":"drill"}`, 200},
		{"a manager may not send", RoleManager, "POST", "/api/v1/announcements/hall", `{"state":"drill"}`, 403},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, pa := &fakeDrills{}, &fakePA{}
			h := NewHandler(Options{Engine: newLiveEngine(0), Broker: fakeBroker(true), Auth: roleAuth{c.role: true},
				DrillControl: d, Announcements: pa})
			req := httptest.NewRequest(c.method, c.path, strings.NewReader(c.body))
			req.Header.Set("Authorization", "Bearer t")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.code {
				t.Fatalf("%s %s: %d %s, want %d", c.method, c.path, rec.Code, rec.Body, c.code)
			}
			if c.code == http.StatusOK && c.method == "POST" {
				if len(d.started)+len(d.ended)+len(pa.sent) != 1 || !strings.Contains(strings.Join(append(append(d.started, d.ended...), pa.sent...), ""), "by guard-7") {
					t.Fatalf("not carried out as the caller: %v %v %v", d.started, d.ended, pa.sent)
				}
			}
			if c.code != http.StatusOK && len(d.started)+len(d.ended)+len(pa.sent) != 0 {
				t.Fatalf("a refused call changed something: %v %v %v", d.started, d.ended, pa.sent)
			}
		})
	}
}
