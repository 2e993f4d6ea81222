package zones

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/storage"
)

// Store is the bbolt file. Only the engine goroutine writes to it; readers (the report
// command, tests) open their own read transactions.
type Store struct {
	db   *bolt.DB
	path string
	// arena holds one commit's encoded keys and records: bbolt needs them until the
	// transaction ends, and reusing it saves an allocation per record.
	arena []byte
	// failCommit, set only by tests, makes the next commits fail as a full disk would.
	failCommit func() error
}

var (
	bucketMeta    = []byte("meta")
	bucketDevices = []byte("devices")
	bucketZones   = []byte("zones")
	bucketDoors   = []byte("doors")
	bucketLog     = []byte("log")
	bucketAudit   = []byte("audit")

	keyFormat  = []byte("format")
	keySite    = []byte("site")
	keyLogBase = []byte("log_base")
)

// formatVersion names the file layout; a file with another value is refused, but for
// formatJSON, which OpenStore migrates.
const (
	formatVersion = "crowdwatch/2" // binary records (zones/record.go)
	formatJSON    = "crowdwatch/1" // JSON records
)

// migrateChunk bounds the records one migration transaction rewrites, so that a long
// crossing log does not make one transaction hold it all in memory (a variable for tests).
var migrateChunk = 5000

// ErrForeignFile is returned for a database that is not Crowdwatch's or not this site's.
var ErrForeignFile = errors.New("not a Crowdwatch database for this site")

// OpenStore opens (or creates) the database for a site. A damaged file, another program's
// bbolt file, another site's database or a file held by a running instance fail with an
// error that says which.
func OpenStore(path, site string) (*Store, error) {
	db, err := storage.Open(path, storage.Options{
		Timeout:         2 * time.Second,
		InitialMmapSize: 64 << 20,
		Verify:          true,
	})
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, path: path}
	if err := s.init(site); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(site string) error {
	if err := s.db.Update(func(tx *bolt.Tx) error {
		meta, err := storage.ClaimMeta(tx, bucketMeta, map[string]string{string(keyFormat): formatVersion, string(keySite): site})
		if errors.Is(err, storage.ErrNotOurs) {
			return fmt.Errorf("storage: %s: %w (it has no %q bucket)", s.path, ErrForeignFile, bucketMeta)
		}
		if err != nil {
			return err
		}
		if f := string(meta.Get(keyFormat)); f != formatVersion && f != formatJSON {
			return fmt.Errorf("storage: %s: %w (format %q, this version reads %q and %q)", s.path, ErrForeignFile, f, formatVersion, formatJSON)
		}
		if got := string(meta.Get(keySite)); got != site {
			return fmt.Errorf("storage: %s: %w (it belongs to site %q, the config says %q)", s.path, ErrForeignFile, got, site)
		}
		for _, b := range [][]byte{bucketDevices, bucketZones, bucketDoors, bucketLog, bucketAudit} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	return s.migrate()
}

// migrate rewrites a format-1 file's JSON records in format 2, a chunk per transaction, then
// marks the file format 2. Interrupted, it leaves a file of both kinds of record still marked
// format 1, which loads (each record is read by its first byte) and is migrated at the next
// start.
func (s *Store) migrate() error {
	var format string
	if err := s.db.View(func(tx *bolt.Tx) error {
		format = string(tx.Bucket(bucketMeta).Get(keyFormat))
		return nil
	}); err != nil || format == formatVersion {
		return err
	}
	total := 0
	for _, name := range [][]byte{bucketDevices, bucketZones, bucketDoors, bucketLog, bucketAudit} {
		var after []byte // the last key rewritten so far
		for {
			n, last, err := s.migrateChunk(name, after)
			if err != nil {
				return fmt.Errorf("storage: %s: migrating %s records to format %s: %w", s.path, name, formatVersion, err)
			}
			total += n
			if last == nil {
				break
			}
			after = last
		}
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keyFormat, []byte(formatVersion))
	}); err != nil {
		return fmt.Errorf("storage: %s: migrating to format %s: %w", s.path, formatVersion, err)
	}
	slog.Info("storage: occupancy file migrated to binary records", "path", s.path, "from", formatJSON, "to", formatVersion, "records", total)
	return nil
}

