package zones

import "testing"

// TestTwoInstancesConvergeAtTheNextHeadCount: two instances of a store (docs/ha.md) receive
// the same reports, but an area sensor's head count arrives before a crossing on one and after
// it on the other. Counter totals do not depend on the order; a head count does: the two
// differ by the crossings in flight between the two deliveries, and agree again exactly at
// the next head count, zone and parents.
func TestTwoInstancesConvergeAtTheNextHeadCount(t *testing.T) {
	a, b := newHarness(t, ""), newHarness(t, "")
	sensor := func(h *harness, seq uint64, n int64) *Message {
		return &Message{Report: &Report{Device: "cam-07", Kind: KindSensor, Boot: "s", Seq: seq, TS: h.clock(), Count: n}}
	}
	for _, h := range []*harness{a, b} {
		mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 30, 0))))
		mustApply(t, h.send(counter("dc-02", "b", 1, line("1", 10, 0))))
	}
	// a: the head count, then three people up the stairs; b: the other way round.
	mustApply(t, a.send(sensor(a, 1, 14)))
	mustApply(t, a.send(counter("dc-02", "b", 2, line("1", 13, 0))))
	mustApply(t, b.send(counter("dc-02", "b", 2, line("1", 13, 0))))
	mustApply(t, b.send(sensor(b, 1, 14)))
	a.expect(map[string]int64{"hall": 17, "floor2": 17, "store": 34})
	b.expect(map[string]int64{"hall": 17, "floor2": 14, "store": 31}) // apart by the 3 in flight
	// The next head count: the same on both.
	for _, h := range []*harness{a, b} {
		mustApply(t, h.send(sensor(h, 2, 20)))
	}
	want := map[string]int64{"hall": 17, "floor2": 20, "store": 37}
	a.expect(want)
	b.expect(want)
}
