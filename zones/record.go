package zones

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The records of file format 2 (crowdwatch/2): devices, zones, doors and log entries in a
// compact binary encoding instead of format 1's JSON, which took 40% of a commit's CPU at
// saturation (docs/benchmarks.md, issue 16). A record starts with its encoding's tag byte;
// a format-1 JSON record starts with '{', so both are told apart by their first byte and a
// file part-way through its migration (OpenStore) still loads.
//
// Integers are varints (signed ones zig-zag), strings and nested blobs a uvarint length and
// the bytes, times a presence byte then Unix seconds (varint) and nanoseconds (uvarint).
// A vendor device's state (zones/vendor.go) is rare and rich, so it stays JSON inside the
// device record.
const recordV2 byte = 0x02

// errRecord is a record that cannot be decoded.
var errRecord = errors.New("damaged record")

type enc struct{ b []byte }

func (e *enc) u(v uint64) { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)  { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) s(v string) { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) bytes(v []byte) {
	e.u(uint64(len(v)))
	e.b = append(e.b, v...)
}
func (e *enc) bool(v bool) {
	if v {
		e.b = append(e.b, 1)
	} else {
		e.b = append(e.b, 0)
	}
}
func (e *enc) time(t time.Time) {
	if t.IsZero() {
		e.b = append(e.b, 0)
		return
	}
	e.b = append(e.b, 1)
	e.i(t.Unix())
	e.u(uint64(t.Nanosecond()))
}

type dec struct {
	b   []byte
	err error
}

func (d *dec) fail() {
	if d.err == nil {
		d.err = errRecord
	}
	d.b = nil
}

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a number of elements, each at least min bytes long, so that a damaged length
// can never make the decoder allocate more than the record holds.
func (d *dec) count(min int) int {
	n := d.u()
	if n > uint64(len(d.b)/min) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *dec) raw() []byte {
	n := d.count(1)
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) s() string { return string(d.raw()) }

func (d *dec) bool() bool {
	if len(d.b) == 0 || d.b[0] > 1 {
		d.fail()
		return false
	}
	v := d.b[0] == 1
	d.b = d.b[1:]
	return v
}

func (d *dec) time() time.Time {
	if !d.bool() {
		return time.Time{}
	}
	sec := d.i()
	ns := d.u()
	if ns >= 1e9 || sec < -(1<<40) || sec > 1<<40 {
		d.fail()
		return time.Time{}
	}
	return time.Unix(sec, int64(ns))
}

// start checks the tag; end checks nothing is left over.
func (d *dec) start() {
	if len(d.b) == 0 || d.b[0] != recordV2 {
		d.fail()
		return
	}
	d.b = d.b[1:]
}

func (d *dec) end() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = errRecord
	}
	return d.err
}

// isJSON tells a format-1 record from a format-2 one.
func isJSON(v []byte) bool { return len(v) > 0 && v[0] == '{' }

// record is a value of one of the state buckets, by pointer.
type record interface {
	*deviceState | *zoneRecord | *doorRecord | *LogEntry
}

// decodeRecord reads r from a record of either format. The kinds' field readers below are
// called from a switch, not through a function value or an interface, so that the reader
// stays on the stack: passed to an indirect call it would escape, one allocation a record.
func decodeRecord[R record](v []byte, r R) error {
	if isJSON(v) {
		return json.Unmarshal(v, r)
	}
	d := dec{b: v}
	d.start()
	switch r := any(r).(type) {
	case *deviceState:
		d.device(r)
	case *zoneRecord:
		*r = zoneRecord{Occupancy: d.i(), Updated: d.time(), Clamped: d.i(), Anchored: d.i(), LastAnchor: d.i(), Corrected: d.i()}
	case *doorRecord:
		*r = doorRecord{In: d.u(), Out: d.u()}
	case *LogEntry:
		d.entry(r)
	}
	return d.end()
}

// startRecord begins a format-2 record after b (a commit appends it after its key).
func startRecord(b []byte) enc { return enc{append(b, recordV2)} }

func appendDevice(b []byte, s *deviceState) ([]byte, error) {
	e := startRecord(b)
	e.u(uint64(len(s.Boots)))
	for _, bt := range s.Boots {
		e.s(bt.Boot)
		e.u(bt.Seq)
		e.u(bt.Seen)
		// Lines in order, so a record's bytes depend only on its content.
		var keys [8]string
		lines := keys[:0]
		for l := range bt.Totals {
			lines = append(lines, l)
		}
		slices.Sort(lines)
		e.u(uint64(len(lines)))
		for _, l := range lines {
			t := bt.Totals[l]
			e.s(l)
			e.u(t[0])
			e.u(t[1])
		}
		e.time(bt.LastTS)
		e.time(bt.LastAt)
	}
	e.u(uint64(len(s.Retired)))
	for _, r := range s.Retired {
		e.s(r)
	}
	e.time(s.LastSeen)
	e.bool(s.Online)
	e.u(s.Reports)
	if s.Vendor == nil {
		e.bytes(nil)
	} else {
		v, err := json.Marshal(s.Vendor)
		if err != nil {
			return nil, err
		}
		e.bytes(v)
	}
	return e.b, nil
}

