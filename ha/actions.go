package ha

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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
// instance's last applied revision: it needs a full resync (next: from a snapshot).
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
	// Not WithCountOnly: etcd counts the range before the revision filter.
	resp, err := l.cli.Get(ctx, l.o.Keys.actions(), clientv3.WithPrefix(), clientv3.WithKeysOnly(),
		clientv3.WithMinModRev(l.applied.Load()+1))
	if err != nil {
		return 0, fmt.Errorf("ha: counting pending actions: etcd: %w", err)
	}
	return int64(len(resp.Kvs)), nil
}

// Append writes a to the log and waits until this instance's Run has applied it, so that
// the caller answers with the state every instance reaches in the same order. It returns
// the entry's revision. Without etcd it fails (ctx bounds the wait): nothing is applied.
func (l *Log) Append(ctx context.Context, a Action) (int64, error) {
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

// watch applies entries from the last applied revision on; again says a new watch may go on
// (the member lost its etcd leader, which ends a watch that requires one).
func (l *Log) watch(ctx context.Context) (again bool, err error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	from := l.applied.Load() + 1
	// A watch from a revision delivers every change since, in order, then follows live;
	// the client re-establishes it after a lost connection from the last revision it saw.
	for resp := range l.cli.Watch(wctx, l.o.Keys.actions(), clientv3.WithPrefix(), clientv3.WithRev(from)) {
		if resp.CompactRevision != 0 || errors.Is(resp.Err(), rpctypes.ErrCompacted) {
			return false, fmt.Errorf("ha: %w (applied %d, etcd keeps from %d): a full resync is needed", ErrCompacted,
				l.applied.Load(), resp.CompactRevision)
		}
		if err := resp.Err(); err != nil {
			l.o.Logger.Warn("ha: action log watch ended; watching again", "error", err)
			return true, nil
		}
		for _, ev := range resp.Events {
			if ev.Type != clientv3.EventTypePut || ev.Kv.CreateRevision != ev.Kv.ModRevision {
				continue // only first writes are actions; nothing deletes or rewrites one
			}
			e := Entry{Rev: ev.Kv.ModRevision}
			if err := json.Unmarshal(ev.Kv.Value, &e.Action); err != nil {
				// Written by something else than Append: skipped the same way everywhere.
				l.o.Logger.Error("ha: an action that is not readable is skipped", "key", string(ev.Kv.Key), "rev", e.Rev, "error", err)
			} else if err := l.o.Apply(ctx, e); err != nil {
				return false, fmt.Errorf("ha: applying the %s action of revision %d: %w", e.Kind, e.Rev, err)
			}
			if err := l.db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket(stateBucket).Put(appliedKey, binary.BigEndian.AppendUint64(nil, uint64(e.Rev)))
			}); err != nil {
				return false, fmt.Errorf("ha: recording applied revision %d in %s: %w", e.Rev, l.o.StatePath, err)
			}
			l.applied.Store(e.Rev)
			l.signal.Notify()
		}
	}
	if ctx.Err() != nil {
		return false, nil
	}
	return false, errors.New("ha: the action log watch closed (etcd client closed)")
}
