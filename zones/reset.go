package zones

import "time"

// resetNow stages an empty store (every zone to zero), kept in the audit log with who and why.
func (e *Engine) resetNow(by, reason string) {
	entry := &LogEntry{At: e.opts.Now(), Kind: EntryReset, By: by, Reason: reason}
	e.occ.replay(entry)
	e.stageZones(entry)
	e.pending.log = append(e.pending.log, entry)
	e.pending.audit = append(e.pending.audit, entry)
}

// dailyReset is the scheduled reset at reset_time, done by the system.
func (e *Engine) dailyReset(scheduled time.Time) {
	e.log.Info("daily occupancy reset", "scheduled", scheduled.In(e.opts.Location).Format(time.RFC3339))
	e.resetNow("system", "daily reset")
}

// nextReset is when the next daily reset is due; false when it is turned off (ResetHour < 0).
func (e *Engine) nextReset() (time.Time, bool) {
	if e.opts.ResetHour < 0 {
		return time.Time{}, false
	}
	return NextReset(e.opts.Now(), e.opts.Location, e.opts.ResetHour, e.opts.ResetMinute), true
}

// NextReset is the first hour:minute in loc strictly after now. On a day when daylight saving
// skips that time, it is that much later on the moved clock (02:30 becomes 03:30).
func NextReset(now time.Time, loc *time.Location, hour, minute int) time.Time {
	local := now.In(loc)
	for d := 0; d < 3; d++ {
		t := time.Date(local.Year(), local.Month(), local.Day()+d, hour, minute, 0, 0, loc)
		if t.Hour()*60+t.Minute() < hour*60+minute {
			// A skipped wall time that Go resolved with the offset before the jump.
			t = t.Add(time.Hour)
		}
		if t.After(now) {
			return t
		}
	}
	return now.Add(24 * time.Hour) // unreachable: a day always has the time once
}
