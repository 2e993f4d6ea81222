package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/storage"
)

// Reader answers queries and reports from a history file. Each call opens the file read-only
// (a shared lock, so many readers run together, and the recorder's writes wait at most one
// query) and closes it after; nothing is kept open between calls.
type Reader struct {
	path    string
	site    *Site // nil: take the site from the file
	timeout time.Duration
	// BandsOf gives a zone's level thresholds in persons; DefaultBands unless set.
	BandsOf func(ZoneInfo) []Band
	// Events gives alert history for reports; nil means reports say it is not available.
	Events Events
	// CapacityAt, when set, is the capacity in force for a zone at a time (a promotion's
	// event capacity while its plan runs): reports judge a zone's peak against the capacity
	// in force when it was reached. 0 means the zone's own.
	CapacityAt func(zone string, at time.Time) int
	// Now is the clock for "until now" defaults.
	Now func() time.Time
	// DamagedBlocks, when set, counts the stored blocks reads skipped because they did not
	// decode (crowdwatch_history_damaged_blocks_total).
	DamagedBlocks prometheus.Counter
}

// NewReader reads path; site may be nil when the file was written by this version (it
// describes its site).
func NewReader(path string, site *Site, timeout time.Duration) *Reader {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Reader{path: path, site: site, timeout: timeout,
		BandsOf: func(z ZoneInfo) []Band { return DefaultBands(z.Capacity, z.AreaM2) }, Now: time.Now}
}

// txq is one read transaction with what the reads need.
type txq struct {
	tx   *bolt.Tx
	tz   tz
	site Site
	// wm: every record of a window that ended by wm is in the file, and raw records up to it.
	wm int64
	// damaged counts the blocks this transaction skipped because they did not decode.
	damaged int
}

// skip handles a block that failed to decode: a damaged block is left out (and counted), so
// that one bad block costs its own hour, not the whole answer; any other error stands.
func (q *txq) skip(err error) error {
	if errors.Is(err, errCorrupt) {
		q.damaged++
		return nil
	}
	return err
}

// view runs fn in a read transaction, waiting while the recorder writes (it holds the file
// for one write at a time, well under a second) until ctx ends.
func (r *Reader) view(ctx context.Context, fn func(q *txq) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	g := gate(r.path)
	g.RLock()
	defer g.RUnlock()
	var db *bolt.DB
	for {
		var err error
		db, err = openFile(r.path, true, false, min(r.timeout, time.Second))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		default:
		}
	}
	defer db.Close()
	return storage.View(db, func(tx *bolt.Tx) error {
		site := r.site
		if err := checkMeta(tx, r.path, ""); err != nil {
			return err
		}
		if site == nil {
			s, err := readLayout(tx)
			if err != nil {
				return err
			}
			site = &s
		} else if s := string(tx.Bucket(bucketMeta).Get(keySite)); s != site.ID {
			return fmt.Errorf("history: %s belongs to site %q, not %q", r.path, s, site.ID)
		}
		q := &txq{tx: tx, tz: tz{site.Loc}, site: *site}
		if b := tx.Bucket(bucketMeta).Get(keyState); b != nil {
			var st persisted
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("history: the recorder state is damaged: %w", err)
			}
			q.wm = st.At
		}
		err := fn(q)
		if q.damaged > 0 && r.DamagedBlocks != nil {
			r.DamagedBlocks.Add(float64(q.damaged))
		}
		return err
	})
}

// Site returns the site the reader reports on.
func (r *Reader) Site(ctx context.Context) (Site, error) {
	if r.site != nil {
		return *r.site, nil
	}
	var s Site
	err := r.view(ctx, func(q *txq) error { s = q.site; return nil })
	return s, err
}
