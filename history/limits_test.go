package history

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

// allocated is the bytes fn allocates.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLimitsCheckedBeforeAllocating: a query or report far beyond the limits is refused
// (a QueryError, HTTP 400) without allocating for what it asked (a query of twenty years at
// 5 s once allocated about 3 GB before "more than 200000 points").
func TestLimitsCheckedBeforeAllocating(t *testing.T) {
	site := testSite(time.UTC)
	h := newHarness(t, site)
	c := newCrowd(site, 1)
	a := time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)
	h.run(c, a, a.Add(10*time.Minute), func(time.Time) int { return 2 })
	h.flush(a.Add(10 * time.Minute))
	r := h.reader()
	ctx := context.Background()
	from, to := time.Date(2007, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	step := func(s string) Step {
		st, err := ParseStep(s)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"history, one zone, 5s", func() error {
			_, err := r.History(ctx, Query{Zones: []string{"entrance"}, From: from, To: to, Step: step("5s")})
			return err
		}},
		{"history, all zones, 1m", func() error {
			_, err := r.History(ctx, Query{From: from, To: to, Step: step("1m")})
			return err
		}},
		{"doors, 5s", func() error {
			_, err := r.DoorFlows(ctx, Query{From: from, To: to, Step: step("5s")})
			return err
		}},
		{"report, twenty years", func() error {
			_, err := r.Report(ctx, from, to)
			return err
		}},
		{"compare, second period too long", func() error {
			_, err := r.Compare(ctx, a, a.Add(time.Hour), from, to)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			n := allocated(func() { err = tc.call() })
			var qe *QueryError
			if !errors.As(err, &qe) {
				t.Fatalf("got %v, want a QueryError", err)
			}
			if n > 1<<20 {
				t.Errorf("allocated %d bytes before refusing: %v", n, err)
			}
		})
	}
	// At the limits, answers come.
	if _, err := r.History(ctx, Query{Zones: []string{"entrance"}, From: a, To: a.Add(24 * time.Hour), Step: step("5s")}); err != nil {
		t.Errorf("a day at 5 s: %v", err)
	}
	if _, err := r.Report(ctx, a, a.AddDate(1, 0, 0)); err != nil {
		t.Errorf("a year's report: %v", err)
	}
	if _, err := r.History(ctx, Query{From: from, To: to, Step: step("1d")}); err != nil {
		t.Errorf("twenty years by day: %v", err)
	}
}