// migrateChunk rewrites up to migrateChunk records after key after (from the first when nil)
// and returns how many it rewrote and the last key it looked at, nil when the bucket is done.
func (s *Store) migrateChunk(name, after []byte) (int, []byte, error) {
	n := 0
	var last []byte
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(name)
		type kv struct{ k, v []byte }
		var puts []kv
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && string(k) == string(after) {
				k, v = c.Next()
			}
		}
		seen := 0
		for ; k != nil && seen < migrateChunk; k, v = c.Next() {
			seen++
			last = append([]byte(nil), k...)
			nv, err := migrateRecord(string(name), v)
			if err != nil {
				return fmt.Errorf("record %x: %w", k, err)
			}
			if nv != nil {
				puts = append(puts, kv{last, nv})
			}
		}
		if k == nil {
			last = nil
		}
		// Written once the walk is done: changing a bucket under a moving cursor skips keys.
		for _, p := range puts {
			if err := b.Put(p.k, p.v); err != nil {
				return err
			}
		}
		n = len(puts)
		return nil
	})
	return n, last, err
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Backup writes a consistent copy of the file as of one read transaction, beside the
// engine's writes (storage.Backup).
func (s *Store) Backup(start func(size int64) io.Writer) (int64, error) {
	return storage.Backup(s.db, start)
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// RegisterMetrics exposes the file's size and bbolt's free-page bookkeeping, read at scrape
// time. bbolt also keeps in the Go heap, per page written since the file was opened and still
// in use, which transaction wrote it, so the heap grows with the file (docs/benchmarks.md).
func (s *Store) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowdwatch_storage_file_bytes", Help: "Size of the occupancy database file."},
			func() float64 {
				fi, err := os.Stat(s.path)
				if err != nil {
					return 0
				}
				return float64(fi.Size())
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowdwatch_storage_free_pages", Help: "Free and pending pages in the occupancy database."},
			func() float64 { st := s.db.Stats(); return float64(st.FreePageN + st.PendingPageN) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowdwatch_storage_freelist_bytes", Help: "Bytes bbolt's free-page list takes in the file."},
			func() float64 { return float64(s.db.Stats().FreelistInuse) }),
	)
}

// batch is what one commit writes.
type batch struct {
	devices map[string]*deviceState
	zones   map[int]bool
	doors   map[int]bool // doors whose totals changed: only these are rewritten
	log     []*LogEntry
	audit   []*LogEntry
	// pruneBefore, when set, folds crossing-log entries older than it into the log's base
	// and deletes them (at most pruneChunk per commit); pruned reports how many went.
	pruneBefore time.Time
	pruned      int
}

func (b *batch) empty() bool {
	return len(b.devices) == 0 && len(b.zones) == 0 && len(b.doors) == 0 && len(b.log) == 0 && len(b.audit) == 0
}

func (b *batch) clear() {
	clear(b.devices)
	clear(b.zones)
	clear(b.doors)
	b.log = b.log[:0]
	b.audit = b.audit[:0]
	b.pruneBefore, b.pruned = time.Time{}, 0
}

// commit writes one batch in one transaction.
func (s *Store) commit(b *batch, occ *occupancy) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if s.failCommit != nil {
			if err := s.failCommit(); err != nil {
				return err
			}
		}
		// Each key and record is appended to the arena and handed to bbolt as a slice of it.
		a := s.arena[:0]
		put := func(bk *bolt.Bucket, start, mid int) error {
			return bk.Put(a[start:mid:mid], a[mid:len(a):len(a)])
		}
		var err error
		devs := tx.Bucket(bucketDevices)
		for id, d := range b.devices {
			start := len(a)
			a = append(a, id...)
			mid := len(a)
			if a, err = appendDevice(a, d); err != nil {
				return fmt.Errorf("device %q: %w", id, err)
			}
			if err := put(devs, start, mid); err != nil {
				return err
			}
		}
		zs := tx.Bucket(bucketZones)
		for z := range b.zones {
			start := len(a)
			a = append(a, occ.model.Zones[z].ID...)
			mid := len(a)
			a = appendZone(a, &occ.zones[z])
			if err := put(zs, start, mid); err != nil {
				return err
			}
		}
		ds := tx.Bucket(bucketDoors)
		for i := range b.doors {
			start := len(a)
			a = append(a, occ.model.Doors[i].ID...)
			mid := len(a)
			a = appendDoor(a, &occ.doors[i])
			if err := put(ds, start, mid); err != nil {
				return err
			}
		}
		for _, l := range [...]struct {
			bk      *bolt.Bucket
			entries []*LogEntry
		}{{tx.Bucket(bucketLog), b.log}, {tx.Bucket(bucketAudit), b.audit}} {
			// Keys only ever grow, so pages can be packed full instead of bbolt's default half.
			l.bk.FillPercent = 1.0
			for _, e := range l.entries {
				seq, err := l.bk.NextSequence()
				if err != nil {
					return err
				}
				e.Seq = seq
				start := len(a)
				a = binary.BigEndian.AppendUint64(a, seq)
				mid := len(a)
				a = appendEntry(a, e)
				if err := put(l.bk, start, mid); err != nil {
					return err
				}
			}
		}
		// Kept for the next commit unless one unusual commit made it large.
		if cap(a) <= 1<<20 {
			s.arena = a[:0]
		}
		if !b.pruneBefore.IsZero() {
			n, err := pruneLog(tx, occ.model, b.pruneBefore)
			if err != nil {
				return fmt.Errorf("pruning the crossing log: %w", err)
			}
			b.pruned = n
		}
		return nil
	})
}

// pruneChunk bounds the entries one commit prunes, so a long backlog never makes one commit
// (and the acknowledgements waiting on it) slow.
const pruneChunk = 5000

