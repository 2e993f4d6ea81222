package zones

import (
	"math/bits"
	"time"
)

// The bound on what one report may add (docs/protocol.md, "Impossible jumps"). A level door
// passes about 80 persons per metre of width per minute at capacity (UK Green Guide, CIBSE
// Guide E; IMO 78); a counter that reads more than twice that is glitching, not counting.
const (
	// MaxFlowPerMetre is the most persons per metre of door width per minute a report may
	// claim, in and out together.
	MaxFlowPerMetre = 160
	// DefaultDoorWidthM is the width assumed for a door without width_m: wide, so that a
	// door whose width nobody entered never loses real crossings to the bound.
	DefaultDoorWidthM = 10.0
	// MinJumpWindow is the least time a report is allowed for, however soon after the
	// previous one it comes: reports a second apart, and device clocks a little off, must
	// not refuse a real burst.
	MinJumpWindow = time.Minute
	// MaxCrossingsPerReport is the most crossings (in and out together) one line of one
	// report may add, whatever the time since the last: ten hours of a 10 m entrance at
	// MaxFlowPerMetre. It alone bounds a device's first report ever, when there is no
	// previous one to measure the time from.
	MaxCrossingsPerReport = 1_000_000
)

// checkJump refuses (out_of_range) a report whose crossings through some door are more than
// the door can pass in the time since the device's previous report: MaxFlowPerMetre × width ×
// elapsed, where elapsed is the longer of the device's ts and the service's clock since the
// last report applied in that boot (for a boot's first report, in any boot), and at least
// MinJumpWindow. A refused report changes nothing, so the time keeps growing: a real burst
// after an outage is never refused for long, while a glitch (a 64-bit counter read as 2^64−1,
// a new boot at 2^63) never fits MaxCrossingsPerReport.
func (e *Engine) checkJump(d *deviceState, p *counterPlan, now time.Time) error {
	var lastTS, lastAt time.Time
	var known bool
	if p.boot != nil {
		lastTS, lastAt = p.boot.LastTS, p.boot.LastAt
		known = !lastTS.IsZero() || !lastAt.IsZero()
	} else {
		lastTS, lastAt, known = d.lastReport()
	}
	return e.jumpBound(p.report.Device, p.deltas, p.report.TS, lastTS, lastAt, known, now)
}

// jumpBound is checkJump's rule for any report's crossings per line: ts is the report's time,
// lastTS and lastAt those of the device's previous report (known says there is one).
func (e *Engine) jumpBound(device string, deltas []LineCount, ts, lastTS, lastAt time.Time, known bool, now time.Time) error {
	elapsed := MinJumpWindow
	if !lastTS.IsZero() {
		elapsed = max(elapsed, ts.Sub(lastTS))
	}
	if !lastAt.IsZero() {
		elapsed = max(elapsed, now.Sub(lastAt))
	}
	for _, l := range deltas {
		n, carry := bits.Add64(l.In, l.Out, 0)
		if carry != 0 || n > MaxCrossingsPerReport {
			return Reject("out_of_range", "line %q: in=%d out=%d is more than the %d crossings one report may add", l.Line, l.In, l.Out, MaxCrossingsPerReport)
		}
		if !known {
			continue
		}
		di, _ := e.model.DoorOf(device, l.Line)
		width := e.model.Doors[di].WidthM
		if width <= 0 {
			width = DefaultDoorWidthM
		}
		if limit := MaxFlowPerMetre * width * elapsed.Minutes(); float64(n) > limit {
			return Reject("out_of_range", "door %q: %d crossings in %s is more than a %g m door passes at %d persons per metre per minute (%.0f)",
				e.model.Doors[di].ID, n, elapsed.Round(time.Second), width, MaxFlowPerMetre, limit)
		}
	}
	return nil
}
