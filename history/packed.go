package history

import (
	"encoding/binary"
	"math/bits"
	"slices"

	"github.com/crowdwatch/crowdwatch/levels"
)

// A closed block (one whose hour or day has ended) is rewritten packed: its records, as the
// row decoder reads them, are stored as columns (one per figure), each column as its least
// value and the differences from it in as few bits as the largest needs. A busy minute takes
// about 7 bytes instead of 20, and a column is read with shifts, not a varint per figure.
//
// A packed block starts with packedMark, two bytes no row block starts with: a row block
// starts with the uvarint of its first record's offset, written minimal by
// binary.AppendUvarint, and a minimal uvarint ends with 0x00 only when it is the single byte
// 0x00. After the mark come the format of the packed part, its length, the columns, and then
// any rows appended after the block was packed (a late record), which the row decoder reads
// on from where the packed part ends. So a block is readable whether packed or not, and a
// file whose blocks are being packed is readable at every step.
var packedMark = [2]byte{0x80, 0x00}

const (
	packedV1 = 1
	// maxPacked is the most records a packed block holds; the encoder leaves a block with
	// more as rows, and the decoder refuses more (it bounds what a damaged block allocates).
	maxPacked = 1 << 16
)

// isPacked says whether a stored block starts with the packed mark.
func isPacked(b []byte) bool { return len(b) >= 2 && b[0] == packedMark[0] && b[1] == packedMark[1] }

// packColumns encodes n records given as columns of the same length n.
func packColumns(cols [][]uint64, n int) []byte {
	body := binary.AppendUvarint(nil, uint64(n))
	type col struct {
		base  uint64
		width int
	}
	cs := make([]col, len(cols))
	for i, c := range cols {
		lo, hi := ^uint64(0), uint64(0)
		for _, v := range c {
			lo, hi = min(lo, v), max(hi, v)
		}
		if n == 0 {
			lo = 0
		}
		cs[i] = col{base: lo, width: bits.Len64(hi - lo)}
		h := byte(cs[i].width)
		if lo != 0 {
			h |= 0x80
		}
		body = append(body, h)
		if lo != 0 {
			body = binary.AppendUvarint(body, lo)
		}
	}
	total := 0
	for i := range cols {
		total += cs[i].width * n
	}
	data := make([]byte, (total+7)/8)
	pos := 0
	for i, c := range cols {
		w := cs[i].width
		for _, v := range c {
			if w > 0 {
				putBits(data, pos, w, v-cs[i].base)
				pos += w
			}
		}
	}
	body = append(body, data...)
	out := append(packedMark[:], packedV1)
	out = binary.AppendUvarint(out, uint64(len(body)))
	return append(out, body...)
}

// columns reads what packColumns wrote, one column at a time, into one reused slice.
type columns struct {
	n      int
	widths [maxCols]uint8
	bases  [maxCols]uint64
	br     bitReader
	col    []uint64
	next   int
}

// maxCols bounds the columns of any kind (rcCols is the most).
const maxCols = 24

// openColumns reads the header of a packed block of a kind with ncols columns; rest is the
// rows that follow the packed part.
func openColumns(b []byte, ncols int) (c columns, rest []byte, err error) {
	if !isPacked(b) || len(b) < 3 || b[2] != packedV1 {
		return c, nil, errCorrupt
	}
	size, k := binary.Uvarint(b[3:])
	if k <= 0 || size > uint64(len(b)-3-k) {
		return c, nil, errCorrupt
	}
	body, rest := b[3+k:3+k+int(size)], b[3+k+int(size):]
	cnt, k := binary.Uvarint(body)
	if k <= 0 || cnt > maxPacked {
		return c, nil, errCorrupt
	}
	body = body[k:]
	c.n = int(cnt)
	totalBits := 0
	for i := range ncols {
		if len(body) == 0 {
			return c, nil, errCorrupt
		}
		h := body[0]
		body = body[1:]
		c.widths[i] = h & 0x7f
		if c.widths[i] > 64 {
			return c, nil, errCorrupt
		}
		if h&0x80 != 0 {
			v, k := binary.Uvarint(body)
			if k <= 0 {
				return c, nil, errCorrupt
			}
			c.bases[i], body = v, body[k:]
		}
		totalBits += int(c.widths[i]) * c.n
	}
	if len(body) != (totalBits+7)/8 {
		return c, nil, errCorrupt
	}
	c.br = bitReader{data: body}
	c.col = make([]uint64, c.n)
	return c, rest, nil
}

