package alerting

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// The harness clock starts at 07:00 UTC; the plan's doors open at 08:00.
var eventDayStore = strings.Replace(testStore, "zones:\n", "zones:\n  - {id: queue, capacity: 2000}\n", 1) + `
events:
  - id: doorbuster
    name: Door-buster morning
    start: "2026-11-27T06:00:00Z"
    end: "2026-11-27T12:00:00Z"
    doors_open: "2026-11-27T08:00:00Z"
    capacities: {entrance: 60}
    metered:
      - {door: main, rate_per_min: 30, queue: queue}
event_day: {opening_absorb: 10m, opening_window: 30m}
`

func TestOpeningQueueAlert(t *testing.T) {
	// The metered main door absorbs 30/min x 10 min = 300 people in the first 10 minutes.
	cases := []struct {
		name  string
		sec   int // after 07:00
		queue int64
		fires bool
	}{
		{"queue over what the door absorbs, 20 min before opening", 40 * 60, 301, true},
		{"queue just what the door absorbs", 40 * 60, 300, false},
		{"small queue", 45 * 60, 50, false},
		{"big queue, but before the window", 29 * 60, 900, false},
		{"big queue at the start of the window", 30 * 60, 900, true},
		{"big queue one minute before opening", 59 * 60, 900, true},
		{"after opening the meter takes over", 60 * 60, 900, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, eventDayStore)
			h.occ["queue"] = c.queue
			h.at(c.sec)
			a := h.alert("opening_queue:doorbuster")
			if (a != nil) != c.fires {
				t.Fatalf("opening alert %v, want firing %v (alerts %+v)", a != nil, c.fires, h.m.Status().Alerts)
			}
			if a == nil {
				return
			}
			if a.Severity != SeverityWarning || a.Params["absorb"] != int64(300) || a.Params["queue"] != c.queue {
				t.Fatalf("alert %+v", a)
			}
			if a.ActionKey != "action.opening_queue" || a.Action == "" {
				t.Fatalf("no playbook advice: %+v", a)
			}
			// A warning goes to security's route first, as every warning does.
			if got := whats(h.notes.take(), "opening_queue:doorbuster"); !slices.Equal(got, []string{"fired->radio"}) {
				t.Fatalf("notified %v", got)
			}
		})
	}
}

func TestDoorsOpenNoticeGoesToAllStaff(t *testing.T) {
	h := newHarness(t, eventDayStore)
	h.at(59 * 60)
	h.notes.take()
	h.at(60 * 60)
	if got := whats(h.notes.take(), "doors_open:doorbuster"); !slices.Equal(got, []string{"fired->radio+managers+everyone"}) {
		t.Fatalf("doors-open notice %v, want every route", got)
	}
	h.at(64 * 60) // never escalated nor repeated
	if got := whats(h.notes.take(), "doors_open:doorbuster"); len(got) != 0 {
		t.Fatalf("doors-open notice repeated: %v", got)
	}
	h.at(66 * 60)
	if h.alert("doors_open:doorbuster") != nil {
		t.Fatal("the notice is still up after 5 minutes")
	}
}

