// Package ha lets two or more instances of one store run side by side: leadership from an
// etcd lease (Coordinator: which instance sends notifications and publishes the retained
// topics, and the fence a sender checks), and the operator action log (Log: corrections,
// acknowledgements, evacuations, silences and plan changes in one global order, applied on
// every instance). The design, the failures considered and what is built: docs/ha.md.
package ha

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/crowdwatch/crowdwatch/internal/owner"
)

// Role is what an instance does in its pair.
type Role string

const (
	// Standby ingests, serves pages and applies operator actions, and sends nothing.
	Standby Role = "standby"
	// Leader does what a standby does and also sends notifications, runs escalation and
	// repeats, and publishes the retained guidance, zone and alert topics.
	Leader Role = "leader"
	// Degraded: the coordinator cannot be reached (or the lease was lost and is being taken
	// again), so this instance cannot prove who leads. docs/ha.md says who notifies then.
	Degraded Role = "degraded"
)

// ErrNotLeader is wrapped by Fence and Record when this instance is not (or no longer) the
// leader of the term it names.
var ErrNotLeader = errors.New("not the leader")

// DefaultFailover is how long a standby takes at most to lead after the leader dies.
const DefaultFailover = 15 * time.Second

// Status is the coordinator's latest state, immutable once published.
type Status struct {
	Instance string `json:"instance"`
	Role     Role   `json:"role"`
	// Term is this instance's term while it leads; otherwise the term of the leader it last
	// saw (0 when none is known). A term is the leader key's create revision in etcd: a
	// later leader always has a higher one.
	Term int64 `json:"term"`
	// Leader is the instance that leads, as last seen ("" when unknown).
	Leader string    `json:"leader,omitempty"`
	Since  time.Time `json:"since"`            // when Role last changed
	Reason string    `json:"reason,omitempty"` // why degraded

	// stepDown is, while leading, the moment (on this process's monotonic clock) at which
	// it stops counting itself the leader unless the lease is renewed first.
	stepDown time.Time
}

// Options configure a Coordinator.
type Options struct {
	Keys     Keys
	Instance string // this instance's name, unique in the site; the leader key's value
	// Failover is the longest a standby should take to lead after the leader died
	// (DefaultFailover when zero). The lease TTL and the step-down guard derive from it.
	Failover time.Duration
	Logger   *slog.Logger // nil: slog.Default()
}

// Keys are the etcd keys of one site: everything lives under Root (<prefix>/<site>/).
type Keys struct{ Root string }

// KeysFor is the keys of site under prefix ("/crowdwatch" when empty).
func KeysFor(prefix, site string) Keys {
	if prefix == "" {
		prefix = "/crowdwatch"
	}
	return Keys{Root: strings.TrimSuffix(prefix, "/") + "/" + site + "/"}
}

func (k Keys) leader() string    { return k.Root + "leader" } // concurrency adds the "/"
func (k Keys) sent() string      { return k.Root + "sent/" }
func (k Keys) actions() string   { return k.Root + "actions/" }
func (k Keys) snapshots() string { return k.Root + "snapshot/" }
func (k Keys) pruned() string    { return k.Root + "pruned" } // outside actions/: no action

// Timing derives the lease TTL and the step-down guard from the failover time. The lease
// expires on the server TTL after its last renewal, and a standby leads as soon as it
// expires, so takeover after a crash takes TTL plus a watch event; the rest of the failover
// time is left for an etcd cluster's own leader change (its members extend every lease
// when a new etcd leader takes over). The leader stops counting itself the leader guard
// before the earliest moment the server could expire its lease (docs/ha.md, "Timing").
func Timing(failover time.Duration) (ttl, guard time.Duration) {
	if failover <= 0 {
		failover = DefaultFailover
	}
	ttl = (failover * 2 / 3).Truncate(time.Second)
	if ttl < 2*time.Second {
		ttl = 2 * time.Second // etcd's own minimum lease with its default election timeout
	}
	return ttl, ttl / 4
}

