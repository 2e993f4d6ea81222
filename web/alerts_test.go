package web

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/levels"
)

// fakeAlerting records what reaches it; ids and zones named "missing" are not found, and
// "down" fails as a stopped manager would.
type fakeAlerting struct{ calls []string }

func (f *fakeAlerting) result(what, key string) error {
	f.calls = append(f.calls, what+" "+key)
	switch key {
	case "missing":
		return fmt.Errorf("%w: %s", alerting.ErrNotFound, key)
	case "down":
		return alerting.ErrStopped
	}
	return nil
}

func (f *fakeAlerting) Status() *alerting.Status {
	return &alerting.Status{Zones: []alerting.ZoneStatus{{Zone: "hall", Level: levels.Evacuate}}}
}
func (f *fakeAlerting) Alerts(_ context.Context, fl alerting.Filter) ([]alerting.Alert, error) {
	if fl.State == "bogus" {
		return nil, fmt.Errorf("%w: state", alerting.ErrInvalid)
	}
	return nil, f.result("list", fl.Zone)
}
func (f *fakeAlerting) Ack(_ context.Context, id, by, note string) (alerting.Alert, error) {
	err := f.result("ack", id)
	f.calls[len(f.calls)-1] += " by " + by
	return alerting.Alert{ID: id, AckBy: by, AckNote: note}, err
}
func (f *fakeAlerting) AckZone(_ context.Context, zone, by, note string) ([]alerting.Alert, error) {
	err := f.result("ackzone", zone)
	f.calls[len(f.calls)-1] += " by " + by + " note " + note
	return []alerting.Alert{{ID: "level:" + zone, AckBy: by}}, err
}
func (f *fakeAlerting) Declare(_ context.Context, zone, by, reason string) (alerting.Evacuation, error) {
	if reason == "" {
		return alerting.Evacuation{}, fmt.Errorf("%w: reason", alerting.ErrInvalid)
	}
	return alerting.Evacuation{Zone: zone, By: by, Reason: reason}, f.result("declare", zone)
}
func (f *fakeAlerting) StandDown(_ context.Context, zone, by, reason string) error {
	return f.result("standdown", zone)
}
func (f *fakeAlerting) Silences(context.Context) ([]alerting.Silence, error) { return nil, nil }
func (f *fakeAlerting) AddSilence(_ context.Context, s alerting.Silence) (alerting.Silence, error) {
	return s, f.result("silence", s.Zone)
}
func (f *fakeAlerting) DeleteSilence(_ context.Context, id, by string) error {
	return f.result("unsilence", id)
}

func alertAPI() (*fakeAlerting, http.Handler) {
	f, _ := newTestAPI(true, true, nil)
	al := &fakeAlerting{}
	return al, NewHandler(Options{Engine: f, Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Alerting: al,
		Log: slog.New(slog.DiscardHandler)})
}

func TestAlertEndpoints(t *testing.T) {
	cases := []struct {
		name, method, path, body string
		status                   int
		call                     string // what reached the manager, "" for nothing
	}{
		{"list", "GET", "/api/v1/alerts?zone=hall", "", 200, "list hall"},
		{"list with a bad state", "GET", "/api/v1/alerts?state=bogus", "", 400, ""},
		{"ack needs who while the API is open", "POST", "/api/v1/alerts/level:hall/ack", `{"note":"x"}`, 400, ""},
		{"ack", "POST", "/api/v1/alerts/level:hall/ack", `{"note":"on it","by":"li"}`, 200, "ack level:hall by li"},
		{"ack of an alert that is not open", "POST", "/api/v1/alerts/missing/ack", `{"by":"li"}`, 404, "ack missing by li"},
		{"ack a zone", "POST", "/api/v1/alerts/ack", `{"zone":"hall","note":"two guards sent","by":"li"}`, 200, "ackzone hall by li note two guards sent"},
		{"ack a zone needs the zone", "POST", "/api/v1/alerts/ack", `{"note":"x","by":"li"}`, 400, ""},
		{"ack a zone needs who while the API is open", "POST", "/api/v1/alerts/ack", `{"zone":"hall"}`, 400, ""},
		{"ack an unknown zone", "POST", "/api/v1/alerts/ack", `{"zone":"missing","by":"li"}`, 404, "ackzone missing by li note "},
		{"ack with an unknown field", "POST", "/api/v1/alerts/level:hall/ack", `{"by":"li","urgent":true}`, 400, ""},
		{"ack with a body that is not JSON", "POST", "/api/v1/alerts/level:hall/ack", `by=li`, 400, ""},
		{"declare", "POST", "/api/v1/evacuation", `{"zone":"hall","reason":"smoke","by":"wang"}`, 200, "declare hall"},
		{"declare without a reason", "POST", "/api/v1/evacuation", `{"zone":"hall","by":"wang"}`, 400, ""},
		{"declare for an unknown zone", "POST", "/api/v1/evacuation", `{"zone":"missing","reason":"x","by":"w"}`, 404, "declare missing"},
		{"declare while alerting is down", "POST", "/api/v1/evacuation", `{"zone":"down","reason":"x","by":"w"}`, 503, "declare down"},
		{"stand down", "POST", "/api/v1/evacuation/stand-down", `{"zone":"hall","reason":"clear","by":"w"}`, 200, "standdown hall"},
		{"evacuation status lists the recommendation", "GET", "/api/v1/evacuation", "", 200, ""},
		{"silence for 30 minutes", "POST", "/api/v1/silences", `{"zone":"hall","duration":"30m","comment":"drill","by":"li"}`, 201, "silence hall"},
		{"silence with a bad duration", "POST", "/api/v1/silences", `{"zone":"hall","duration":"forever","comment":"x","by":"li"}`, 400, ""},
		{"silence for too long", "POST", "/api/v1/silences", `{"zone":"hall","duration":"200h","comment":"x","by":"li"}`, 400, ""},
		{"remove a silence", "DELETE", "/api/v1/silences/abc?by=li", "", 200, "unsilence abc"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			al, h := alertAPI()
			status, body := do(h, c.method, c.path, c.body)
			if status != c.status {
				t.Fatalf("%d %v, want %d", status, body, c.status)
			}
			got := strings.Join(al.calls, "; ")
			if got != c.call {
				t.Fatalf("reached the manager as %q, want %q", got, c.call)
			}
			if status >= 400 && body["error"] == nil {
				t.Fatalf("an error without a message: %v", body)
			}
			if c.path == "/api/v1/evacuation" && c.method == "GET" && fmt.Sprint(body["recommended"]) != "[hall]" {
				t.Fatalf("recommended %v", body["recommended"])
			}
		})
	}
}

