package zones

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"time"
)

// Report is one decoded device message (see docs/protocol.md).
type Report struct {
	Device string
	Kind   DeviceKind // the topic it came on: counter or occupancy
	Boot   string
	Seq    uint64
	TS     time.Time
	// Interval is true for reports of crossings in the last period (period_in/period_out)
	// instead of totals since boot.
	Interval bool
	Lines    []LineCount // counters, sorted by line
	Count    int64       // sensors: absolute head count
}

// LineCount is one counting line's in and out figures: totals since boot, or for an interval
// report the crossings in the period.
type LineCount struct {
	Line    string
	In, Out uint64
}

// Status is a device's own word about itself on its status topic.
type Status struct {
	Device string
	Online bool
}

// maxBoots is how many boots per device are remembered in full, so that a late message from
// a boot before a restart is still recognised and counted once. Beyond that only the ids of
// up to maxRetired older boots are kept, enough to refuse a very late message instead of
// counting its totals again from zero.
const (
	maxBoots   = 16
	maxRetired = 64
)

// seqWindow is how far behind the highest seq an interval report may arrive and still be
// counted (the bitmask below has this many bits).
const seqWindow = 64

// deviceState is everything the engine remembers about one device; it is persisted as JSON.
type deviceState struct {
	Boots    []*bootState `json:"boots"`             // oldest first; the last is the current boot
	Retired  []string     `json:"retired,omitempty"` // ids of boots forgotten in full, oldest first
	LastSeen time.Time    `json:"last_seen"`
	Online   bool         `json:"online"`
	// Reports counts accepted reports, for the devices API.
	Reports uint64 `json:"reports"`
	// Vendor is what a vendor-format device's readings left (zones/vendor.go).
	Vendor *vendorState `json:"vendor,omitempty"`
}

type bootState struct {
	Boot string `json:"boot"`
	Seq  uint64 `json:"seq"` // highest seq applied in this boot
	// Seen has bit i set when seq Seq-i was applied (interval reports need every seq once,
	// in any order; cumulative ones only need the highest).
	Seen uint64 `json:"seen"`
	// Totals are the last cumulative in/out of each line bound to a door. Lines no door is
	// bound to are never kept: a device naming ever new lines must not grow its record.
	Totals map[string][2]uint64 `json:"totals,omitempty"`
	// LastTS and LastAt are the device's ts and the service's clock of the latest report
	// applied in this boot: the start of the time in which the next report's crossings
	// happened (see maxCrossings).
	LastTS time.Time `json:"last_ts,omitzero"`
	LastAt time.Time `json:"last_at,omitzero"`
}

// errDuplicate marks a report that was already counted.
var errDuplicate = errors.New("duplicate")

// RejectError says why a message changed nothing; Reason is a short metric label.
type RejectError struct {
	Reason string
	Err    error
}

func (e *RejectError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *RejectError) Unwrap() error { return e.Err }

