package ha

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/storage"
)

// Action kinds: the operator actions that every instance applies.
const (
	ActionCorrection  = "correction"
	ActionAcknowledge = "acknowledge"
	ActionEvacuation  = "evacuation" // declared or ended; a drill is an evacuation with drill set in Body
	ActionSilence     = "silence"
	ActionPlan        = "plan"
)

// Action is one operator action, as the instance that took it wrote it. Body is the
// command's own request (the zones or alerting command's JSON), decoded by the handler.
type Action struct {
	Kind     string          `json:"kind"`
	By       string          `json:"by"`       // who took it (the signed-in name)
	Instance string          `json:"instance"` // where it was taken; set by Append
	At       time.Time       `json:"at"`       // when it was taken; set by Append when zero
	Body     json.RawMessage `json:"body,omitempty"`
}

// Entry is an action at its place in the global order: Rev is etcd's revision of its write.
type Entry struct {
	Rev int64
	Action
}

// ErrCompacted is wrapped by Run's error when etcd no longer holds the actions since this
// instance's last applied revision: it needs a full resync, from the newest snapshot another
// instance wrote (LogOptions.Restore), or by hand without one.
var ErrCompacted = errors.New("the action log was compacted past this instance's last applied revision")

// LogOptions configure a Log.
type LogOptions struct {
	Keys     Keys
	Instance string
	Site     string // written into the state file, which refuses another site's
	// StatePath is this instance's own bbolt file for the last applied revision.
	StatePath string
	// Apply applies one entry; Run calls it in revision order from its goroutine, each entry
	// once per instance except after a crash between Apply and the commit of its revision,
	// when the entry comes again (apply idempotently by Rev). An error stops Run, the entry
	// not applied: a handler returns nil for an action it refuses (the refusal is the same
	// on every instance).
	Apply  func(ctx context.Context, e Entry) error
	Logger *slog.Logger

	// Snapshot returns the state the actions have made (acknowledgements, evacuations,
	// drills, silences, plans), compact; Run calls it between entries, so it reflects every
	// entry applied and no other. nil: this instance writes no snapshot.
	Snapshot func(ctx context.Context) (json.RawMessage, error)
	// Restore brings this instance's state to a snapshot (idempotently, through the same
	// commands as the entries). nil: a compacted log stops Run with ErrCompacted.
	Restore func(ctx context.Context, rev int64, state json.RawMessage) error
	// SnapshotEvery is how often a current instance takes its snapshot and writes it when
	// it changed (DefaultSnapshotEvery when zero); SnapshotRefresh how often it writes it
	// even unchanged (DefaultSnapshotRefresh), so that a snapshot is always newer than any
	// compaction that keeps more than that.
	SnapshotEvery, SnapshotRefresh time.Duration
}

// Snapshot defaults and bound.
const (
	DefaultSnapshotEvery   = time.Minute
	DefaultSnapshotRefresh = 10 * time.Minute
	// MaxSnapshotBytes bounds a snapshot: under etcd's default request limit (1.5 MiB),
	// and far above what the action-derived state of a store is (tens of silences, a few
	// plans and evacuations, the acknowledged open alerts: a few KiB).
	MaxSnapshotBytes = 1 << 20
	resyncRetry      = 5 * time.Second
)

// Snapshot is what an instance writes under <prefix>/<site>/snapshot/<instance>: the state
// the actions made, as of Rev (every action at or below it applied, none above).
type Snapshot struct {
	Rev      int64           `json:"rev"`
	Instance string          `json:"instance"`
	At       time.Time       `json:"at"`
	State    json.RawMessage `json:"state"`
}

// Log is the operator action log: Append writes an action to etcd (its revision is its place
// in the global order); Run watches from this instance's last applied revision and applies
// every entry in order. Run's goroutine owns the state file and the applied revision.
type Log struct {
	cli     *clientv3.Client
	o       LogOptions
	db      *bolt.DB
	applied atomic.Int64
	failed  atomic.Pointer[error]
	signal  owner.Signal
	seq     atomic.Uint64
	// Owned by Run: the last snapshot written.
	snapSum   [32]byte
	snapWrote time.Time
}