func TestDrillMeasuredAndOverriddenByARealEvacuation(t *testing.T) {
	h := newHarness(t, eventDayStore)
	h.occ["store"], h.occ["entrance"] = 300, 40
	h.at(0)
	var d Drill
	h.run(func() {
		var err error
		if d, err = h.m.StartDrill(context.Background(), "store", "guard-li"); err != nil {
			t.Error(err)
		}
	})
	if d.EstimateSeconds == nil || d.StartCount["store"] != 300 || !slices.Equal(d.Affected, []string{"store", "entrance"}) {
		t.Fatalf("drill %+v", d)
	}
	a := h.alert("drill:store")
	if a == nil || a.Severity == SeverityEmergency || a.Kind != KindDrill {
		t.Fatalf("drill alert %+v", a)
	}
	if got := whats(h.notes.take(), "drill:store"); !slices.Equal(got, []string{"fired->radio+managers+everyone"}) {
		t.Fatalf("drill notice %v", got)
	}
	if len(h.m.Status().Drills) != 1 || len(h.m.Status().Evacuations) != 0 {
		t.Fatalf("status drills %v evacuations %v", h.m.Status().Drills, h.m.Status().Evacuations)
	}
	h.occ["entrance"] = 2 // at or below drill_empty_at (2): empty
	h.at(45)
	h.occ["store"] = 1
	h.at(130)
	reports, err := h.m.DrillReports(time.Time{}, time.Time{})
	if err != nil || len(reports) != 1 {
		t.Fatalf("reports %v %v", reports, err)
	}
	r := reports[0]
	if r.EndedAt == nil || r.EndReason != "every zone empty" || r.ClearedSeconds["entrance"] != 45 || r.ClearedSeconds["store"] != 130 {
		t.Fatalf("report %+v", r)
	}
	if len(h.m.Status().Drills) != 0 || h.alert("drill:store") != nil {
		t.Fatal("the drill is still in force after every zone emptied")
	}

	// A second drill; a real evacuation declared during it ends it at once and is never muted.
	h.occ["store"] = 200
	h.at(200)
	h.run(func() {
		if _, err := h.m.StartDrill(context.Background(), "", "guard-li"); err != nil {
			t.Error(err)
		}
	})
	h.notes.take()
	h.run(func() {
		if _, err := h.m.Declare(context.Background(), "entrance", "chief-wang", "smoke"); err != nil {
			t.Error(err)
		}
	})
	if len(h.m.Status().Drills) != 0 {
		t.Fatalf("drill still in force beside a real evacuation: %+v", h.m.Status().Drills)
	}
	ev := h.alert("evacuation:entrance")
	if ev == nil || ev.Silenced || ev.Inhibited {
		t.Fatalf("real evacuation %+v", ev)
	}
	reports, _ = h.m.DrillReports(time.Time{}, time.Time{})
	if len(reports) != 2 || reports[1].EndReason != "real evacuation" {
		t.Fatalf("reports %+v", reports)
	}
	h.run(func() {
		if _, err := h.m.StartDrill(context.Background(), "store", "guard-li"); err == nil {
			t.Error("a drill started over a real evacuation")
		}
	})
}

func TestMeteringRecordsKept(t *testing.T) {
	h := newHarness(t, eventDayStore)
	from := h.now.Add(time.Hour)
	h.run(func() {
		if err := h.m.KeepMetering(context.Background(), from, "main", []byte(`{"Door":"main"}`)); err != nil {
			t.Error(err)
		}
	})
	got, err := h.m.MeteringRecords(from.Add(-time.Minute), from.Add(time.Minute))
	if err != nil || len(got) != 1 || string(got[0]) != `{"Door":"main"}` {
		t.Fatalf("%q %v", got, err)
	}
	if got, _ := h.m.MeteringRecords(from.Add(time.Second), time.Time{}); len(got) != 0 {
		t.Fatalf("out of range: %q", got)
	}
}

// A drill under way goes on after a restart: in force, with what it measured so far, its
// alert not fired again; it then ends as it would have. A drill started with an id given
// (the HA action log) is the same drill when that start comes again, even after it ended.
func TestDrillSurvivesARestart(t *testing.T) {
	h := newHarness(t, eventDayStore)
	h.occ["store"], h.occ["entrance"] = 300, 40
	h.at(0)
	ctx := context.Background()
	at := h.now
	var d Drill
	h.run(func() {
		var err error
		if d, err = h.m.StartDrillAs(ctx, DrillStart{Zone: "store", By: "guard-li", ID: "drill-x-1", At: at}); err != nil {
			t.Error(err)
		}
	})
	if d.ID != "drill-x-1" || !d.At.Equal(at) {
		t.Fatalf("drill %+v, want the id and start given", d)
	}
	h.occ["entrance"] = 2
	h.at(45)
	h.notes.take()

	_ = h.m.Close()
	h.open()
	h.at(50)
	ds := h.m.Status().Drills
	if len(ds) != 1 || ds[0].ID != "drill-x-1" || ds[0].ClearedSeconds["entrance"] != 45 || ds[0].StartCount["store"] != 300 {
		t.Fatalf("drills after a restart: %+v, want drill-x-1 with entrance cleared at 45 s", ds)
	}
	if got := whats(h.notes.take(), "drill:store"); len(got) != 0 {
		t.Fatalf("the drill was announced again after the restart: %v", got)
	}
	h.occ["store"] = 1
	h.at(130)
	reports, err := h.m.DrillReports(time.Time{}, time.Time{})
	if err != nil || len(reports) != 1 || reports[0].EndReason != "every zone empty" || reports[0].ClearedSeconds["store"] != 130 {
		t.Fatalf("reports %+v %v", reports, err)
	}
	// The same start again (a replay): the ended drill, no new one.
	h.run(func() {
		again, err := h.m.StartDrillAs(ctx, DrillStart{Zone: "store", By: "guard-li", ID: "drill-x-1", At: at})
		if err != nil || again.EndedAt == nil {
			t.Errorf("replayed start: %+v %v, want the ended drill", again, err)
		}
	})
	if len(h.m.Status().Drills) != 0 {
		t.Fatalf("a replayed start began a drill again: %+v", h.m.Status().Drills)
	}
}

