package alerting

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/ha"
)

// Leadership is the HA coordinator as the dispatcher sees it (ha.Coordinator implements it).
// With one, only the leader sends: each notification is fenced, recorded in etcd under its
// transition's name, fenced again and sent, carrying the leader's term; a transition
// recorded already (by this or an earlier leader) is not sent again (docs/ha.md, "Fencing
// a send"). Without one (nil, a single instance) every notification is sent as before.
type Leadership interface {
	Status() ha.Status
	Subscribe() (<-chan struct{}, func())
	Fence(term int64) error
	Record(ctx context.Context, term int64, name string) (first bool, err error)
	SentUnder(ctx context.Context, prefix string) (map[string]ha.SentRecord, error)
}

const (
	// sameOccurrence: two instances' starts of one alert closer than this are one occurrence
	// (each instance fires from its own evaluation, within the ingest lag of the other).
	sameOccurrence = 30 * time.Second
	// holdFor: a notification this instance did not send (standby) is kept this long, so that
	// on becoming leader it sends what the old leader did not record.
	holdFor   = 2 * time.Minute
	holdLimit = 512
	gateQueue = 1024
	etcdWait  = 3 * time.Second
)

type gated struct {
	n      Notification
	routes []string
	at     time.Time
}

// Lead makes the dispatcher send only as leader of l (call before Run). degradedAfter is how
// long the coordinator may stay unreachable before this instance sends on its own, marked
// degraded (two pagers rather than none, docs/ha.md).
func (d *Dispatcher) Lead(l Leadership, degradedAfter time.Duration) {
	d.lead, d.degradedAfter = l, degradedAfter
	d.gateIn = make(chan gated, gateQueue)
}

// offer queues n for the gate without blocking, dropping the oldest when full.
func (d *Dispatcher) offer(g gated) {
	for {
		select {
		case d.gateIn <- g:
			return
		default:
		}
		select {
		case <-d.gateIn:
			d.metrics.sent.WithLabelValues("ha-gate", "dropped").Inc()
		default:
		}
	}
}

// TransitionName is the name a transition is recorded under: the alert's id (escaped), the
// start of the occurrence it belongs to (unix ms), and what happened with the step it is at,
// e.g. "level:hall/1764640000000/escalated-1". The occurrence is resolved against etcd's
// records by the gate; transition alone is the last part.
func transition(n *Notification, repeat time.Duration) string {
	a := &n.Alert
	switch n.What {
	case "worsened", "acknowledged":
		return fmt.Sprintf("%s-%s-%d", n.What, a.Severity, a.Level)
	case "escalated":
		return fmt.Sprintf("escalated-%d", a.Escalation)
	case "repeat":
		k := int64(0)
		if repeat > 0 {
			k = int64(math.Round(float64(a.Notified.Sub(a.EscalatedAt)) / float64(repeat)))
		}
		return fmt.Sprintf("repeat-%d-%d", a.Escalation, k)
	}
	return n.What
}

// name finds the occurrence n belongs to among the records of its alert: the latest recorded
// one that started no later than sameOccurrence after n's alert and is still open (no
// "resolved" recorded) or started within sameOccurrence of it; otherwise n starts a new one.
func (d *Dispatcher) name(ctx context.Context, n *Notification) (string, error) {
	id := url.PathEscape(n.Alert.ID) + "/"
	recs, err := d.lead.SentUnder(ctx, id)
	if err != nil {
		return "", err
	}
	start := n.Alert.StartsAt.UnixMilli()
	w := sameOccurrence.Milliseconds()
	occ := map[int64]bool{} // occurrence start → resolved
	for rest := range recs {
		o, what, ok := strings.Cut(rest, "/")
		if !ok {
			continue
		}
		if s, err := strconv.ParseInt(o, 10, 64); err == nil {
			occ[s] = occ[s] || what == "resolved"
		}
	}
	best, found := int64(0), false
	for s := range occ {
		if s <= start+w && (!found || s > best) {
			best, found = s, true
		}
	}
	if found && (!occ[best] || abs64(start-best) <= w) {
		start = best
	}
	d.mu.Lock()
	repeat := d.repeat
	d.mu.Unlock()
	return id + strconv.FormatInt(start, 10) + "/" + transition(n, repeat), nil
}