// device reads what appendDevice wrote.
func (d *dec) device(s *deviceState) {
	// A boot takes at least 6 bytes (empty id, seq, seen, no lines, two zero times).
	if n := d.count(6); n > 0 {
		s.Boots = make([]*bootState, n)
		for i := range s.Boots {
			bt := &bootState{Boot: d.s(), Seq: d.u(), Seen: d.u()}
			if n := d.count(3); n > 0 {
				bt.Totals = make(map[string][2]uint64, n)
				for range n {
					l := d.s()
					bt.Totals[l] = [2]uint64{d.u(), d.u()}
				}
			}
			bt.LastTS, bt.LastAt = d.time(), d.time()
			s.Boots[i] = bt
		}
	}
	if n := d.count(1); n > 0 {
		s.Retired = make([]string, n)
		for i := range s.Retired {
			s.Retired[i] = d.s()
		}
	}
	s.LastSeen = d.time()
	s.Online = d.bool()
	s.Reports = d.u()
	if vj := d.raw(); len(vj) > 0 && d.err == nil {
		s.Vendor = &vendorState{}
		if err := json.Unmarshal(vj, s.Vendor); err != nil {
			d.err = fmt.Errorf("vendor state: %w", err)
		}
	}
}

func appendZone(b []byte, z *zoneRecord) []byte {
	e := startRecord(b)
	e.i(z.Occupancy)
	e.time(z.Updated)
	e.i(z.Clamped)
	e.i(z.Anchored)
	e.i(z.LastAnchor)
	e.i(z.Corrected)
	return e.b
}

func appendDoor(b []byte, r *doorRecord) []byte {
	e := startRecord(b)
	e.u(r.In)
	e.u(r.Out)
	return e.b
}

// appendEntry encodes a log or audit entry; its Seq is the record's key, not in the value.
func appendEntry(b []byte, l *LogEntry) []byte {
	e := startRecord(b)
	e.time(l.At)
	e.s(l.Kind)
	e.s(l.Device)
	e.s(l.Boot)
	e.u(l.DSeq)
	e.bool(l.TS != nil)
	if l.TS != nil {
		e.time(*l.TS)
	}
	e.u(uint64(len(l.Doors)))
	for _, dd := range l.Doors {
		e.s(dd.Door)
		e.u(dd.In)
		e.u(dd.Out)
	}
	e.s(l.Zone)
	e.i(l.Value)
	e.i(l.Before)
	e.s(l.By)
	e.s(l.Reason)
	return e.b
}

// entry reads what appendEntry wrote.
func (d *dec) entry(l *LogEntry) {
	l.At, l.Kind, l.Device, l.Boot, l.DSeq = d.time(), d.s(), d.s(), d.s(), d.u()
	if d.bool() {
		ts := d.time()
		l.TS = &ts
	}
	if n := d.count(3); n > 0 {
		l.Doors = make([]DoorDelta, n)
		for i := range l.Doors {
			l.Doors[i] = DoorDelta{Door: d.s(), In: d.u(), Out: d.u()}
		}
	}
	l.Zone, l.Value, l.Before, l.By, l.Reason = d.s(), d.i(), d.i(), d.s(), d.s()
}

// migrateRecord turns a format-1 record of a bucket into format 2; a record already in
// format 2 comes back nil.
func migrateRecord(bucket string, v []byte) ([]byte, error) {
	if !isJSON(v) {
		return nil, nil
	}
	switch bucket {
	case string(bucketDevices):
		return migrate(v, appendDevice)
	case string(bucketZones):
		return migrate(v, func(b []byte, z *zoneRecord) ([]byte, error) { return appendZone(b, z), nil })
	case string(bucketDoors):
		return migrate(v, func(b []byte, r *doorRecord) ([]byte, error) { return appendDoor(b, r), nil })
	default: // log, audit
		return migrate(v, func(b []byte, l *LogEntry) ([]byte, error) { return appendEntry(b, l), nil })
	}
}

// migrate reads a format-1 record of T and writes it again with put.
func migrate[T any](v []byte, put func([]byte, *T) ([]byte, error)) ([]byte, error) {
	var r T
	if err := json.Unmarshal(v, &r); err != nil {
		return nil, err
	}
	return put(nil, &r)
}
