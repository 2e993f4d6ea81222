package zones

import (
	"math"
	"math/bits"
	"time"
)

// occupancy is the per-zone figures the engine keeps. Every change to it goes through the
// methods below, both live and when the crossing log is replayed, so a replay rebuilds exactly
// the same figures.
type occupancy struct {
	model *Model
	zones []zoneRecord
	doors []doorRecord
}

// zoneRecord is one zone's persisted state.
type zoneRecord struct {
	// Occupancy is the exact sum of what the devices reported, and may be below zero for a
	// while when one door's report arrives before another's (a late or offline counter).
	// Readers are shown max(0, Occupancy); a deficit that persists is clamped (see clamp).
	Occupancy int64     `json:"occupancy"`
	Updated   time.Time `json:"updated"`
	// Clamped counts people added to bring a persistently negative zone back to zero: the
	// drift signal.
	Clamped int64 `json:"clamped"`
	// Anchored sums the absolute size of area-sensor corrections; LastAnchor is the latest.
	Anchored   int64 `json:"anchored"`
	LastAnchor int64 `json:"last_anchor"`
	// Corrected sums the absolute size of manual corrections and resets.
	Corrected int64 `json:"corrected"`
}

type doorRecord struct {
	In  uint64 `json:"in"`
	Out uint64 `json:"out"`
}

// DoorDelta is crossings through one door in one report, already turned the right way.
type DoorDelta struct {
	Door string `json:"door"`
	In   uint64 `json:"in,omitempty"`
	Out  uint64 `json:"out,omitempty"`
}

func newOccupancy(m *Model) *occupancy {
	return &occupancy{model: m, zones: make([]zoneRecord, len(m.Zones)), doors: make([]doorRecord, len(m.Doors))}
}

// applyDoors moves people through doors, as exact sums: the order in which reports from
// different devices arrive does not change the result. It returns whether any zone changed.
// Every sum is checked before anything changes: a crossing that would overflow a door's
// totals or a zone's figure is refused whole (out_of_range) and changes nothing.
func (o *occupancy) applyDoors(deltas []DoorDelta, at time.Time) (bool, error) {
	type move struct {
		zone int
		n    int64
	}
	var buf [8]move
	net := buf[:0]
	addNet := func(z int, n int64) error {
		for i := range net {
			if net[i].zone == z {
				v, ok := addInt64(net[i].n, n)
				if !ok {
					return Reject("out_of_range", "the crossings overflow zone %q's figure", o.model.Zones[z].ID)
				}
				net[i].n = v
				return nil
			}
		}
		net = append(net, move{z, n})
		return nil
	}
	for _, d := range deltas {
		di, ok := o.model.doorIdx[d.Door]
		if !ok {
			continue // a door removed from the config since this was logged
		}
		door := &o.model.Doors[di]
		if _, c := bits.Add64(o.doors[di].In, d.In, 0); c != 0 {
			return false, Reject("out_of_range", "door %q: %d more crossings in overflow its total", d.Door, d.In)
		}
		if _, c := bits.Add64(o.doors[di].Out, d.Out, 0); c != 0 {
			return false, Reject("out_of_range", "door %q: %d more crossings out overflow its total", d.Door, d.Out)
		}
		if d.In > math.MaxInt64 || d.Out > math.MaxInt64 {
			return false, Reject("out_of_range", "door %q: in=%d out=%d is beyond any zone's figure", d.Door, d.In, d.Out)
		}
		m := int64(d.In) - int64(d.Out) // both are in [0, 2^63), so exact
		for _, z := range door.Gain {
			if err := addNet(z, m); err != nil {
				return false, err
			}
		}
		for _, z := range door.Lose {
			if err := addNet(z, -m); err != nil {
				return false, err
			}
		}
	}
	for _, n := range net {
		if _, ok := addInt64(o.zones[n.zone].Occupancy, n.n); !ok {
			return false, Reject("out_of_range", "the crossings would overflow zone %q's figure (%d%+d)", o.model.Zones[n.zone].ID, o.zones[n.zone].Occupancy, n.n)
		}
	}
	// Checked: now change.
	for _, d := range deltas {
		if di, ok := o.model.doorIdx[d.Door]; ok {
			o.doors[di].In += d.In
			o.doors[di].Out += d.Out
		}
	}
	changed := false
	for _, n := range net {
		if n.n != 0 {
			o.add(n.zone, n.n, at)
			changed = true
		}
	}
	return changed, nil
}

// addInt64 and subInt64 are a+b and a-b, and whether they fit an int64.
func addInt64(a, b int64) (int64, bool) {
	c := a + b
	return c, (c > a) == (b > 0)
}

func subInt64(a, b int64) (int64, bool) {
	c := a - b
	return c, (c < a) == (b > 0)
}

