package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"sort"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/crowdwatch/crowdwatch/storage"
)

// The history file has its own bbolt file, not a bucket in the main database: bbolt holds an
// exclusive lock on a file open for writing, and the main database is open for the service's
// whole life, so `crowdwatch report` could never read it while the service runs. The history
// file is opened only for each flush and closed after it, so readers get a shared lock in
// between.

// Format 2 packs closed blocks (packed.go); a format-1 file is taken over as it is and its
// blocks packed in the background (file.pack), since every block says whether it is packed.
const (
	historyFormat  = "crowdwatch-history/2"
	historyFormat1 = "crowdwatch-history/1"
)

var (
	bucketMeta = []byte("meta")
	keyFormat  = []byte("format")
	keySite    = []byte("site")
	keyZone    = []byte("timezone")
	keyState   = []byte("state")
	keyLayout  = []byte("layout")
)

// bucketName is the top-level bucket of a series kind and resolution; each zone or door has
// a bucket inside it, keyed by block start.
func bucketName(kind byte, res Resolution) []byte {
	return []byte{kind, ':', "rmh"[res]}
}

// closedName is the bucket of closed blocks of a kind and resolution ("z:M" beside "z:m"):
// the writer moves a block there, packed, once its hour or day has ended (pack.go). Closed
// blocks arrive in time order, so its pages fill whole; the open bucket holds about one block
// per series. A key may be in both when records reach a block after it was closed: the reader
// reads the closed value, then the open one (a packed part followed by rows).
func closedName(kind byte, res Resolution) []byte {
	return []byte{kind, ':', "RMH"[res]}
}

const (
	kindZone = 'z'
	kindDoor = 'd'
)

// ErrNoHistory means the history file does not exist yet.
var ErrNoHistory = errors.New("no history recorded yet")

// ErrLocked means another process held the file for longer than the timeout.
var ErrLocked = errors.New("the history file is busy (the service is writing to it, or a long report is reading it); try again")

// persisted is what the recorder needs to continue after a restart, written with each flush.
type persisted struct {
	// At: every sample and every window that ended by At is in the file.
	At int64 `json:"at"`
	// Doors are door totals (in, out) as last seen; Zones are cumulative clamped and
	// corrected. Differences from these give the first sample's figures after a restart.
	Doors map[string][2]uint64 `json:"doors"`
	Zones map[string][2]int64  `json:"zones"`
}

type blockRef struct {
	kind   byte
	res    Resolution
	series string
	start  int64
}

// batch is what the recorder hands to the writer: bytes to append to blocks, and the state.
type batch struct {
	blocks map[blockRef][]byte
	state  *persisted
	size   int
}

func newBatch() *batch { return &batch{blocks: map[blockRef][]byte{}} }

func (b *batch) add(ref blockRef, rec []byte) {
	b.blocks[ref] = append(b.blocks[ref], rec...)
	b.size += len(rec)
}

// absorb appends a later batch to b.
func (b *batch) absorb(o *batch) {
	refs := make([]blockRef, 0, len(o.blocks))
	for r := range o.blocks {
		refs = append(refs, r)
	}
	for _, r := range refs {
		b.add(r, o.blocks[r])
	}
	if o.state != nil {
		b.state = o.state
	}
}

// gates give the writer precedence over readers in the same process: sync.RWMutex blocks new
// readers once a writer waits, so frequent API queries cannot keep the file's shared lock
// held and starve the flushes. Readers in other processes (the report command) are rare.
var gates sync.Map // path -> *sync.RWMutex

func gate(path string) *sync.RWMutex {
	g, _ := gates.LoadOrStore(filepath.Clean(path), &sync.RWMutex{})
	return g.(*sync.RWMutex)
}

// openFile opens the history file; read-only opens take a shared lock and can run together.
// It goes through storage.Open, so a damaged file is refused with one clear error and a
// panic inside bbolt does not take the service down. verify walks the whole file once; the
// writer does it when it starts, not on every per-flush or per-query open.
func openFile(path string, readOnly, verify bool, timeout time.Duration) (*bolt.DB, error) {
	db, err := storage.Open(path, storage.Options{Timeout: timeout, ReadOnly: readOnly, Verify: verify})
	switch {
	case readOnly && errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("history: %s: %w", path, ErrNoHistory)
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("history: %s: %w", path, ErrLocked)
	case err != nil:
		return nil, err
	}
	return db, nil
}

