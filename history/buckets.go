package history

import (
	"fmt"
	"time"
)

// Step is a query's bucket length: a duration, or whole local days (23 to 25 hours).
type Step struct {
	D    time.Duration
	Days int
}

func (s Step) String() string {
	if s.Days > 0 {
		return fmt.Sprintf("%dd", s.Days)
	}
	return s.D.String()
}

// Resolution is the stored series a step reads: raw below a minute, minutes below an hour.
func (s Step) Resolution() Resolution {
	switch {
	case s.Days > 0 || s.D >= time.Hour:
		return Hour
	case s.D >= time.Minute:
		return Minute
	}
	return Raw
}

// edges lists bucket boundaries from a to b; the first is a rounded down to the step's
// resolution (local hour, minute), so buckets hold whole stored windows.
func (q *txq) edges(a, b int64, s Step) []int64 {
	if s.Days > 0 {
		a = q.tz.day(a)
	} else if r := s.Resolution(); r != Raw {
		a = q.floor(r, a)
	}
	out := []int64{a}
	for t := a; t < b; {
		if s.Days > 0 {
			for range s.Days {
				t = q.tz.nextDay(t)
			}
		} else {
			t += s.D.Milliseconds()
		}
		out = append(out, min(t, b))
	}
	return out
}

// bucketize merges windows into buckets by their start.
func bucketize(ws []Rollup, edges []int64) []Rollup {
	return bucket(ws, edges, func(w Rollup) int64 { return w.Start },
		func(start, end int64) Rollup { return Rollup{Start: start, End: end} },
		func(b *Rollup, w Rollup) {
			start, end := b.Start, b.End
			b.Merge(w)
			b.Start, b.End = start, end
		})
}

func bucketDoors(cs []DoorCount, edges []int64) []DoorCount {
	return bucket(cs, edges, func(c DoorCount) int64 { return c.Start },
		func(start, end int64) DoorCount { return DoorCount{Start: start, End: end} },
		func(b *DoorCount, c DoorCount) { b.In += c.In; b.Out += c.Out })
}

// bucket adds items (sorted by start) into the buckets between consecutive edges, each into
// the bucket its start falls in; items before the first edge or after the last are left out.
func bucket[T any](items []T, edges []int64, start func(T) int64, empty func(start, end int64) T, add func(*T, T)) []T {
	out := make([]T, len(edges)-1)
	for i := range out {
		out[i] = empty(edges[i], edges[i+1])
	}
	k := 0
	for _, it := range items {
		at := start(it)
		for k < len(out) && at >= edges[k+1] {
			k++
		}
		if k == len(out) {
			break
		}
		if at >= edges[k] {
			add(&out[k], it)
		}
	}
	return out
}
