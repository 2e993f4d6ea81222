package zones

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Store is the bbolt file. Only the engine goroutine writes to it; readers (the report
// command, tests) open their own read transactions.
type Store struct {
	db   *bolt.DB
	path string
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

	keyFormat = []byte("format")
	keySite   = []byte("site")
)

// formatVersion names the file layout; a file with another value is refused.
const formatVersion = "crowdwatch/1"

// ErrForeignFile is returned for a database that is not Crowdwatch's or not this site's.
var ErrForeignFile = errors.New("not a Crowdwatch database for this site")

// OpenStore opens (or creates) the database for a site. A damaged file, another program's
// bbolt file, another site's database or a file held by a running instance fail with an
// error that says which.
func OpenStore(path, site string) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("storage: cannot create the folder for %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout:         2 * time.Second,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 64 << 20,
	})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("storage: %s is locked by another process (is crowdwatch already running?): %w", path, err)
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
		return nil, fmt.Errorf("storage: %s is damaged or not a database file (restore it from a backup or move it away to start empty): %w", path, err)
	case err != nil:
		return nil, fmt.Errorf("storage: cannot open %s: %w", path, err)
	}
	s := &Store{db: db, path: path}
	if err := s.init(site); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) init(site string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			// A new file has no buckets at all; anything else is somebody else's database.
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return fmt.Errorf("storage: %s: %w (it has no %q bucket)", s.path, ErrForeignFile, bucketMeta)
			}
			var err error
			if meta, err = tx.CreateBucket(bucketMeta); err != nil {
				return err
			}
			if err := meta.Put(keyFormat, []byte(formatVersion)); err != nil {
				return err
			}
			if err := meta.Put(keySite, []byte(site)); err != nil {
				return err
			}
		}
		if f := string(meta.Get(keyFormat)); f != formatVersion {
			return fmt.Errorf("storage: %s: %w (format %q, this version reads %q)", s.path, ErrForeignFile, f, formatVersion)
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
	})
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// batch is what one commit writes.
type batch struct {
	devices map[string]*deviceState
	zones   map[int]bool
	doors   bool
	log     []*LogEntry
	audit   []*LogEntry
}

func (b *batch) empty() bool {
	return len(b.devices) == 0 && len(b.zones) == 0 && !b.doors && len(b.log) == 0 && len(b.audit) == 0
}

func (b *batch) clear() {
	clear(b.devices)
	clear(b.zones)
	b.doors = false
	b.log = b.log[:0]
	b.audit = b.audit[:0]
}

// commit writes one batch in one transaction.
func (s *Store) commit(b *batch, occ *occupancy) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		if s.failCommit != nil {
			if err := s.failCommit(); err != nil {
				return err
			}
		}
		devs := tx.Bucket(bucketDevices)
		for id, d := range b.devices {
			if err := putJSON(devs, []byte(id), d); err != nil {
				return err
			}
		}
		zs := tx.Bucket(bucketZones)
		for z := range b.zones {
			if err := putJSON(zs, []byte(occ.model.Zones[z].ID), &occ.zones[z]); err != nil {
				return err
			}
		}
		if b.doors {
			ds := tx.Bucket(bucketDoors)
			for i := range occ.doors {
				if err := putJSON(ds, []byte(occ.model.Doors[i].ID), &occ.doors[i]); err != nil {
					return err
				}
			}
		}
		if err := appendEntries(tx.Bucket(bucketLog), b.log); err != nil {
			return err
		}
		return appendEntries(tx.Bucket(bucketAudit), b.audit)
	})
}

func appendEntries(bk *bolt.Bucket, entries []*LogEntry) error {
	// Keys only ever grow, so pages can be packed full instead of bbolt's default half.
	bk.FillPercent = 1.0
	for _, e := range entries {
		seq, err := bk.NextSequence()
		if err != nil {
			return err
		}
		e.Seq = seq
		if err := putJSON(bk, seqKey(seq), e); err != nil {
			return err
		}
	}
	return nil
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
			if err := json.Unmarshal(v, d); err != nil {
				return fmt.Errorf("device %q: %w", k, err)
			}
			devices[string(k)] = d
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
			return json.Unmarshal(v, &occ.zones[z])
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketDoors).ForEach(func(k, v []byte) error {
			d, ok := m.doorIdx[string(k)]
			if !ok {
				return nil
			}
			return json.Unmarshal(v, &occ.doors[d])
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
			if err := json.Unmarshal(v, e); err != nil {
				return fmt.Errorf("storage: %s entry %d: %w", which, e.Seq, err)
			}
			return fn(e)
		})
	})
}

// Replay rebuilds zone occupancy from the crossing log alone, for checking the stored state.
func Replay(s *Store, m *Model) ([]int64, error) {
	occ := newOccupancy(m)
	if err := s.Entries("log", func(e *LogEntry) error { occ.replay(e); return nil }); err != nil {
		return nil, err
	}
	out := make([]int64, len(occ.zones))
	for i, z := range occ.zones {
		out[i] = z.Occupancy
	}
	return out, nil
}
