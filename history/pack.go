package history

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// packCursor is how far closed blocks are packed, per resolution: every block that starts
// before it was packed when the cursor passed it. A block is closed once its hour (or day,
// for hour roll-ups) has ended by the recorder's watermark: nothing more is written to it.
// A missing entry (a new file, or one of format 1) starts at the resolution's first block.
type packCursor map[string]int64

// packChunk is how many hours of blocks one transaction packs (all zones and doors): a
// day of a 50-zone store is about 2,400 blocks and 0.1 s, so a flush waits at most that.
var packChunk = map[Resolution]int64{Raw: 6 * hourMs, Minute: 6 * hourMs, Hour: 14 * 24 * hourMs}

// packResult is what one packing pass did.
type packResult struct {
	Blocks     int   // blocks rewritten packed
	Saved      int64 // bytes saved
	Done       bool  // every closed block is packed
	PackedUpTo int64 // the least cursor (Unix ms), for progress
}

// pack packs closed blocks in transactions of packChunk each, for at most budget (at least
// one transaction), then returns; the recorder's writer calls it between flushes, so that
// packing never holds the file for longer than one transaction. Each transaction moves the
// cursor with the blocks it packed, so a crash leaves a readable file and the next pass
// goes on from there; packing a block twice changes nothing.
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

// packStep packs one chunk of the resolution that lags most; more says whether any is left.
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
	cur := packCursor{}
	if b := meta.Get(keyPacked); b != nil {
		if err := json.Unmarshal(b, &cur); err != nil {
			return false, fmt.Errorf("the packing cursor is damaged: %w", err)
		}
	}
	// A block starting before limit has ended by at.
	limits := map[Resolution]int64{Raw: f.loc.hour(at), Minute: f.loc.hour(at), Hour: f.loc.day(at)}
	pick, lag := Resolution(-1), int64(0)
	for _, r := range []Resolution{Raw, Minute, Hour} {
		c, known := cur[r.String()]
		if !known {
			c = firstBlock(tx, r, limits[r])
			cur[r.String()] = c
		}
		if c < limits[r] && (pick < 0 || limits[r]-c > lag) {
			pick, lag = r, limits[r]-c
		}
	}
	res.PackedUpTo = 0
	for _, c := range cur {
		if res.PackedUpTo == 0 || c < res.PackedUpTo {
			res.PackedUpTo = c
		}
	}
	if pick < 0 {
		return false, nil
	}
	// Skip a gap (the service was off) in one step rather than a transaction per chunk.
	from := firstBlockFrom(tx, pick, cur[pick.String()], limits[pick])
	to := min(from+packChunk[pick], limits[pick])
	for _, kind := range []byte{kindZone, kindDoor} {
		top := tx.Bucket(bucketName(kind, pick))
		if top == nil {
			continue
		}
		err := top.ForEachBucket(func(name []byte) error {
			bk := top.Bucket(name)
			type put struct{ k, v []byte }
			var puts []put
			c := bk.Cursor()
			for k, v := c.Seek(blockKey(from)); k != nil && keyTime(k) < to; k, v = c.Next() {
				if p := pack(kind, pick, keyTime(k), v); p != nil {
					puts = append(puts, put{append([]byte(nil), k...), p})
					res.Saved += int64(len(v) - len(p))
				}
			}
			// After the walk: a put invalidates the cursor.
			for _, p := range puts {
				if err := bk.Put(p.k, p.v); err != nil {
					return err
				}
			}
			res.Blocks += len(puts)
			return nil
		})
		if err != nil {
			return false, err
		}
	}
	cur[pick.String()] = to
	return true, f.putCursor(meta, cur)
}

func (f *file) putCursor(meta *bolt.Bucket, cur packCursor) error {
	js, err := json.Marshal(cur)
	if err != nil {
		return err
	}
	return meta.Put(keyPacked, js)
}

// firstBlock is the earliest block start of a resolution in the file, or limit without any.
func firstBlock(tx *bolt.Tx, r Resolution, limit int64) int64 {
	return firstBlockFrom(tx, r, 0, limit)
}

// firstBlockFrom is the earliest block start at or after from, or limit without any before it.
func firstBlockFrom(tx *bolt.Tx, r Resolution, from, limit int64) int64 {
	first := limit
	for _, kind := range []byte{kindZone, kindDoor} {
		top := tx.Bucket(bucketName(kind, r))
		if top == nil {
			continue
		}
		_ = top.ForEachBucket(func(name []byte) error {
			if k, _ := top.Bucket(name).Cursor().Seek(blockKey(from)); k != nil {
				first = min(first, keyTime(k))
			}
			return nil
		})
	}
	return first
}
