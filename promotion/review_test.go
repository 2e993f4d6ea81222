package promotion

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
)

// reviewHistory answers History with the pattern and Report with fixed figures per period.
type reviewHistory struct {
	patternHistory
	reports map[time.Time]*history.Report // by period start
}

func (h *reviewHistory) Report(_ context.Context, from, to time.Time) (*history.Report, error) {
	if r, ok := h.reports[from]; ok {
		return r, nil
	}
	return &history.Report{AlertsNote: "alert history is not available"}, nil
}

type fakeRecords struct {
	eps    []MeteringEpisode
	drills []DrillReport
	err    error
}

func (f fakeRecords) MeteringEpisodes(from, to time.Time) ([]MeteringEpisode, error) {
	var out []MeteringEpisode
	for _, e := range f.eps {
		if !e.From.Before(from) && e.From.Before(to) {
			out = append(out, e)
		}
	}
	return out, f.err
}

func (f fakeRecords) Drills(from, to time.Time) ([]DrillReport, error) {
	var out []DrillReport
	for _, d := range f.drills {
		if !d.StartedAt.Before(from) && d.StartedAt.Before(to) {
			out = append(out, d)
		}
	}
	return out, nil
}

const reviewStore = `
site: {id: s1, timezone: UTC}
zones:
  - {id: store, capacity: 1000, area_m2: 400}
  - {id: hall, parent: store, capacity: 300, area_m2: 50}
doors:
  - {id: main, from: outside, to: hall, width_m: 4}
  - {id: back, from: outside, to: store, width_m: 1}
events:
  - {id: d11-2025, kind: double11, start: "2025-11-11 07:00", end: "2025-11-11 08:00", capacities: {hall: 120}}
  - {id: d11, kind: double11, start: "2026-11-11 07:00", end: "2026-11-11 08:00", doors_open: "2026-11-11 07:30", capacities: {hall: 150}, forecast_scale: 2}
`

