package guidance

import (
	"slices"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// A store with an entrance hall inside it, Floor 1 with a side vestibule inside it, and
// Floor 2 up the escalator.
const routeStore = `
site: {id: r-site, timezone: UTC}
storage: {path: /nonexistent/cw.db}
zones:
  - {id: store, capacity: 300}
  - {id: entrance, parent: store, capacity: 150}
  - {id: floor1, parent: store, capacity: 200}
  - {id: side, parent: floor1, capacity: 50}
  - {id: floor2, parent: store, capacity: 100}
doors:
  - {id: main, from: outside, to: entrance, width_m: 3}
  - {id: hall, from: entrance, to: floor1, width_m: 3}
  - {id: side-door, from: outside, to: side, width_m: 2}
  - {id: esc, from: floor1, to: floor2, width_m: 1}
screens:
  - id: main-door
    zone: entrance
    alternatives: [{zone: side, arrow: right, label: {en: Side door, zh: 侧门}}]
    exit: {arrow: down}
  - {id: escalator, zone: floor2, door: esc}
  - {id: upstairs, zone: floor2}
`

func routeModel(t *testing.T) (*configs.Config, *zones.Model) {
	t.Helper()
	cfg, err := configs.Parse([]byte(routeStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, zones.NewModel(cfg)
}

func TestRouteFor(t *testing.T) {
	cfg, m := routeModel(t)
	main, _ := cfg.Screen("main-door")
	r := RouteFor(main, m)
	if !slices.Equal(r.Guards, []string{"entrance", "store"}) {
		t.Errorf("main door guards %v, want entrance and the store it is in", r.Guards)
	}
	if len(r.Alternatives) != 1 || !slices.Equal(r.Alternatives[0], []string{"side", "floor1", "store"}) {
		t.Errorf("side door route %v, want side, floor1, store", r.Alternatives)
	}
	esc, _ := cfg.Screen("escalator")
	if r := RouteFor(esc, m); !slices.Equal(r.Guards, []string{"floor2"}) {
		t.Errorf("escalator guards %v, want floor2 only (a person there is in the store already)", r.Guards)
	}
	up, _ := cfg.Screen("upstairs")
	if r := RouteFor(up, m); !slices.Equal(r.Guards, []string{"floor2"}) {
		t.Errorf("a zone entered only from a sibling guards %v, want floor2 only", r.Guards)
	}
}

// TestComputeHierarchy: a screen judges every zone a person passing it enters, and offers an
// alternative only when its whole route is below busy and certain.
func TestComputeHierarchy(t *testing.T) {
	cfg, m := routeModel(t)
	type z struct {
		id        string
		occ       int64
		uncertain bool
	}
	cases := []struct {
		name       string
		screen     string
		zones      []z
		evacuating []string
		state      State
		target     string
		left       int64
		limiting   string
	}{
		{"places left is the smallest of the guarded zones", "main-door",
			[]z{{"entrance", 20, false}, {"store", 175, false}, {"floor1", 100, false}, {"side", 5, false}},
			nil, Welcome, "", 125, "store"},
		{"a parent over capacity turns the entrance screen to full", "main-door",
			[]z{{"entrance", 57, false}, {"store", 340, false}, {"floor1", 240, false}, {"side", 5, false}},
			nil, Full, "", 0, "store"},
		{"an alternative whose route is over busy is not offered", "main-door",
			[]z{{"entrance", 100, false}, {"store", 150, false}, {"floor1", 170, false}, {"side", 5, false}},
			nil, Busy, "", 50, "entrance"},
		{"an alternative whose whole route is below busy is offered", "main-door",
			[]z{{"entrance", 100, false}, {"store", 150, false}, {"floor1", 60, false}, {"side", 5, false}},
			nil, Busy, "side", 50, "entrance"},
		{"an uncertain alternative is never offered", "main-door",
			[]z{{"entrance", 100, false}, {"store", 150, false}, {"floor1", 60, false}, {"side", 5, true}},
			nil, Busy, "", 50, "entrance"},
		{"an alternative at capacity is never offered", "main-door",
			[]z{{"entrance", 160, false}, {"store", 170, false}, {"floor1", 60, false}, {"side", 50, false}},
			nil, Full, "", 0, "entrance"},
		{"an alternative just at busy is not offered", "main-door",
			[]z{{"entrance", 160, false}, {"store", 170, false}, {"floor1", 60, false}, {"side", 30, false}},
			nil, Full, "", 0, "entrance"},
		{"full points to an alternative that is really better", "main-door",
			[]z{{"entrance", 160, false}, {"store", 170, false}, {"floor1", 60, false}, {"side", 5, false}},
			nil, Full, "side", 0, "entrance"},
		{"an uncertain parent makes the screen neutral", "main-door",
			[]z{{"entrance", 20, false}, {"store", 100, true}},
			nil, Neutral, "", 130, "entrance"},
		{"a full zone is full even when another is uncertain", "main-door",
			[]z{{"entrance", 20, true}, {"store", 310, false}},
			nil, Full, "", 0, "store"},
		{"evacuating the parent turns the screen to exit guidance", "main-door",
			[]z{{"entrance", 20, false}, {"store", 100, false}},
			[]string{"store"}, Evacuate, "", 130, "entrance"},
		{"a screen at an inner door guards only what its door adds", "escalator",
			[]z{{"store", 340, false}, {"floor1", 240, false}, {"floor2", 10, false}},
			nil, Welcome, "", 90, "floor2"},
	}
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := cfg.Screen(tc.screen)
			rs := map[string]Reading{}
			for _, zz := range tc.zones {
				info := m.Zones[slices.IndexFunc(m.Zones, func(i zones.ZoneInfo) bool { return i.ID == zz.id })]
				st := zones.ZoneState{ID: zz.id, Occupancy: zz.occ, Capacity: info.Capacity, Ratio: float64(zz.occ) / float64(info.Capacity)}
				rs[zz.id] = Reading{Zone: st, Level: levels.Instant(st.Ratio, nil), Uncertain: zz.uncertain}
			}
			ev := map[string]bool{}
			for _, e := range tc.evacuating {
				ev[e] = true
			}
			g := Compute(s, RouteFor(s, m), rs, ev, now)
			if g.State != tc.state || g.Target != tc.target || g.PlacesLeft != tc.left || g.LimitingZone != tc.limiting {
				t.Errorf("got %s -> %q, %d left, limited by %q; want %s -> %q, %d, %q", g.State, g.Target, g.PlacesLeft, g.LimitingZone,
					tc.state, tc.target, tc.left, tc.limiting)
			}
		})
	}
}

// A zone at capacity is full and never an alternative, even where the store's thresholds
// (critical_ratio above 1, busy off) would call it normal.
func TestComputeCapacityIsHard(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	rs := map[string]Reading{
		"a": rd("a", 100, 100, levels.Normal),
		"b": rd("b", 50, 50, levels.Normal),
		"c": rd("c", 10, 100, levels.Normal),
	}
	if g := Compute(screen, Route{}, rs, nil, now); g.State != Full || g.Target != "c" {
		t.Errorf("a at capacity: %s -> %q, want full pointing to c (b is at capacity too)", g.State, g.Target)
	}
	rs["a"] = rd("a", 70, 100, levels.Busy)
	delete(rs, "c")
	if g := Compute(screen, Route{}, rs, nil, now); g.State != Busy || g.Target != "" {
		t.Errorf("b at capacity offered: %s -> %q", g.State, g.Target)
	}
}
