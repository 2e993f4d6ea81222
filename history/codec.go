package history

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
)

// Resolution is one of the stored series: raw samples, minute or hour roll-ups.
type Resolution int

const (
	Raw Resolution = iota
	Minute
	Hour
)

func (r Resolution) String() string {
	switch r {
	case Raw:
		return "raw"
	case Minute:
		return "minute"
	}
	return "hour"
}

// MarshalText lets JSON carry "minute" rather than 1.
func (r Resolution) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

const (
	minuteMs = int64(time.Minute / time.Millisecond)
	hourMs   = int64(time.Hour / time.Millisecond)
)

// span is the length of one window of a roll-up resolution, in ms. Hours are real hours: in a
// zone whose offsets are whole hours, a local hour is always 3600 s, DST or not.
func (r Resolution) span() int64 {
	if r == Hour {
		return hourMs
	}
	return minuteMs
}

// tz aligns times (Unix ms) to the site's local hours and days.
type tz struct{ loc *time.Location }

func (z tz) offsetMs(t int64) int64 {
	_, off := time.UnixMilli(t).In(z.loc).Zone()
	return int64(off) * 1000
}

// hour is the start of the local hour containing t.
func (z tz) hour(t int64) int64 {
	off := z.offsetMs(t)
	local := t + off
	return local - mod(local, hourMs) - off
}

func (z tz) minute(t int64) int64 { return t - mod(t, minuteMs) }

// day is the start of the local day containing t; days last 23, 24 or 25 hours.
func (z tz) day(t int64) int64 {
	lt := time.UnixMilli(t).In(z.loc)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, z.loc).UnixMilli()
}

func (z tz) nextDay(t int64) int64 {
	lt := time.UnixMilli(z.day(t)).In(z.loc)
	return time.Date(lt.Year(), lt.Month(), lt.Day()+1, 0, 0, 0, 0, z.loc).UnixMilli()
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}

// block is where a record at t is stored: raw and minute records in blocks of one local hour,
// hour records in blocks of one local day. Packing records into blocks keeps bbolt's per-key
// overhead (about 40 bytes) off every 10-byte record.
func (z tz) block(res Resolution, t int64) int64 {
	if res == Hour {
		return z.day(t)
	}
	return z.hour(t)
}

// unit is the time unit of record offsets inside a block: ms for raw, s for roll-ups.
func (res Resolution) unit() int64 {
	if res == Raw {
		return 1
	}
	return 1000
}

func blockKey(start int64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], uint64(start))
	return k[:]
}

func keyTime(k []byte) int64 { return int64(binary.BigEndian.Uint64(k)) }

// maxStored is the largest figure a block holds; the reader takes anything larger for
// damage. Figures are clamped into [0, maxStored] when written, so that the writer never
// writes what the reader refuses: one absurd figure (an occupancy wrapped by a bad
// correction, an integral that overflowed) must not make a whole block, and with it a day,
// unreadable.
const maxStored = 1 << 62

// appendUv appends v as a uvarint, clamped into what the reader accepts.
func appendUv(b []byte, v int64) []byte {
	return binary.AppendUvarint(b, uint64(min(max(v, 0), maxStored)))
}

// levelByte is l as stored: a level the reader does not know is stored as the highest.
func levelByte(l levels.Level) byte {
	if l < 0 {
		return 0
	}
	return byte(min(int(l), NumLevels-1))
}

// Flags of a raw sample: the level in the low bits, then which optional figures follow.
// Most samples carry only an occupancy and a few crossings, so zeros are not written.
const (
	sampleLevel     = 0x07
	sampleCrossings = 0x08
	sampleCorrected = 0x10
	sampleClamped   = 0x20
	sampleDeficit   = 0x40
	sampleEnd       = 0x80
)

// appendSample encodes a raw sample relative to the previous one in its block (prev is the
// block start for the first): five seconds take two bytes, not four.
func appendSample(b []byte, prev int64, s Sample) []byte {
	b = appendUv(b, s.At-prev)
	flags := levelByte(s.Level) & sampleLevel
	for _, f := range [...]struct {
		on  bool
		bit byte
	}{{s.Entries > 0 || s.Exits > 0, sampleCrossings}, {s.Corrected > 0, sampleCorrected}, {s.Clamped > 0, sampleClamped}, {s.Deficit > 0, sampleDeficit}, {s.End, sampleEnd}} {
		if f.on {
			flags |= f.bit
		}
	}
	b = append(b, flags)
	b = appendUv(b, s.Occupancy)
	if flags&sampleCrossings != 0 {
		b = appendUv(b, s.Entries)
		b = appendUv(b, s.Exits)
	}
	for _, f := range [...]struct {
		bit byte
		v   int64
	}{{sampleCorrected, s.Corrected}, {sampleClamped, s.Clamped}, {sampleDeficit, s.Deficit}} {
		if flags&f.bit != 0 {
			b = appendUv(b, f.v)
		}
	}
	return b
}

