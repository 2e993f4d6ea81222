package zones

import "time"

// settle clamps the zones that have stayed below zero for ClampAfter while every counter
// feeding them was live: then the deficit is drift, not a report still on its way. It
// reports whether it staged anything.
func (e *Engine) settle() bool {
	now := e.opts.Now()
	staged := false
	for z := range e.model.Zones {
		if e.occ.zones[z].Occupancy >= 0 {
			e.negativeSince[z] = time.Time{}
			continue
		}
		if e.negativeSince[z].IsZero() {
			e.negativeSince[z] = now
			continue
		}
		if now.Sub(e.negativeSince[z]) < e.opts.ClampAfter || !e.devicesLive(z, now) {
			continue
		}
		entry := &LogEntry{At: now, Kind: EntryClamp, Zone: e.model.Zones[z].ID, Before: e.occ.zones[z].Occupancy}
		e.occ.replay(entry)
		e.pending.zones[z] = true
		e.pending.log = append(e.pending.log, entry)
		e.negativeSince[z] = time.Time{}
		e.logLimited("clamp:"+entry.Zone, "zone stayed below zero with all its counters live; clamped to zero (counting drift)",
			"zone", entry.Zone, "deficit", -entry.Before)
		staged = true
	}
	return staged
}
