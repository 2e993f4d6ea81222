package history

import (
	"bytes"
	"errors"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// blocks calls fn for each stored block of a series that may hold records in [a, b), in
// time order, from the closed and the open bucket (a block in both reads as the closed value
// followed by the open one: records that reached it after it was closed).
func (q *txq) blocks(kind byte, res Resolution, series string, a, b int64, fn func(start int64, v []byte) error) error {
	cursor := func(name []byte) *bolt.Cursor {
		if top := q.tx.Bucket(name); top != nil {
			if bk := top.Bucket([]byte(series)); bk != nil {
				return bk.Cursor()
			}
		}
		return nil
	}
	from := blockKey(q.tz.block(res, a))
	closed, open := cursor(closedName(kind, res)), cursor(bucketName(kind, res))
	var ck, cv, ok, ov []byte
	if closed != nil {
		ck, cv = closed.Seek(from)
	}
	if open != nil {
		ok, ov = open.Seek(from)
	}
	for ck != nil || ok != nil {
		var k, v []byte
		switch c := compareKeys(ck, ok); {
		case c < 0:
			k, v = ck, cv
			ck, cv = closed.Next()
		case c > 0:
			k, v = ok, ov
			ok, ov = open.Next()
		default:
			k, v = ck, append(append([]byte(nil), cv...), ov...)
			ck, cv = closed.Next()
			ok, ov = open.Next()
		}
		if keyTime(k) >= b {
			return nil
		}
		if err := fn(keyTime(k), v); err != nil {
			return err
		}
	}
	return nil
}

// compareKeys orders block keys with nil (the end of a cursor) last.
func compareKeys(a, b []byte) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return 1
	case b == nil:
		return -1
	}
	return bytes.Compare(a, b)
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
	return compose(q, a, b, res,
		func(a, b int64) ([]Rollup, error) { return q.fromRaw(zone, a, b, nil) },
		func(res Resolution, lo, hi int64) ([]Rollup, error) { return q.records(zone, res, lo, hi) })
}

// compose gives a series over [a, b) at res from what is stored: the whole windows of res
// that the watermark has closed from their own records, and the ragged ends (and the still
// open time) from the next finer resolution, down to raw. Zones' roll-ups and doors'
// counts are composed alike; raw reads the finest level and stored reads whole windows.
func compose[T any](q *txq, a, b int64, res Resolution, raw func(a, b int64) ([]T, error),
	stored func(res Resolution, lo, hi int64) ([]T, error)) ([]T, error) {
	if a >= b {
		return nil, nil
	}
	if res == Raw {
		return raw(a, b)
	}
	finer := Raw
	if res == Hour {
		finer = Minute
	}
	lo, hi := q.ceil(res, a), min(q.floor(res, b), q.floor(res, q.wm))
	if lo >= hi {
		return compose(q, a, b, finer, raw, stored)
	}
	head, err := compose(q, a, lo, finer, raw, stored)
	if err != nil {
		return nil, err
	}
	mid, err := stored(res, lo, hi)
	if err != nil {
		return nil, err
	}
	tail, err := compose(q, hi, b, finer, raw, stored)
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
	return compose(q, a, b, res,
		func(a, b int64) ([]DoorCount, error) { return q.doorBlocks(door, Raw, a, min(b, q.wm+1)) },
		func(res Resolution, lo, hi int64) ([]DoorCount, error) { return q.doorBlocks(door, res, lo, hi) })
}

// doorBlocks reads a door's stored counts at res that start in [a, b); a damaged block is
// left out and counted (txq.skip).
func (q *txq) doorBlocks(door string, res Resolution, a, b int64) ([]DoorCount, error) {
	var out []DoorCount
	err := q.blocks(kindDoor, res, door, a, b, func(start int64, v []byte) error {
		n := len(out)
		var err error
		if out, err = decodeDoors(res, start, v, out); errors.Is(err, errCorrupt) {
			out = out[:n]
		}
		return q.skip(err)
	})
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(out, func(c DoorCount) bool { return c.Start < a || c.Start >= b }), nil
}