// logBase is the fold of every crossing-log entry pruned so far, by zone and door id, so
// that the base plus the entries still kept replays to the same figures.
type logBase struct {
	Zones   map[string]zoneRecord `json:"zones"`
	Doors   map[string]doorRecord `json:"doors"`
	Through uint64                `json:"through"` // the last pruned entry's sequence
}

func readBase(tx *bolt.Tx, m *Model) (*occupancy, uint64, error) {
	occ := newOccupancy(m)
	raw := tx.Bucket(bucketMeta).Get(keyLogBase)
	if raw == nil {
		return occ, 0, nil
	}
	var b logBase
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, 0, fmt.Errorf("the crossing log's base: %w", err)
	}
	for id, z := range b.Zones {
		if i, ok := m.zoneIdx[id]; ok {
			occ.zones[i] = z
		}
	}
	for id, d := range b.Doors {
		if i, ok := m.doorIdx[id]; ok {
			occ.doors[i] = d
		}
	}
	return occ, b.Through, nil
}

// pruneLog folds the oldest crossing-log entries recorded before cutoff into the base and
// deletes them. The audit bucket (corrections and resets, with who and why) is kept whole.
func pruneLog(tx *bolt.Tx, m *Model, cutoff time.Time) (int, error) {
	base, through, err := readBase(tx, m)
	if err != nil {
		return 0, err
	}
	var keys [][]byte
	c := tx.Bucket(bucketLog).Cursor()
	for k, v := c.First(); k != nil && len(keys) < pruneChunk; k, v = c.Next() {
		e := &LogEntry{Seq: binary.BigEndian.Uint64(k)}
		if err := decodeRecord(v, e); err != nil {
			return 0, fmt.Errorf("entry %d: %w", e.Seq, err)
		}
		if !e.At.Before(cutoff) {
			break
		}
		base.replay(e)
		through = e.Seq
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return 0, nil
	}
	// Deleting under a moving cursor skips entries in bbolt; delete once the walk is done.
	lb := tx.Bucket(bucketLog)
	for _, k := range keys {
		if err := lb.Delete(k); err != nil {
			return 0, err
		}
	}
	b := logBase{Zones: map[string]zoneRecord{}, Doors: map[string]doorRecord{}, Through: through}
	for i, z := range m.Zones {
		b.Zones[z.ID] = base.zones[i]
	}
	for i, d := range m.Doors {
		b.Doors[d.ID] = base.doors[i]
	}
	return len(keys), putJSON(tx.Bucket(bucketMeta), keyLogBase, &b)
}

func seqKey(n uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], n)
	return k[:]
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// load reads the committed state into a fresh occupancy and device map.
func (s *Store) load(m *Model) (*occupancy, map[string]*deviceState, error) {
	occ := newOccupancy(m)
	devices := map[string]*deviceState{}
	err := s.db.View(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d := &deviceState{}
			if err := decodeRecord(v, d); err != nil {
				return fmt.Errorf("device %q: %w", k, err)
			}
			// Records written before unbound lines were refused may hold any number of them;
			// they are dropped here and the record is rewritten at its next change.
			id := string(k)
			d.pruneLines(func(line string) bool { _, ok := m.DoorOf(id, line); return ok })
			devices[id] = d
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketZones).ForEach(func(k, v []byte) error {
			z, ok := m.zoneIdx[string(k)]
			if !ok {
				return nil // a zone since removed from the config
			}
			if err := decodeRecord(v, &occ.zones[z]); err != nil {
				return fmt.Errorf("zone %q: %w", k, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketDoors).ForEach(func(k, v []byte) error {
			d, ok := m.doorIdx[string(k)]
			if !ok {
				return nil
			}
			if err := decodeRecord(v, &occ.doors[d]); err != nil {
				return fmt.Errorf("door %q: %w", k, err)
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("storage: %s: reading state: %w", s.path, err)
	}
	return occ, devices, nil
}

// Entries calls fn for each log entry in order ("log") or each audit entry ("audit").
func (s *Store) Entries(which string, fn func(*LogEntry) error) error {
	name := bucketLog
	if which == "audit" {
		name = bucketAudit
	}
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(name).ForEach(func(k, v []byte) error {
			e := &LogEntry{Seq: binary.BigEndian.Uint64(k)}
			if err := decodeRecord(v, e); err != nil {
				return fmt.Errorf("storage: %s entry %d: %w", which, e.Seq, err)
			}
			return fn(e)
		})
	})
}

// Replay rebuilds zone occupancy from the crossing log alone (its pruned base, then every
// entry kept), for checking the stored state.
func Replay(s *Store, m *Model) ([]int64, error) {
	var occ *occupancy
	if err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		occ, _, err = readBase(tx, m)
		return err
	}); err != nil {
		return nil, err
	}
	if err := s.Entries("log", func(e *LogEntry) error { occ.replay(e); return nil }); err != nil {
		return nil, err
	}
	out := make([]int64, len(occ.zones))
	for i, z := range occ.zones {
		out[i] = z.Occupancy
	}
	return out, nil
}
