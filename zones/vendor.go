package zones

import (
	"math/bits"
	"slices"
	"strconv"
	"time"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// VendorReport is one message of a device that speaks a vendor format, decoded by its format
// (ingest/formats) into readings. The engine counts each reading exactly once by the rules of
// its semantics (docs/protocol.md, "Vendor formats").
type VendorReport struct {
	Device   string
	Readings []formats.Reading
}

// The bounds of what a vendor device's record remembers (docs/protocol.md): a device that
// sends ever new keys, windows or lines never grows it past these.
const (
	// maxVendorKeys is how many Increment keys per device are remembered; an older key
	// (by device time, where the device has a clock) is refused as stale.
	maxVendorKeys = 1024
	// maxVendorWindows is how many Interval windows per bound line are remembered; a window
	// starting before the oldest remembered one ends is refused as stale.
	maxVendorWindows = 256
	// maxSeenLines is how many lines or regions the devices API lists as seen but unbound.
	maxSeenLines = 16
	// maxVendorKey bounds one key's length.
	maxVendorKey = 128
)

// vendorState is what the engine remembers of a vendor device, persisted in its device record
// in the same transaction as the crossings it led to.
type vendorState struct {
	// Lines are the last totals of each bound line (SinceReset).
	Lines map[string]*vendorLine `json:"lines,omitempty"`
	// Windows are the windows counted per bound line (Interval), oldest first; Floor[line] is
	// the end of the newest window forgotten.
	Windows map[string][]vendorWindow `json:"windows,omitempty"`
	Floor   map[string]int64          `json:"floor,omitempty"`
	// Keys are the latest Increment keys counted, oldest first; KeyFloor the (trusted) time
	// of the newest key forgotten.
	Keys     []vendorKey `json:"keys,omitempty"`
	KeyFloor time.Time   `json:"key_floor,omitzero"`
	// Seq and Seen are the highest message sequence (LoRaWAN fCnt, package id) and the
	// window of those seen below it; SeqSet says there is one.
	Seq    uint64 `json:"seq,omitempty"`
	Seen   uint64 `json:"seen,omitempty"`
	SeqSet bool   `json:"seq_set,omitempty"`
	// Region is the last anchor applied (Absolute): its time and sequence.
	Region *vendorLine `json:"region,omitempty"`
	// LastTS and LastAt are the reading time and the service's clock of the latest reading
	// that counted crossings: the start of the time the next one's crossings happened in.
	LastTS time.Time `json:"last_ts,omitzero"`
	LastAt time.Time `json:"last_at,omitzero"`
	// LastReading and LastSemantics are for the devices API.
	LastReading   time.Time `json:"last_reading,omitzero"`
	LastSemantics string    `json:"last_semantics,omitempty"`
	// Unbound lists up to maxSeenLines lines or regions seen that nothing is bound to;
	// Reported the bound ones that have reported (at most the device's bound lines and region).
	Unbound  []string `json:"unbound,omitempty"`
	Reported []string `json:"reported,omitempty"`
}

// vendorKey is an Increment key counted, with its reading time (Unix milliseconds) when the
// device's clock gave one.
type vendorKey struct {
	K string `json:"k"`
	T int64  `json:"t,omitempty"`
}

type vendorLine struct {
	In     uint64    `json:"in"`
	Out    uint64    `json:"out"`
	Count  int64     `json:"count,omitempty"`
	Epoch  string    `json:"epoch,omitempty"`
	TS     time.Time `json:"ts"`
	Seq    uint64    `json:"seq,omitempty"`
	HasSeq bool      `json:"has_seq,omitempty"`
	// Counts are the area counts applied at TS (Absolute): a device clock of whole seconds
	// stamps several readings alike, and a late copy of an earlier one must not win.
	Counts []int64 `json:"counts,omitempty"`
}

// maxSameTime bounds vendorLine.Counts.
const maxSameTime = 8

// vendorWindow is an Interval window: its bounds in Unix milliseconds, or the decoder's key
// when the payload gives no bounds.
type vendorWindow struct {
	S int64  `json:"s,omitempty"`
	E int64  `json:"e,omitempty"`
	K string `json:"k,omitempty"`
}

func (v *vendorState) clone() *vendorState {
	if v == nil {
		return &vendorState{}
	}
	c := *v
	c.Lines = make(map[string]*vendorLine, len(v.Lines))
	for k, l := range v.Lines {
		cp := *l
		c.Lines[k] = &cp
	}
	c.Windows = make(map[string][]vendorWindow, len(v.Windows))
	for k, w := range v.Windows {
		c.Windows[k] = slices.Clone(w)
	}
	c.Floor = make(map[string]int64, len(v.Floor))
	for k, f := range v.Floor {
		c.Floor[k] = f
	}
	c.Keys = slices.Clone(v.Keys)
	if v.Region != nil {
		r := *v.Region
		c.Region = &r
	}
	c.Unbound = slices.Clone(v.Unbound)
	c.Reported = slices.Clone(v.Reported)
	return &c
}

// seqState classifies a message sequence number against those seen.
func (v *vendorState) seqSeen(seq uint64) bool {
	if !v.SeqSet || seq > v.Seq || v.Seq-seq >= seqWindow {
		return false
	}
	return v.Seen&(uint64(1)<<(v.Seq-seq)) != 0
}

// seqOlder tells whether seq is behind the highest seen, within the window (a late message);
// one far behind is the device's counter starting again (a LoRaWAN rejoin) and not older.
func seqOlder(last, seq uint64) bool { return seq < last && last-seq < seqWindow }

func (v *vendorState) markSeq(seq uint64) {
	b := bootState{Seq: v.Seq, Seen: v.Seen}
	if !v.SeqSet || (seq < v.Seq && v.Seq-seq >= seqWindow) {
		b.markSeq(seq, true) // the first, or the device's counter started again
	} else {
		b.markSeq(seq, false)
	}
	v.Seq, v.Seen, v.SeqSet = b.Seq, b.Seen, true
}

func (v *vendorState) noteUnbound(id string) {
	if slices.Contains(v.Unbound, id) {
		return
	}
	v.Unbound = append(v.Unbound, id)
	if n := len(v.Unbound) - maxSeenLines; n > 0 {
		v.Unbound = slices.Clone(v.Unbound[n:])
	}
}

// vendorPlan accumulates one message's effect before anything changes.
type vendorPlan struct {
	state    *vendorState
	deltas   map[string]*LineCount // per bound line
	order    []string
	ts       time.Time // the latest reading time that counted crossings
	counted  bool      // some reading counted crossings (even zero)
	anchor   *int64
	anchorTS time.Time
	changed  bool // something new was learnt (a baseline, a window, a key)
	seq      uint64
	hasSeq   bool
}

func (p *vendorPlan) add(line string, in, out uint64) error {
	d := p.deltas[line]
	if d == nil {
		d = &LineCount{Line: line}
		p.deltas[line] = d
		p.order = append(p.order, line)
	}
	var c1, c2 uint64
	d.In, c1 = bits.Add64(d.In, in, 0)
	d.Out, c2 = bits.Add64(d.Out, out, 0)
	if c1|c2 != 0 {
		return Reject("out_of_range", "line %q: the readings of one message overflow", line)
	}
	return nil
}

// readingTime is when a reading happened: the device's clock when it has one and it is within
// max_clock_skew of the service's, else the receive time.
func (e *Engine) readingTime(device string, r *formats.Reading, received time.Time) time.Time {
	if r.DeviceTime.IsZero() {
		return received
	}
	if d := r.DeviceTime.Sub(received); d > e.opts.MaxClockSkew || d < -e.opts.MaxClockSkew {
		e.metrics.observeUntrustedClock(device)
		e.logLimited("clock:"+device, "device clock is off by more than occupancy.max_clock_skew; timing its readings by receive time",
			"device", device, "device_time", r.DeviceTime, "received", received)
		return received
	}
	return r.DeviceTime
}

// applyVendor counts one vendor message. Every reading is planned on a copy of the device's
// record first, so a message refused anywhere (a counter too wide, an impossible jump) changes
// nothing at all.
func (e *Engine) applyVendor(m *Message, now time.Time) (Outcome, string) {
	r := m.Vendor
	info, known := e.model.Device(r.Device)
	if !known {
		return e.rejected(m, Reject("unknown_device", "report from unconfigured device %q", r.Device))
	}
	if info.Format == "" {
		return e.rejected(m, Reject("wrong_format", "device %q speaks the native protocol, not a vendor format", r.Device))
	}
	received := m.Received
	if received.IsZero() {
		received = now
	}
	d, _ := e.device(r.Device)
	p := &vendorPlan{state: d.Vendor.clone(), deltas: map[string]*LineCount{}}
	// A message carries one sequence number (a LoRaWAN frame, a package): seen before, the
	// whole message is a duplicate delivery (two gateways, a re-sent package).
	for i := range r.Readings {
		if rd := &r.Readings[i]; rd.HasSeq {
			if p.state.seqSeen(rd.Seq) {
				d.LastSeen, d.Online = now, true
				return Duplicate, ""
			}
			p.seq, p.hasSeq = rd.Seq, true
		}
	}
	want := info.Counting
	if info.Kind == KindSensor {
		want = formats.Absolute
	}
	duplicates := 0
	for i := range r.Readings {
		rd := &r.Readings[i]
		if rd.Semantics != want {
			e.metrics.observeIgnored(r.Device, rd.Semantics)
			continue
		}
		at := e.readingTime(r.Device, rd, received)
		var dup bool
		var err error
		switch rd.Semantics {
		case formats.SinceReset:
			dup, err = e.planSinceReset(p, info, rd, at)
		case formats.Interval:
			dup, err = e.planInterval(p, info, rd, at)
		case formats.Increment:
			dup, err = e.planIncrement(p, info, rd, at)
		case formats.Absolute:
			dup, err = e.planAbsolute(p, info, rd, at)
		default:
			err = Reject("unsupported", "reading of unknown semantics %d", rd.Semantics)
		}
		if err != nil {
			return e.rejected(m, asReject(err))
		}
		if dup {
			duplicates++
		}
		if !at.Before(p.state.LastReading) {
			p.state.LastReading, p.state.LastSemantics = at, rd.Semantics.String()
		}
	}
	if err := e.applyVendorPlan(r.Device, info, d, p, now); err != nil {
		return e.rejected(m, asReject(err))
	}
	if p.hasSeq {
		p.state.markSeq(p.seq)
	}
	d.Vendor = p.state
	d.LastSeen, d.Online = now, true
	e.pending.devices[r.Device] = d
	if duplicates > 0 && duplicates == len(r.Readings) && !p.changed {
		return Duplicate, ""
	}
	d.Reports++
	return Applied, ""
}

func asReject(err error) *RejectError {
	if rej, ok := err.(*RejectError); ok {
		return rej
	}
	return &RejectError{Reason: "invalid", Err: err}
}

// checkWidth refuses a figure a counter of the configured width cannot read.
func checkWidth(l formats.Line, width int) error {
	if width < 64 && (l.In>>width != 0 || l.Out>>width != 0) {
		return Reject("out_of_range", "line %q: a %d-bit counter cannot read in=%d out=%d", l.ID, width, l.In, l.Out)
	}
	return nil
}

// bound keeps a reading's lines that a door is bound to, noting the others.
func (e *Engine) bound(p *vendorPlan, device string, lines []formats.Line) []formats.Line {
	kept := lines[:0:0]
	for _, l := range lines {
		if _, ok := e.model.DoorOf(device, l.ID); ok {
			kept = append(kept, l)
			if !slices.Contains(p.state.Reported, l.ID) {
				p.state.Reported = append(p.state.Reported, l.ID)
			}
			continue
		}
		e.metrics.observeUnbound(device, 1)
		p.state.noteUnbound(l.ID)
	}
	return kept
}

// newer tells whether a reading at (at, seq) comes after the last one applied on a line:
// by the message sequence where both have one, else by time. Equal times are neither.
func newer(last *vendorLine, at time.Time, rd *formats.Reading) (after, before bool) {
	if rd.HasSeq && last.HasSeq && rd.Seq != last.Seq {
		if seqOlder(last.Seq, rd.Seq) {
			return false, true
		}
		return true, false
	}
	return at.After(last.TS), at.Before(last.TS)
}

// planSinceReset: crossings are the difference from the last total of each line. A first
// total is the line's baseline. A decrease, a new Epoch or a Reset, in a reading that comes
// after the last, is a reset: the new total counts from zero. A reading before the last (a
// late duplicate) changes nothing; no reading ever counts negative people.
func (e *Engine) planSinceReset(p *vendorPlan, info DeviceInfo, rd *formats.Reading, at time.Time) (bool, error) {
	lines := e.bound(p, info.ID, rd.Lines)
	dup := true
	for _, l := range lines {
		if err := checkWidth(l, info.Width); err != nil {
			return false, err
		}
	}
	if p.state.Lines == nil {
		p.state.Lines = map[string]*vendorLine{}
	}
	for _, l := range lines {
		cur := &vendorLine{In: l.In, Out: l.Out, Epoch: rd.Epoch, TS: at, Seq: rd.Seq, HasSeq: rd.HasSeq}
		last := p.state.Lines[l.ID]
		if last == nil {
			p.state.Lines[l.ID] = cur // the baseline: what the device counted before is not ours
			p.changed, dup = true, false
			continue
		}
		after, before := newer(last, at, rd)
		grew := l.In >= last.In && l.Out >= last.Out
		reset := rd.Reset || (rd.Epoch != "" && last.Epoch != "" && rd.Epoch != last.Epoch)
		switch {
		case before, !after && !grew, !after && reset:
			continue // late: an older reading carries nothing new
		case reset:
			if err := p.add(l.ID, l.In, l.Out); err != nil {
				return false, err
			}
		default:
			if err := p.add(l.ID, counterDelta(last.In, l.In, info.Width), counterDelta(last.Out, l.Out, info.Width)); err != nil {
				return false, err
			}
		}
		if l.In != last.In || l.Out != last.Out || reset {
			dup = false
		}
		if !cur.TS.After(last.TS) {
			cur.TS = last.TS
		}
		if rd.Epoch == "" {
			cur.Epoch = last.Epoch
		}
		p.state.Lines[l.ID] = cur
		p.counted = true
		p.ts = maxTime(p.ts, at)
	}
	return dup && len(lines) > 0, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// planInterval: the crossings of a window, counted once per (line, window); a window that
// overlaps one counted before without being it is refused, since part of it was counted.
func (e *Engine) planInterval(p *vendorPlan, info DeviceInfo, rd *formats.Reading, at time.Time) (bool, error) {
	w := vendorWindow{}
	switch {
	case !rd.WindowStart.IsZero() && !rd.WindowEnd.IsZero():
		w.S, w.E = rd.WindowStart.UnixMilli(), rd.WindowEnd.UnixMilli()
		if w.E < w.S {
			return false, Reject("malformed", "window ends (%s) before it starts (%s)", rd.WindowEnd, rd.WindowStart)
		}
	case rd.Key != "":
		if len(rd.Key) > maxVendorKey {
			return false, Reject("malformed", "window key of %d bytes is over %d", len(rd.Key), maxVendorKey)
		}
		w.K = rd.Key
	default:
		return false, Reject("malformed", "interval reading names no window")
	}
	lines := e.bound(p, info.ID, rd.Lines)
	for _, l := range lines {
		if err := checkWidth(l, info.Width); err != nil {
			return false, err
		}
	}
	if p.state.Windows == nil {
		p.state.Windows = map[string][]vendorWindow{}
		p.state.Floor = map[string]int64{}
	}
	dup := len(lines) > 0
	for _, l := range lines {
		ws := p.state.Windows[l.ID]
		seen := false
		for _, o := range ws {
			if o == w {
				seen = true
				break
			}
			if w.K == "" && o.K == "" && w.S < o.E && o.S < w.E {
				return false, Reject("overlapping_window", "line %q: window %s to %s overlaps one counted before",
					l.ID, rd.WindowStart.Format(time.RFC3339), rd.WindowEnd.Format(time.RFC3339))
			}
		}
		if seen {
			continue
		}
		if w.K == "" && w.S < p.state.Floor[l.ID] {
			return false, Reject("stale", "line %q: window %s is older than the %d windows remembered", l.ID, rd.WindowStart.Format(time.RFC3339), maxVendorWindows)
		}
		dup = false
		ws = append(ws, w)
		if n := len(ws) - maxVendorWindows; n > 0 {
			for _, old := range ws[:n] {
				p.state.Floor[l.ID] = max(p.state.Floor[l.ID], old.E)
			}
			ws = slices.Clone(ws[n:])
		}
		p.state.Windows[l.ID] = ws
		p.changed = true
		if err := p.add(l.ID, l.In, l.Out); err != nil {
			return false, err
		}
		p.counted = true
		p.ts = maxTime(p.ts, at)
	}
	return dup, nil
}

// planIncrement: one event's crossings, counted once per key.
func (e *Engine) planIncrement(p *vendorPlan, info DeviceInfo, rd *formats.Reading, at time.Time) (bool, error) {
	key := rd.Key
	if key == "" && rd.HasSeq {
		key = "seq:" + strconv.FormatUint(rd.Seq, 10)
	}
	if key == "" {
		return false, Reject("malformed", "increment reading has no key to count it once by")
	}
	if len(key) > maxVendorKey {
		return false, Reject("malformed", "key of %d bytes is over %d", len(key), maxVendorKey)
	}
	if slices.ContainsFunc(p.state.Keys, func(k vendorKey) bool { return k.K == key }) {
		return true, nil
	}
	if !rd.DeviceTime.IsZero() && at.Before(p.state.KeyFloor) {
		return false, Reject("stale", "event %q at %s is older than the %d events remembered", key, at.Format(time.RFC3339), maxVendorKeys)
	}
	lines := e.bound(p, info.ID, rd.Lines)
	for _, l := range lines {
		if err := checkWidth(l, info.Width); err != nil {
			return false, err
		}
	}
	k := vendorKey{K: key}
	if !rd.DeviceTime.IsZero() {
		k.T = at.UnixMilli()
	}
	p.state.Keys = append(p.state.Keys, k)
	if n := len(p.state.Keys) - maxVendorKeys; n > 0 {
		for _, old := range p.state.Keys[:n] {
			if old.T != 0 {
				p.state.KeyFloor = maxTime(p.state.KeyFloor, time.UnixMilli(old.T))
			}
		}
		p.state.Keys = slices.Clone(p.state.Keys[n:])
	}
	p.changed = true
	for _, l := range lines {
		if err := p.add(l.ID, l.In, l.Out); err != nil {
			return false, err
		}
	}
	p.counted = true
	p.ts = maxTime(p.ts, at)
	return false, nil
}

// planAbsolute: an area count re-anchors the zone when it is the newest reading of its
// region (by sequence, else time); an older one changes nothing.
func (e *Engine) planAbsolute(p *vendorPlan, info DeviceInfo, rd *formats.Reading, at time.Time) (bool, error) {
	if rd.Region != info.Region {
		e.metrics.observeUnbound(info.ID, 1)
		p.state.noteUnbound("region:" + rd.Region)
		return false, nil
	}
	if rd.Count < 0 {
		return false, Reject("negative", "count %d is negative", rd.Count)
	}
	if id := "region:" + rd.Region; !slices.Contains(p.state.Reported, id) {
		p.state.Reported = append(p.state.Reported, id)
	}
	next := &vendorLine{Count: rd.Count, TS: at, Seq: rd.Seq, HasSeq: rd.HasSeq, Counts: []int64{rd.Count}}
	if last := p.state.Region; last != nil {
		after, before := newer(last, at, rd)
		switch {
		case before:
			return true, nil
		case !after && rd.Count != last.Count && slices.Contains(last.Counts, rd.Count):
			// As old as the last, and a count already superseded at that time: a late copy.
			return true, nil
		case !after:
			// As old as the last: the device's later word within the same second, or its
			// last word again, which re-anchors the zone (crossings counted since the
			// reading are the sensor's to correct, as with any anchor).
			next.TS, next.Counts = last.TS, append(slices.DeleteFunc(slices.Clone(last.Counts), func(c int64) bool { return c == rd.Count }), rd.Count)
			if n := len(next.Counts) - maxSameTime; n > 0 {
				next.Counts = next.Counts[n:]
			}
		}
	}
	p.state.Region = next
	c := rd.Count
	p.anchor, p.anchorTS = &c, at
	p.changed = true
	return false, nil
}

// applyVendorPlan checks the planned crossings against the impossible-jump bound and applies
// them and the anchor; on a refusal nothing has changed.
func (e *Engine) applyVendorPlan(device string, info DeviceInfo, d *deviceState, p *vendorPlan, now time.Time) error {
	if p.anchor != nil {
		z, _ := e.model.Zone(info.Zone)
		if _, err := e.occ.setDiff(z, *p.anchor); err != nil {
			return err
		}
	}
	deltas := make([]LineCount, 0, len(p.order))
	for _, l := range p.order {
		deltas = append(deltas, *p.deltas[l])
	}
	last := d.Vendor
	var lastTS, lastAt time.Time
	if last != nil {
		lastTS, lastAt = last.LastTS, last.LastAt
	}
	if err := e.jumpBound(device, deltas, p.ts, lastTS, lastAt, !lastTS.IsZero() || !lastAt.IsZero(), now); err != nil {
		return err
	}
	var doors []DoorDelta
	for _, l := range deltas {
		if l.In == 0 && l.Out == 0 {
			continue
		}
		di, _ := e.model.DoorOf(device, l.Line)
		door := &e.model.Doors[di]
		dd := DoorDelta{Door: door.ID, In: l.In, Out: l.Out}
		if door.Reversed {
			dd.In, dd.Out = dd.Out, dd.In
		}
		doors = append(doors, dd)
	}
	if len(doors) > 0 {
		ts := p.ts
		entry := &LogEntry{At: now, Kind: EntryCrossing, Device: device, DSeq: p.seq, TS: &ts, Doors: doors}
		if err := e.occ.replay(entry); err != nil {
			return err
		}
		e.stageZones(entry)
		for _, dd := range doors {
			e.pending.doors[e.model.doorIdx[dd.Door]] = true
		}
		e.pending.log = append(e.pending.log, entry)
	}
	if p.counted {
		p.state.LastTS = maxTime(lastTS, p.ts)
		p.state.LastAt = now
	}
	if p.anchor != nil {
		z, _ := e.model.Zone(info.Zone)
		ts := p.anchorTS
		entry := &LogEntry{At: now, Kind: EntryAnchor, Device: device, DSeq: p.seq, TS: &ts,
			Zone: info.Zone, Value: *p.anchor, Before: e.occ.zones[z].Occupancy}
		if entry.Before != *p.anchor {
			if err := e.occ.replay(entry); err != nil {
				return err
			}
			e.metrics.observeAnchor(info.Zone, *p.anchor-entry.Before)
			e.stageZones(entry)
			e.pending.log = append(e.pending.log, entry)
		}
	}
	return nil
}
