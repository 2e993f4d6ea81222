package auth

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/storage"
	"github.com/crowdwatch/crowdwatch/web"
)

// Store keeps what sign-in must remember across a restart: the sessions (so that a sign-out
// or a revocation holds) and the audit log, in a bbolt file of its own (auth.path, by default
// NAME.auth.db beside storage.path). One goroutine (run) owns the file's write transactions,
// the session table and the sign-in throttle; everyone else goes through the methods below.
// Without a path it keeps everything in memory (tests, tools).
type Store struct {
	o       StoreOptions
	db      *bolt.DB
	ops     chan func(*storeState)
	audit   chan web.AuditEntry
	stop    chan struct{}
	done    chan struct{}
	dropped atomic.Int64
}

// StoreOptions tune the store; zero values are the defaults.
type StoreOptions struct {
	// AuditRetention drops audit entries older than this; default 90 days.
	AuditRetention time.Duration
	// AuditMax caps the entries kept (oldest go first); default 200,000 (about 40 MB).
	AuditMax int
	Log      *slog.Logger
	Now      func() time.Time
}

// Bounds of the store (docs/security.md).
const (
	defaultAuditRetention = 90 * 24 * time.Hour
	defaultAuditMax       = 200_000
	memoryAuditMax        = 10_000 // without a file
	sessionsPerUser       = 32     // a user's oldest session ends when a 33rd starts
	auditQueue            = 4096   // entries waiting for the disk
	auditBatch            = 512    // entries per write transaction
	pruneEvery            = 10 * time.Minute
	pruneMaxPerPass       = 20_000
	maxScanPerQuery       = 100_000 // entries one GET /api/v1/audit looks at
)

var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions")
	bucketAudit    = []byte("audit")
	keyFormat      = []byte("format")
	storeFormat    = "crowdwatch-auth/1"
)

// session is one sign-in, keyed by the SHA-256 of its cookie's secret (the file holds no
// usable cookie).
type session struct {
	User    string    `json:"user"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires"`
	Remote  string    `json:"remote,omitempty"`
}

type storeState struct {
	sessions map[[32]byte]session
	throttle *throttle
	mem      []web.AuditEntry // without a file: the latest entries
	memSeq   uint64
	// revoked remembers, until they would have expired, the sessions ended here and when a
	// user was signed out everywhere, so that another instance's late copy of a session
	// (share.go) cannot bring it back.
	revoked     map[[32]byte]time.Time
	userRevoked map[string]time.Time
}

