package zones

import (
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
func (o *occupancy) applyDoors(deltas []DoorDelta, at time.Time) bool {
	net := make(map[int]int64, 4)
	for _, d := range deltas {
		di, ok := o.model.doorIdx[d.Door]
		if !ok {
			continue // a door removed from the config since this was logged
		}
		o.doors[di].In += d.In
		o.doors[di].Out += d.Out
		door := &o.model.Doors[di]
		move := int64(d.In) - int64(d.Out)
		for _, z := range door.Gain {
			net[z] += move
		}
		for _, z := range door.Lose {
			net[z] -= move
		}
	}
	changed := false
	for z, n := range net {
		if n != 0 {
			o.add(z, n, at)
			changed = true
		}
	}
	return changed
}

func (o *occupancy) add(z int, n int64, at time.Time) {
	r := &o.zones[z]
	r.Occupancy += n
	r.Updated = at
}

// clamp brings a zone that stayed below zero back to zero and records by how much.
func (o *occupancy) clamp(z int, at time.Time) int64 {
	r := &o.zones[z]
	if r.Occupancy >= 0 {
		return 0
	}
	d := -r.Occupancy
	r.Clamped += d
	r.Occupancy = 0
	r.Updated = at
	return d
}

// set re-anchors a zone to an absolute figure and moves its enclosing zones by the same
// difference, so parents stay consistent with their children. It returns the difference.
func (o *occupancy) set(z int, value int64, at time.Time) int64 {
	diff := value - o.zones[z].Occupancy
	for _, a := range o.model.Zones[z].Ancestors {
		o.add(a, diff, at)
	}
	o.zones[z].Occupancy = value
	return diff
}

// reset empties every zone (the daily reset).
func (o *occupancy) reset(at time.Time) {
	for i := range o.zones {
		r := &o.zones[i]
		r.Corrected += abs(r.Occupancy)
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

// replay applies one log entry; the engine applies live changes through the same path.
func (o *occupancy) replay(e *LogEntry) {
	switch e.Kind {
	case EntryCrossing:
		o.applyDoors(e.Doors, e.At)
	case EntryAnchor, EntryCorrection:
		if z, ok := o.model.zoneIdx[e.Zone]; ok {
			diff := o.set(z, e.Value, e.At)
			if e.Kind == EntryAnchor {
				o.zones[z].Anchored += abs(diff)
				o.zones[z].LastAnchor = diff
			} else {
				o.zones[z].Corrected += abs(diff)
			}
		}
	case EntryReset:
		o.reset(e.At)
	case EntryClamp:
		if z, ok := o.model.zoneIdx[e.Zone]; ok {
			o.clamp(z, e.At)
		}
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}
