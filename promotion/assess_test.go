package promotion

import (
	"strings"
	"testing"

	"github.com/crowdwatch/crowdwatch/configs"
)

const assessStore = `
site: {id: s1, timezone: UTC}
alerting: {evacuation: {flow_per_metre: 80, stairs_flow_per_metre: 60, pre_movement: 60s, target: 150s}}
zones:
  - {id: store, capacity: 1000, area_m2: 400}
  - {id: hall, parent: store, capacity: 300, area_m2: 50}
  - {id: upper, parent: store, capacity: 100, area_m2: 100}
  - {id: nook, capacity: 10}
doors:
  - {id: main, from: outside, to: hall, width_m: 4}
  - {id: side, from: outside, to: hall, width_m: 2}
  - {id: back, from: outside, to: store, width_m: 1}
  - {id: stair, from: upper, to: hall, width_m: 1.5, stairs: true}
  - {id: nookdoor, from: outside, to: nook}
events:
  - {id: d11, kind: double11, start: "2026-11-11 07:00", end: "2026-11-11 22:00", capacities: {hall: 150, upper: 80}}
`

// TestAssess checks the arithmetic on hand-computed cases (flow 80/m/min, stairs 60, 1.5 min
// to move: 150 s target less 60 s pre-movement).
func TestAssess(t *testing.T) {
	cfg, err := configs.Parse([]byte(assessStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := Assess(cfg, &cfg.Events[0])
	want := map[string]struct {
		density, egress int
		usable          float64
		event           int
		warnings        []string
	}{
		// store: 400 m² x 3.5 = 1400. Exits main 4, side 2, back 1 (the stair and the hall's
		// inner doors do not cross its boundary); without main: 3 m x 80 x 1.5 = 360.
		"store": {1400, 360, 3, 0, []string{"capacity 1000 exceeds the egress limit 360"}},
		// hall: 50 x 3.5 = 175. Exits main 4 (320/min), side 2 (160), stair 1.5 (90); without
		// main: 250/min x 1.5 = 375; usable width 3.5 m.
		"hall": {175, 375, 3.5, 150, []string{"capacity 300 exceeds the density limit 175"}},
		// upper: 100 x 3.5 = 350; its only exit is the stair: 90/min x 1.5 = 135.
		"upper": {350, 135, 1.5, 80, []string{"only one exit (stair)"}},
	}
	for _, z := range a.Zones {
		w, ok := want[z.Zone]
		if !ok {
			continue
		}
		if z.Density == nil || *z.Density != w.density || z.Egress == nil || *z.Egress != w.egress || z.UsableM != w.usable {
			t.Errorf("%s: density %v egress %v usable %v, want %d %d %v", z.Zone, deref(z.Density), deref(z.Egress), z.UsableM, w.density, w.egress, w.usable)
		}
		if w.event != 0 && (z.Event == nil || *z.Event != w.event) {
			t.Errorf("%s: event capacity %v, want %d", z.Zone, deref(z.Event), w.event)
		}
		if got := *z.Limit; got != min(w.density, w.egress) {
			t.Errorf("%s: limit %d", z.Zone, got)
		}
		all := strings.Join(z.Warnings, "; ")
		for _, s := range w.warnings {
			if !strings.Contains(all, s) {
				t.Errorf("%s: warnings %q lack %q", z.Zone, all, s)
			}
		}
	}
	// The hall's event capacity (150) is within both limits; the upper floor's 80 too.
	for _, z := range a.Zones {
		for _, w := range z.Warnings {
			if strings.HasPrefix(w, "event capacity") {
				t.Errorf("%s: unexpected %q", z.Zone, w)
			}
		}
	}
	if n := a.Zones[1].Notes; len(n) != 1 || n[0] != (Note{Code: "over_density", Capacity: 300, Limit: 175}) {
		t.Errorf("hall notes %+v", n)
	}
	nook := a.Zones[3]
	if nook.Density != nil || nook.Egress != nil || nook.Limit != nil || len(nook.Warnings) != 2 {
		t.Errorf("nook without area or door width: %+v", nook)
	}
	if a.Warnings != 4 {
		t.Errorf("%d zones with warnings, want 4", a.Warnings)
	}
}

// TestAssessEventCapacityWarned: an event capacity above a limit is warned about by itself.
func TestAssessEventCapacityWarned(t *testing.T) {
	cfg, err := configs.Parse([]byte(strings.Replace(assessStore, "hall: 150", "hall: 200", 1)), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := Assess(cfg, &cfg.Events[0])
	if all := strings.Join(a.Zones[1].Warnings, "; "); !strings.Contains(all, "event capacity 200 exceeds the density limit 175") {
		t.Errorf("hall warnings: %s", all)
	}
	// A density of 2 persons/m² makes the hall's limit 100.
	cfg.Assessment.DensityPerM2 = 2
	if d := *Assess(cfg, nil).Zones[1].Density; d != 100 {
		t.Errorf("density limit at 2/m²: %d", d)
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
