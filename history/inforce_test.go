package history

import (
	"context"
	"testing"
	"time"
)

// TestReportCapacityInForce: with CapacityAt set (a promotion's plan), a zone's peak is judged
// against the capacity in force when it was reached.
func TestReportCapacityInForce(t *testing.T) {
	site := testSite(time.UTC)
	h := newHarness(t, site)
	c := newCrowd(site, 1)
	a := time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)
	h.run(c, a, a.Add(20*time.Minute), func(time.Time) int { return 3 })
	h.flush(a.Add(20 * time.Minute))
	r := h.reader()
	plain, err := r.Report(context.Background(), a, a.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	z := plain.Zones[0]
	if z.Peak == nil || *z.Peak == 0 {
		t.Fatalf("no peak recorded: %+v", z)
	}
	r.CapacityAt = func(zone string, at time.Time) int {
		if zone == z.Zone && !at.Before(a) {
			return int(*z.Peak) * 2 // the plan's capacity: twice the peak
		}
		return 0
	}
	rep, err := r.Report(context.Background(), a, a.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := rep.Zones[0]
	if got.Capacity != int(*z.Peak)*2 || got.PeakRatio == nil || *got.PeakRatio != 0.5 || got.Capacity == z.Capacity {
		t.Errorf("with the plan's capacity: capacity %d ratio %v (everyday %d, peak %d)", got.Capacity, *got.PeakRatio, z.Capacity, *z.Peak)
	}
	if rep.Zones[1].Capacity != plain.Zones[1].Capacity {
		t.Errorf("a zone the plan does not name changed: %d", rep.Zones[1].Capacity)
	}
}