var errCorrupt = errors.New("history: a stored block is damaged")

type reader struct {
	b   []byte
	err error
}

func (r *reader) uv() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || v > 1<<62 {
		r.err = errCorrupt
		return 0
	}
	r.b = r.b[n:]
	return int64(v)
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errCorrupt
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) level() levels.Level {
	l := r.byte()
	if int(l) >= NumLevels {
		r.err = errCorrupt
		return 0
	}
	return levels.Level(l)
}

// decodeSamples reads a raw block, packed or not.
func decodeSamples(block int64, b []byte, out []Sample) ([]Sample, error) {
	prev := block
	if isPacked(b) {
		var err error
		if out, prev, b, err = unpackSamples(block, b, out); err != nil {
			return out, fmt.Errorf("%w (packed raw block at %s)", err, time.UnixMilli(block).UTC().Format(time.RFC3339))
		}
	}
	r := reader{b: b}
	for len(r.b) > 0 && r.err == nil {
		var s Sample
		s.At = prev + r.uv()
		prev = s.At
		f := r.byte()
		s.End = f&sampleEnd != 0
		s.Level = levels.Level(f & sampleLevel)
		if int(s.Level) >= NumLevels {
			r.err = errCorrupt
		}
		s.Occupancy = r.uv()
		if f&sampleCrossings != 0 {
			s.Entries, s.Exits = r.uv(), r.uv()
		}
		if f&sampleCorrected != 0 {
			s.Corrected = r.uv()
		}
		if f&sampleClamped != 0 {
			s.Clamped = r.uv()
		}
		if f&sampleDeficit != 0 {
			s.Deficit = r.uv()
		}
		if r.err == nil {
			out = append(out, s)
		}
	}
	if r.err != nil {
		return out, fmt.Errorf("%w (raw block at %s)", r.err, time.UnixMilli(block).UTC().Format(time.RFC3339))
	}
	return out, nil
}

const (
	recFlat = 0
	recFull = 1
)

// maxRun is the longest flat run one record holds; the reader refuses longer ones.
const maxRun = 10000

// appendFlat encodes n consecutive windows that held v at level l throughout, in records of
// at most maxRun windows.
func appendFlat(b []byte, res Resolution, block, start int64, n int, v int64, l levels.Level) []byte {
	for n > 0 {
		k := min(n, maxRun)
		b = appendUv(b, (start-block)/res.unit())
		b = append(b, recFlat)
		b = appendUv(b, int64(k))
		b = appendUv(b, v)
		b = append(b, levelByte(l))
		n -= k
		start += int64(k) * res.span()
	}
	return b
}

// appendRollup encodes one window.
func appendRollup(b []byte, res Resolution, block int64, r Rollup) []byte {
	b = appendUv(b, (r.Start-block)/res.unit())
	b = append(b, recFull)
	var maxAt int64
	if r.hasValue() {
		maxAt = r.MaxAt - r.Start + 1
	}
	// Most windows are covered whole and spend it at one level: write what is missing and
	// only the levels held, the last one implied.
	b = appendUv(b, r.End-r.Start-r.Covered)
	b = appendUv(b, maxAt)
	for _, v := range [...]int64{r.Min, r.Max, r.Last} {
		b = appendUv(b, v)
	}
	b = append(b, levelByte(r.LastLevel))
	for _, v := range [...]int64{r.Integral, r.Entries, r.Exits, r.Clamped, r.Corrected} {
		b = appendUv(b, v)
	}
	var mask byte
	held := 0
	for l, v := range r.AtLevel {
		if v > 0 {
			mask |= 1 << l
			held++
		}
	}
	b = append(b, mask)
	// The times at levels add up to Covered by construction (window.advance adds both).
	for _, v := range r.AtLevel {
		if v > 0 && held > 1 {
			b = appendUv(b, v)
			held--
		}
	}
	return b
}