// Backup writes a consistent copy of the history file at path, read-only beside the
// recorder (which waits for it as for any reader); see storage.Backup.
func Backup(path string, timeout time.Duration, start func(size int64) io.Writer) (int64, error) {
	g := gate(path)
	g.RLock()
	defer g.RUnlock()
	db, err := openFile(path, true, false, timeout)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	return storage.Backup(db, start)
}

// checkMeta refuses another program's file or another site's history.
func checkMeta(tx *bolt.Tx, path, site string) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return fmt.Errorf("history: %s is not a Crowdwatch history file (no meta bucket)", path)
	}
	if f := string(meta.Get(keyFormat)); f != historyFormat && f != historyFormat1 {
		return fmt.Errorf("history: %s has format %q, this version reads %q", path, f, historyFormat)
	}
	if s := string(meta.Get(keySite)); site != "" && s != site {
		return fmt.Errorf("history: %s belongs to site %q, not %q", path, s, site)
	}
	return nil
}

// file is the writer side: it owns every write transaction on the history file.
type file struct {
	path, site, zone string
	timeout          time.Duration
	loc              tz
	layout           *Site // written to meta so the report command can work from the file alone
	// converted is set when init found a format-1 file (its blocks are packed in the background).
	converted bool
}

// init creates the file's meta on first use and reads the recorder's state.
func (f *file) init() (*persisted, error) {
	g := gate(f.path)
	g.Lock()
	defer g.Unlock()
	db, err := openFile(f.path, false, true, f.timeout)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var st *persisted
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := f.ensureMeta(tx)
		if err != nil {
			return err
		}
		if b := meta.Get(keyState); b != nil {
			st = &persisted{}
			if err := json.Unmarshal(b, st); err != nil {
				return fmt.Errorf("history: %s: the recorder state is damaged: %w", f.path, err)
			}
		}
		return nil
	})
	return st, err
}

// ensureMeta creates the file's meta on first use, checks it is this site's history, and
// records the time zone and the site's layout for the report command.
func (f *file) ensureMeta(tx *bolt.Tx) (*bolt.Bucket, error) {
	meta, err := storage.ClaimMeta(tx, bucketMeta, map[string]string{string(keyFormat): historyFormat, string(keySite): f.site})
	if errors.Is(err, storage.ErrNotOurs) {
		return nil, fmt.Errorf("history: %s is another program's database (it has no meta bucket)", f.path)
	}
	if err != nil {
		return nil, err
	}
	if err := checkMeta(tx, f.path, f.site); err != nil {
		return nil, err
	}
	if string(meta.Get(keyFormat)) == historyFormat1 {
		f.converted = true
		// Format-1 blocks read as they are; pack packs them in the background. From now on
		// the file may hold packed blocks, which format 1 readers cannot read.
		if err := meta.Put(keyFormat, []byte(historyFormat)); err != nil {
			return nil, err
		}
	}
	// The time zone only aligns blocks; records carry absolute times, so a changed zone
	// keeps old history readable. Keep the latest for the report command.
	if err := meta.Put(keyZone, []byte(f.zone)); err != nil {
		return nil, err
	}
	if f.layout != nil {
		js, err := json.Marshal(layoutOf(*f.layout))
		if err != nil {
			return nil, err
		}
		if err := meta.Put(keyLayout, js); err != nil {
			return nil, err
		}
	}
	return meta, nil
}

// write appends a batch in one transaction.
func (f *file) write(b *batch) error {
	g := gate(f.path)
	g.Lock()
	defer g.Unlock()
	db, err := openFile(f.path, false, false, f.timeout)
	if err != nil {
		return err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketMeta) == nil {
			// The file was moved away while the service ran: start a new one properly.
			if _, err := f.ensureMeta(tx); err != nil {
				return err
			}
		}
		refs := make([]blockRef, 0, len(b.blocks))
		for r := range b.blocks {
			refs = append(refs, r)
		}
		// In key order, so bbolt appends to pages instead of splitting them.
		sort.Slice(refs, func(i, j int) bool {
			a, c := refs[i], refs[j]
			if a.kind != c.kind || a.res != c.res {
				return a.kind < c.kind || (a.kind == c.kind && a.res < c.res)
			}
			if a.series != c.series {
				return a.series < c.series
			}
			return a.start < c.start
		})
		for _, r := range refs {
			top, err := tx.CreateBucketIfNotExists(bucketName(r.kind, r.res))
			if err != nil {
				return err
			}
			bk, err := top.CreateBucketIfNotExists([]byte(r.series))
			if err != nil {
				return err
			}
			// Keys are time-ordered: writes go at the end, so pages split full.
			bk.FillPercent = 1.0
			key := blockKey(r.start)
			old := bk.Get(key)
			v := make([]byte, 0, len(old)+len(b.blocks[r]))
			v = append(append(v, old...), b.blocks[r]...)
			if err := bk.Put(key, v); err != nil {
				return err
			}
		}
		if b.state != nil {
			js, err := json.Marshal(b.state)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketMeta).Put(keyState, js)
		}
		return nil
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("history: writing %s: %w", f.path, err)
	}
	return nil
}