// Coordinator campaigns for leadership of its site and tells the rest of the instance its
// role. Its Run goroutine owns the state; Status, Fence and Subscribe read what it published.
type Coordinator struct {
	cli   *clientv3.Client
	o     Options
	log   *slog.Logger
	ttl   time.Duration
	guard time.Duration

	status  atomic.Pointer[Status]
	held    atomic.Pointer[term] // the last term this instance led, for Record
	changed owner.Signal
	lost    chan int64 // terms Record found lost, to the Run goroutine

	// crash, set by tests, makes Run return at the end of its context without resigning or
	// revoking, as a killed process would: the lease stays until it expires.
	crash bool
}

type term struct {
	rev int64
	key string
}

// New builds a coordinator on an etcd client (the caller closes it after Run returned).
func New(cli *clientv3.Client, o Options) (*Coordinator, error) {
	if o.Instance == "" {
		return nil, errors.New("ha: the instance needs a name")
	}
	if o.Keys.Root == "" {
		return nil, errors.New("ha: no key prefix")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Coordinator{cli: cli, o: o, log: o.Logger, lost: make(chan int64, 1)}
	c.ttl, c.guard = Timing(o.Failover)
	c.status.Store(&Status{Instance: o.Instance, Role: Degraded, Since: time.Now(), Reason: "not started"})
	return c, nil
}

// Status is the latest state.
func (c *Coordinator) Status() Status { return *c.status.Load() }

// Subscribe signals each change of the status (owner.Signal: coalesced, never blocking).
func (c *Coordinator) Subscribe() (<-chan struct{}, func()) { return c.changed.Subscribe() }

// Fence says whether this instance may send now as the leader of term t: it leads, in that
// term, and its own clock has not passed its step-down point. A sender calls it at the
// moment of sending; a nil error holds until the next lease renewal is due plus the guard,
// and the guard is what covers the send itself (docs/ha.md, "Timing").
func (c *Coordinator) Fence(t int64) error {
	s := c.status.Load()
	if s.Role != Leader || s.Term != t {
		return fmt.Errorf("ha: %w of term %d (this instance is %s, term %d)", ErrNotLeader, t, s.Role, s.Term)
	}
	if !time.Now().Before(s.stepDown) {
		return fmt.Errorf("ha: %w of term %d (no lease renewal in time: stepping down)", ErrNotLeader, t)
	}
	return nil
}

// SentRecord is what Record stores for a notification.
type SentRecord struct {
	Term     int64     `json:"term"`
	Instance string    `json:"instance"`
	At       time.Time `json:"at"`
}

// Record marks name (an alert transition, "<alert>/<transition>") as sent, in one etcd
// transaction that succeeds only while the leader key of term t still exists with that
// create revision: a stale leader (its lease expired, another instance leads) gets
// ErrNotLeader and must not send. first is false when name was recorded already (by this
// or an earlier leader): then it must not be sent again. Record checks etcd, not the clock:
// call Fence before sending too.
func (c *Coordinator) Record(ctx context.Context, t int64, name string) (first bool, err error) {
	h := c.held.Load()
	if h == nil || h.rev != t {
		return false, fmt.Errorf("ha: recording %q: %w of term %d", name, ErrNotLeader, t)
	}
	key := c.o.Keys.sent() + name
	val, _ := json.Marshal(SentRecord{Term: t, Instance: c.o.Instance, At: time.Now().UTC()})
	resp, err := c.cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", t)).
		Then(clientv3.OpTxn(
			[]clientv3.Cmp{clientv3.Compare(clientv3.CreateRevision(key), "=", 0)},
			[]clientv3.Op{clientv3.OpPut(key, string(val))}, nil)).
		Commit()
	if err != nil {
		return false, fmt.Errorf("ha: recording %q: etcd: %w", name, err)
	}
	if !resp.Succeeded {
		select { // tell Run at once rather than at the next renewal
		case c.lost <- t:
		default:
		}
		return false, fmt.Errorf("ha: recording %q: %w of term %d (its leader key is gone)", name, ErrNotLeader, t)
	}
	return resp.Responses[0].GetResponseTxn().Succeeded, nil
}

// Sent reads the record of name, nil when it was never recorded: a new leader asks it for
// the transitions it finds unsent.
func (c *Coordinator) Sent(ctx context.Context, name string) (*SentRecord, error) {
	resp, err := c.cli.Get(ctx, c.o.Keys.sent()+name)
	if err != nil {
		return nil, fmt.Errorf("ha: reading the record of %q: etcd: %w", name, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, nil
	}
	var r SentRecord
	if err := json.Unmarshal(resp.Kvs[0].Value, &r); err != nil {
		return nil, fmt.Errorf("ha: the record of %q is not readable: %w", name, err)
	}
	return &r, nil
}

// SentUnder reads every record whose name starts with prefix, by the rest of the name: the
// dispatcher lists one alert's records to find which occurrence of it a transition is of.
func (c *Coordinator) SentUnder(ctx context.Context, prefix string) (map[string]SentRecord, error) {
	resp, err := c.cli.Get(ctx, c.o.Keys.sent()+prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("ha: reading the records under %q: etcd: %w", prefix, err)
	}
	out := make(map[string]SentRecord, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		var r SentRecord
		_ = json.Unmarshal(kv.Value, &r) // the name is what matters; a damaged value still counts as sent
		out[strings.TrimPrefix(string(kv.Key), c.o.Keys.sent()+prefix)] = r
	}
	return out, nil
}

// Failover is the configured failover time (DefaultFailover when it was zero).
func (c *Coordinator) Failover() time.Duration {
	if c.o.Failover <= 0 {
		return DefaultFailover
	}
	return c.o.Failover
}

// set publishes a new status (Run's goroutine only).
func (c *Coordinator) set(s Status) {
	old := c.status.Load()
	s.Instance = c.o.Instance
	if s.Role == old.Role {
		s.Since = old.Since
	} else {
		s.Since = time.Now()
		c.log.Info("ha: role", "role", s.Role, "term", s.Term, "leader", s.Leader, "reason", s.Reason)
	}
	if s == *old {
		return
	}
	c.status.Store(&s)
	c.changed.Notify()
}

// Run campaigns until ctx ends; then, unless this instance crashed, it resigns and revokes
// its lease so that a standby leads at once. It returns an error only when the etcd client
// was closed under it.
func (c *Coordinator) Run(ctx context.Context) error {
	var stale clientv3.LeaseID // a lease of an earlier session, revoked when etcd answers again
	for {
		err := c.session(ctx, &stale)
		if ctx.Err() != nil {
			return nil
		}
		if c.cli.Ctx().Err() != nil {
			c.set(Status{Role: Degraded, Reason: "etcd client closed"})
			return errors.New("ha: the etcd client was closed")
		}
		st := c.status.Load()
		c.set(Status{Role: Degraded, Term: st.Term, Leader: st.Leader, Reason: err.Error()})
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(c.ttl / 4):
		}
	}
}

type event struct {
	kind   int // renewed, won, observed
	sent   time.Time
	ttl    int64
	rev    int64
	key    string
	leader string
	err    error
}

const (
	renewed = iota
	won
	observed
)

// session is one lease: take it, campaign on it, lead or stand by until it ends. It returns
// why it ended (nil error only at the end of ctx).
func (c *Coordinator) session(ctx context.Context, stale *clientv3.LeaseID) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	call := func() (context.Context, context.CancelFunc) { return context.WithTimeout(sctx, c.ttl/3) }
	if *stale != 0 {
		// Our key of the earlier session would make this campaign wait for its expiry.
		cctx, ccancel := call()
		if _, err := c.cli.Revoke(cctx, *stale); err == nil || errors.Is(err, rpctypes.ErrLeaseNotFound) {
			*stale = 0
		}
		ccancel()
	}
	sent := time.Now()
	cctx, ccancel := call()
	g, err := c.cli.Grant(cctx, int64(c.ttl/time.Second))
	ccancel()
	if err != nil {
		return fmt.Errorf("etcd unreachable: cannot take a lease: %w", err)
	}
	*stale = g.ID
	stepDown := sent.Add(time.Duration(g.TTL)*time.Second - c.guard)
	sess, err := concurrency.NewSession(c.cli, concurrency.WithLease(g.ID), concurrency.WithContext(sctx))
	if err != nil {
		return fmt.Errorf("etcd: cannot keep the lease alive: %w", err)
	}
	el := concurrency.NewElection(sess, c.o.Keys.leader())
	events := make(chan event, 8)
	send := func(e event) {
		select {
		case events <- e:
		case <-sctx.Done():
		}
	}
	go func() {
		err := el.Campaign(sctx, c.o.Instance)
		send(event{kind: won, rev: el.Rev(), key: el.Key(), err: err})
	}()
	go func() {
		// The renewals whose send time is known: the server's expiry is at least that time
		// plus the TTL it answers, so stepping down before it is safe whatever the delay.
		tick := time.NewTicker(c.ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
			}
			sent := time.Now()
			cctx, ccancel := call()
			r, err := c.cli.KeepAliveOnce(cctx, g.ID)
			ccancel()
			e := event{kind: renewed, sent: sent, err: err}
			if err == nil {
				e.ttl = r.TTL
			}
			send(e)
		}
	}()
	go func() {
		for r := range el.Observe(sctx) {
			if len(r.Kvs) > 0 {
				send(event{kind: observed, leader: string(r.Kvs[0].Value), rev: r.Kvs[0].CreateRevision})
			}
		}
	}()

	st := Status{Role: Standby, Term: c.status.Load().Term, Leader: c.status.Load().Leader}
	c.set(st)
	timer := time.NewTimer(time.Until(stepDown))
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			c.stop(el, sess)
			return nil
		case <-sess.Done():
			return errors.New("lease lost")
		case <-timer.C:
			return fmt.Errorf("etcd unreachable: no lease renewal for %v: stepped down before the lease can expire", c.ttl-c.guard)
		case t := <-c.lost:
			if st.Role == Leader && t == st.Term {
				return errors.New("leader key gone")
			}
		case e := <-events:
			switch e.kind {
			case renewed:
				switch {
				case errors.Is(e.err, rpctypes.ErrLeaseNotFound) || (e.err == nil && e.ttl <= 0):
					return errors.New("lease expired")
				case e.err != nil:
					if st.Role != Leader {
						// A standby that cannot reach etcd could not take over: say so now.
						st.Role, st.Reason = Degraded, "etcd unreachable: "+e.err.Error()
					}
				default:
					stepDown = e.sent.Add(time.Duration(e.ttl)*time.Second - c.guard)
					timer.Reset(time.Until(stepDown))
					if st.Role == Degraded {
						st.Role, st.Reason = Standby, ""
					}
					if st.Role == Leader {
						st.stepDown = stepDown
					}
				}
			case won:
				if e.err != nil {
					return fmt.Errorf("campaign: %w", e.err)
				}
				c.held.Store(&term{rev: e.rev, key: e.key})
				st = Status{Role: Leader, Term: e.rev, Leader: c.o.Instance, stepDown: stepDown}
			case observed:
				if st.Role != Leader {
					st.Term, st.Leader = e.rev, e.leader
				}
			}
			c.set(st)
		}
	}
}