// addStat adds a non-negative amount to a running statistic, stopping at the top of int64
// rather than wrapping to a negative figure.
func addStat(s *int64, n int64) {
	if v, ok := addInt64(*s, n); ok {
		*s = v
	} else {
		*s = math.MaxInt64
	}
}

func (o *occupancy) add(z int, n int64, at time.Time) {
	r := &o.zones[z]
	r.Occupancy += n // callers have checked the sum
	r.Updated = at
}

// clamp brings a zone that stayed below zero back to zero and records by how much.
func (o *occupancy) clamp(z int, at time.Time) int64 {
	r := &o.zones[z]
	if r.Occupancy >= 0 {
		return 0
	}
	d := -r.Occupancy // occupancy never reaches math.MinInt64: every sum is checked
	addStat(&r.Clamped, d)
	r.Occupancy = 0
	r.Updated = at
	return d
}

// set re-anchors a zone to an absolute figure and moves its enclosing zones by the same
// difference, so parents stay consistent with their children. It returns the difference,
// or out_of_range, changing nothing, when a figure would overflow.
func (o *occupancy) set(z int, value int64, at time.Time) (int64, error) {
	diff, err := o.setDiff(z, value)
	if err != nil {
		return 0, err
	}
	for _, a := range o.model.Zones[z].Ancestors {
		o.add(a, diff, at)
	}
	o.zones[z].Occupancy = value
	return diff, nil
}

// setDiff is the difference set would make, or out_of_range if a figure would overflow.
func (o *occupancy) setDiff(z int, value int64) (int64, error) {
	diff, ok := subInt64(value, o.zones[z].Occupancy)
	if !ok {
		return 0, Reject("out_of_range", "zone %q: %d is too far from %d", o.model.Zones[z].ID, value, o.zones[z].Occupancy)
	}
	for _, a := range o.model.Zones[z].Ancestors {
		if _, ok := addInt64(o.zones[a].Occupancy, diff); !ok {
			return 0, Reject("out_of_range", "zone %q: moving it by %d overflows zone %q", o.model.Zones[z].ID, diff, o.model.Zones[a].ID)
		}
	}
	return diff, nil
}

// reset empties every zone (the daily reset).
func (o *occupancy) reset(at time.Time) {
	for i := range o.zones {
		r := &o.zones[i]
		addStat(&r.Corrected, abs(r.Occupancy))
		r.Occupancy = 0
		r.Updated = at
	}
}

// LogEntry is one change in the append-only log: applying all entries in order to empty
// zones gives the current occupancy.
type LogEntry struct {
	Seq  uint64    `json:"-"`
	At   time.Time `json:"at"`
	Kind string    `json:"kind"` // crossing, anchor, correction, reset, clamp
	// crossing and anchor: the device report it came from
	Device string      `json:"device,omitempty"`
	Boot   string      `json:"boot,omitempty"`
	DSeq   uint64      `json:"seq,omitempty"`
	TS     *time.Time  `json:"ts,omitempty"`
	Doors  []DoorDelta `json:"doors,omitempty"`
	// anchor and correction
	Zone   string `json:"zone,omitempty"`
	Value  int64  `json:"value,omitempty"`
	Before int64  `json:"before,omitempty"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

const (
	EntryCrossing   = "crossing"
	EntryAnchor     = "anchor"
	EntryCorrection = "correction"
	EntryReset      = "reset"
	EntryClamp      = "clamp"
)

// replay applies one log entry; the engine applies live changes through the same path. An
// entry that would overflow changes nothing (the engine refuses such a change live, so only
// a log written before these checks can hold one).
func (o *occupancy) replay(e *LogEntry) error {
	switch e.Kind {
	case EntryCrossing:
		_, err := o.applyDoors(e.Doors, e.At)
		return err
	case EntryAnchor, EntryCorrection:
		if z, ok := o.model.zoneIdx[e.Zone]; ok {
			diff, err := o.set(z, e.Value, e.At)
			if err != nil {
				return err
			}
			if e.Kind == EntryAnchor {
				addStat(&o.zones[z].Anchored, abs(diff))
				o.zones[z].LastAnchor = diff
			} else {
				addStat(&o.zones[z].Corrected, abs(diff))
			}
		}
	case EntryReset:
		o.reset(e.At)
	case EntryClamp:
		if z, ok := o.model.zoneIdx[e.Zone]; ok {
			o.clamp(z, e.At)
		}
	}
	return nil
}

// abs is |n|, and math.MaxInt64 for math.MinInt64 (which has no positive twin).
func abs(n int64) int64 {
	if n == math.MinInt64 {
		return math.MaxInt64
	}
	if n < 0 {
		return -n
	}
	return n
}
