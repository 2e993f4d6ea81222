package ha

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// testFailover is short so that the tests take seconds: TTL 2 s (etcd's minimum), guard 0.5 s.
const testFailover = 3 * time.Second

// limit is how long a test waits for what should happen within the failover time before it
// fails: generous, since the machine is shared; the tests assert order and terms, not time.
const limit = 8 * testFailover

func client(t *testing.T, e *testkit.EtcdServer) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 2 * time.Second,
		Logger: nil})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

type running struct {
	c      *Coordinator
	cli    *clientv3.Client
	cancel context.CancelFunc
	done   chan error
}

func start(t *testing.T, e *testkit.EtcdServer, name string) *running {
	t.Helper()
	cli := client(t, e)
	c, err := New(cli, Options{Keys: KeysFor("/test", "site"), Instance: name, Failover: testFailover,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{c: c, cli: cli, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run (resigning unless c.crash) and waits for it, bounded.
func (r *running) stop(t *testing.T) error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // a second stop (cleanup) sees the same
		return err
	case <-time.After(limit):
		t.Errorf("%s: Run did not return", r.c.o.Instance)
		return nil
	}
}

// until polls cond every 20 ms until it holds, and fails past the limit.
func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", limit, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leaderOf waits until exactly one of rs leads and the others stand by, and returns it.
func leaderOf(t *testing.T, rs ...*running) (lead *running, others []*running) {
	t.Helper()
	until(t, "one leader, the others standby", func() bool {
		lead, others = nil, nil
		for _, r := range rs {
			switch r.c.Status().Role {
			case Leader:
				if lead != nil {
					return false
				}
				lead = r
			case Standby:
				others = append(others, r)
			default:
				return false
			}
		}
		return lead != nil
	})
	return lead, others
}

// A leader that dies without resigning (killed, or its connection to etcd cut) is replaced
// once its lease expires: by then it has stopped counting itself the leader (its Fence
// refuses), the survivor's term is higher, and the survivor's Fence accepts its own term.
func TestTakeoverAfterLeaderDies(t *testing.T) {
	for _, kill := range []string{"cancel without resign", "client closed"} {
		t.Run(kill, func(t *testing.T) {
			e := testkit.Etcd(t)
			a, b := start(t, e, "a"), start(t, e, "b")
			old, others := leaderOf(t, a, b)
			survivor := others[0]
			t1 := old.c.Status().Term
			if err := old.c.Fence(t1); err != nil {
				t.Fatalf("the leader's own fence: %v", err)
			}
			until(t, "the standby sees the leader", func() bool {
				s := survivor.c.Status()
				return s.Term == t1 && s.Leader == old.c.o.Instance
			})
			switch kill {
			case "cancel without resign":
				old.c.crash = true
				_ = old.stop(t)
			case "client closed":
				_ = old.cli.Close()
			}
			until(t, "the standby leads", func() bool { return survivor.c.Status().Role == Leader })
			// The order that matters: when the survivor leads, the old leader no longer may send.
			if err := old.c.Fence(t1); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("the old leader's fence when the survivor leads: %v, want ErrNotLeader", err)
			}
			t2 := survivor.c.Status().Term
			if t2 <= t1 {
				t.Fatalf("new term %d is not above the old %d", t2, t1)
			}
			if err := survivor.c.Fence(t2); err != nil {
				t.Fatalf("the new leader's fence: %v", err)
			}
			if err := survivor.c.Fence(t1); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("the new leader's fence on the old term: %v", err)
			}
			if kill == "client closed" {
				if err := old.stop(t); err == nil {
					t.Fatal("Run with its client closed returned no error")
				}
			}
		})
	}
}

// A leader that stops cleanly resigns and revokes its lease before Run returns, so the
// standby does not wait for an expiry.
func TestStopResignsAtOnce(t *testing.T) {
	e := testkit.Etcd(t)
	a, b := start(t, e, "a"), start(t, e, "b")
	old, others := leaderOf(t, a, b)
	lease := old.c.held.Load()
	if err := old.stop(t); err != nil {
		t.Fatal(err)
	}
	// The leader key is gone when Run has returned: nothing waits for the TTL.
	resp, err := client(t, e).Get(context.Background(), lease.key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatalf("the leader key %s is still there after a clean stop", lease.key)
	}
	until(t, "the standby leads", func() bool { return others[0].c.Status().Role == Leader })
	if old.c.Status().Role == Leader {
		t.Fatal("the stopped instance still says leader")
	}
}