// stop gives leadership up at once: the status first (Fence refuses from now), then the
// leader key and the lease, so that a standby's campaign ends at once.
func (c *Coordinator) stop(el *concurrency.Election, sess *concurrency.Session) {
	if c.crash {
		return
	}
	st := c.status.Load()
	c.set(Status{Role: Standby, Term: st.Term, Leader: st.Leader, Reason: "stopping"})
	ctx, cancel := context.WithTimeout(context.Background(), c.ttl/2)
	defer cancel()
	if st.Role == Leader {
		if err := el.Resign(ctx); err != nil {
			c.log.Warn("ha: could not resign; a standby leads once the lease expires", "error", err, "ttl", c.ttl)
		}
	}
	// Not sess.Close: it revokes under the session's context, which has ended already.
	sess.Orphan()
	if _, err := c.cli.Revoke(ctx, sess.Lease()); err != nil {
		c.log.Debug("ha: revoking the lease", "error", err)
	}
}

// Retention of the sent records: without it they grow for ever (a handful of small keys per
// alert occurrence). What a takeover needs of them (docs/ha.md, "Retention of the sent
// records"): the records of what a new leader may still hold (it holds a notification at
// most alerting's holdFor, 2 minutes), and the records that say which occurrence of an alert
// is open (the dispatcher matches a start against them within 30 s). So an occurrence's
// records go together, when its newest is older than SentKeep (24 h), or older than
// SentKeepResolved (1 h) once it resolved: both far longer than the 2 minutes a held
// notification lives plus the 30 s of matching, and than any clock skew between instances
// (the record's time is its writer's).
const (
	SentKeep         = 24 * time.Hour
	SentKeepResolved = time.Hour
	pruneBatch       = 100 // etcd takes at most 128 operations in one transaction by default
)