// OpenStore opens (or creates) the sign-in file at path; "" keeps everything in memory. The
// file is the service's alone: another program's bbolt file, a damaged file or one held by
// a running instance fail with an error that says which.
func OpenStore(path string, o StoreOptions) (*Store, error) {
	if o.AuditRetention <= 0 {
		o.AuditRetention = defaultAuditRetention
	}
	if o.AuditMax <= 0 {
		o.AuditMax = defaultAuditMax
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Store{o: o, ops: make(chan func(*storeState)), audit: make(chan web.AuditEntry, auditQueue),
		stop: make(chan struct{}), done: make(chan struct{})}
	st := &storeState{sessions: map[[32]byte]session{}, throttle: newThrottle(),
		revoked: map[[32]byte]time.Time{}, userRevoked: map[string]time.Time{}}
	if path != "" {
		db, err := openFile(path)
		if err != nil {
			return nil, err
		}
		s.db = db
		if err := s.load(st); err != nil {
			db.Close()
			return nil, fmt.Errorf("auth: %s: %w", path, err)
		}
	}
	go s.run(st)
	return s, nil
}

// openFile is the one place the sign-in file is opened: through storage.Open, the checked
// path every file of the service takes, so a damaged or truncated file is refused with one
// clear line (docs/operations.md) rather than a crash.
func openFile(path string) (*bolt.DB, error) {
	db, err := storage.Open(path, storage.Options{Timeout: 2 * time.Second, Verify: true})
	if err != nil {
		if errors.Is(err, storage.ErrDamaged) {
			return nil, fmt.Errorf("auth: %w (or move it away: everybody then signs in again and the audit log starts empty)", err)
		}
		return nil, fmt.Errorf("auth: %w", err)
	}
	return db, nil
}

// load checks the file is ours and reads the sessions that have not expired.
func (s *Store) load(st *storeState) error {
	now := s.o.Now()
	return s.db.Update(func(tx *bolt.Tx) error {
		meta, err := storage.ClaimMeta(tx, bucketMeta, map[string]string{string(keyFormat): storeFormat})
		if errors.Is(err, storage.ErrNotOurs) {
			return errors.New("not Crowdwatch's sign-in file (it has no meta bucket)")
		}
		if err != nil {
			return err
		}
		if f := string(meta.Get(keyFormat)); f != storeFormat {
			return fmt.Errorf("format %q, want %q", f, storeFormat)
		}
		b, err := tx.CreateBucketIfNotExists(bucketSessions)
		if err != nil {
			return err
		}
		if _, err := tx.CreateBucketIfNotExists(bucketAudit); err != nil {
			return err
		}
		var stale [][]byte
		err = b.ForEach(func(k, v []byte) error {
			var sess session
			if len(k) != 32 || json.Unmarshal(v, &sess) != nil || !now.Before(sess.Expires) {
				stale = append(stale, append([]byte(nil), k...))
				return nil
			}
			st.sessions[[32]byte(k)] = sess
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close writes the audit entries still queued and closes the file.
func (s *Store) Close() error {
	select {
	case <-s.stop:
		return nil
	default:
	}
	close(s.stop)
	<-s.done
	if s.db != nil {
		return s.db.Close()
	}
	return nil
}

// Dropped counts audit entries lost because the disk did not keep up (see Append).
func (s *Store) Dropped() int64 { return s.dropped.Load() }

// RegisterMetrics adds crowdwatch_audit_dropped_total to reg.
func (s *Store) RegisterMetrics(reg prometheus.Registerer) {
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "crowdwatch_audit_dropped_total",
		Help: "Audit entries lost because the sign-in file did not keep up or failed (each is also logged)."},
		func() float64 { return float64(s.dropped.Load()) }))
}

func (s *Store) run(st *storeState) {
	defer close(s.done)
	tick := time.NewTicker(pruneEvery)
	defer tick.Stop()
	for {
		select {
		case f := <-s.ops:
			f(st)
		case e := <-s.audit:
			s.writeAudit(st, s.batch(e))
		case <-tick.C:
			s.prune(st)
		case <-s.stop:
			for {
				select {
				case e := <-s.audit:
					s.writeAudit(st, s.batch(e))
				default:
					return
				}
			}
		}
	}
}

// batch gathers the entries waiting behind e, so a burst is one write.
func (s *Store) batch(e web.AuditEntry) []web.AuditEntry {
	out := []web.AuditEntry{e}
	for len(out) < auditBatch {
		select {
		case e := <-s.audit:
			out = append(out, e)
		default:
			return out
		}
	}
	return out
}

var errStoreClosed = errors.New("auth: the sign-in store is closed")

// do runs f on the owner goroutine and waits for it.
func (s *Store) do(ctx context.Context, f func(*storeState)) error {
	finished := make(chan struct{})
	select {
	case s.ops <- func(st *storeState) { defer close(finished); f(st) }:
	case <-s.done:
		return errStoreClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	<-finished
	return nil
}

// Append queues an audit entry (web.AuditLog). It waits at most a second for room when the
// disk falls behind; an entry that still finds none is dropped, counted and logged.
func (s *Store) Append(e web.AuditEntry) {
	select {
	case s.audit <- e:
		return
	default:
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case s.audit <- e:
	case <-s.done:
		s.dropped.Add(1)
	case <-t.C:
		s.dropped.Add(1)
		s.o.Log.Error("audit: the log is behind; an entry was dropped", "event", e.Event, "who", e.Who, "path", e.Path)
	}
}

func (s *Store) writeAudit(st *storeState, batch []web.AuditEntry) {
	if s.db == nil {
		for _, e := range batch {
			st.memSeq++
			e.Seq = st.memSeq
			st.mem = append(st.mem, e)
		}
		if over := len(st.mem) - memoryAuditMax; over > 0 {
			st.mem = append([]web.AuditEntry(nil), st.mem[over:]...)
		}
		return
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		for _, e := range batch {
			seq, err := b.NextSequence()
			if err != nil {
				return err
			}
			e.Seq = seq
			v, err := json.Marshal(e)
			if err != nil {
				return err
			}
			if err := b.Put(seqKey(seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.dropped.Add(int64(len(batch)))
		s.o.Log.Error("audit: entries not written", "count", len(batch), "error", err)
	}
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}

// Query reads audit entries newest first (web.AuditLog).
func (s *Store) Query(ctx context.Context, q web.AuditQuery) ([]web.AuditEntry, error) {
	var out []web.AuditEntry
	match := func(e web.AuditEntry) bool {
		return (q.Since.IsZero() || !e.At.Before(q.Since)) && (q.Until.IsZero() || e.At.Before(q.Until)) &&
			(q.Event == "" || e.Event == q.Event) && (q.Who == "" || e.Who == q.Who)
	}
	if s.db == nil {
		err := s.do(ctx, func(st *storeState) {
			for i := len(st.mem) - 1; i >= 0 && len(out) < q.Limit; i-- {
				if e := st.mem[i]; (q.Before == 0 || e.Seq < q.Before) && match(e) {
					out = append(out, e)
				}
			}
		})
		return out, err
	}
	// A read transaction runs beside the owner's writes (bbolt allows it), so a long query
	// does not hold up sign-ins.
	select {
	case <-s.done:
		return nil, errStoreClosed
	default:
	}
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketAudit).Cursor()
		var k, v []byte
		if q.Before > 0 {
			if k, _ = c.Seek(seqKey(q.Before)); k == nil {
				k, v = c.Last() // every entry is older than the cursor
			} else {
				k, v = c.Prev()
			}
		} else {
			k, v = c.Last()
		}
		for scanned := 0; k != nil && len(out) < q.Limit && scanned < maxScanPerQuery; k, v = c.Prev() {
			scanned++
			var e web.AuditEntry
			if json.Unmarshal(v, &e) != nil {
				continue
			}
			if !q.Since.IsZero() && e.At.Before(q.Since) {
				break // entries are in time order: nothing older matches
			}
			if match(e) {
				out = append(out, e)
			}
		}
		return nil
	})
	return out, err
}

// prune drops expired sessions and audit entries past their retention or the cap.
func (s *Store) prune(st *storeState) {
	now := s.o.Now()
	var expired [][32]byte
	for id, sess := range st.sessions {
		if !now.Before(sess.Expires) {
			expired = append(expired, id)
		}
	}
	if err := s.deleteSessions(st, expired); err != nil {
		s.o.Log.Error("auth: pruning expired sessions", "error", err)
	}
	st.throttle.forgetOld(now)
	st.forgetRevoked(now)
	if s.db == nil {
		return
	}
	cutoff := now.Add(-s.o.AuditRetention)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketAudit)
		excess := b.Stats().KeyN - s.o.AuditMax
		var old [][]byte // deleting while a cursor walks can skip keys: collect, then delete
		c := b.Cursor()
		for k, v := c.First(); k != nil && len(old) < pruneMaxPerPass; k, v = c.Next() {
			var e web.AuditEntry
			if excess <= 0 && json.Unmarshal(v, &e) == nil && !e.At.Before(cutoff) {
				break
			}
			old = append(old, append([]byte(nil), k...))
			excess--
		}
		for _, k := range old {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.o.Log.Error("audit: pruning old entries", "error", err)
	}
}

// deleteSessions removes sessions from the file, then from memory; on an error nothing is
// removed from memory, so what the service honours never differs from the file.
func (s *Store) deleteSessions(st *storeState, ids [][32]byte) error {
	if len(ids) == 0 {
		return nil
	}
	if s.db != nil {
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketSessions)
			for _, id := range ids {
				if err := b.Delete(id[:]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for _, id := range ids {
		delete(st.sessions, id)
	}
	return nil
}

// createSession stores a new session (written before the cookie is handed out), ending the
// user's oldest one beyond sessionsPerUser.
func (s *Store) createSession(ctx context.Context, id [32]byte, sess session) error {
	var err error
	if derr := s.do(ctx, func(st *storeState) { err = s.putSession(st, id, sess) }); derr != nil {
		return derr
	}
	return err
}

// putSession writes a session to the file, then to memory (on the owner goroutine).
func (s *Store) putSession(st *storeState, id [32]byte, sess session) error {
	var mine [][32]byte
	for k, v := range st.sessions {
		if v.User == sess.User {
			mine = append(mine, k)
		}
	}
	var drop [][32]byte
	if over := len(mine) + 1 - sessionsPerUser; over > 0 {
		sort.Slice(mine, func(i, j int) bool { return st.sessions[mine[i]].Created.Before(st.sessions[mine[j]].Created) })
		drop = mine[:over]
	}
	if s.db != nil {
		v, err := json.Marshal(sess)
		if err != nil {
			return fmt.Errorf("auth: storing the session: %w", err)
		}
		err = s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketSessions)
			for _, k := range drop {
				if err := b.Delete(k[:]); err != nil {
					return err
				}
			}
			return b.Put(id[:], v)
		})
		if err != nil {
			return fmt.Errorf("auth: storing the session: %w", err)
		}
	}
	for _, k := range drop {
		delete(st.sessions, k)
	}
	st.sessions[id] = sess
	return nil
}

// lookup returns a session that has not expired.
func (s *Store) lookup(ctx context.Context, id [32]byte) (session, bool) {
	var sess session
	var ok bool
	_ = s.do(ctx, func(st *storeState) {
		sess, ok = st.sessions[id]
		ok = ok && s.o.Now().Before(sess.Expires)
	})
	return sess, ok
}

// revoke ends one session for good; it returns its user ("" when there was none).
func (s *Store) revoke(ctx context.Context, id [32]byte) (string, error) {
	var user string
	var err error
	if derr := s.do(ctx, func(st *storeState) {
		sess, ok := st.sessions[id]
		if !ok {
			return
		}
		if err = s.deleteSessions(st, [][32]byte{id}); err == nil {
			user = sess.User
			st.revoked[id] = sess.Expires
		}
	}); derr != nil {
		return "", derr
	}
	if err != nil {
		return "", fmt.Errorf("auth: revoking the session: %w", err)
	}
	return user, nil
}

// attempt asks the throttle for a sign-in attempt (see throttle.attempt).
func (s *Store) attempt(ctx context.Context, user, host string) (wait time.Duration, first bool, err error) {
	err = s.do(ctx, func(st *storeState) { wait, first = st.throttle.attempt(user, host, s.o.Now()) })
	return wait, first, err
}

// succeeded tells the throttle an attempt had the right password.
func (s *Store) succeeded(user, host string) {
	_ = s.do(context.Background(), func(st *storeState) { st.throttle.succeeded(user, host, s.o.Now()) })
}

// Backup writes a consistent copy of the sign-in file (sessions and audit log) while the
// service runs, inside one read transaction run by the store's owner so that it cannot race
// Close (see storage.Backup).
func (s *Store) Backup(ctx context.Context, start func(size int64) io.Writer) (int64, error) {
	if s.db == nil {
		return 0, errors.New("auth: sign-in is kept in memory only (no file to copy)")
	}
	var n int64
	var err error
	if derr := s.do(ctx, func(*storeState) { n, err = storage.Backup(s.db, start) }); derr != nil {
		return 0, derr
	}
	return n, err
}
