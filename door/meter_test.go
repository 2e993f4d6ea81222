package door

import (
	"sync"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

const meterStore = `
site: {id: t-site, timezone: UTC}
storage: {path: /nonexistent/cw.db}
zones:
  - {id: queue, capacity: 2000}
  - {id: store, capacity: 1000}
  - {id: entrance, parent: store, capacity: 100}
doors:
  - {id: gate, from: outside, to: queue, counter: {device: dc-00}}
  - {id: main, from: queue, to: entrance, width_m: 1.5, counter: {device: dc-01}}
  - {id: inner, from: entrance, to: store, width_m: 2, counter: {device: dc-02}}
  - {id: back, from: store, to: outside, width_m: 2, counter: {device: dc-03}}
events:
  - id: doorbuster
    start: "2026-11-27T06:00:00Z"
    end: "2026-11-27T12:00:00Z"
    doors_open: "2026-11-27T08:00:00Z"
    capacities: {entrance: 60}
    metered: [{door: main, queue: queue}]
`

type fakeEngine struct {
	mu   sync.Mutex
	snap *zones.Snapshot
}

func (f *fakeEngine) Snapshot() *zones.Snapshot            { f.mu.Lock(); defer f.mu.Unlock(); return f.snap }
func (f *fakeEngine) Subscribe() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }

func TestMeterPathCapacityInForceAndPlan(t *testing.T) {
	cfg, err := configs.Parse([]byte(meterStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	model := zones.NewModel(cfg)
	eng := &fakeEngine{}
	occ := map[string]int64{"queue": 40, "entrance": 0, "store": 0}
	snapshot := func() {
		s := &zones.Snapshot{}
		for _, z := range model.Zones {
			s.Zones = append(s.Zones, zones.ZoneState{ID: z.ID, Occupancy: occ[z.ID], Capacity: z.Capacity, Ratio: float64(occ[z.ID]) / float64(z.Capacity)})
		}
		for _, d := range model.Doors {
			s.Doors = append(s.Doors, zones.DoorState{ID: d.ID, From: d.From, To: d.To})
		}
		eng.mu.Lock()
		eng.snap = s
		eng.mu.Unlock()
	}
	snapshot()
	m := NewMeter(Options{Config: cfg, Model: model, Engine: eng})
	if r := m.DefaultRate("main"); r != 60 {
		t.Fatalf("default rate %v, want half of 1.5 m x 80/min = 60", r)
	}
	gates := map[string]*gate{}
	at := func(s string) time.Time {
		tt, _ := time.Parse(time.RFC3339, s)
		return tt
	}
	m.step(at("2026-11-27T05:00:00Z"), gates)
	if _, ok := m.Admission("main"); ok {
		t.Fatal("metered before the plan starts")
	}
	m.step(at("2026-11-27T07:59:00Z"), gates)
	a, ok := m.Admission("main")
	if !ok || a.State != guidance.Wait || a.Reason != ReasonClosed {
		t.Fatalf("before doors open: %+v", a)
	}
	// 59 in the entrance, under its everyday 100 but one short of the event's 60.
	occ["entrance"], occ["store"] = 59, 59
	snapshot()
	now := at("2026-11-27T08:00:00Z")
	admitted := false
	for range 8 {
		m.step(now, gates)
		a, _ = m.Admission("main")
		admitted = admitted || a.State == guidance.Enter
		if a.Allowance > 1 {
			t.Fatalf("allowance %d with one place left", a.Allowance)
		}
		now = now.Add(250 * time.Millisecond)
	}
	if !admitted || a.LimitingZone != "entrance" {
		t.Fatalf("one place left under the event capacity: %+v", a)
	}
	occ["entrance"], occ["store"] = 60, 60
	snapshot()
	for range 8 {
		m.step(now, gates)
		a, _ = m.Admission("main")
		if a.State != guidance.Wait || a.Mode != ModeOneOutOneIn {
			t.Fatalf("at the event capacity (everyday capacity 100): %+v", a)
		}
		now = now.Add(250 * time.Millisecond)
	}
	if a.WaitSeconds != nil {
		t.Fatalf("a wait estimated one out, one in with no exits yet: %v", *a.WaitSeconds)
	}
	m.step(at("2026-11-27T12:00:00Z"), gates)
	if _, ok := m.Admission("main"); ok {
		t.Fatal("still metered after the plan ended")
	}
}
