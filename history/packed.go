package history

import (
	"encoding/binary"
	"math/bits"

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

// unpackColumns reads what packColumns wrote, for a kind with ncols columns: the columns
// and the rows that follow the packed part.
func unpackColumns(b []byte, ncols int) (cols [][]uint64, n int, rest []byte, err error) {
	if !isPacked(b) || len(b) < 3 || b[2] != packedV1 {
		return nil, 0, nil, errCorrupt
	}
	size, k := binary.Uvarint(b[3:])
	if k <= 0 || size > uint64(len(b)-3-k) {
		return nil, 0, nil, errCorrupt
	}
	body, rest := b[3+k:3+k+int(size)], b[3+k+int(size):]
	r := reader{b: body}
	cnt, k := binary.Uvarint(r.b)
	if k <= 0 || cnt > maxPacked {
		return nil, 0, nil, errCorrupt
	}
	r.b = r.b[k:]
	n = int(cnt)
	bases, widths := make([]uint64, ncols), make([]int, ncols)
	totalBits := 0
	for i := range ncols {
		h := r.byte()
		widths[i] = int(h & 0x7f)
		if widths[i] > 64 {
			r.err = errCorrupt
		}
		if h&0x80 != 0 {
			v, k := binary.Uvarint(r.b)
			if k <= 0 {
				r.err = errCorrupt
			} else {
				bases[i], r.b = v, r.b[k:]
			}
		}
		totalBits += widths[i] * n
	}
	if r.err != nil || len(r.b) != (totalBits+7)/8 {
		return nil, 0, nil, errCorrupt
	}
	data := r.b
	cols = make([][]uint64, ncols)
	flat := make([]uint64, ncols*n)
	pos := 0 // in bits
	for i := range ncols {
		c := flat[i*n : (i+1)*n : (i+1)*n]
		w := widths[i]
		if w == 0 {
			for j := range c {
				c[j] = bases[i]
			}
		} else {
			mask := ^uint64(0) >> (64 - w)
			for j := range c {
				c[j] = bases[i] + bitsAt(data, pos, w)&mask
				pos += w
			}
		}
		cols[i] = c
	}
	return cols, n, rest, nil
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

// bitsAt reads w (1..64) bits at bit offset pos of data, little-endian.
func bitsAt(data []byte, pos, w int) uint64 {
	i, sh := pos>>3, uint(pos&7)
	var word uint64
	if i+8 <= len(data) {
		word = binary.LittleEndian.Uint64(data[i:])
	} else {
		for k := len(data) - 1; k >= i; k-- {
			word = word<<8 | uint64(data[k])
		}
	}
	v := word >> sh
	if int(sh)+w > 64 && i+8 < len(data) {
		v |= uint64(data[i+8]) << (64 - sh)
	}
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
	cols, n, rest, err := unpackColumns(b, rcCols)
	if err != nil {
		return out, nil, err
	}
	span, unit := uint64(res.span()), uint64(res.unit())
	prev := uint64(block)
	for j := range n {
		var x Rollup
		start := prev + cols[rcStart][j]*unit
		prev = start
		x.Start, x.End = int64(start), int64(start+span)
		covered := span - cols[rcMissing][j]
		x.Covered = int64(covered)
		if m := cols[rcMaxAt][j]; m > 0 {
			if !ok(m) {
				return out, nil, errCorrupt
			}
			x.MaxAt = int64(start + m - 1)
		}
		lo := cols[rcMin][j]
		hi, last := lo+cols[rcMax][j], lo+cols[rcLast][j]
		integral := cols[rcIntegral][j] + lo*covered
		lvl := cols[rcLevel][j]
		if cols[rcMissing][j] > span || !ok(lo) || !ok(hi) || !ok(last) || !ok(integral) || lvl >= uint64(NumLevels) {
			return out, nil, errCorrupt
		}
		x.Min, x.Max, x.Last, x.Integral, x.LastLevel = int64(lo), int64(hi), int64(last), int64(integral), levels.Level(lvl)
		en, ex, cl, co := cols[rcEntries][j], cols[rcExits][j], cols[rcClamped][j], cols[rcCorrected][j]
		if !ok(en) || !ok(ex) || !ok(cl) || !ok(co) {
			return out, nil, errCorrupt
		}
		x.Entries, x.Exits, x.Clamped, x.Corrected = int64(en), int64(ex), int64(cl), int64(co)
		rem := covered
		for l := range NumLevels {
			if l == int(lvl) {
				continue
			}
			v := cols[rcAtLevel+l][j]
			if v > rem {
				return out, nil, errCorrupt
			}
			x.AtLevel[l] = int64(v)
			rem -= v
		}
		x.AtLevel[lvl] = int64(rem)
		out = appendMerged(out, x)
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
	cols, n, rest, err := unpackColumns(b, scCols)
	prev := uint64(block)
	if err != nil {
		return out, block, nil, err
	}
	for j := range n {
		if !ok(cols[scAt][j]) || cols[scLevel][j] >= uint64(NumLevels) || cols[scEnd][j] > 1 {
			return out, block, nil, errCorrupt
		}
		s := Sample{At: int64(prev + cols[scAt][j]), Level: levels.Level(cols[scLevel][j]), End: cols[scEnd][j] == 1}
		prev = uint64(s.At)
		oc, de, en, ex, cl, co := cols[scOccupancy][j], cols[scDeficit][j], cols[scEntries][j], cols[scExits][j], cols[scClamped][j], cols[scCorrected][j]
		if !ok(oc) || !ok(de) || !ok(en) || !ok(ex) || !ok(cl) || !ok(co) {
			return out, block, nil, errCorrupt
		}
		s.Occupancy, s.Deficit, s.Entries, s.Exits, s.Clamped, s.Corrected = int64(oc), int64(de), int64(en), int64(ex), int64(cl), int64(co)
		out = append(out, s)
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
	cols, n, rest, err := unpackColumns(b, dcCols)
	if err != nil {
		return out, nil, err
	}
	span, unit := res.span(), uint64(res.unit())
	if res == Raw {
		span = 0
	}
	prev := uint64(block)
	for j := range n {
		start := prev + cols[dcStart][j]*unit
		prev = start
		in, o := cols[dcIn][j], cols[dcOut][j]
		if !ok(in) || !ok(o) {
			return out, nil, errCorrupt
		}
		out = appendDoorCount(out, DoorCount{Start: int64(start), End: int64(start) + span, In: int64(in), Out: int64(o)})
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
