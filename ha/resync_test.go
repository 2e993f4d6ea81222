package ha

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// stateful is an instance whose handler keeps a state made by the actions (the set of their
// numbers), snapshots it and restores it.
type stateful struct {
	*instance
	mu       sync.Mutex
	state    map[int]bool
	restored []int64
	noSnap   atomic.Bool // the snapshot fails while set
}

func (s *stateful) numbers() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.state))
}

func openStateful(t *testing.T, e *testkit.EtcdServer, name, path string, st *stateful) *stateful {
	t.Helper()
	if st == nil {
		st = &stateful{state: map[int]bool{}}
	}
	in := &instance{done: make(chan error, 1)}
	st.instance = in
	l, err := OpenLog(client(t, e), LogOptions{Keys: KeysFor("/test", "site"), Instance: name, Site: "site",
		StatePath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		SnapshotEvery: 50 * time.Millisecond, SnapshotRefresh: time.Hour,
		Apply: func(_ context.Context, e Entry) error {
			var b struct{ N int }
			_ = json.Unmarshal(e.Body, &b)
			st.mu.Lock()
			st.state[b.N] = true
			st.mu.Unlock()
			in.mu.Lock()
			in.got = append(in.got, e)
			in.mu.Unlock()
			return nil
		},
		Snapshot: func(context.Context) (json.RawMessage, error) {
			if st.noSnap.Load() {
				return nil, errors.New("no snapshot now")
			}
			return json.Marshal(st.numbers())
		},
		Restore: func(_ context.Context, rev int64, raw json.RawMessage) error {
			var ns []int
			if err := json.Unmarshal(raw, &ns); err != nil {
				return err
			}
			st.mu.Lock()
			defer st.mu.Unlock()
			clear(st.state)
			for _, n := range ns {
				st.state[n] = true
			}
			st.restored = append(st.restored, rev)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	in.log = l
	ctx, cancel := context.WithCancel(context.Background())
	in.cancel = cancel
	go func() { in.done <- l.Run(ctx) }()
	t.Cleanup(func() { in.stop(t) })
	return st
}

// TestActionsResyncFromASnapshot: b misses actions that etcd then compacts away; on its
// restart it restores a's snapshot (the state as of a revision), counts that revision
// applied, and follows the log from there: both have the same state, and b's own actions
// reach a again. An instance that is current counts itself applied through the snapshot's
// revision, so its own restart after a compaction of other keys needs no resync.
func TestActionsResyncFromASnapshot(t *testing.T) {
	e := testkit.Etcd(t)
	dir := t.TempDir()
	ctx := context.Background()
	a := openStateful(t, e, "a", filepath.Join(dir, "a.ha.db"), nil)
	bPath := filepath.Join(dir, "b.ha.db")
	b := openStateful(t, e, "b", bPath, nil)
	rev, err := a.log.Append(ctx, action(ActionCorrection, "x", 1))
	if err != nil {
		t.Fatal(err)
	}
	until(t, "b applies", func() bool { return b.log.Applied() >= rev })
	_ = b.stop(t)
	var last int64
	for n := 2; n <= 5; n++ {
		if last, err = a.log.Append(ctx, action(ActionSilence, "x", n)); err != nil {
			t.Fatal(err)
		}
	}
	cli := client(t, e)
	var snap Snapshot
	until(t, "a writes a snapshot of everything", func() bool {
		snaps, err := a.log.Snapshots(ctx)
		if err != nil || len(snaps) == 0 || snaps[0].Rev < last {
			return false
		}
		snap = snaps[0]
		return true
	})
	if snap.Instance != "a" || string(snap.State) != "[1,2,3,4,5]" {
		t.Fatalf("a's snapshot: %+v", snap)
	}
	if a.log.Applied() < snap.Rev {
		t.Fatalf("a applied through %d, below its own snapshot's %d", a.log.Applied(), snap.Rev)
	}
	if _, err := cli.Compact(ctx, snap.Rev); err != nil {
		t.Fatal(err)
	}

	b2 := openStateful(t, e, "b", bPath, nil)
	b2.mu.Lock()
	b2.state[1] = true // what b had from before its restart
	b2.mu.Unlock()
	until(t, "b resyncs", func() bool { return b2.log.Applied() >= snap.Rev && b2.log.Err() == nil })
	if got := b2.numbers(); !slices.Equal(got, a.numbers()) {
		t.Fatalf("after the resync b has %v, a %v", got, a.numbers())
	}
	if len(b2.restored) != 1 || len(b2.applied()) != 0 {
		t.Fatalf("b restored %v and applied %d entries; want one restore, no entry of the compacted gap", b2.restored, len(b2.applied()))
	}
	rev, err = b2.log.Append(ctx, action(ActionPlan, "y", 6))
	if err != nil {
		t.Fatal(err)
	}
	until(t, "a applies b's new action", func() bool { return a.log.Applied() >= rev })
	if !slices.Equal(a.numbers(), []int{1, 2, 3, 4, 5, 6}) || !slices.Equal(b2.numbers(), a.numbers()) {
		t.Fatalf("a %v, b %v", a.numbers(), b2.numbers())
	}
}

// Without a snapshot newer than what it applied, a compacted instance keeps saying so, and
// refuses to append (nothing is written) until one is there.
func TestActionsCompactedWaitsForASnapshot(t *testing.T) {
	e := testkit.Etcd(t)
	dir := t.TempDir()
	ctx := context.Background()
	cli := client(t, e)
	bPath := filepath.Join(dir, "b.ha.db")
	b := openStateful(t, e, "b", bPath, nil)
	_ = b.stop(t)
	// a is current but writes no snapshot yet.
	aState := &stateful{state: map[int]bool{}}
	aState.noSnap.Store(true)
	a := openStateful(t, e, "a", filepath.Join(dir, "a.ha.db"), aState)
	rev, err := a.log.Append(ctx, action(ActionSilence, "x", 7))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctx, rev); err != nil {
		t.Fatal(err)
	}
	b2 := openStateful(t, e, "b", bPath, nil)
	until(t, "b says it is compacted", func() bool { return errors.Is(b2.log.Err(), ErrCompacted) })
	actx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	before, _ := cli.Get(ctx, KeysFor("/test", "site").actions(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if rev, err := b2.log.Append(actx, action(ActionPlan, "y", 1)); !errors.Is(err, ErrCompacted) || rev != 0 {
		t.Fatalf("Append while compacted: %d %v, want refused before writing", rev, err)
	}
	after, _ := cli.Get(ctx, KeysFor("/test", "site").actions(), clientv3.WithPrefix(), clientv3.WithCountOnly())
	if after.Count != before.Count {
		t.Fatal("an action was written by an instance that cannot apply it")
	}
	// a writes its snapshot: b resyncs from it.
	a.noSnap.Store(false)
	until(t, "b resyncs from a's snapshot", func() bool { return b2.log.Err() == nil && slices.Equal(b2.numbers(), []int{7}) })
}

// TestPruneSent: the leader deletes an occurrence's records once its newest is older than
// SentKeep, or SentKeepResolved once it resolved; it keeps what a takeover needs; a standby
// prunes nothing.
func TestPruneSent(t *testing.T) {
	e := testkit.Etcd(t)
	r1, r2 := start(t, e, "a"), start(t, e, "b")
	lead, others := leaderOf(t, r1, r2)
	ctx := context.Background()
	keys := KeysFor("/test", "site")
	now := time.Now().UTC()
	put := func(name string, age time.Duration) {
		v, _ := json.Marshal(SentRecord{Term: 1, Instance: "a", At: now.Add(-age)})
		if _, err := lead.cli.Put(ctx, keys.sent()+name, string(v)); err != nil {
			t.Fatal(err)
		}
	}
	put("level:hall/1/fired", 30*time.Hour)         // an old occurrence, still open
	put("level:hall/1/escalated-1", 2*time.Hour)    // ... its newest record is recent: kept
	put("level:hall/2/fired", 3*time.Hour)          // resolved 2 h ago: gone
	put("level:hall/2/resolved", 2*time.Hour)       //
	put("level:door/5/fired", 25*time.Hour)         // open, quiet for more than a day: gone
	put("level:door/6/fired", 10*time.Minute)       // resolved 5 min ago: kept (within an hour)
	put("level:door/6/resolved", 5*time.Minute)     //
	put("device_silent:dc-01/7/fired", time.Minute) // new: kept

	if _, err := others[0].c.PruneSent(ctx, now); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a standby pruned: %v", err)
	}
	n, err := lead.c.PruneSent(ctx, now)
	if err != nil || n != 3 {
		t.Fatalf("pruned %d (%v), want 3", n, err)
	}
	left, err := lead.c.SentUnder(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(maps.Keys(left))
	want := []string{"device_silent:dc-01/7/fired", "level:door/6/fired", "level:door/6/resolved", "level:hall/1/escalated-1", "level:hall/1/fired"}
	if !slices.Equal(got, want) {
		t.Fatalf("left %s\nwant %s", strings.Join(got, " "), strings.Join(want, " "))
	}
	// More than one transaction's worth, all old: all gone.
	for i := range 250 {
		put("level:z/"+string(rune('a'+i%26))+string(rune('a'+i/26))+"/resolved", 2*time.Hour)
	}
	if n, err := lead.c.PruneSent(ctx, now); err != nil || n != 250 {
		t.Fatalf("pruned %d (%v), want 250", n, err)
	}
}

// TestPruneActions: the leader deletes the actions at or below the lowest revision of the
// live instances' snapshots, older than the margin; a standby prunes nothing; an instance
// that was down when its actions were pruned still gets them from etcd's history, and does
// not count itself current (nor write a snapshot) before it has seen the prune.
func TestPruneActions(t *testing.T) {
	e := testkit.Etcd(t)
	r1, r2 := start(t, e, "a"), start(t, e, "b")
	lead, others := leaderOf(t, r1, r2)
	ctx := context.Background()
	keys := KeysFor("/test", "site")
	cli := client(t, e)
	dir := t.TempDir()
	a := openStateful(t, e, "a", filepath.Join(dir, "a.ha.db"), nil)
	bPath := filepath.Join(dir, "b.ha.db")
	b := openStateful(t, e, "b", bPath, nil)
	var last int64
	var err error
	for n := 1; n <= 5; n++ {
		if last, err = a.log.Append(ctx, action(ActionSilence, "x", n)); err != nil {
			t.Fatal(err)
		}
	}
	snapOf := func(name string) Snapshot {
		snaps, _ := a.log.Snapshots(ctx)
		for _, s := range snaps {
			if s.Instance == name {
				return s
			}
		}
		return Snapshot{}
	}
	until(t, "both write a snapshot of the five", func() bool { return snapOf("a").Rev >= last && snapOf("b").Rev >= last })
	_ = b.stop(t)
	bRev := snapOf("b").Rev
	for n := 6; n <= 8; n++ {
		if last, err = a.log.Append(ctx, action(ActionSilence, "x", n)); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "a's snapshot of all eight", func() bool { return snapOf("a").Rev >= last })
	count := func() int64 {
		r, err := cli.Get(ctx, keys.actions(), clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		return r.Count
	}

	if _, _, err := others[0].c.PruneActions(ctx, time.Now(), PruneOptions{}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a standby pruned: %v", err)
	}
	if n, _, err := lead.c.PruneActions(ctx, time.Now(), PruneOptions{}); err != nil || n != 0 || count() != 8 {
		t.Fatalf("within the margin: pruned %d (%v), %d left; want none", n, err, count())
	}
	// b is live (its snapshot is recent) but behind: the bound is b's snapshot.
	n, bound, err := lead.c.PruneActions(ctx, time.Now(), PruneOptions{Keep: time.Nanosecond})
	if err != nil || n != 5 || bound != bRev || count() != 3 {
		t.Fatalf("pruned %d below %d (%v), %d left; want 5 below b's %d, 3 left", n, bound, err, count(), bRev)
	}
	// b's snapshot is stale (b is down): the bound is a's, everything goes.
	old := snapOf("b")
	old.At = time.Now().Add(-time.Hour)
	v, _ := json.Marshal(old)
	if _, err := cli.Put(ctx, keys.snapshots()+"b", string(v)); err != nil {
		t.Fatal(err)
	}
	if n, bound, err := lead.c.PruneActions(ctx, time.Now(), PruneOptions{Keep: time.Nanosecond}); err != nil || n != 3 || bound < last || count() != 0 {
		t.Fatalf("pruned %d below %d (%v), %d left; want all 3 below a's %d", n, bound, err, count(), last)
	}

	// b, before it has watched: no action key above what it applied, but it has not seen the
	// prune: it is behind, writes no snapshot and does not move its applied revision.
	bl, err := OpenLog(cli, LogOptions{Keys: keys, Instance: "b", Site: "site", StatePath: bPath,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Apply:  func(context.Context, Entry) error { return nil },
		Snapshot: func(context.Context) (json.RawMessage, error) {
			return json.RawMessage("[1,2,3,4,5]"), nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	applied := bl.Applied()
	if p, err := bl.Pending(ctx); err != nil || p == 0 {
		t.Fatalf("b's pending before it saw the prune: %d %v, want at least one", p, err)
	}
	if err := bl.snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	if bl.Applied() != applied || snapOf("b").Rev != old.Rev {
		t.Fatalf("b counted itself current through %d (snapshot %d) before seeing the pruned actions above %d",
			bl.Applied(), snapOf("b").Rev, applied)
	}
	_ = bl.Close()

	// b restarts: the watch delivers the pruned actions from history, then the prune.
	b2 := openStateful(t, e, "b", bPath, nil)
	b2.mu.Lock()
	for n := 1; n <= 5; n++ {
		b2.state[n] = true // what b had before
	}
	b2.mu.Unlock()
	until(t, "b catches up and writes its snapshot", func() bool {
		p, _ := b2.log.Pending(ctx)
		return p == 0 && snapOf("b").Rev > last
	})
	if !slices.Equal(b2.numbers(), []int{1, 2, 3, 4, 5, 6, 7, 8}) || len(b2.restored) != 0 {
		t.Fatalf("b has %v (restored %v); want 1..8 from the history, no resync", b2.numbers(), b2.restored)
	}
}