// Retention is how long each resolution is kept; 0 keeps it for ever.
type Retention struct {
	Raw, Minute, Hour time.Duration
}

// prune deletes every block that ended at least its resolution's retention before now. A
// block is deleted whole, so a record lives until the last record of its block is due: raw
// and minute blocks are one local hour, hour blocks one local day. It works in transactions
// of at most maxPerTx deletions so that a flush never waits long behind it.
func (f *file) prune(ctx context.Context, now time.Time, keep Retention, maxPerTx int) (map[Resolution]int, error) {
	deleted := map[Resolution]int{}
	g := gate(f.path)
	g.Lock()
	defer g.Unlock()
	db, err := openFile(f.path, false, false, f.timeout)
	if err != nil {
		return deleted, err
	}
	defer db.Close()
	for res, d := range map[Resolution]time.Duration{Raw: keep.Raw, Minute: keep.Minute, Hour: keep.Hour} {
		if d <= 0 {
			continue
		}
		cutoff := now.Add(-d).UnixMilli()
		for _, kind := range []byte{kindZone, kindDoor} {
			for {
				if ctx.Err() != nil {
					return deleted, ctx.Err()
				}
				n := 0
				err := db.Update(func(tx *bolt.Tx) error {
					for _, name := range [][]byte{closedName(kind, res), bucketName(kind, res)} {
						if err := f.pruneTop(tx.Bucket(name), res, cutoff, maxPerTx, &n); err != nil {
							return err
						}
					}
					return nil
				})
				deleted[res] += n
				if err != nil {
					return deleted, fmt.Errorf("history: pruning %s: %w", f.path, err)
				}
				if n < maxPerTx {
					break
				}
			}
		}
	}
	return deleted, nil
}

// pruneTop deletes a top bucket's blocks that ended by cutoff, counting them in n, up to max.
func (f *file) pruneTop(top *bolt.Bucket, res Resolution, cutoff int64, maxPerTx int, n *int) error {
	if top == nil {
		return nil
	}
	return top.ForEachBucket(func(name []byte) error {
		bk := top.Bucket(name)
		c := bk.Cursor()
		for k, _ := c.First(); k != nil && *n < maxPerTx; k, _ = c.First() {
			start := keyTime(k)
			end := start + hourMs
			if res == Hour {
				end = f.loc.nextDay(start)
			}
			if end > cutoff {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			*n++
		}
		return nil
	})
}

// layout is the site as stored in the file's meta.
type layout struct {
	Site     string     `json:"site"`
	TimeZone string     `json:"timezone"`
	Zones    []ZoneInfo `json:"zones"`
	Doors    []DoorInfo `json:"doors"`
}

func layoutOf(s Site) layout {
	return layout{Site: s.ID, TimeZone: s.Loc.String(), Zones: s.Zones, Doors: s.Doors}
}

// readLayout gives the site a history file was recorded for.
func readLayout(tx *bolt.Tx) (Site, error) {
	meta := tx.Bucket(bucketMeta)
	var l layout
	if meta == nil || meta.Get(keyLayout) == nil {
		return Site{}, errors.New("history: the file does not describe its site; give the store file (--config)")
	}
	if err := json.Unmarshal(meta.Get(keyLayout), &l); err != nil {
		return Site{}, fmt.Errorf("history: the site description in the file is damaged: %w", err)
	}
	loc, err := time.LoadLocation(l.TimeZone)
	if err != nil {
		return Site{}, fmt.Errorf("history: the file's time zone %q: %w", l.TimeZone, err)
	}
	return Site{ID: l.Site, Loc: loc, Zones: l.Zones, Doors: l.Doors}, nil
}
