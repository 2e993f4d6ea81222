package history

import (
	"context"
	"strconv"
	"strings"
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

// TestHistoryCapacityInForce: each point of a zone's series carries the capacity in force in
// its bucket: the plan's while it runs, the lower one in the bucket the plan starts in, the
// configured one elsewhere; the CSV's capacity column follows it.
func TestHistoryCapacityInForce(t *testing.T) {
	site := testSite(time.UTC)
	h := newHarness(t, site)
	c := newCrowd(site, 1)
	a := time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)
	h.run(c, a, a.Add(30*time.Minute), func(time.Time) int { return 3 })
	h.flush(a.Add(30 * time.Minute))
	r := h.reader()
	zone := site.Zones[0]
	start := a.Add(10*time.Minute + 30*time.Second) // within the 10:10 bucket
	r.CapacityAt = func(z string, at time.Time) int {
		if z == zone.ID && !at.Before(start) && at.Before(a.Add(20*time.Minute)) {
			return zone.Capacity / 2
		}
		return 0
	}
	s, err := r.History(context.Background(), Query{Zones: []string{zone.ID}, From: a, To: a.Add(30 * time.Minute), Step: Step{D: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	zs := s.Zones[0]
	if zs.Capacity != zone.Capacity {
		t.Errorf("the series' capacity %d, want the configured %d", zs.Capacity, zone.Capacity)
	}
	for i, p := range zs.Points {
		want := zone.Capacity
		if i >= 10 && i < 20 {
			want = zone.Capacity / 2
		}
		if p.Capacity != want {
			t.Errorf("point %d (%s): capacity %d, want %d", i, p.Start.Format("15:04"), p.Capacity, want)
		}
	}
	var b strings.Builder
	if err := WriteSeriesCSV(&b, s); err != nil {
		t.Fatal(err)
	}
	if rows := strings.Split(b.String(), "\n"); !strings.Contains(rows[11], ","+strconv.Itoa(zone.Capacity/2)+",") ||
		!strings.Contains(rows[1], ","+strconv.Itoa(zone.Capacity)+",") {
		t.Errorf("CSV rows %q / %q", rows[1], rows[11])
	}
}