// Two back-to-back plans whose opening notices overlap (the first's doors at 07:58, held for
// 5 min; the next's at 08:00) and whose opening windows overlap each get their own alerts,
// named by the plan, and the next's notice goes out at its own opening.
var backToBackStore = strings.Replace(testStore, "zones:\n", "zones:\n  - {id: queue, capacity: 2000}\n", 1) + `
events:
  - id: early
    name: Early birds
    start: "2026-11-27T06:00:00Z"
    end: "2026-11-27T08:00:00Z"
    doors_open: "2026-11-27T07:58:00Z"
    metered:
      - {door: main, rate_per_min: 30, queue: queue}
  - id: main-sale
    name: Main sale
    start: "2026-11-27T08:00:00Z"
    end: "2026-11-27T12:00:00Z"
    doors_open: "2026-11-27T08:00:00Z"
    metered:
      - {door: main, rate_per_min: 30, queue: queue}
event_day: {opening_absorb: 10m, opening_window: 30m}
`

func TestBackToBackPlansEachGetTheirOpeningAlerts(t *testing.T) {
	h := newHarness(t, backToBackStore)
	h.occ["queue"] = 900
	h.at(45 * 60) // 07:45: within both opening windows
	for _, id := range []string{"opening_queue:early", "opening_queue:main-sale"} {
		if a := h.alert(id); a == nil || a.Detail != strings.TrimPrefix(id, "opening_queue:") {
			t.Fatalf("%s: %+v (alerts %+v)", id, a, h.m.Status().Alerts)
		}
	}
	h.occ["queue"] = 0
	h.at(58 * 60) // the early birds' doors
	h.notes.take()
	h.at(60 * 60) // the main sale's, the early notice still up
	if got := whats(h.notes.take(), "doors_open:main-sale"); !slices.Equal(got, []string{"fired->radio+managers+everyone"}) {
		t.Fatalf("the main sale's doors-open notice %v, want its own, to every route", got)
	}
	if h.alert("doors_open:early") == nil || h.alert("doors_open:main-sale").Params["event"] != "Main sale" {
		t.Fatalf("alerts %+v", h.m.Status().Alerts)
	}
}

// An alert an earlier version stored as doors_open:site loads under its plan's id, still
// held: not told again.
func TestOldPlanAlertIDsLoad(t *testing.T) {
	h := newHarness(t, eventDayStore)
	h.at(60 * 60)
	if got := whats(h.notes.take(), "doors_open:doorbuster"); len(got) != 1 {
		t.Fatalf("notice %v", got)
	}
	_ = h.m.Close()
	db, err := bolt.Open(h.cfg.AlertsPath(), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAlerts)
		var a Alert
		if err := json.Unmarshal(b.Get([]byte("doors_open:doorbuster")), &a); err != nil {
			return err
		}
		a.ID = "doors_open:site"
		v, _ := json.Marshal(&a)
		_ = b.Delete([]byte("doors_open:doorbuster"))
		return b.Put([]byte(a.ID), v)
	}); err != nil {
		t.Fatal(err)
	}
	_ = db.Close()
	h.open()
	h.at(61 * 60)
	if got := whats(h.notes.take(), "doors_open:doorbuster"); len(got) != 0 {
		t.Fatalf("told again after the upgrade: %v", got)
	}
	if a := h.alert("doors_open:doorbuster"); a == nil || h.alert("doors_open:site") != nil {
		t.Fatalf("alerts %+v", h.m.Status().Alerts)
	}
	h.at(66 * 60)
	if len(h.m.Status().Alerts) != 0 {
		t.Fatalf("still open after 5 min: %+v", h.m.Status().Alerts)
	}
}
