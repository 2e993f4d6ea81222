package history

import (
	"github.com/crowdwatch/crowdwatch/levels"
)

// NumLevels is how many crowd levels there are (normal … evacuate).
const NumLevels = int(levels.Evacuate) + 1

// Sample is a zone's state from At (Unix milliseconds) until the next sample: the series is a
// step function. Entries, Exits, Clamped and Corrected are what happened since the previous
// sample, so that any window's totals are sums of its samples.
type Sample struct {
	At        int64
	Occupancy int64
	Deficit   int64
	Level     levels.Level
	Entries   int64
	Exits     int64
	Clamped   int64
	Corrected int64
	// End says the recorder stopped at At: the zone has no known value after it until the
	// next sample (a shutdown, or the last flush before a crash).
	End bool
}

// Rollup summarises a zone over [Start, End) (Unix milliseconds). Min, Max, MaxAt and Last are
// meaningful only when Covered > 0.
type Rollup struct {
	Start, End int64
	// Covered is how long the zone had a known value inside the window, in ms.
	Covered int64
	// Min and Max are over every value the zone took in the window, including the one in
	// force at its start; MaxAt is when Max was first reached.
	Min, Max, MaxAt, Last int64
	// Integral is occupancy integrated over time, in person-milliseconds: Integral/Covered is
	// the time-weighted mean, and Integral/Entries the mean visit (Little's law).
	Integral  int64
	Entries   int64
	Exits     int64
	Clamped   int64
	Corrected int64
	// AtLevel is the time spent at each level, in ms.
	AtLevel [NumLevels]int64
	// LastLevel is the level in force at the end of the window.
	LastLevel levels.Level
}

// Mean is the time-weighted mean occupancy, 0 for a window without data.
func (r *Rollup) Mean() float64 {
	if r.Covered == 0 {
		return 0
	}
	return float64(r.Integral) / float64(r.Covered)
}

// HighestLevel is the highest level held for any time in the window.
func (r *Rollup) HighestLevel() levels.Level {
	for l := NumLevels - 1; l > 0; l-- {
		if r.AtLevel[l] > 0 {
			return levels.Level(l)
		}
	}
	return levels.Normal
}

// seen says whether the window saw any value (Min, Max and Last are set).
func (r *Rollup) seen() bool { return r.Covered > 0 || r.MaxAt != 0 || r.Entries != 0 || r.Exits != 0 }

// Merge adds a later window's figures to r. Windows must be merged in time order and must not
// overlap; r's End becomes the later of the two.
func (r *Rollup) Merge(o Rollup) {
	if o.Covered > 0 || o.MaxAt != 0 {
		if !r.hasValue() {
			r.Min, r.Max, r.MaxAt = o.Min, o.Max, o.MaxAt
		} else {
			r.Min = min(r.Min, o.Min)
			if o.Max > r.Max {
				r.Max, r.MaxAt = o.Max, o.MaxAt
			}
		}
		r.Last, r.LastLevel = o.Last, o.LastLevel
	}
	r.Covered += o.Covered
	r.Integral += o.Integral
	r.Entries += o.Entries
	r.Exits += o.Exits
	r.Clamped += o.Clamped
	r.Corrected += o.Corrected
	for i := range r.AtLevel {
		r.AtLevel[i] += o.AtLevel[i]
	}
	if o.End > r.End {
		r.End = o.End
	}
	if r.Start == 0 || (o.Start != 0 && o.Start < r.Start) {
		r.Start = o.Start
	}
}

// hasValue: MaxAt is set whenever the window took a value (times are never 0 in practice:
// that is 1970).
func (r *Rollup) hasValue() bool { return r.MaxAt != 0 }

// window integrates one zone's step function over [start, end). Every rollup in the package,
// live or recomputed from raw samples, goes through it, so they agree by construction; the
// tests check it against a naive reference.
type window struct {
	r   Rollup
	has bool // a value is in force
	cur int64
	lvl levels.Level
	at  int64 // integrated up to here
	// samples counts samples that fell inside (a window without any is flat if has).
	samples int
}

// newWindow starts a window; when carry is true the value cur/lvl is in force at start.
func newWindow(start, end int64, carry bool, cur int64, lvl levels.Level) window {
	w := window{r: Rollup{Start: start, End: end}, at: start}
	if carry {
		w.has, w.cur, w.lvl = true, cur, lvl
		w.r.Min, w.r.Max, w.r.MaxAt, w.r.Last, w.r.LastLevel = cur, cur, start, cur, lvl
	}
	return w
}

// advance integrates the value in force up to t (clipped to the window).
func (w *window) advance(t int64) {
	t = min(t, w.r.End)
	if t <= w.at {
		return
	}
	if w.has {
		d := t - w.at
		w.r.Covered += d
		w.r.Integral += w.cur * d
		w.r.AtLevel[w.lvl] += d
	}
	w.at = t
}

// add applies a sample at s.At, which must be inside the window and not before earlier ones.
func (w *window) add(s Sample) {
	w.advance(s.At)
	w.samples++
	w.r.Entries += s.Entries
	w.r.Exits += s.Exits
	w.r.Clamped += s.Clamped
	w.r.Corrected += s.Corrected
	if s.End {
		w.has = false
		return
	}
	if !w.r.hasValue() {
		w.r.Min, w.r.Max, w.r.MaxAt = s.Occupancy, s.Occupancy, s.At
	} else {
		w.r.Min = min(w.r.Min, s.Occupancy)
		if s.Occupancy > w.r.Max {
			w.r.Max, w.r.MaxAt = s.Occupancy, s.At
		}
	}
	w.r.Last, w.r.LastLevel = s.Occupancy, s.Level
	w.has, w.cur, w.lvl = true, s.Occupancy, s.Level
}

// close integrates to the end and returns the rollup.
func (w *window) close() Rollup {
	w.advance(w.r.End)
	return w.r
}

// flat: the window held one carried value all through and nothing happened.
func (w *window) flat() bool {
	return w.samples == 0 && w.has && w.r.Covered == w.r.End-w.r.Start
}

// flatRollup is the rollup of a window that held value v at level l throughout.
func flatRollup(start, end, v int64, l levels.Level) Rollup {
	r := Rollup{Start: start, End: end, Covered: end - start, Min: v, Max: v, MaxAt: start, Last: v,
		Integral: v * (end - start), LastLevel: l}
	r.AtLevel[l] = end - start
	return r
}

// Aggregate computes windows of the given boundaries from raw samples: bounds are the
// window edges in order (n+1 edges for n windows). Samples before the first edge give the
// value in force at it. Windows where nothing was known have Covered 0.
func Aggregate(samples []Sample, bounds []int64) []Rollup {
	if len(bounds) < 2 {
		return nil
	}
	out := make([]Rollup, 0, len(bounds)-1)
	i := 0
	var has bool
	var cur int64
	var lvl levels.Level
	for ; i < len(samples) && samples[i].At < bounds[0]; i++ {
		has, cur, lvl = !samples[i].End, samples[i].Occupancy, samples[i].Level
	}
	for k := 0; k+1 < len(bounds); k++ {
		w := newWindow(bounds[k], bounds[k+1], has, cur, lvl)
		for ; i < len(samples) && samples[i].At < bounds[k+1]; i++ {
			w.add(samples[i])
		}
		out = append(out, w.close())
		has, cur, lvl = w.has, w.cur, w.lvl
	}
	return out
}
