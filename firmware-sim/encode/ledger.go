package encode

import (
	"fmt"
	"time"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// Ledger credits one device's readings by the counting rules of docs/protocol.md ("Vendor
// formats") in their plainest form, to check that what the simulator sends adds up to what
// its devices counted (the encoders' round-trip tests, the simulator's). It is not the
// service's engine, which applies the same rules to its committed state exactly once.
//
// One kind of crossing reading is counted (counting); totals count by their increase (a
// decrease or a new epoch is a reset and counts the new total; an older report changes
// nothing); windows and events once per key; area counts are the latest.
type Ledger struct {
	counting formats.Semantics
	credit   map[string][2]uint64
	last     map[string][2]uint64
	epoch    map[string]string
	at       map[string]time.Time
	keys     map[string]bool
	area     map[string]int64
}

// NewLedger counts crossings by one kind of reading.
func NewLedger(counting formats.Semantics) *Ledger {
	return &Ledger{counting: counting, credit: map[string][2]uint64{}, last: map[string][2]uint64{}, epoch: map[string]string{},
		at: map[string]time.Time{}, keys: map[string]bool{}, area: map[string]int64{}}
}

// Credit is what the ledger counted on a line: in and out.
func (lg *Ledger) Credit(line string) [2]uint64 { return lg.credit[line] }

// Area is the latest head count of a region.
func (lg *Ledger) Area(region string) int64 { return lg.area[region] }

// Apply credits one reading; an error is a reading that cannot be counted exactly.
func (lg *Ledger) Apply(r formats.Reading) error {
	if r.Semantics == formats.Absolute {
		lg.area[r.Region] = r.Count
		return nil
	}
	if r.Semantics != lg.counting {
		return nil
	}
	switch r.Semantics {
	case formats.SinceReset:
		if r.DeviceTime.IsZero() {
			return fmt.Errorf("totals without a time cannot be ordered: %+v", r)
		}
		for _, l := range r.Lines {
			prev, seen := lg.last[l.ID]
			if seen && r.DeviceTime.Before(lg.at[l.ID]) {
				continue // an older report delivered late
			}
			c := lg.credit[l.ID]
			switch {
			case !seen:
				c = [2]uint64{l.In, l.Out}
			case r.Epoch != lg.epoch[l.ID] || l.In < prev[0] || l.Out < prev[1]:
				c = [2]uint64{c[0] + l.In, c[1] + l.Out} // counted since a reset
			default:
				c = [2]uint64{c[0] + l.In - prev[0], c[1] + l.Out - prev[1]}
			}
			lg.credit[l.ID], lg.last[l.ID], lg.epoch[l.ID], lg.at[l.ID] = c, [2]uint64{l.In, l.Out}, r.Epoch, r.DeviceTime
		}
	case formats.Interval, formats.Increment:
		if r.Key == "" {
			return fmt.Errorf("%s reading without a key cannot be de-duplicated: %+v", r.Semantics, r)
		}
		if lg.keys[r.Key] {
			return nil
		}
		lg.keys[r.Key] = true
		for _, l := range r.Lines {
			c := lg.credit[l.ID]
			lg.credit[l.ID] = [2]uint64{c[0] + l.In, c[1] + l.Out}
		}
	}
	return nil
}