var (
	stateBucket = []byte("meta")
	appliedKey  = []byte("applied")
)

// OpenLog opens (or creates) the state file and reads the last applied revision.
func OpenLog(cli *clientv3.Client, o LogOptions) (*Log, error) {
	if o.Apply == nil || o.Instance == "" || o.Keys.Root == "" || o.StatePath == "" {
		return nil, errors.New("ha: the action log needs keys, an instance name, a state file and a handler")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SnapshotEvery <= 0 {
		o.SnapshotEvery = DefaultSnapshotEvery
	}
	if o.SnapshotRefresh <= 0 {
		o.SnapshotRefresh = DefaultSnapshotRefresh
	}
	db, err := storage.Open(o.StatePath, storage.Options{Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	l := &Log{cli: cli, o: o, db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := storage.ClaimMeta(tx, stateBucket, map[string]string{"format": "crowdwatch-ha/1", "site": o.Site})
		if err != nil {
			return err
		}
		if f := string(meta.Get([]byte("format"))); f != "crowdwatch-ha/1" {
			return fmt.Errorf("format %q is not crowdwatch-ha/1", f)
		}
		if s := string(meta.Get([]byte("site"))); s != o.Site {
			return fmt.Errorf("it belongs to site %q, not %q", s, o.Site)
		}
		if v := meta.Get(appliedKey); len(v) == 8 {
			l.applied.Store(int64(binary.BigEndian.Uint64(v)))
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("ha: state file %s: %w", o.StatePath, err)
	}
	return l, nil
}

// Close closes the state file (after Run has returned).
func (l *Log) Close() error { return l.db.Close() }

// Applied is the revision of the last entry applied here (0 before any).
func (l *Log) Applied() int64 { return l.applied.Load() }

// Err is why Run stopped, nil while it runs.
func (l *Log) Err() error {
	if p := l.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// Pending counts the entries in etcd that this instance has not applied yet: its lag.
func (l *Log) Pending(ctx context.Context) (int64, error) {
	n, behind, _, err := l.unapplied(ctx)
	if err != nil {
		return 0, fmt.Errorf("ha: counting pending actions: %w", err)
	}
	if behind && n == 0 {
		n = 1 // pruned ones not seen here yet: at least one, however many
	}
	return n, nil
}

// unapplied counts the action keys above the applied revision, and says whether a prune
// this instance has not seen yet deleted some (the pruned key's revision is above the
// applied one: its deleted actions are invisible to a Get but still come through the
// watch), as of the revision etcd answered at.
func (l *Log) unapplied(ctx context.Context) (n int64, behind bool, rev int64, err error) {
	applied := l.applied.Load()
	// Not WithCountOnly: etcd counts the range before the revision filter. One transaction:
	// both reads at one revision.
	resp, err := l.cli.Txn(ctx).Then(
		clientv3.OpGet(l.o.Keys.actions(), clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithMinModRev(applied+1)),
		clientv3.OpGet(l.o.Keys.pruned(), clientv3.WithKeysOnly())).Commit()
	if err != nil {
		return 0, false, 0, fmt.Errorf("etcd: %w", err)
	}
	n = int64(len(resp.Responses[0].GetResponseRange().Kvs))
	if p := resp.Responses[1].GetResponseRange().Kvs; len(p) > 0 && p[0].ModRevision > applied {
		behind = true
	}
	return n, behind, resp.Header.Revision, nil
}

// Append writes a to the log and waits until this instance's Run has applied it, so that
// the caller answers with the state every instance reaches in the same order. It returns
// the entry's revision. Without etcd it fails (ctx bounds the wait): nothing is applied.
func (l *Log) Append(ctx context.Context, a Action) (int64, error) {
	if err := l.Err(); err != nil {
		// Not written: an action this instance could not apply must not reach the others.
		return 0, fmt.Errorf("ha: the %s action was not appended: this instance's action log stopped: %w", a.Kind, err)
	}
	a.Instance = l.o.Instance
	if a.At.IsZero() {
		a.At = time.Now().UTC()
	}
	body, err := json.Marshal(a)
	if err != nil {
		return 0, fmt.Errorf("ha: encoding the %s action: %w", a.Kind, err)
	}
	ch, cancel := l.signal.Subscribe()
	defer cancel()
	// A key of its own per action (instance, time, sequence): nothing is ever overwritten.
	key := fmt.Sprintf("%s%s/%d-%d", l.o.Keys.actions(), l.o.Instance, time.Now().UnixNano(), l.seq.Add(1))
	resp, err := l.cli.Put(ctx, key, string(body))
	if err != nil {
		return 0, fmt.Errorf("ha: the coordinator did not take the %s action: %w", a.Kind, err)
	}
	rev := resp.Header.Revision
	for l.applied.Load() < rev {
		if err := l.Err(); err != nil {
			return rev, fmt.Errorf("ha: the %s action is in the log at revision %d but this instance stopped applying: %w", a.Kind, rev, err)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return rev, fmt.Errorf("ha: the %s action is in the log at revision %d, not applied here yet: %w", a.Kind, rev, ctx.Err())
		}
	}
	return rev, nil
}

// Run applies the log from the last applied revision until ctx ends. It returns an error
// wrapping ErrCompacted when etcd no longer holds the entries it needs, or the handler's
// or the state file's error; Err says the same afterwards.
func (l *Log) Run(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			l.failed.Store(&err)
			l.o.Logger.Error("ha: the action log stopped", "error", err, "applied", l.applied.Load())
		}
		l.signal.Notify() // waiting Appends see the end
	}()
	for {
		again, err := l.watch(ctx)
		if errors.Is(err, ErrCompacted) && l.o.Restore != nil && ctx.Err() == nil {
			// Appends are refused while the state is behind (Err says why), until a
			// snapshot newer than what was applied here is restored.
			l.failed.Store(&err)
			l.signal.Notify()
			if rerr := l.resync(ctx); rerr != nil {
				l.o.Logger.Warn("ha: the action log was compacted and cannot be resynced yet; retrying", "error", rerr, "applied", l.applied.Load())
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(resyncRetry):
				}
				continue
			}
			l.failed.Store(nil)
			l.signal.Notify()
			continue
		}
		if !again || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// setApplied records rev as applied through, in the state file first.
func (l *Log) setApplied(rev int64) error {
	if err := l.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(stateBucket).Put(appliedKey, binary.BigEndian.AppendUint64(nil, uint64(rev)))
	}); err != nil {
		return fmt.Errorf("ha: recording applied revision %d in %s: %w", rev, l.o.StatePath, err)
	}
	l.applied.Store(rev)
	l.signal.Notify()
	return nil
}

// snapshot writes this instance's snapshot when it is current: no action in etcd it has
// not applied, as of the revision etcd answers at, which the snapshot then reflects; the
// instance counts itself applied through that revision too (nothing lies between), so its
// own restart does not need a resync when only other keys were written since.
func (l *Log) snapshot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	state, err := l.o.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("ha: taking the snapshot: %w", err)
	}
	pending, behind, rev, err := l.unapplied(ctx)
	if err != nil {
		return fmt.Errorf("ha: checking the log before a snapshot: %w", err)
	}
	if pending > 0 || behind {
		return nil // behind: the watch delivers them; a later tick writes it
	}
	sum := sha256.Sum256(state)
	if sum != l.snapSum || time.Since(l.snapWrote) >= l.o.SnapshotRefresh {
		v, err := json.Marshal(Snapshot{Rev: rev, Instance: l.o.Instance, At: time.Now().UTC(), State: state})
		if err != nil {
			return fmt.Errorf("ha: encoding the snapshot: %w", err)
		}
		if len(v) > MaxSnapshotBytes {
			return fmt.Errorf("ha: the snapshot is %d bytes, more than %d: not written", len(v), MaxSnapshotBytes)
		}
		if _, err := l.cli.Put(ctx, l.o.Keys.snapshots()+l.o.Instance, string(v)); err != nil {
			return fmt.Errorf("ha: writing the snapshot: etcd: %w", err)
		}
		l.snapSum, l.snapWrote = sum, time.Now()
	}
	if rev > l.applied.Load() {
		return l.setApplied(rev)
	}
	return nil
}

