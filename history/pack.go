package history

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// perTx is how many blocks of each series one packing transaction moves, by resolution:
// for a 50-zone store with a door per zone, about 1,600 blocks and 0.1 s, so that a flush
// waits at most that behind it.
var perTx = map[Resolution]int{Raw: 6, Minute: 6, Hour: 14}

// packResult is what one packing pass did.
type packResult struct {
	Blocks     int   // blocks rewritten packed
	Saved      int64 // bytes saved
	Done       bool  // every closed block is packed
	PackedUpTo int64 // every block that starts before it is closed (Unix ms), for progress
}

// pack moves closed blocks from the open buckets to the closed ones, packed (closedName),
// oldest first, in transactions of perTx blocks per series, until budget has passed (at least one
// transaction), then returns; the recorder's writer calls it between flushes, so that packing
// never holds the file for longer than one transaction. What is left to do is what is left in
// the open buckets, so a crash leaves a readable file and the next pass goes on from there.
func (f *file) pack(ctx context.Context, budget time.Duration) (packResult, error) {
	var res packResult
	g := gate(f.path)
	g.Lock()
	defer g.Unlock()
	db, err := openFile(f.path, false, false, f.timeout)
	if err != nil {
		return res, err
	}
	defer db.Close()
	t0 := time.Now()
	for {
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		more := false
		err := db.Update(func(tx *bolt.Tx) error {
			var err error
			more, err = f.packStep(tx, &res)
			return err
		})
		if err != nil {
			return res, fmt.Errorf("history: packing %s: %w", f.path, err)
		}
		if !more {
			res.Done = true
			return res, nil
		}
		if time.Since(t0) >= budget {
			return res, nil
		}
	}
}

// packStep moves up to perTx closed blocks of every series; more says whether any are left.
func (f *file) packStep(tx *bolt.Tx, res *packResult) (more bool, err error) {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return false, nil
	}
	var at int64
	if b := meta.Get(keyState); b != nil {
		var st persisted
		if err := json.Unmarshal(b, &st); err != nil {
			return false, fmt.Errorf("the recorder state is damaged: %w", err)
		}
		at = st.At
	}
	// A block starting before limit has ended by at: nothing more is written to it.
	limits := map[Resolution]int64{Raw: f.loc.hour(at), Minute: f.loc.hour(at), Hour: f.loc.day(at)}
	res.PackedUpTo = limits[Raw]
	for _, r := range []Resolution{Raw, Minute, Hour} {
		for _, kind := range []byte{kindZone, kindDoor} {
			open := tx.Bucket(bucketName(kind, r))
			if open == nil {
				continue
			}
			var names [][]byte
			_ = open.ForEachBucket(func(name []byte) error { names = append(names, append([]byte(nil), name...)); return nil })
			for _, name := range names {
				m, left, err := f.moveClosed(tx, kind, r, open.Bucket(name), name, limits[r], res)
				if err != nil {
					return false, err
				}
				more = more || left
				if m > 0 {
					res.PackedUpTo = min(res.PackedUpTo, m)
				}
			}
		}
	}
	return more, nil
}

// moveClosed moves up to perTx closed blocks of one series; next is the first closed block
// left behind (0 if none) and left whether there is one.
func (f *file) moveClosed(tx *bolt.Tx, kind byte, r Resolution, bk *bolt.Bucket, series []byte, limit int64, res *packResult) (next int64, left bool, err error) {
	type blk struct{ k, v []byte }
	var todo []blk
	c := bk.Cursor()
	k, v := c.First()
	for ; k != nil && keyTime(k) < limit && len(todo) < perTx[r]; k, v = c.Next() {
		// Copied: a write in this transaction may move the mapped pages.
		todo = append(todo, blk{append([]byte(nil), k...), append([]byte(nil), v...)})
	}
	if k != nil && keyTime(k) < limit {
		next, left = keyTime(k), true
	}
	if len(todo) == 0 {
		return next, left, nil
	}
	top, err := tx.CreateBucketIfNotExists(closedName(kind, r))
	if err != nil {
		return 0, false, err
	}
	dst, err := top.CreateBucketIfNotExists(series)
	if err != nil {
		return 0, false, err
	}
	dst.FillPercent = 1.0 // blocks arrive in time order
	for _, b := range todo {
		v := b.v
		if old := dst.Get(b.k); old != nil {
			v = append(append([]byte(nil), old...), v...) // records that came after it was closed
		}
		p := pack(kind, r, keyTime(b.k), v)
		if p == nil {
			p = v // damaged, or no smaller packed: moved as it is
		} else {
			res.Blocks++
		}
		res.Saved += int64(len(v) - len(p))
		if err := dst.Put(b.k, p); err != nil {
			return 0, false, err
		}
		if err := bk.Delete(b.k); err != nil {
			return 0, false, err
		}
	}
	return next, left, nil
}