func abs64(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// gate is the one goroutine that decides, with HA on, what this instance sends: one at a
// time, so that two records of one alert never race each other.
func (d *Dispatcher) gate(ctx context.Context) {
	changed, unsubscribe := d.lead.Subscribe()
	defer unsubscribe()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var queue, held []gated
	var led int64 // the term whose takeover replayed the held notifications
	for {
		select {
		case <-ctx.Done():
			return
		case g := <-d.gateIn:
			queue = append(queue, g)
		case <-changed:
		case <-tick.C:
		}
		st := d.lead.Status()
		if st.Role == ha.Leader && st.Term != led {
			// A new term: what this instance held as standby goes through the records first, in
			// order, so a transition the old leader did not record is sent now, and one it did
			// is not sent again.
			led = st.Term
			queue, held = append(held, queue...), nil
		}
		if d.degradedLong(st) {
			// Nobody can be proven to lead any more: what waited is sent now, marked.
			queue, held = append(held, queue...), nil
		}
		queue, held = d.pass(ctx, st, queue, held)
		cut := time.Now().Add(-holdFor)
		for len(held) > 0 && (held[0].at.Before(cut) || len(held) > holdLimit) {
			held = held[1:]
		}
	}
}

// pass handles the queue in order; it returns what must wait (etcd did not answer) and what
// is held for a later leader.
func (d *Dispatcher) pass(ctx context.Context, st ha.Status, queue, held []gated) (rest, _ []gated) {
	for i, g := range queue {
		switch {
		case d.degradedLong(st):
			g.n.Term, g.n.Degraded = st.Term, true
			d.fanout(g)
			continue
		case st.Role != ha.Leader:
			held = append(held, g)
			d.trackOnly(g)
			continue
		}
		if d.lead.Fence(st.Term) != nil {
			held = append(held, g)
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, etcdWait)
		name, err := d.name(cctx, &g.n)
		first := false
		if err == nil {
			first, err = d.lead.Record(cctx, st.Term, name)
		}
		cancel()
		switch {
		case errors.Is(err, ha.ErrNotLeader):
			held = append(held, g)
			continue
		case err != nil:
			d.log.Warn("alerting: the coordinator did not record a notification; retrying", "alert", g.n.Alert.ID, "what", g.n.What, "error", err)
			return queue[i:], held
		case !first:
			d.metrics.sent.WithLabelValues("ha-gate", "already_sent").Inc()
			continue
		}
		g.n.Term, g.n.key = st.Term, name
		d.fanout(g)
	}
	return nil, held
}

// degradedLong: the coordinator has been unreachable for longer than the failover time.
func (d *Dispatcher) degradedLong(st ha.Status) bool {
	return st.Role == ha.Degraded && time.Since(st.Since) >= d.degradedAfter
}

// trackOnly hands a notification this instance does not send to its Alertmanager channels,
// which only note what is firing: Alertmanager forgets an alert nobody resends, so a new
// leader must go on resending the alerts the old one had sent.
func (d *Dispatcher) trackOnly(g gated) {
	d.mu.Lock()
	defer d.mu.Unlock()
	g.n.track = true
	for _, name := range g.routes {
		if w := d.workers[name]; w != nil && w.cfg.Type == "alertmanager" {
			w.enqueue(g.n)
		}
	}
}

// fanout queues an admitted notification for its channels.
func (d *Dispatcher) fanout(g gated) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range g.routes {
		if w := d.workers[name]; w != nil {
			w.enqueue(g.n)
		}
	}
}

// fenced says whether a worker may send n now: always without HA or when degraded; as leader
// only while still leading in n's term (a notification recorded and then not sent is lost
// for this once: at most once, docs/ha.md).
func (d *Dispatcher) fenced(n *Notification) error {
	if d.lead == nil || n.Degraded {
		return nil
	}
	if err := d.lead.Fence(n.Term); err != nil {
		return permanentError{fmt.Errorf("not sent: %w", err)}
	}
	return nil
}