// FuzzAlertRequests sends arbitrary bodies to the state-changing alert endpoints: each must be
// answered with a status and an error message, never a panic, and a body the handler refuses
// must not have reached the manager.
func FuzzAlertRequests(f *testing.F) {
	for _, s := range []string{`{"note":"x","by":"li"}`, `{"zone":"","reason":"fire","by":"w"}`,
		`{"zone":"hall","duration":"30m","comment":"c","by":"b"}`, `{"end":"2026-11-27T10:00:00Z"}`, `[]`, `{`, ``} {
		f.Add(s)
	}
	paths := []string{"/api/v1/alerts/level:hall/ack", "/api/v1/evacuation", "/api/v1/evacuation/stand-down", "/api/v1/silences"}
	f.Fuzz(func(t *testing.T, body string) {
		for _, p := range paths {
			al, h := alertAPI()
			status, out := do(h, "POST", p, body)
			if status < 200 || status >= 600 {
				t.Fatalf("%s: status %d", p, status)
			}
			// Whatever reached the manager decoded: a call is only made after a good body.
			if len(al.calls) > 0 && (status == 400 && !strings.Contains(fmt.Sprint(out["error"]), "invalid request")) {
				t.Fatalf("%s: %q reached the manager and was refused by the handler: %v", p, body, al.calls)
			}
			if status >= 400 && out["error"] == nil {
				t.Fatalf("%s: %d without an error message", p, status)
			}
		}
	})
}

// GET /api/v1/zones says each zone's shown level, the same as the feed's: a figure over
// capacity is critical at once; a pending alert is named.
func TestZonesLevel(t *testing.T) {
	f, _ := newTestAPI(true, true, nil)
	f.snap.Zones[0].Occupancy, f.snap.Zones[0].Ratio = 12, 1.2
	warn := levels.Critical
	st := &statusAlerting{status: &alerting.Status{Zones: []alerting.ZoneStatus{
		{Zone: "hall", Shown: levels.Warning, Level: levels.Busy, Pending: &warn}}}}
	h := NewHandler(Options{Engine: f, Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Alerting: st,
		Log: slog.New(slog.DiscardHandler)})
	_, m := do(h, "GET", "/api/v1/zones/hall", "")
	if m["level"] != "critical" || m["pending"] != "critical" || m["occupancy"].(float64) != 12 {
		t.Errorf("hall at 12/10: %v", m)
	}
	_, all := do(h, "GET", "/api/v1/zones", "")
	if z := all["zones"].([]any)[0].(map[string]any); z["level"] != "critical" {
		t.Errorf("list: %v", z)
	}
	// Without alerting the built-in thresholds give the level.
	_, plain := newTestAPI(true, true, nil)
	if _, m := do(plain, "GET", "/api/v1/zones/hall", ""); m["level"] != "normal" {
		t.Errorf("without alerting: %v", m)
	}
}

type statusAlerting struct {
	fakeAlerting
	status *alerting.Status
}

func (s *statusAlerting) Status() *alerting.Status { return s.status }
