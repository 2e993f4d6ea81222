package history

import (
	"math"
	"sort"
	"time"
)

// UnusualOptions tune the unusual-traffic flag. A half hour is flagged when its visitors
// exceed the median of the same weekday and time in up to Weeks past weeks by more than
// both MinExcess people and Z standard deviations of a Poisson count at that median.
type UnusualOptions struct {
	Weeks     int
	MinWeeks  int // fewer past weeks than this: no verdict
	Z         float64
	MinExcess float64
}

// DefaultUnusual is what reports use; docs/accuracy.md has its precision and recall on the
// CalIt2 data.
var DefaultUnusual = UnusualOptions{Weeks: 8, MinWeeks: 2, Z: 5, MinExcess: 10}

// UnusualSlot is a flagged half hour.
type UnusualSlot struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Visitors int64     `json:"visitors"`
	Baseline float64   `json:"baseline"` // median of the same slot in past weeks
	Weeks    int       `json:"weeks"`    // past weeks compared
}

// HalfHour is the unusual-traffic slot length.
const HalfHour = 30 * time.Minute

// FlagUnusual checks each slot start in slots against counts (visitors per half-hour slot,
// keyed by slot start in Unix ms). Weeks before since (when history began) are not compared.
// Past weeks are found by local wall time, so a slot keeps its time of day across DST.
func FlagUnusual(counts map[int64]int64, since int64, slots []int64, loc *time.Location, o UnusualOptions) []UnusualSlot {
	var out []UnusualSlot
	past := make([]float64, 0, o.Weeks)
	for _, s := range slots {
		lt := time.UnixMilli(s).In(loc)
		past = past[:0]
		for k := 1; k <= o.Weeks; k++ {
			p := time.Date(lt.Year(), lt.Month(), lt.Day()-7*k, lt.Hour(), lt.Minute(), 0, 0, loc).UnixMilli()
			if p < since {
				break
			}
			past = append(past, float64(counts[p]))
		}
		if len(past) < max(o.MinWeeks, 1) {
			continue
		}
		sort.Float64s(past)
		med := past[len(past)/2]
		if len(past)%2 == 0 {
			med = (past[len(past)/2-1] + past[len(past)/2]) / 2
		}
		v := float64(counts[s])
		if v-med > math.Max(o.MinExcess, o.Z*math.Sqrt(math.Max(med, 1))) {
			out = append(out, UnusualSlot{Start: lt, End: lt.Add(HalfHour), Visitors: counts[s], Baseline: med, Weeks: len(past)})
		}
	}
	return out
}

// visitorsByHalfHour sums visitors (in from outside) per local half hour over [a, b).
func (q *txq) visitorsByHalfHour(a, b int64, counts map[int64]int64) error {
	for _, d := range q.site.Doors {
		if v, _ := q.site.visitorFlow(d, DoorCount{In: 1, Out: 1}); v == 0 {
			continue
		}
		cs, err := q.doors(d.ID, a, b, Minute)
		if err != nil {
			return err
		}
		for _, c := range cs {
			v, _ := q.site.visitorFlow(d, c)
			counts[q.halfHour(c.Start)] += v
		}
	}
	return nil
}

// halfHour is the start of the local half hour containing t.
func (q *txq) halfHour(t int64) int64 {
	h := q.tz.hour(t)
	return h + (t-h)/(30*minuteMs)*(30*minuteMs)
}

// firstRecord is when door records begin: weeks before it are not compared.
func (q *txq) firstRecord() int64 {
	first := int64(math.MaxInt64)
	for _, name := range [][]byte{closedName(kindDoor, Minute), bucketName(kindDoor, Minute), closedName(kindDoor, Raw), bucketName(kindDoor, Raw)} {
		top := q.tx.Bucket(name)
		if top == nil {
			continue
		}
		_ = top.ForEachBucket(func(name []byte) error {
			if k, _ := top.Bucket(name).Cursor().First(); k != nil {
				first = min(first, keyTime(k))
			}
			return nil
		})
	}
	return first
}

// unusual flags the half hours of [a, b). Only the same days of past weeks are read, unless
// the period is a week or longer.
func (q *txq) unusual(a, b int64, o UnusualOptions) ([]UnusualSlot, error) {
	loc := q.site.Loc
	weeksBack := func(t int64, k int) int64 {
		lt := time.UnixMilli(t).In(loc)
		return time.Date(lt.Year(), lt.Month(), lt.Day()-7*k, lt.Hour(), lt.Minute(), 0, 0, loc).UnixMilli()
	}
	ranges := [][2]int64{{weeksBack(q.halfHour(a), o.Weeks), b}}
	if b-a < 7*24*hourMs {
		ranges = ranges[:0]
		for k := 0; k <= o.Weeks; k++ {
			ranges = append(ranges, [2]int64{weeksBack(q.halfHour(a), k), weeksBack(b, k)})
		}
	}
	counts := map[int64]int64{}
	for _, r := range ranges {
		if err := q.visitorsByHalfHour(r[0], r[1], counts); err != nil {
			return nil, err
		}
	}
	var slots []int64
	for s := q.halfHour(a); s < b; s += 30 * minuteMs {
		if s >= a {
			slots = append(slots, s)
		}
	}
	out := FlagUnusual(counts, q.firstRecord(), slots, loc, o)
	if out == nil {
		out = []UnusualSlot{}
	}
	return out, nil
}