// Snapshots reads every instance's snapshot, newest first.
func (l *Log) Snapshots(ctx context.Context) ([]Snapshot, error) {
	resp, err := l.cli.Get(ctx, l.o.Keys.snapshots(), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("ha: reading the snapshots: etcd: %w", err)
	}
	var out []Snapshot
	for _, kv := range resp.Kvs {
		var s Snapshot
		if err := json.Unmarshal(kv.Value, &s); err != nil {
			l.o.Logger.Warn("ha: a snapshot that is not readable is skipped", "key", string(kv.Key), "error", err)
			continue
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Snapshot) int { return cmp.Compare(b.Rev, a.Rev) })
	return out, nil
}

// resync restores the newest snapshot that is newer than what was applied here, and counts
// its revision applied: the watch goes on from the next one.
func (l *Log) resync(ctx context.Context) error {
	snaps, err := l.Snapshots(ctx)
	if err != nil {
		return err
	}
	if len(snaps) == 0 || snaps[0].Rev <= l.applied.Load() {
		return fmt.Errorf("ha: no snapshot newer than revision %d yet (another instance writes one within %s)",
			l.applied.Load(), l.o.SnapshotRefresh)
	}
	s := snaps[0]
	if err := l.o.Restore(ctx, s.Rev, s.State); err != nil {
		return fmt.Errorf("ha: restoring the snapshot of revision %d from %s: %w", s.Rev, s.Instance, err)
	}
	if err := l.setApplied(s.Rev); err != nil {
		return err
	}
	l.o.Logger.Warn("ha: resynced from a snapshot after the action log was compacted", "from", s.Instance, "rev", s.Rev, "taken", s.At)
	return nil
}

