package history

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
)

// reference computes a window from raw samples the slow, obvious way, independently of
// window: the value in force at each sample boundary, integrated piece by piece.
func reference(ss []Sample, s, e int64) Rollup {
	r := Rollup{Start: s, End: e}
	has, seen := false, false
	var cur int64
	var lvl levels.Level
	lo := sort.Search(len(ss), func(i int) bool { return ss[i].At >= s })
	if lo > 0 {
		x := ss[lo-1]
		has, cur, lvl = !x.End, x.Occupancy, x.Level
	}
	at := s
	note := func(v int64, t int64) {
		if !seen {
			r.Min, r.Max, r.MaxAt, seen = v, v, t, true
		}
		if v < r.Min {
			r.Min = v
		}
		if v > r.Max {
			r.Max, r.MaxAt = v, t
		}
		r.Last = v
	}
	if has {
		note(cur, s)
		r.LastLevel = lvl
	}
	for _, x := range ss[lo:] {
		if x.At >= e {
			break
		}
		if has {
			r.Covered += x.At - at
			r.Integral += cur * (x.At - at)
			r.AtLevel[lvl] += x.At - at
		}
		at = x.At
		r.Entries += x.Entries
		r.Exits += x.Exits
		r.Clamped += x.Clamped
		r.Corrected += x.Corrected
		if x.End {
			has = false
			continue
		}
		has, cur, lvl = true, x.Occupancy, x.Level
		note(cur, x.At)
		r.LastLevel = lvl
	}
	if has {
		r.Covered += e - at
		r.Integral += cur * (e - at)
		r.AtLevel[lvl] += e - at
	}
	return r
}

func same(a, b Rollup) bool {
	if a.Covered == 0 && !a.hasValue() {
		a.Min, a.Max, a.Last, a.LastLevel = 0, 0, 0, 0
	}
	if b.Covered == 0 && !b.hasValue() {
		b.Min, b.Max, b.Last, b.LastLevel = 0, 0, 0, 0
	}
	return a == b
}

// TestRollupsEqualRawAcrossDaysAndDST records a random crowd through both 2026 clock changes
// in Los Angeles, with a restart in the middle of each, and checks every stored minute and
// hour roll-up against the same figures computed directly from the stored raw samples, and
// each day's report against the sum of its raw samples (a 25-hour and a 23-hour day).
func TestRollupsEqualRawAcrossDaysAndDST(t *testing.T) {
	la, _ := time.LoadLocation("America/Los_Angeles")
	for _, tc := range []struct {
		name      string
		day       time.Time // the day of the change
		hours     float64
		restartAt time.Time
	}{
		{"fall back", time.Date(2026, 11, 1, 0, 0, 0, 0, la), 25, time.Date(2026, 11, 1, 1, 40, 7, 0, la)},
		{"spring forward", time.Date(2026, 3, 8, 0, 0, 0, 0, la), 23, time.Date(2026, 3, 8, 1, 59, 50, 0, la)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			site := testSite(la)
			h := newHarness(t, site)
			c := newCrowd(site, 7)
			c.drifted, c.resetDaily = true, true
			busy := func(t time.Time) int { return 1 + 4*(t.In(la).Hour()%7) }
			a := tc.day.Add(-3 * time.Hour)
			b := tc.day.AddDate(0, 0, 1).Add(2 * time.Hour)
			h.run(c, a, tc.restartAt, busy)
			h.stop(tc.restartAt)
			h.restart()
			resume := tc.restartAt.Add(93 * time.Second) // down for a minute and a half
			h.run(c, resume, b, busy)
			h.flush(b)

			got := tc.day.AddDate(0, 0, 1).Sub(tc.day).Hours()
			if got != tc.hours {
				t.Fatalf("the day lasts %v hours, want %v", got, tc.hours)
			}
			var minutes, hours int
			err := h.reader().view(context.Background(), func(q *txq) error {
				for _, z := range site.Zones {
					ss, err := q.raw(z.ID, a.UnixMilli(), b.UnixMilli()+1)
					if err != nil {
						return err
					}
					if len(ss) < 1000 {
						return fmt.Errorf("%s: only %d raw samples", z.ID, len(ss))
					}
					for _, res := range []Resolution{Minute, Hour} {
						recs, err := q.records(z.ID, res, a.UnixMilli(), b.UnixMilli())
						if err != nil {
							return err
						}
						for _, r := range recs {
							if want := reference(ss, r.Start, r.End); !same(r, want) {
								t.Errorf("%s %s at %s:\n stored   %+v\n from raw %+v", z.ID, res, time.UnixMilli(r.Start).In(la), r, want)
							}
						}
						if res == Minute {
							minutes += len(recs)
						} else {
							hours += len(recs)
						}
					}
					// Every minute with data has a record; the restart gap has none.
					recs, _ := q.records(z.ID, Minute, a.UnixMilli(), b.UnixMilli())
					have := map[int64]bool{}
					for _, r := range recs {
						have[r.Start] = true
					}
					for m := q.ceil(Minute, a.UnixMilli()); m+minuteMs <= q.floor(Minute, b.UnixMilli()); m += minuteMs {
						if want := reference(ss, m, m+minuteMs); want.Covered > 0 && !have[m] {
							t.Errorf("%s: no minute record at %s", z.ID, time.UnixMilli(m).In(la))
						}
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if minutes == 0 || hours == 0 {
				t.Fatalf("%d minute and %d hour records", minutes, hours)
			}

			rep, err := h.reader().Daily(context.Background(), tc.day)
			if err != nil {
				t.Fatal(err)
			}
			_ = h.reader().view(context.Background(), func(q *txq) error {
				for _, zr := range rep.Zones {
					ss, _ := q.raw(zr.Zone, tc.day.UnixMilli(), tc.day.AddDate(0, 0, 1).UnixMilli())
					want := reference(ss, tc.day.UnixMilli(), tc.day.AddDate(0, 0, 1).UnixMilli())
					if zr.Entries != want.Entries || zr.Exits != want.Exits || zr.CoveredS != float64(want.Covered)/1000 ||
						*zr.Peak != want.Max || zr.PeakAt.UnixMilli() != want.MaxAt || zr.Clamped != want.Clamped || zr.Corrected != want.Corrected {
						t.Errorf("%s day report %+v, from raw %+v", zr.Zone, zr, want)
					}
					// The whole day was recorded but for the restart's 93 s.
					if d := tc.hours*3600 - 93; zr.CoveredS > d || zr.CoveredS < d-5 {
						t.Errorf("%s covered %vs of the day, want %v less up to 5 s to the first sample", zr.Zone, zr.CoveredS, d)
					}
				}
				return nil
			})
			if rep.Visitors == 0 || rep.Visitors != rep.Zones[1].Entries {
				t.Errorf("visitors %d, entrance entries %d", rep.Visitors, rep.Zones[1].Entries)
			}
		})
	}
}
