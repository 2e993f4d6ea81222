package alerting

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/storage"
)

// store is the alert database. Only the manager goroutine writes to it.
type store struct {
	db   *bolt.DB
	path string
}

var (
	bucketMeta     = []byte("meta")
	bucketAlerts   = []byte("alerts") // id -> Alert (open and recently resolved)
	bucketEvents   = []byte("events") // time+seq -> Event
	bucketSilences = []byte("silences")
	bucketEvacs    = []byte("evacuations")  // zone ("" = site) -> Evacuation
	bucketAcks     = []byte("pending_acks") // alert id -> PendingAck (earlyack.go)
	keyFormat      = []byte("format")
	keySite        = []byte("site")
)

const storeFormat = "crowdwatch-alerts/1"

func openStore(path, site string) (*store, error) {
	db, err := storage.Open(path, storage.Options{Timeout: 2 * time.Second, Verify: true})
	if err != nil {
		return nil, err
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if meta.Get(keyFormat) == nil {
			_ = meta.Put(keyFormat, []byte(storeFormat))
			_ = meta.Put(keySite, []byte(site))
		}
		if f := string(meta.Get(keyFormat)); f != storeFormat {
			return fmt.Errorf("alerting: %s is not a Crowdwatch alert database (format %q)", path, f)
		}
		if s := string(meta.Get(keySite)); s != site {
			return fmt.Errorf("alerting: %s belongs to site %q, the config says %q", path, s, site)
		}
		for _, b := range [][]byte{bucketAlerts, bucketEvents, bucketSilences, bucketEvacs, bucketAcks} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return renamePlanAlerts(tx.Bucket(bucketAlerts))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db, path: path}, nil
}

func (s *store) close() error { return s.db.Close() }

// renamePlanAlerts moves the alerts an earlier version stored as opening_queue:site and
// doors_open:site to their plan's id (alertID), so that an alert open across the upgrade is
// still held under the id its rule now gives it: neither fired nor told again. One whose new
// id is taken already, or that names no plan, stays as it was (it loads and resolves).
func renamePlanAlerts(b *bolt.Bucket) error {
	type move struct {
		from, to string
		v        []byte
	}
	var moves []move
	for _, k := range []Kind{KindOpeningQueue, KindDoorsOpen} {
		old := string(k) + ":site"
		v := b.Get([]byte(old))
		if v == nil {
			continue
		}
		var a Alert
		if err := json.Unmarshal(v, &a); err != nil || a.Detail == "" {
			continue
		}
		a.ID = alertID(&a)
		if a.ID == old || b.Get([]byte(a.ID)) != nil {
			continue
		}
		nv, err := json.Marshal(&a)
		if err != nil {
			return err
		}
		moves = append(moves, move{old, a.ID, nv})
	}
	for _, m := range moves {
		if err := b.Put([]byte(m.to), m.v); err != nil {
			return err
		}
		if err := b.Delete([]byte(m.from)); err != nil {
			return err
		}
	}
	return nil
}

// Backup writes a consistent copy of the alert database as of one read transaction, beside
// the manager's writes (storage.Backup).
func (m *Manager) Backup(start func(size int64) io.Writer) (int64, error) {
	return storage.Backup(m.store.db, start)
}

// changes is what one evaluation or command writes, in one transaction.
type changes struct {
	alerts   map[string]*Alert
	events   []*Event
	silences map[string]*Silence // nil value: deleted
	evacs    map[string]*Evacuation
	acks     map[string]*PendingAck // nil value: taken or expired
	records  []record               // drills and metering episodes (eventday.go)
}

func newChanges() *changes {
	return &changes{alerts: map[string]*Alert{}, silences: map[string]*Silence{}, evacs: map[string]*Evacuation{}, acks: map[string]*PendingAck{}}
}

func (c *changes) empty() bool {
	return len(c.alerts) == 0 && len(c.events) == 0 && len(c.silences) == 0 && len(c.evacs) == 0 && len(c.acks) == 0 && len(c.records) == 0
}

