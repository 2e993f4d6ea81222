package ha

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Retention of the action keys (docs/ha.md, "Retention of the action keys"). Every action is
// a key of its own under actions/; without a retention they grow for ever. The leader
// deletes the actions at or below the bound: the lowest revision among the snapshots written
// within ActionsLive (the instances that are alive and current have applied at least that
// much: an instance writes a snapshot only when current, at least every SnapshotRefresh),
// and only those older than ActionsKeep by their own time (a margin that keeps the last
// hour readable by hand). A delete does not remove an action from etcd's history, so a
// watch from an older revision (an instance that was down) still receives it until etcd
// compacts, after which that instance resyncs from a snapshot as before. The one reader
// that a delete could mislead is the Get that decides whether an instance is current
// (snapshot, Pending): each prune transaction also writes the pruned key (its revision is
// the delete's), and an instance that has not seen the log through that revision counts
// itself behind.
const (
	ActionsLive = 2*DefaultSnapshotRefresh + DefaultSnapshotEvery
	ActionsKeep = time.Hour
	pruneRead   = 10000
)

// Pruned is the value of <prefix>/<site>/pruned: the bound of the last prune.
type Pruned struct {
	Rev int64     `json:"rev"` // every action at or below it was deleted
	At  time.Time `json:"at"`
}

// PruneOptions bound a prune; zero fields take ActionsLive and ActionsKeep.
type PruneOptions struct {
	Live, Keep time.Duration
}

// PruneActions deletes the action keys every live instance has applied (above), as of now;
// only the leader of its term does it, in transactions of at most pruneBatch operations
// guarded like Record, so a stale leader deletes nothing. It returns how many it deleted
// and the bound it used (0: no live snapshot, nothing deleted).
func (c *Coordinator) PruneActions(ctx context.Context, now time.Time, o PruneOptions) (n int, bound int64, err error) {
	if o.Live <= 0 {
		o.Live = ActionsLive
	}
	if o.Keep <= 0 {
		o.Keep = ActionsKeep
	}
	st := c.Status()
	h := c.held.Load()
	if st.Role != Leader || h == nil || h.rev != st.Term || c.Fence(st.Term) != nil {
		return 0, 0, fmt.Errorf("ha: pruning the actions: %w", ErrNotLeader)
	}
	snaps, err := c.cli.Get(ctx, c.o.Keys.snapshots(), clientv3.WithPrefix())
	if err != nil {
		return 0, 0, fmt.Errorf("ha: pruning the actions: reading the snapshots: etcd: %w", err)
	}
	for _, kv := range snaps.Kvs {
		var s Snapshot
		if err := json.Unmarshal(kv.Value, &s); err != nil || s.Rev <= 0 {
			continue // not readable: says nothing about what anyone applied
		}
		if now.Sub(s.At) > o.Live {
			continue // that instance is down or behind: it catches up from history or resyncs
		}
		if bound == 0 || s.Rev < bound {
			bound = s.Rev
		}
	}
	if bound == 0 {
		return 0, 0, nil
	}
	// At most pruneRead keys a time: a first prune of a log that grew for months is spread
	// over the runs (one every 10 min) rather than one large read.
	resp, err := c.cli.Get(ctx, c.o.Keys.actions(), clientv3.WithPrefix(), clientv3.WithMaxModRev(bound), clientv3.WithLimit(pruneRead))
	if err != nil {
		return 0, bound, fmt.Errorf("ha: pruning the actions: etcd: %w", err)
	}
	var doomed []string
	for _, kv := range resp.Kvs {
		var a Action
		if err := json.Unmarshal(kv.Value, &a); err == nil && now.Sub(a.At) < o.Keep {
			continue // recent: kept as a margin (an unreadable one is applied by nobody: it goes)
		}
		doomed = append(doomed, string(kv.Key))
	}
	marker, _ := json.Marshal(Pruned{Rev: bound, At: now.UTC()})
	for len(doomed) > 0 {
		k := min(len(doomed), pruneBatch-1) // and the pruned key
		ops := make([]clientv3.Op, 0, k+1)
		for _, key := range doomed[:k] {
			ops = append(ops, clientv3.OpDelete(key))
		}
		ops = append(ops, clientv3.OpPut(c.o.Keys.pruned(), string(marker)))
		tr, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)).Then(ops...).Commit()
		if err != nil {
			return n, bound, fmt.Errorf("ha: pruning the actions: etcd: %w", err)
		}
		if !tr.Succeeded {
			return n, bound, fmt.Errorf("ha: pruning the actions: %w of term %d (its leader key is gone)", ErrNotLeader, h.rev)
		}
		n += k
		doomed = doomed[k:]
	}
	return n, bound, nil
}
