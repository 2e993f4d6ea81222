package crowd

import (
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
)

func load(t *testing.T, name string) (*configs.Config, *scenario.Scenario) {
	t.Helper()
	cfg, err := configs.Load("../../configs/demo-store.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Load("../../configs/scenarios/" + name + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg, sc
}

// run plays a scenario to its end and checks, at every step, that the true occupancy follows
// from the true crossings: what a perfect counter would report is exactly the truth.
func run(t *testing.T, name string, seed uint64) (*Sim, map[string]int64) {
	t.Helper()
	cfg, sc := load(t, name)
	s := New(cfg, sc, time.Date(2026, 11, 11, 0, 0, 0, 0, cfg.Location), seed)
	peak := map[string]int64{}
	for s.Now().Before(s.End()) {
		s.Step(time.Second)
		occ := s.Occupancy()
		for z, n := range occ {
			if n < 0 {
				t.Fatalf("%s: zone %s at %d", s.Now(), z, n)
			}
			peak[z] = max(peak[z], n)
		}
		if got := fromCrossings(cfg, s.Crossings); got["store"] != occ["store"] || got["entrance"] != occ["entrance"] {
			t.Fatalf("%s: crossings give %v, truth %v", s.Now(), got, occ)
		}
	}
	return s, peak
}

func fromCrossings(cfg *configs.Config, c [][2]uint64) map[string]int64 {
	parent := map[string]string{}
	for _, z := range cfg.Zones {
		parent[z.ID] = z.Parent
	}
	anc := func(z string) map[string]bool {
		m := map[string]bool{}
		for ; z != "" && z != configs.Outside; z = parent[z] {
			m[z] = true
		}
		return m
	}
	out := map[string]int64{}
	for i, d := range cfg.Doors {
		net := int64(c[i][0]) - int64(c[i][1])
		from, to := anc(d.From), anc(d.To)
		for z := range to {
			if !from[z] {
				out[z] += net
			}
		}
		for z := range from {
			if !to[z] {
				out[z] -= net
			}
		}
	}
	return out
}

func TestDoorbusterSurgesPastEntranceCapacity(t *testing.T) {
	s, peak := run(t, "doorbuster", 1)
	if peak["entrance"] <= 150 {
		t.Errorf("entrance peaked at %d, the scenario should take it past its capacity of 150", peak["entrance"])
	}
	if s.Queue() != 0 {
		t.Errorf("%d people still queue outside at the end", s.Queue())
	}
	t.Logf("peaks %v", peak)
}

func TestDeterministicForASeed(t *testing.T) {
	a, _ := run(t, "normal-day", 7)
	b, _ := run(t, "normal-day", 7)
	c, _ := run(t, "normal-day", 8)
	if a.Occupancy()["store"] != b.Occupancy()["store"] || a.Crossings[0] != b.Crossings[0] {
		t.Fatal("same seed, different crowd")
	}
	if a.Crossings[0] == c.Crossings[0] {
		t.Fatal("different seeds gave the same crowd")
	}
}

func TestEvacuationEmptiesTheStore(t *testing.T) {
	cfg, sc := load(t, "evacuation")
	s := New(cfg, sc, time.Date(2026, 11, 11, 0, 0, 0, 0, cfg.Location), 3)
	evac := s.Start().Add(time.Duration(sc.EvacuateAt-sc.Start) * time.Minute)
	var atAlarm int64
	for s.Now().Before(s.End()) {
		if s.Now().Equal(evac) {
			atAlarm = s.Occupancy()["store"]
		}
		s.Step(time.Second)
	}
	if atAlarm < 100 {
		t.Fatalf("only %d people in the store when the alarm sounded", atAlarm)
	}
	if left := s.Occupancy()["store"]; left != 0 {
		t.Fatalf("%d people still inside %s after the alarm", left, s.End().Sub(evac))
	}
}

// countingGate allows a fixed number in total.
type countingGate struct{ left, passed int }

func (g *countingGate) Allow() int   { return g.left }
func (g *countingGate) Passed(n int) { g.left -= n; g.passed += n }

func TestGatesHoldPeopleBack(t *testing.T) {
	cfg, sc := load(t, "doorbuster")
	s := New(cfg, sc, time.Date(2026, 11, 11, 0, 0, 0, 0, cfg.Location), 7)
	main := &countingGate{left: 25}
	s.SetGate("main-door", true, main)
	s.SetGate("side-door", true, Closed{})
	s.SetGate("exit-east", false, Closed{}) // exit only
	idx := map[string]int{}
	for i, d := range cfg.Doors {
		idx[d.ID] = i
	}
	for s.Now().Before(s.End()) {
		s.Step(time.Second)
	}
	if got := s.Crossings[idx["main-door"]][0]; got != 25 || main.passed != 25 {
		t.Fatalf("main door let %d in (gate says %d), want the 25 it allowed", got, main.passed)
	}
	if got := s.Crossings[idx["side-door"]][0]; got != 0 {
		t.Fatalf("closed side door let %d in", got)
	}
	if got := s.Crossings[idx["exit-east"]][1]; got != 0 {
		t.Fatalf("exit-only door let %d in", got)
	}
	if s.Queue() == 0 {
		t.Fatal("nobody is left queueing outside the held doors")
	}
}