// PruneSent deletes the sent records that no takeover needs any more (above), as of now;
// only the leader of its term does it, in transactions guarded like Record, so a stale
// leader deletes nothing. It returns how many records it deleted.
func (c *Coordinator) PruneSent(ctx context.Context, now time.Time) (int, error) {
	st := c.Status()
	h := c.held.Load()
	if st.Role != Leader || h == nil || h.rev != st.Term || c.Fence(st.Term) != nil {
		return 0, fmt.Errorf("ha: pruning the sent records: %w", ErrNotLeader)
	}
	resp, err := c.cli.Get(ctx, c.o.Keys.sent(), clientv3.WithPrefix())
	if err != nil {
		return 0, fmt.Errorf("ha: pruning the sent records: etcd: %w", err)
	}
	type group struct {
		keys     []string
		newest   time.Time
		resolved bool
	}
	groups := map[string]*group{}
	for _, kv := range resp.Kvs {
		name := strings.TrimPrefix(string(kv.Key), c.o.Keys.sent())
		occ, what := name, ""
		if i := strings.LastIndexByte(name, '/'); i >= 0 {
			occ, what = name[:i], name[i+1:]
		}
		g := groups[occ]
		if g == nil {
			g = &group{}
			groups[occ] = g
		}
		var r SentRecord
		if err := json.Unmarshal(kv.Value, &r); err != nil || r.At.IsZero() {
			r.At = now // not readable: kept as if new, never deleted on a guess
		}
		g.keys = append(g.keys, string(kv.Key))
		g.resolved = g.resolved || what == "resolved"
		if r.At.After(g.newest) {
			g.newest = r.At
		}
	}
	var doomed []string
	for _, g := range groups {
		age := now.Sub(g.newest)
		if age > SentKeep || (g.resolved && age > SentKeepResolved) {
			doomed = append(doomed, g.keys...)
		}
	}
	deleted := 0
	for len(doomed) > 0 {
		n := min(len(doomed), pruneBatch)
		ops := make([]clientv3.Op, 0, n)
		for _, k := range doomed[:n] {
			ops = append(ops, clientv3.OpDelete(k))
		}
		tr, err := c.cli.Txn(ctx).If(clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.rev)).Then(ops...).Commit()
		if err != nil {
			return deleted, fmt.Errorf("ha: pruning the sent records: etcd: %w", err)
		}
		if !tr.Succeeded {
			return deleted, fmt.Errorf("ha: pruning the sent records: %w of term %d (its leader key is gone)", ErrNotLeader, h.rev)
		}
		deleted += n
		doomed = doomed[n:]
	}
	return deleted, nil
}