// Record is guarded by the leader key: a stale leader (its lease expired while it still
// believed it led) cannot record, and a transition recorded by any leader is recorded once.
func TestRecordIsFencedByTheLeaderKey(t *testing.T) {
	e := testkit.Etcd(t)
	a, b := start(t, e, "a"), start(t, e, "b")
	old, others := leaderOf(t, a, b)
	t1 := old.c.Status().Term
	ctx := context.Background()
	for i, want := range []bool{true, false} {
		first, err := old.c.Record(ctx, t1, "zone-hall-critical/open")
		if err != nil || first != want {
			t.Fatalf("record %d: first=%v err=%v, want first=%v", i, first, err, want)
		}
	}
	if _, err := others[0].c.Record(ctx, t1, "x/open"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a standby recorded: %v", err)
	}
	// The lease expires on the server (revoked here: the old leader has not noticed yet).
	h := old.c.held.Load()
	resp, err := client(t, e).Get(ctx, h.key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("leader key: %v %v", resp, err)
	}
	if _, err := client(t, e).Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	if _, err := old.c.Record(ctx, t1, "zone-hall-critical/ack"); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the stale leader recorded: %v", err)
	}
	survivor := others[0]
	until(t, "the standby leads", func() bool { return survivor.c.Status().Role == Leader })
	t2 := survivor.c.Status().Term
	if t2 <= t1 {
		t.Fatalf("new term %d is not above %d", t2, t1)
	}
	for name, want := range map[string]bool{"zone-hall-critical/open": false, "zone-hall-critical/ack": true} {
		first, err := survivor.c.Record(ctx, t2, name)
		if err != nil || first != want {
			t.Fatalf("new leader records %s: first=%v err=%v, want %v", name, first, err, want)
		}
	}
	rec, err := survivor.c.Sent(ctx, "zone-hall-critical/open")
	if err != nil || rec == nil || rec.Term != t1 {
		t.Fatalf("the record of the old leader's send: %+v %v", rec, err)
	}
	if rec, err := survivor.c.Sent(ctx, "never"); err != nil || rec != nil {
		t.Fatalf("a record never made: %+v %v", rec, err)
	}
}

// With etcd unreachable both instances say degraded (the leader once its step-down point
// has passed, and it no longer passes its fence); when it answers again one leads, in a new
// term.
func TestCoordinatorDownIsDegraded(t *testing.T) {
	e := testkit.Etcd(t)
	a, b := start(t, e, "a"), start(t, e, "b")
	old, _ := leaderOf(t, a, b)
	t1 := old.c.Status().Term
	e.Pause()
	resumed := false
	defer func() {
		if !resumed {
			e.Resume()
		}
	}()
	until(t, "both degraded", func() bool {
		return a.c.Status().Role == Degraded && b.c.Status().Role == Degraded
	})
	if err := old.c.Fence(t1); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("the leader's fence with etcd down: %v", err)
	}
	if r := a.c.Status().Reason; r == "" {
		t.Fatal("degraded without a reason")
	}
	e.Resume()
	resumed = true
	lead, _ := leaderOf(t, a, b)
	if t2 := lead.c.Status().Term; t2 <= t1 {
		t.Fatalf("term after etcd came back %d, not above %d", t2, t1)
	}
}

func TestTiming(t *testing.T) {
	for _, c := range []struct {
		failover, ttl, guard time.Duration
	}{
		{0, 10 * time.Second, 2500 * time.Millisecond},
		{15 * time.Second, 10 * time.Second, 2500 * time.Millisecond},
		{3 * time.Second, 2 * time.Second, 500 * time.Millisecond},
		{time.Second, 2 * time.Second, 500 * time.Millisecond},
		{time.Minute, 40 * time.Second, 10 * time.Second},
	} {
		t.Run(fmt.Sprint(c.failover), func(t *testing.T) {
			ttl, guard := Timing(c.failover)
			if ttl != c.ttl || guard != c.guard {
				t.Fatalf("Timing(%v) = %v, %v; want %v, %v", c.failover, ttl, guard, c.ttl, c.guard)
			}
		})
	}
}