// column reads the next column; the slice is reused by the next call.
func (c *columns) column() []uint64 {
	w, base := uint(c.widths[c.next]), c.bases[c.next]
	c.next++
	col := c.col
	if w == 0 {
		for j := range col {
			col[j] = base
		}
		return col
	}
	for j := range col {
		col[j] = base + c.br.read(w)
	}
	return col
}

// unpackColumns reads every column (the encoder's check and tests; decoders read columns
// one at a time).
func unpackColumns(b []byte, ncols int) (cols [][]uint64, n int, rest []byte, err error) {
	c, rest, err := openColumns(b, ncols)
	if err != nil {
		return nil, 0, nil, err
	}
	for range ncols {
		cols = append(cols, append([]uint64(nil), c.column()...))
	}
	return cols, c.n, rest, nil
}

// putBits writes the w low bits of d at bit offset pos of data, little-endian.
func putBits(data []byte, pos, w int, d uint64) {
	for k := 0; k < w; {
		i, sh := (pos+k)>>3, (pos+k)&7
		take := min(8-sh, w-k)
		data[i] |= byte((d>>k)&(1<<take-1)) << sh
		k += take
	}
}

// bitReader reads little-endian bit fields, refilling 8 bytes at a time where it can.
type bitReader struct {
	data []byte
	p    int
	acc  uint64
	n    uint // valid bits in acc
}

// read returns the next w (1..64) bits; past the end of data it reads zeros (the caller
// checked the length).
func (r *bitReader) read(w uint) uint64 {
	if w > 56 {
		lo := r.read(32)
		return lo | r.read(w-32)<<32
	}
	if r.n < w {
		if r.p+8 <= len(r.data) {
			r.acc |= binary.LittleEndian.Uint64(r.data[r.p:]) << r.n
			r.p += int(63-r.n) >> 3
			r.n |= 56
		} else {
			for r.n < w {
				var b byte
				if r.p < len(r.data) {
					b = r.data[r.p]
				}
				r.acc |= uint64(b) << r.n
				r.p++
				r.n += 8
			}
		}
	}
	v := r.acc & (1<<w - 1)
	r.acc >>= w
	r.n -= w
	return v
}

// ok is a figure the row decoder would accept.
func ok(v uint64) bool { return v <= maxStored }

// Roll-up columns. Figures that move together are stored as differences (Max and Last from
// Min, the integral from Min×Covered), and the time at the window's last level is implied
// (the times at levels add up to Covered).
const (
	rcStart = iota // window start, from the previous window's (the block's for the first), in units
	rcMissing
	rcMaxAt
	rcMin
	rcMax
	rcLast
	rcLevel
	rcIntegral
	rcEntries
	rcExits
	rcClamped
	rcCorrected
	rcAtLevel // NumLevels columns
	rcCols    = rcAtLevel + NumLevels
)

func packRollups(res Resolution, block int64, rs []Rollup) []byte {
	cols := make([][]uint64, rcCols)
	for i := range cols {
		cols[i] = make([]uint64, len(rs))
	}
	span, unit := uint64(res.span()), uint64(res.unit())
	prev := uint64(block)
	for j, r := range rs {
		cols[rcStart][j] = uint64((r.Start - int64(prev)) / int64(unit))
		prev = uint64(r.Start)
		cols[rcMissing][j] = span - uint64(r.Covered)
		if r.MaxAt != 0 {
			cols[rcMaxAt][j] = uint64(r.MaxAt) - uint64(r.Start) + 1
		}
		cols[rcMin][j] = uint64(r.Min)
		cols[rcMax][j] = uint64(r.Max) - uint64(r.Min)
		cols[rcLast][j] = uint64(r.Last) - uint64(r.Min)
		cols[rcLevel][j] = uint64(r.LastLevel)
		cols[rcIntegral][j] = uint64(r.Integral) - uint64(r.Min)*uint64(r.Covered)
		cols[rcEntries][j], cols[rcExits][j] = uint64(r.Entries), uint64(r.Exits)
		cols[rcClamped][j], cols[rcCorrected][j] = uint64(r.Clamped), uint64(r.Corrected)
		for l, v := range r.AtLevel {
			if l != int(r.LastLevel) {
				cols[rcAtLevel+l][j] = uint64(v)
			}
		}
	}
	return packColumns(cols, len(rs))
}