// decodeRollups reads a minute or hour block, expanding flat runs into their windows. Two
// records for the same window (a restart inside it) are merged.
func decodeRollups(res Resolution, block int64, b []byte, out []Rollup) ([]Rollup, error) {
	if isPacked(b) {
		var err error
		if out, b, err = unpackRollups(res, block, b, out); err != nil {
			return out, fmt.Errorf("%w (packed %s block at %s)", err, res, time.UnixMilli(block).UTC().Format(time.RFC3339))
		}
	}
	r := reader{b: b}
	span := res.span()
	for len(r.b) > 0 && r.err == nil {
		start := block + r.uv()*res.unit()
		switch r.byte() {
		case recFlat:
			n, v, l := r.uv(), r.uv(), r.level()
			if n > maxRun {
				r.err = errCorrupt
			}
			for i := int64(0); i < n && r.err == nil; i++ {
				out = appendMerged(out, flatRollup(start+i*span, start+(i+1)*span, v, l))
			}
		case recFull:
			x := Rollup{Start: start, End: start + span}
			x.Covered = span - r.uv()
			if m := r.uv(); m > 0 {
				x.MaxAt = start + m - 1
			}
			x.Min, x.Max, x.Last = r.uv(), r.uv(), r.uv()
			x.LastLevel = r.level()
			x.Integral, x.Entries, x.Exits, x.Clamped, x.Corrected = r.uv(), r.uv(), r.uv(), r.uv(), r.uv()
			mask := r.byte()
			rest, last := x.Covered, -1
			for l := range NumLevels {
				if mask&(1<<l) != 0 {
					last = l
				}
			}
			for l := range NumLevels {
				if mask&(1<<l) == 0 {
					continue
				}
				if l == last {
					x.AtLevel[l] = rest
				} else {
					x.AtLevel[l] = r.uv()
					rest -= x.AtLevel[l]
				}
			}
			if mask>>NumLevels != 0 || rest < 0 || x.Covered < 0 {
				r.err = errCorrupt
			}
			if r.err == nil {
				out = appendMerged(out, x)
			}
		default:
			r.err = errCorrupt
		}
	}
	if r.err != nil {
		return out, fmt.Errorf("%w (%s block at %s)", r.err, res, time.UnixMilli(block).UTC().Format(time.RFC3339))
	}
	return out, nil
}

func appendMerged(out []Rollup, x Rollup) []Rollup {
	if n := len(out); n > 0 && out[n-1].Start == x.Start {
		out[n-1].Merge(x)
		return out
	}
	return append(out, x)
}

// DoorCount is crossings through a door in a window: In from its From side to its To side,
// Out the other way.
type DoorCount struct {
	Start, End int64
	In, Out    int64
}

func appendDoor(b []byte, res Resolution, block int64, c DoorCount) []byte {
	b = appendUv(b, (c.Start-block)/res.unit())
	b = appendUv(b, c.In)
	return appendUv(b, c.Out)
}

func decodeDoors(res Resolution, block int64, b []byte, out []DoorCount) ([]DoorCount, error) {
	if isPacked(b) {
		var err error
		if out, b, err = unpackDoors(res, block, b, out); err != nil {
			return out, fmt.Errorf("%w (packed door %s block at %s)", err, res, time.UnixMilli(block).UTC().Format(time.RFC3339))
		}
	}
	r := reader{b: b}
	span := res.span()
	if res == Raw {
		span = 0
	}
	for len(r.b) > 0 && r.err == nil {
		c := DoorCount{Start: block + r.uv()*res.unit()}
		c.End = c.Start + span
		c.In, c.Out = r.uv(), r.uv()
		if r.err == nil {
			out = appendDoorCount(out, c)
		}
	}
	if r.err != nil {
		return out, fmt.Errorf("%w (door %s block at %s)", r.err, res, time.UnixMilli(block).UTC().Format(time.RFC3339))
	}
	return out, nil
}

// appendDoorCount adds c to the last count when it is for the same window (a restart
// inside it), else appends it.
func appendDoorCount(out []DoorCount, c DoorCount) []DoorCount {
	if n := len(out); n > 0 && out[n-1].Start == c.Start {
		out[n-1].In += c.In
		out[n-1].Out += c.Out
		return out
	}
	return append(out, c)
}
