package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/history"
)

// fakeHistory records what the handlers asked for.
type fakeHistory struct {
	q             history.Query
	from, to      time.Time
	day           time.Time
	compareCalled bool
	err           error
}

func (f *fakeHistory) Site(context.Context) (history.Site, error) {
	la, _ := time.LoadLocation("America/Los_Angeles")
	return history.Site{ID: "s", Loc: la}, nil
}

func (f *fakeHistory) History(_ context.Context, q history.Query) (*history.Series, error) {
	f.q = q
	if f.err != nil {
		return nil, f.err
	}
	min := int64(3)
	return &history.Series{Site: "s", Step: q.Step.String(), Zones: []history.ZoneSeries{{Zone: "hall", Capacity: 10,
		Points: []history.Point{{Start: q.From, End: q.To, Min: &min, SecondsAt: map[string]float64{}}}}}}, nil
}

func (f *fakeHistory) DoorFlows(_ context.Context, q history.Query) (*history.DoorSeries, error) {
	f.q = q
	return &history.DoorSeries{Site: "s"}, nil
}

func (f *fakeHistory) Report(_ context.Context, from, to time.Time) (*history.Report, error) {
	f.from, f.to = from, to
	return &history.Report{Site: "s", From: from, To: to}, nil
}

func (f *fakeHistory) Daily(_ context.Context, d time.Time) (*history.Report, error) {
	f.day = d
	return &history.Report{Site: "s"}, nil
}

func (f *fakeHistory) Compare(_ context.Context, a, b, c, d time.Time) (*history.Comparison, error) {
	f.compareCalled = true
	return &history.Comparison{A: &history.Report{}, B: &history.Report{}}, nil
}

func TestHistoryEndpoints(t *testing.T) {
	f := &fakeHistory{}
	h := NewHandler(Options{Engine: &fakeEngine{healthy: true}, Gatherer: prometheus.NewRegistry(), History: f})
	for _, tc := range []struct {
		path   string
		status int
		body   string // a part of the answer
		check  func(t *testing.T)
	}{
		{path: "/api/v1/history?zone=hall&from=2026-11-01&to=2026-11-02&step=1h", status: 200, body: `"zone":"hall"`, check: func(t *testing.T) {
			if f.q.Step.D != time.Hour || len(f.q.Zones) != 1 || f.q.To.Sub(f.q.From) != 25*time.Hour {
				t.Errorf("query %+v (the day of the fall-back change lasts 25 h)", f.q)
			}
		}},
		{path: "/api/v1/history?zone=a,b&zone=c&from=2026-05-01T10:00&to=2026-05-01T11:00", status: 200, check: func(t *testing.T) {
			if len(f.q.Zones) != 3 || f.q.Step.D != 5*time.Second {
				t.Errorf("zones %v, auto step %v (an hour in 5 s steps is 720 points)", f.q.Zones, f.q.Step)
			}
		}},
		{path: "/api/v1/history?from=2026-01-01&to=2026-03-01", status: 200, check: func(t *testing.T) {
			if f.q.Step.D != time.Hour {
				t.Errorf("auto step for two months %v", f.q.Step)
			}
		}},
		{path: "/api/v1/history?step=1ms", status: 400, body: "at least 1s"},
		{path: "/api/v1/history?from=2026-03-08T02:30", status: 400, body: "skipped"},
		{path: "/api/v1/history?from=2026-05-02&to=2026-05-01", status: 400, body: "must be after"},
		{path: "/api/v1/history.csv?zone=hall&from=2026-05-01&to=2026-05-02&step=1d", status: 200, body: "zone,start,end"},
		{path: "/api/v1/history/doors?door=main&step=1h", status: 200, check: func(t *testing.T) {
			if len(f.q.Zones) != 1 || f.q.Zones[0] != "main" {
				t.Errorf("doors %v", f.q.Zones)
			}
		}},
		{path: "/api/v1/reports/daily?date=2026-11-01", status: 200, check: func(t *testing.T) {
			if f.day.Format(time.DateOnly) != "2026-11-01" {
				t.Errorf("day %s", f.day)
			}
		}},
		{path: "/api/v1/reports/daily?date=11/01/2026", status: 400, body: "YYYY-MM-DD"},
		{path: "/api/v1/reports/daily?from=2026-11-01&to=2026-11-03&format=md", status: 200, body: "# Crowd report"},
		{path: "/api/v1/reports/daily", status: 400, body: "give date"},
		{path: "/api/v1/reports/period?from=2026-11-01&to=2026-11-03&format=csv", status: 200, body: "zone,from,to"},
		{path: "/api/v1/reports/period?from=2026-11-01&to=2026-11-03&format=pdf", status: 400, body: "json, csv or md"},
		{path: "/api/v1/reports/compare?a_from=2025-11-11&a_to=2025-11-12&b_from=2026-11-11&b_to=2026-11-12", status: 200, check: func(t *testing.T) {
			if !f.compareCalled {
				t.Error("compare not called")
			}
		}},
		{path: "/api/v1/reports/compare?a_from=2025-11-11", status: 400, body: "give a_from"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.body) {
				t.Fatalf("%d %s, want %d with %q", rec.Code, rec.Body, tc.status, tc.body)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

func TestHistoryWithoutRecorder(t *testing.T) {
	h := NewHandler(Options{Engine: &fakeEngine{healthy: true}, Gatherer: prometheus.NewRegistry()})
	for _, p := range []string{"/api/v1/history", "/api/v1/reports/daily?date=2026-01-01", "/api/v1/reports/compare"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "not recorded") {
			t.Errorf("%s: %d %s", p, rec.Code, rec.Body)
		}
	}
}

func TestHistoryErrors(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
	}{
		{&history.QueryError{Msg: `no zone "x"`}, 400},
		{history.ErrNoHistory, 503},
		{history.ErrLocked, 503},
	} {
		h := NewHandler(Options{Engine: &fakeEngine{healthy: true}, Gatherer: prometheus.NewRegistry(), History: &fakeHistory{err: tc.err}})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/history?zone=x", nil))
		if rec.Code != tc.status {
			t.Errorf("%v: %d, want %d", tc.err, rec.Code, tc.status)
		}
	}
}
