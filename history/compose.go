package history

import (
	"errors"
	"slices"
)

// blocks calls fn for each stored block of a series that may hold records in [a, b).
func (q *txq) blocks(kind byte, res Resolution, series string, a, b int64, fn func(start int64, v []byte) error) error {
	top := q.tx.Bucket(bucketName(kind, res))
	if top == nil {
		return nil
	}
	bk := top.Bucket([]byte(series))
	if bk == nil {
		return nil
	}
	c := bk.Cursor()
	for k, v := c.Seek(blockKey(q.tz.block(res, a))); k != nil && keyTime(k) < b; k, v = c.Next() {
		if err := fn(keyTime(k), v); err != nil {
			return err
		}
	}
	return nil
}

// raw returns a zone's samples in [a, b) and those before a in a's block (the value in force).
func (q *txq) raw(zone string, a, b int64) ([]Sample, error) {
	var out []Sample
	err := q.blocks(kindZone, Raw, zone, a, b, func(start int64, v []byte) error {
		n := len(out)
		var err error
		if out, err = decodeSamples(start, v, out); errors.Is(err, errCorrupt) {
			// Nothing is known for the damaged hour: the value before it must not run on
			// through it. The next block opens with the value in force at its start.
			out = append(out[:n], Sample{At: start, End: true})
		}
		return q.skip(err)
	})
	i := len(out)
	for i > 0 && out[i-1].At >= b {
		i--
	}
	return out[:i], err
}

func (q *txq) records(zone string, res Resolution, a, b int64) ([]Rollup, error) {
	var all []Rollup
	err := q.blocks(kindZone, res, zone, a, b, func(start int64, v []byte) error {
		n := len(all)
		var err error
		if all, err = decodeRollups(res, start, v, all); errors.Is(err, errCorrupt) {
			all = all[:n] // a window left out reads as not recorded
		}
		return q.skip(err)
	})
	out := all[:0]
	for _, x := range all {
		if x.Start >= a && x.Start < b {
			out = append(out, x)
		}
	}
	return out, err
}

// ceil and floor align to a resolution's windows (local hours, minutes).
func (q *txq) floor(res Resolution, t int64) int64 {
	if res == Hour {
		return q.tz.hour(t)
	}
	return q.tz.minute(t)
}

func (q *txq) ceil(res Resolution, t int64) int64 {
	f := q.floor(res, t)
	if f < t {
		return f + res.span()
	}
	return f
}

// windows gives a zone's roll-ups over [a, b) at res, from the stored windows where the
// recorder has closed them and from finer data at the edges and after the last closed
// window. Windows without any data are left out.
func (q *txq) windows(zone string, a, b int64, res Resolution) ([]Rollup, error) {
	if a >= b {
		return nil, nil
	}
	if res == Raw {
		return q.fromRaw(zone, a, b, nil)
	}
	finer := Raw
	if res == Hour {
		finer = Minute
	}
	lo, hi := q.ceil(res, a), min(q.floor(res, b), q.floor(res, q.wm))
	if lo >= hi {
		return q.windows(zone, a, b, finer)
	}
	head, err := q.windows(zone, a, lo, finer)
	if err != nil {
		return nil, err
	}
	mid, err := q.records(zone, res, lo, hi)
	if err != nil {
		return nil, err
	}
	tail, err := q.windows(zone, hi, b, finer)
	if err != nil {
		return nil, err
	}
	return slices.Concat(head, mid, tail), nil
}

// fromRaw aggregates raw samples into windows over [a, min(b, watermark)): at the given
// edges, or at minute boundaries when edges is nil.
func (q *txq) fromRaw(zone string, a, b int64, edges []int64) ([]Rollup, error) {
	b = min(b, q.wm)
	if a >= b {
		return nil, nil
	}
	ss, err := q.raw(zone, a, b)
	if err != nil {
		return nil, err
	}
	if edges != nil {
		// Nothing is known after the watermark: the last value must not run on to `to`.
		clipped := make([]int64, 0, len(edges))
		for _, e := range edges {
			clipped = append(clipped, max(min(e, b), a))
		}
		edges = clipped
	} else {
		edges = []int64{a}
		for t := q.ceil(Minute, a+1); t < b; t += minuteMs {
			if t > a {
				edges = append(edges, t)
			}
		}
		edges = append(edges, b)
	}
	var out []Rollup
	for _, w := range Aggregate(ss, edges) {
		if w.Covered > 0 || w.Entries != 0 || w.Exits != 0 || w.Clamped != 0 || w.Corrected != 0 {
			out = append(out, w)
		}
	}
	return out, nil
}

// doors gives a door's crossings over [a, b) at res, composed like windows.
func (q *txq) doors(door string, a, b int64, res Resolution) ([]DoorCount, error) {
	if a >= b {
		return nil, nil
	}
	if res == Raw {
		b = min(b, q.wm+1)
		var out []DoorCount
		err := q.blocks(kindDoor, Raw, door, a, b, func(start int64, v []byte) error {
			n := len(out)
			var err error
			if out, err = decodeDoors(Raw, start, v, out); errors.Is(err, errCorrupt) {
				out = out[:n]
			}
			return q.skip(err)
		})
		return slices.DeleteFunc(out, func(c DoorCount) bool { return c.Start < a || c.Start >= b }), err
	}
	finer := Raw
	if res == Hour {
		finer = Minute
	}
	lo, hi := q.ceil(res, a), min(q.floor(res, b), q.floor(res, q.wm))
	if lo >= hi {
		return q.doors(door, a, b, finer)
	}
	head, err := q.doors(door, a, lo, finer)
	if err != nil {
		return nil, err
	}
	var mid []DoorCount
	err = q.blocks(kindDoor, res, door, lo, hi, func(start int64, v []byte) error {
		n := len(mid)
		var err error
		if mid, err = decodeDoors(res, start, v, mid); errors.Is(err, errCorrupt) {
			mid = mid[:n]
		}
		return q.skip(err)
	})
	if err != nil {
		return nil, err
	}
	mid = slices.DeleteFunc(mid, func(c DoorCount) bool { return c.Start < lo || c.Start >= hi })
	tail, err := q.doors(door, hi, b, finer)
	if err != nil {
		return nil, err
	}
	return slices.Concat(head, mid, tail), nil
}