func (s *store) write(c *changes) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		ab := tx.Bucket(bucketAlerts)
		for id, a := range c.alerts {
			if err := putJSON(ab, []byte(id), a); err != nil {
				return err
			}
		}
		eb := tx.Bucket(bucketEvents)
		eb.FillPercent = 1.0 // keys only grow
		for _, e := range c.events {
			seq, err := eb.NextSequence()
			if err != nil {
				return err
			}
			e.Seq = seq
			if err := putJSON(eb, eventKey(e.At, seq), e); err != nil {
				return err
			}
		}
		sb := tx.Bucket(bucketSilences)
		for id, si := range c.silences {
			if si == nil {
				if err := sb.Delete([]byte(id)); err != nil {
					return err
				}
				continue
			}
			if err := putJSON(sb, []byte(id), si); err != nil {
				return err
			}
		}
		vb := tx.Bucket(bucketEvacs)
		for zone, ev := range c.evacs {
			zone = evacKey(zone)
			if ev == nil {
				if err := vb.Delete([]byte(zone)); err != nil {
					return err
				}
				continue
			}
			if err := putJSON(vb, []byte(zone), ev); err != nil {
				return err
			}
		}
		kb := tx.Bucket(bucketAcks)
		for id, p := range c.acks {
			if p == nil {
				if err := kb.Delete([]byte(id)); err != nil {
					return err
				}
				continue
			}
			if err := putJSON(kb, []byte(id), p); err != nil {
				return err
			}
		}
		return writeRecords(tx, c.records)
	})
}

func eventKey(at time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return b.Put(key, data)
}

// loaded is the state a restart brings back.
type loaded struct {
	alerts   map[string]*Alert
	silences map[string]*Silence
	evacs    map[string]*Evacuation
	acks     map[string]*PendingAck
}

func (s *store) load() (*loaded, error) {
	l := &loaded{alerts: map[string]*Alert{}, silences: map[string]*Silence{}, evacs: map[string]*Evacuation{}, acks: map[string]*PendingAck{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketAlerts).ForEach(func(k, v []byte) error {
			var a Alert
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("alert %q: %w", k, err)
			}
			l.alerts[string(k)] = &a
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketSilences).ForEach(func(k, v []byte) error {
			var si Silence
			if err := json.Unmarshal(v, &si); err != nil {
				return fmt.Errorf("silence %q: %w", k, err)
			}
			l.silences[string(k)] = &si
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketEvacs).ForEach(func(k, v []byte) error {
			var ev Evacuation
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("evacuation %q: %w", k, err)
			}
			l.evacs[ev.Zone] = &ev
			return nil
		}); err != nil {
			return err
		}
		return tx.Bucket(bucketAcks).ForEach(func(k, v []byte) error {
			var p PendingAck
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("pending acknowledgement %q: %w", k, err)
			}
			l.acks[string(k)] = &p
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("alerting: reading %s: %w", s.path, err)
	}
	return l, nil
}

// events returns the stored transitions between from and to (to zero: no end).
func (s *store) events(from, to time.Time) ([]Event, error) {
	var out []Event
	err := storage.View(s.db, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketEvents).Cursor()
		k, v := c.First()
		if !from.IsZero() {
			k, v = c.Seek(eventKey(from, 0))
		}
		for ; k != nil; k, v = c.Next() {
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if !to.IsZero() && !e.At.Before(to) {
				break
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}

// evacKey stores a site-wide evacuation (zone "") under "*", which no zone id can be.
func evacKey(zone string) string {
	if zone == "" {
		return "*"
	}
	return zone
}

// ReadEvents reads the stored transitions from an alert database that no running service
// holds (reports, tests).
func ReadEvents(path string, from, to time.Time) ([]Event, error) {
	db, err := storage.Open(path, storage.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return (&store{db: db, path: path}).events(from, to)
}