func unpackRollups(res Resolution, block int64, b []byte, out []Rollup) ([]Rollup, []byte, error) {
	c, rest, err := openColumns(b, rcCols)
	if err != nil {
		return out, nil, err
	}
	span, unit := uint64(res.span()), uint64(res.unit())
	n0 := len(out)
	out = slices.Grow(out, c.n)[:n0+c.n]
	rs := out[n0:]
	fail := func() ([]Rollup, []byte, error) { return out[:n0], nil, errCorrupt }
	prev := uint64(block)
	for j, v := range c.column() { // rcStart
		prev += v * unit
		rs[j] = Rollup{Start: int64(prev), End: int64(prev + span)}
	}
	for j, v := range c.column() { // rcMissing
		if v > span {
			return fail()
		}
		rs[j].Covered = int64(span - v)
	}
	for j, v := range c.column() { // rcMaxAt
		if v > 0 {
			if !ok(v) {
				return fail()
			}
			rs[j].MaxAt = rs[j].Start + int64(v-1)
		}
	}
	for j, v := range c.column() { // rcMin
		if !ok(v) {
			return fail()
		}
		rs[j].Min = int64(v)
	}
	for j, v := range c.column() { // rcMax
		if v += uint64(rs[j].Min); !ok(v) {
			return fail()
		}
		rs[j].Max = int64(v)
	}
	for j, v := range c.column() { // rcLast
		if v += uint64(rs[j].Min); !ok(v) {
			return fail()
		}
		rs[j].Last = int64(v)
	}
	for j, v := range c.column() { // rcLevel
		if v >= uint64(NumLevels) {
			return fail()
		}
		rs[j].LastLevel = levels.Level(v)
	}
	for j, v := range c.column() { // rcIntegral
		if v += uint64(rs[j].Min) * uint64(rs[j].Covered); !ok(v) {
			return fail()
		}
		rs[j].Integral = int64(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		rs[j].Entries = int64(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		rs[j].Exits = int64(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		rs[j].Clamped = int64(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		rs[j].Corrected = int64(v)
	}
	for l := range NumLevels {
		for j, v := range c.column() {
			if l != int(rs[j].LastLevel) {
				rs[j].AtLevel[l] = int64(v)
			}
		}
	}
	for j := range rs {
		x := &rs[j]
		rem := uint64(x.Covered)
		for l, v := range x.AtLevel {
			if l != int(x.LastLevel) {
				if uint64(v) > rem {
					return fail()
				}
				rem -= uint64(v)
			}
		}
		x.AtLevel[x.LastLevel] = int64(rem)
	}
	// Windows in a packed block are distinct (packed as read); the first may continue the
	// previous block's last.
	if n0 > 0 && c.n > 0 && out[n0-1].Start == out[n0].Start {
		out[n0-1].Merge(out[n0])
		out = append(out[:n0], out[n0+1:]...)
	}
	return out, rest, nil
}

// Raw sample columns.
const (
	scAt = iota // from the previous sample's (the block's for the first), in ms
	scOccupancy
	scDeficit
	scLevel
	scEntries
	scExits
	scClamped
	scCorrected
	scEnd
	scCols
)

func packSamples(block int64, ss []Sample) []byte {
	cols := make([][]uint64, scCols)
	for i := range cols {
		cols[i] = make([]uint64, len(ss))
	}
	prev := uint64(block)
	for j, s := range ss {
		cols[scAt][j] = uint64(s.At) - prev
		prev = uint64(s.At)
		cols[scOccupancy][j], cols[scDeficit][j], cols[scLevel][j] = uint64(s.Occupancy), uint64(s.Deficit), uint64(s.Level)
		cols[scEntries][j], cols[scExits][j] = uint64(s.Entries), uint64(s.Exits)
		cols[scClamped][j], cols[scCorrected][j] = uint64(s.Clamped), uint64(s.Corrected)
		if s.End {
			cols[scEnd][j] = 1
		}
	}
	return packColumns(cols, len(ss))
}

func unpackSamples(block int64, b []byte, out []Sample) ([]Sample, int64, []byte, error) {
	c, rest, err := openColumns(b, scCols)
	if err != nil {
		return out, block, nil, err
	}
	n0 := len(out)
	out = slices.Grow(out, c.n)[:n0+c.n]
	ss := out[n0:]
	fail := func() ([]Sample, int64, []byte, error) { return out[:n0], block, nil, errCorrupt }
	prev := uint64(block)
	for j, v := range c.column() { // scAt
		if !ok(v) {
			return fail()
		}
		prev += v
		ss[j] = Sample{At: int64(prev)}
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		ss[j].Occupancy = int64(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		ss[j].Deficit = int64(v)
	}
	for j, v := range c.column() { // scLevel
		if v >= uint64(NumLevels) {
			return fail()
		}
		ss[j].Level = levels.Level(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		ss[j].Entries = int64(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		ss[j].Exits = int64(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		ss[j].Clamped = int64(v)
	}
	for j, v := range c.column() {
		if !ok(v) {
			return fail()
		}
		ss[j].Corrected = int64(v)
	}
	for j, v := range c.column() { // scEnd
		if v > 1 {
			return fail()
		}
		ss[j].End = v == 1
	}
	return out, int64(prev), rest, nil
}

// Door columns.
const (
	dcStart = iota // from the previous count's (the block's for the first), in units
	dcIn
	dcOut
	dcCols
)

func packDoors(res Resolution, block int64, cs []DoorCount) []byte {
	cols := make([][]uint64, dcCols)
	for i := range cols {
		cols[i] = make([]uint64, len(cs))
	}
	unit := uint64(res.unit())
	prev := uint64(block)
	for j, c := range cs {
		cols[dcStart][j] = uint64((c.Start - int64(prev)) / int64(unit))
		prev = uint64(c.Start)
		cols[dcIn][j], cols[dcOut][j] = uint64(c.In), uint64(c.Out)
	}
	return packColumns(cols, len(cs))
}

func unpackDoors(res Resolution, block int64, b []byte, out []DoorCount) ([]DoorCount, []byte, error) {
	c, rest, err := openColumns(b, dcCols)
	if err != nil {
		return out, nil, err
	}
	span, unit := res.span(), uint64(res.unit())
	if res == Raw {
		span = 0
	}
	n0 := len(out)
	out = slices.Grow(out, c.n)[:n0+c.n]
	cs := out[n0:]
	prev := uint64(block)
	for j, v := range c.column() { // dcStart
		prev += v * unit
		cs[j] = DoorCount{Start: int64(prev), End: int64(prev) + span}
	}
	for j, v := range c.column() { // dcIn
		if !ok(v) {
			return out[:n0], nil, errCorrupt
		}
		cs[j].In = int64(v)
	}
	for j, v := range c.column() { // dcOut
		if !ok(v) {
			return out[:n0], nil, errCorrupt
		}
		cs[j].Out = int64(v)
	}
	// Counts in a packed block are for distinct windows; the first may continue the previous.
	if n0 > 0 && c.n > 0 && out[n0-1].Start == out[n0].Start {
		out[n0-1].In += out[n0].In
		out[n0-1].Out += out[n0].Out
		out = append(out[:n0], out[n0+1:]...)
	}
	return out, rest, nil
}

// pack rewrites a stored block packed. It returns nil when the block should stay as it is:
// packed already, damaged (left for the reader to skip), too many records, no smaller
// packed, or not read back exactly as the rows read (so packing never changes an answer).
func pack(kind byte, res Resolution, block int64, v []byte) []byte {
	if isPacked(v) {
		ncols := rcCols
		switch {
		case kind == kindDoor:
			ncols = dcCols
		case res == Raw:
			ncols = scCols
		}
		if _, _, rest, err := unpackColumns(v, ncols); err == nil && len(rest) == 0 {
			return nil
		}
	}
	var p []byte
	switch {
	case kind == kindDoor:
		cs, err := decodeDoors(res, block, v, nil)
		if err != nil || len(cs) > maxPacked {
			return nil
		}
		p = packDoors(res, block, cs)
		if back, err := decodeDoors(res, block, p, nil); err != nil || !equal(back, cs) {
			return nil
		}
	case res == Raw:
		ss, err := decodeSamples(block, v, nil)
		if err != nil || len(ss) > maxPacked {
			return nil
		}
		p = packSamples(block, ss)
		if back, err := decodeSamples(block, p, nil); err != nil || !equal(back, ss) {
			return nil
		}
	default:
		rs, err := decodeRollups(res, block, v, nil)
		if err != nil || len(rs) > maxPacked {
			return nil
		}
		p = packRollups(res, block, rs)
		if back, err := decodeRollups(res, block, p, nil); err != nil || !equal(back, rs) {
			return nil
		}
	}
	if len(p) >= len(v) {
		return nil
	}
	return p
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