// watch applies entries from the last applied revision on; again says a new watch may go on
// (the member lost its etcd leader, which ends a watch that requires one).
func (l *Log) watch(ctx context.Context) (again bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	from := l.applied.Load() + 1
	var tick <-chan time.Time
	if l.o.Snapshot != nil {
		t := time.NewTicker(l.o.SnapshotEvery)
		defer t.Stop()
		tick = t.C
	}
	// A watch from a revision delivers every change since, in order, then follows live;
	// the client re-establishes it after a lost connection from the last revision it saw.
	wch := l.cli.Watch(wctx, l.o.Keys.actions(), clientv3.WithPrefix(), clientv3.WithRev(from))
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case <-tick:
			if err := l.snapshot(ctx); err != nil {
				l.o.Logger.Warn("ha: no snapshot written this time", "error", err)
			}
			continue
		case resp, ok = <-wch:
		}
		if !ok {
			break
		}
		if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
			return false, fmt.Errorf("ha: %w (applied %d, etcd keeps from %d): a full resync is needed", ErrCompacted,
				l.applied.Load(), resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			l.o.Logger.Warn("ha: action log watch ended; watching again", "error", err)
			return true, nil
		}
		var seen int64 // the last revision of an event that is not an action
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut || ev.Kv.CreateRevision != ev.Kv.ModRevision {
				// Only first writes are actions; nothing rewrites one, and the leader's
				// prune deletes them: the log is seen through a delete's revision, which
				// is the pruned key's (a current instance's check compares with it).
				seen = ev.Kv.ModRevision
				continue
			}
			e := Entry{Rev: ev.Kv.ModRevision}
			if err := json.Unmarshal(ev.Kv.Value, &e.Action); err != nil {
				// Written by something else than Append: skipped the same way everywhere.
				l.o.Logger.Error("ha: an action that is not readable is skipped", "key", string(ev.Kv.Key), "rev", e.Rev, "error", err)
			} else if err := l.o.Apply(ctx, e); err != nil {
				return false, fmt.Errorf("ha: applying the %s action of revision %d: %w", e.Kind, e.Rev, err)
			}
			if err := l.setApplied(e.Rev); err != nil {
				return false, err
			}
		}
		if seen > l.applied.Load() {
			if err := l.setApplied(seen); err != nil {
				return false, err
			}
		}
	}
	if ctx.Err() != nil {
		return false, nil
	}
	return false, errors.New("ha: the action log watch closed (etcd client closed)")
}
