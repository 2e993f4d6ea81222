package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// instance is one store instance's action log with what its handler applied, in order.
type instance struct {
	log    *Log
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	got    []Entry
}

func (in *instance) applied() []Entry {
	in.mu.Lock()
	defer in.mu.Unlock()
	return slices.Clone(in.got)
}

func openInstance(t *testing.T, e *testkit.EtcdServer, name, path string) *instance {
	t.Helper()
	in := &instance{done: make(chan error, 1)}
	l, err := OpenLog(client(t, e), LogOptions{Keys: KeysFor("/test", "site"), Instance: name, Site: "site",
		StatePath: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Apply: func(_ context.Context, e Entry) error {
			in.mu.Lock()
			in.got = append(in.got, e)
			in.mu.Unlock()
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
	return in
}

// stop ends Run and closes the state file; a second call does nothing.
func (in *instance) stop(t *testing.T) error {
	if in.cancel == nil {
		return nil
	}
	in.cancel()
	in.cancel = nil
	var err error
	select {
	case err = <-in.done:
	case <-time.After(limit):
		t.Errorf("%s: Run did not return", in.log.o.Instance)
	}
	_ = in.log.Close()
	return err
}

func action(kind, who string, n int) Action {
	body, _ := json.Marshal(map[string]int{"n": n})
	return Action{Kind: kind, By: who, Body: body}
}

// Actions appended on both instances at once, in any interleaving, are applied on both in
// one order (etcd's revisions); each Append returns only once its own instance applied it.
func TestActionsAppliedInOneOrderOnBoth(t *testing.T) {
	e := testkit.Etcd(t)
	dir := t.TempDir()
	a := openInstance(t, e, "a", filepath.Join(dir, "a.ha.db"))
	b := openInstance(t, e, "b", filepath.Join(dir, "b.ha.db"))
	const each = 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*each)
	var last int64
	var lastMu sync.Mutex
	for _, in := range []*instance{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), limit)
				rev, err := in.log.Append(ctx, action(ActionAcknowledge, in.log.o.Instance, i))
				cancel()
				if err != nil {
					errs <- err
					return
				}
				if !slices.ContainsFunc(in.applied(), func(e Entry) bool { return e.Rev == rev }) {
					errs <- fmt.Errorf("%s: Append(%d) returned before its instance applied it", in.log.o.Instance, rev)
				}
				lastMu.Lock()
				last = max(last, rev)
				lastMu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	until(t, "both applied everything", func() bool { return a.log.Applied() == last && b.log.Applied() == last })
	ga, gb := a.applied(), b.applied()
	if len(ga) != 2*each || !slices.EqualFunc(ga, gb, func(x, y Entry) bool {
		return x.Rev == y.Rev && x.Instance == y.Instance && string(x.Body) == string(y.Body)
	}) {
		t.Fatalf("the instances applied different sequences:\na %v\nb %v", ga, gb)
	}
	for i := 1; i < len(ga); i++ {
		if ga[i].Rev <= ga[i-1].Rev {
			t.Fatalf("not in revision order at %d: %d after %d", i, ga[i].Rev, ga[i-1].Rev)
		}
	}
	if n, err := a.log.Pending(context.Background()); err != nil || n != 0 {
		t.Fatalf("pending after all applied: %d %v", n, err)
	}
}

// An instance that was stopped catches up from its last applied revision when it starts
// again: it applies exactly what it missed, once.
func TestActionsCaughtUpAfterRestart(t *testing.T) {
	e := testkit.Etcd(t)
	dir := t.TempDir()
	a := openInstance(t, e, "a", filepath.Join(dir, "a.ha.db"))
	bPath := filepath.Join(dir, "b.ha.db")
	b := openInstance(t, e, "b", bPath)
	ctx := context.Background()
	first, err := a.log.Append(ctx, action(ActionCorrection, "x", 0))
	if err != nil {
		t.Fatal(err)
	}
	until(t, "b applies the first", func() bool { return b.log.Applied() == first })
	if err := b.stop(t); err != nil {
		t.Fatal(err)
	}
	var missed []int64
	for i := 1; i <= 4; i++ {
		rev, err := a.log.Append(ctx, action(ActionSilence, "x", i))
		if err != nil {
			t.Fatal(err)
		}
		missed = append(missed, rev)
	}
	b2 := openInstance(t, e, "b", bPath)
	if got := b2.log.Applied(); got != first {
		t.Fatalf("restarted b remembers revision %d, want %d", got, first)
	}
	until(t, "restarted b catches up", func() bool { return b2.log.Applied() == missed[len(missed)-1] })
	var revs []int64
	for _, e := range b2.applied() {
		revs = append(revs, e.Rev)
	}
	if !slices.Equal(revs, missed) {
		t.Fatalf("restarted b applied %v, want exactly the missed %v", revs, missed)
	}
	// b's own appends work again and reach a.
	rev, err := b2.log.Append(ctx, action(ActionPlan, "y", 9))
	if err != nil {
		t.Fatal(err)
	}
	until(t, "a applies b's action", func() bool { return a.log.Applied() == rev })
}

// When etcd compacted away what an instance missed, Run stops with ErrCompacted (a full
// resync is needed) instead of applying a log with a hole, and Append says so.
func TestActionsCompactedNeedsResync(t *testing.T) {
	e := testkit.Etcd(t)
	dir := t.TempDir()
	a := openInstance(t, e, "a", filepath.Join(dir, "a.ha.db"))
	bPath := filepath.Join(dir, "b.ha.db")
	b := openInstance(t, e, "b", bPath)
	ctx := context.Background()
	rev, err := a.log.Append(ctx, action(ActionCorrection, "x", 0))
	if err != nil {
		t.Fatal(err)
	}
	until(t, "b applies", func() bool { return b.log.Applied() == rev })
	_ = b.stop(t)
	var lastRev int64
	for i := 1; i <= 3; i++ {
		if lastRev, err = a.log.Append(ctx, action(ActionEvacuation, "x", i)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := client(t, e).Compact(ctx, lastRev); err != nil {
		t.Fatal(err)
	}
	b2 := openInstance(t, e, "b", bPath)
	var runErr error
	select {
	case runErr = <-b2.done:
		b2.done <- runErr
	case <-time.After(limit):
		t.Fatal("Run went on over a compacted log")
	}
	if !errors.Is(runErr, ErrCompacted) || !errors.Is(b2.log.Err(), ErrCompacted) {
		t.Fatalf("Run: %v; Err: %v; want ErrCompacted", runErr, b2.log.Err())
	}
	if len(b2.applied()) != 0 || b2.log.Applied() != rev {
		t.Fatalf("a compacted log applied something: %v, applied %d", b2.applied(), b2.log.Applied())
	}
	actx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if _, err := b2.log.Append(actx, action(ActionPlan, "y", 1)); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Append on a stopped log: %v, want ErrCompacted", err)
	}
}