// Reject builds a RejectError.
func Reject(reason, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

func (d *deviceState) boot(id string) *bootState {
	for _, b := range d.Boots {
		if b.Boot == id {
			return b
		}
	}
	return nil
}

func (d *deviceState) current() *bootState {
	if len(d.Boots) == 0 {
		return nil
	}
	return d.Boots[len(d.Boots)-1]
}

// newBoot starts remembering a boot never seen before; it refuses one already retired.
func (d *deviceState) newBoot(id string) (*bootState, error) {
	if slices.Contains(d.Retired, id) {
		return nil, Reject("stale_boot", "boot %q ended %d or more restarts ago", id, maxBoots)
	}
	b := &bootState{Boot: id}
	d.Boots = append(d.Boots, b)
	if n := len(d.Boots) - maxBoots; n > 0 {
		for _, old := range d.Boots[:n] {
			d.Retired = append(d.Retired, old.Boot)
		}
		d.Boots = slices.Clone(d.Boots[n:])
		if m := len(d.Retired) - maxRetired; m > 0 {
			d.Retired = slices.Clone(d.Retired[m:])
		}
	}
	return b, nil
}

// markSeq records seq as applied; it reports false if it was applied before or is too old
// to tell.
func (b *bootState) markSeq(seq uint64, fresh bool) bool {
	if fresh {
		b.Seq, b.Seen = seq, 1
		return true
	}
	switch {
	case seq > b.Seq:
		shift := seq - b.Seq
		if shift >= seqWindow {
			b.Seen = 0
		} else {
			b.Seen <<= shift
		}
		b.Seen |= 1
		b.Seq = seq
		return true
	case b.Seq-seq >= seqWindow:
		return false
	default:
		bit := uint64(1) << (b.Seq - seq)
		if b.Seen&bit != 0 {
			return false
		}
		b.Seen |= bit
		return true
	}
}

// counterPlan is what a counter report will change, worked out before anything changes, so
// that a report refused later (an impossible jump, an overflow) leaves the device as it was.
type counterPlan struct {
	report *Report
	boot   *bootState // nil for a boot never seen
	// deltas are the crossings per line, in the report's line order.
	deltas []LineCount
}

// planCounter works out the crossings a counter report adds, exactly once, without changing
// the device. It returns errDuplicate for a report already counted.
func (d *deviceState) planCounter(r *Report, width int) (counterPlan, error) {
	for _, l := range r.Lines {
		if width < 64 && (l.In>>width != 0 || l.Out>>width != 0) {
			return counterPlan{}, Reject("out_of_range", "line %q: a %d-bit counter cannot read in=%d out=%d", l.Line, width, l.In, l.Out)
		}
	}
	b := d.boot(r.Boot)
	if b == nil && slices.Contains(d.Retired, r.Boot) {
		return counterPlan{}, Reject("stale_boot", "boot %q ended %d or more restarts ago", r.Boot, maxBoots)
	}
	p := counterPlan{report: r, boot: b}
	if r.Interval {
		if b != nil {
			switch {
			case r.Seq <= b.Seq && b.Seq-r.Seq >= seqWindow:
				return counterPlan{}, Reject("stale", "interval report seq %d is more than %d behind seq %d", r.Seq, seqWindow, b.Seq)
			case r.Seq <= b.Seq && b.Seen&(uint64(1)<<(b.Seq-r.Seq)) != 0:
				return counterPlan{}, errDuplicate
			}
		}
		p.deltas = r.Lines
		return p, nil
	}
	if b != nil && r.Seq <= b.Seq {
		// Totals only grow within a boot, so an older report carries nothing new.
		return counterPlan{}, errDuplicate
	}
	p.deltas = make([]LineCount, 0, len(r.Lines))
	for _, l := range r.Lines {
		var old [2]uint64 // a boot never seen counted from zero
		if b != nil {
			old = b.Totals[l.Line]
		}
		p.deltas = append(p.deltas, LineCount{Line: l.Line,
			In:  counterDelta(old[0], l.In, width),
			Out: counterDelta(old[1], l.Out, width)})
	}
	return p, nil
}

// commitCounter makes a planned report's change to the device: its boot, seq and totals.
func (d *deviceState) commitCounter(p *counterPlan, now time.Time) {
	r, b := p.report, p.boot
	fresh := b == nil
	if fresh {
		b, _ = d.newBoot(r.Boot) // planCounter refused a retired boot
	}
	if !r.Interval {
		if b.Totals == nil {
			b.Totals = make(map[string][2]uint64, len(r.Lines))
		}
		for _, l := range r.Lines {
			b.Totals[l.Line] = [2]uint64{l.In, l.Out}
		}
	}
	b.markSeq(r.Seq, fresh)
	if r.TS.After(b.LastTS) {
		b.LastTS = r.TS
	}
	b.LastAt = now
}

// applyCounter plans and commits a report at once (tests, and callers with nothing to check
// in between).
func (d *deviceState) applyCounter(r *Report, width int) ([]LineCount, error) {
	p, err := d.planCounter(r, width)
	if err != nil {
		return nil, err
	}
	d.commitCounter(&p, time.Time{})
	return p.deltas, nil
}

// lastReport is the ts and service time of the latest report applied in any boot of the
// device; ok is false when it never had one (or only before these were recorded).
func (d *deviceState) lastReport() (ts, at time.Time, ok bool) {
	for _, b := range d.Boots {
		if b.LastTS.After(ts) {
			ts = b.LastTS
		}
		if b.LastAt.After(at) {
			at = b.LastAt
		}
	}
	return ts, at, !ts.IsZero() || !at.IsZero()
}

// pruneLines drops the totals of lines that bound does not know (no door is bound to them,
// perhaps not any more), and reports whether it dropped any.
func (d *deviceState) pruneLines(bound func(line string) bool) bool {
	pruned := false
	if v := d.Vendor; v != nil {
		for l := range v.Lines {
			if !bound(l) {
				delete(v.Lines, l)
				pruned = true
			}
		}
		v.Reported = slices.DeleteFunc(v.Reported, func(l string) bool { return !strings.HasPrefix(l, "region:") && !bound(l) })
		for l := range v.Windows {
			if !bound(l) {
				delete(v.Windows, l)
				delete(v.Floor, l)
				pruned = true
			}
		}
	}
	for _, b := range d.Boots {
		for l := range b.Totals {
			if !bound(l) {
				delete(b.Totals, l)
				pruned = true
			}
		}
	}
	return pruned
}

// applySensor reports whether a head count is newer than the last one applied.
func (d *deviceState) applySensor(r *Report) error {
	if b := d.boot(r.Boot); b != nil {
		if b != d.current() || r.Seq <= b.Seq {
			return errDuplicate // an older reading than one already applied
		}
		b.Seq = r.Seq
		return nil
	}
	b, err := d.newBoot(r.Boot)
	if err != nil {
		return err
	}
	b.Seq = r.Seq
	return nil
}

// counterDelta is the number of crossings between two readings of a width-bit cumulative
// counter. A reading below the last one is either a wrap past the top of the counter or a
// reset to zero; like serial-number arithmetic (RFC 1982) it is read as a wrap when that means
// fewer than half the counter's range of crossings, and as a reset (the new reading counts
// from zero) otherwise. It never yields negative people.
func counterDelta(old, cur uint64, width int) uint64 {
	if cur >= old {
		return cur - old
	}
	if width >= 64 {
		return cur
	}
	wrapped := cur + (uint64(1) << width) - old
	if bits.Len64(wrapped) < width { // wrapped < 2^(width-1)
		return wrapped
	}
	return cur
}