func TestReview(t *testing.T) {
	cfg, err := configs.Parse([]byte(reviewStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := cfg.Events[1].Start
	prevStart := cfg.Events[0].Start
	peak, prevPeak := int64(170), int64(90)
	at := start.Add(40 * time.Minute)
	ack, res := 90.0, 600.0
	h := &reviewHistory{patternHistory: patternHistory{cfg: cfg, factors: map[string]float64{"2025-11-11": 1}},
		reports: map[time.Time]*history.Report{
			start: {Zones: []history.ZoneReport{{Zone: "hall", Peak: &peak, PeakAt: &at, Entries: 400,
				SecondsAtOrAbove: map[string]float64{"busy": 1800, "warning": 600, "critical": 60, "evacuate": 0}}},
				Alerts: &history.AlertSummary{Fired: 1, Acknowledged: 1, Resolved: 1,
					Alerts: []history.AlertLine{{ID: "level:hall", Kind: "level", Zone: "hall", FiredAt: at, AckS: &ack, ResolveS: &res, AckBy: "li"}}}},
			prevStart: {Zones: []history.ZoneReport{{Zone: "hall", Peak: &prevPeak}}},
		}}
	recs := fakeRecords{
		eps: []MeteringEpisode{
			{Door: "main", From: start.Add(30 * time.Minute), To: start.Add(40 * time.Minute), Admitted: 100, HeldFor: 4 * time.Minute, QueueMax: 80, WaitMax: 6 * time.Minute, WaitMean: 3 * time.Minute},
			{Door: "main", From: start.Add(45 * time.Minute), To: start.Add(55 * time.Minute), Admitted: 50, HeldFor: 2 * time.Minute, QueueMax: 40, WaitMax: 2 * time.Minute, WaitMean: time.Minute},
			{Door: "main", From: start.Add(-24 * time.Hour), To: start.Add(-23 * time.Hour), Admitted: 999}, // another day
		},
		drills: []DrillReport{{ID: "dr1", Zones: []string{"hall", "store"}, By: "guard", StartedAt: start.Add(50 * time.Minute),
			Estimate: 90 * time.Second, Cleared: map[string]time.Duration{"hall": 75 * time.Second}}},
	}
	rv, err := BuildReview(context.Background(), cfg, ScheduleFromConfig(cfg), h, recs, "d11")
	if err != nil {
		t.Fatal(err)
	}
	// The forecast comes from the 2025 event: the hall's pattern peaks at 40 (two half hours),
	// times the scale 2 = 80; the actual 170 is +112.5% and outside the range.
	hall := rv.Zones[1]
	if rv.Basis != "events" || hall.ForecastPeak == nil || hall.ForecastPeak.Expected != 80 || *hall.ErrorPct != 112.5 || *hall.WithinRange {
		t.Errorf("hall %+v forecast %+v basis %s", hall, hall.ForecastPeak, rv.Basis)
	}
	if hall.Capacity != 150 || *hall.PeakRatio != 170.0/150 || hall.SecondsAtOrAbove["critical"] != 60 {
		t.Errorf("hall against the capacity in force: %+v", hall)
	}
	if len(rv.Metering) != 1 {
		t.Fatalf("metering %+v", rv.Metering)
	}
	m := rv.Metering[0]
	if len(m.Episodes) != 2 || m.HeldS != 360 || m.Admitted != 150 || m.QueueMax != 80 || m.WaitMaxS != 360 || m.WaitMeanS != 120 {
		t.Errorf("metering %+v", m)
	}
	d := rv.Drills[0]
	if *d.SlowestS != 75 || d.OverBy != nil || len(d.NotCleared) != 1 || d.NotCleared[0] != "store" {
		t.Errorf("drill %+v", d)
	}
	if rv.Previous == nil || rv.Previous.Event.ID != "d11-2025" || *rv.Previous.Zones[1].Peak != 90 || rv.Previous.Zones[1].Capacity != 120 {
		t.Fatalf("previous %+v", rv.Previous)
	}
	if rv.Previous.Basis != "none" {
		t.Errorf("the first event of its kind: basis %s notes %v", rv.Previous.Basis, rv.Previous.Notes)
	}
	var md, cs strings.Builder
	if err := WriteReviewMarkdown(&md, rv, time.UTC); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# Review of d11 (d11)", "| hall | 150 | 80 (80–80) | 170 | 07:40 | 113% | +112% | no | 30m0s | 10m0s | 1m0s | 0s |",
		"| main | 2 | 6m0s | 150 | 80 | 6m0s | 2m0s |", "| 07:40:00 | hall | level | li | 1m30s | 10m0s |", "| 07:50:00 | guard | hall, store | 1m30s | 1m15s | – | store |",
		"# Previous event of the kind: Review of d11-2025"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	if err := WriteReviewCSV(&cs, rv); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"d11,zone,hall,peak,170", "d11,metering,main,wait_max_s,360", "d11,drill,dr1,cleared_s_hall,75", "d11-2025,zone,hall,peak,90", "d11,alert,level:hall,ack_s,90"} {
		if !strings.Contains(cs.String(), want) {
			t.Errorf("CSV lacks %q:\n%s", want, cs.String())
		}
	}
	// Without records the review says so; a failing record store is a note, not a failure.
	rv, err = BuildReview(context.Background(), cfg, ScheduleFromConfig(cfg), h, nil, "d11")
	if err != nil || len(rv.Metering) != 0 || !strings.Contains(strings.Join(rv.Notes, ";"), "not available") {
		t.Errorf("no records: %v %+v", err, rv.Notes)
	}
	rv, err = BuildReview(context.Background(), cfg, ScheduleFromConfig(cfg), h, fakeRecords{err: errors.New("disk gone")}, "d11")
	if err != nil || !strings.Contains(strings.Join(rv.Notes, ";"), "disk gone") {
		t.Errorf("failing records: %v %+v", err, rv.Notes)
	}
	if _, err := BuildReview(context.Background(), cfg, ScheduleFromConfig(cfg), h, nil, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown plan: %v", err)
	}
}

func TestPlanJSON(t *testing.T) {
	cfg, err := configs.Parse([]byte(reviewStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := ScheduleFromConfig(cfg).Plan("d11")
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"id":"d11"`, `"start":"2026-11-11T07:00:00Z"`, `"doors_open":"2026-11-11T07:30:00Z"`, `"capacities":{"hall":150}`, `"origin":"file"`, `"name":"d11"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
