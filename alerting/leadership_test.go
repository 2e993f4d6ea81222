package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ha"
	"github.com/crowdwatch/crowdwatch/internal/owner"
)

// records is etcd's sent/ records as the fake coordinators share them.
type records struct {
	mu   sync.Mutex
	sent map[string]ha.SentRecord
}

// fakeLead is one instance's coordinator: its role and term are set by the test.
type fakeLead struct {
	recs    *records
	mu      sync.Mutex
	st      ha.Status
	changed owner.Signal
}

func (f *fakeLead) set(role ha.Role, term int64) {
	f.mu.Lock()
	f.st = ha.Status{Role: role, Term: term, Since: time.Now()}
	f.mu.Unlock()
	f.changed.Notify()
}

func (f *fakeLead) Status() ha.Status                    { f.mu.Lock(); defer f.mu.Unlock(); return f.st }
func (f *fakeLead) Subscribe() (<-chan struct{}, func()) { return f.changed.Subscribe() }
func (f *fakeLead) Fence(t int64) error {
	if st := f.Status(); st.Role != ha.Leader || st.Term != t {
		return fmt.Errorf("%w of term %d", ha.ErrNotLeader, t)
	}
	return nil
}

func (f *fakeLead) Record(_ context.Context, t int64, name string) (bool, error) {
	if err := f.Fence(t); err != nil {
		return false, err
	}
	f.recs.mu.Lock()
	defer f.recs.mu.Unlock()
	if _, ok := f.recs.sent[name]; ok {
		return false, nil
	}
	f.recs.sent[name] = ha.SentRecord{Term: t}
	return true, nil
}

func (f *fakeLead) SentUnder(_ context.Context, prefix string) (map[string]ha.SentRecord, error) {
	f.recs.mu.Lock()
	defer f.recs.mu.Unlock()
	out := map[string]ha.SentRecord{}
	for k, v := range f.recs.sent {
		if rest, ok := strings.CutPrefix(k, prefix); ok {
			out[rest] = v
		}
	}
	return out, nil
}

type received struct {
	key  string
	what string
	term int64
	raw  map[string]any
}

func recorder(t *testing.T) (*httptest.Server, func() []received) {
	var mu sync.Mutex
	var got []received
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n Notification
		var raw map[string]any
		_ = json.Unmarshal(b, &n)
		_ = json.Unmarshal(b, &raw)
		mu.Lock()
		got = append(got, received{key: r.Header.Get("Idempotency-Key"), what: n.What, term: n.Term, raw: raw})
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

func startDispatcher(t *testing.T, url string, l Leadership) *Dispatcher {
	cfg := &configs.Config{Site: configs.Site{ID: "s"}, Alerting: configs.Alerting{RepeatInterval: time.Minute, Channels: []configs.AlertChannel{
		{Name: "hook", Type: "webhook", URL: url, Template: "json", Timeout: 5 * time.Second, QueueSize: 64, MaxAttempts: 1, ResendEvery: time.Minute}}}}
	d := NewDispatcher(nil, nil, NewMetrics(nil), slog.New(slog.DiscardHandler))
	if l != nil {
		d.Lead(l, time.Hour)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, ConfigOf(cfg)) }()
	t.Cleanup(func() { cancel(); <-done })
	for d.workerCount() < 1 {
		time.Sleep(time.Millisecond)
	}
	return d
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestOneSenderAndTakeover: two instances' dispatchers get the same transitions (each
// evaluates the same occupancy); only the leader sends, each transition once, with its term;
// the standby that takes over sends what fell due while nobody led and nothing the old
// leader sent, even when its own alert started a few seconds apart from the leader's.
func TestOneSenderAndTakeover(t *testing.T) {
	srv, got := recorder(t)
	recs := &records{sent: map[string]ha.SentRecord{}}
	la, lb := &fakeLead{recs: recs}, &fakeLead{recs: recs}
	la.set(ha.Leader, 5)
	lb.set(ha.Standby, 5)
	a, b := startDispatcher(t, srv.URL, la), startDispatcher(t, srv.URL, lb)

	t0 := time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)
	alertOn := func(startOffset time.Duration, esc int, state State) Alert {
		return Alert{ID: "level:hall", Kind: KindLevel, Severity: SeverityCritical, Level: 3, State: state,
			StartsAt: t0.Add(startOffset), EscalatedAt: t0.Add(startOffset + time.Duration(esc)*time.Minute), Escalation: esc}
	}
	route := []string{"hook"}
	// Both instances fire and escalate; b's evaluation started the alert 2 s later.
	for _, d := range []struct {
		d   *Dispatcher
		off time.Duration
	}{{a, 0}, {b, 2 * time.Second}} {
		d.d.Notify(Notification{What: "fired", Site: "s", Alert: alertOn(d.off, 0, StateFiring)}, route)
		d.d.Notify(Notification{What: "escalated", Site: "s", Alert: alertOn(d.off, 1, StateFiring)}, route)
	}
	waitFor(t, "the leader's two notifications", func() bool { return len(got()) >= 2 })
	// The leader dies; while nobody leads, b's manager escalates again (the notification is held).
	la.set(ha.Standby, 5)
	b.Notify(Notification{What: "escalated", Site: "s", Alert: alertOn(2*time.Second, 2, StateFiring)}, route)
	time.Sleep(50 * time.Millisecond)
	if n := len(got()); n != 2 {
		t.Fatalf("%d notifications sent while nobody led, want the 2 the leader sent", n)
	}
	lb.set(ha.Leader, 9)
	waitFor(t, "the escalation due during the takeover", func() bool { return len(got()) >= 3 })
	b.Notify(Notification{What: "resolved", Site: "s", Alert: alertOn(2*time.Second, 2, StateResolved)}, route)
	waitFor(t, "the resolution", func() bool { return len(got()) >= 4 })
	time.Sleep(100 * time.Millisecond) // anything sent twice would arrive by now

	seen := map[string]int{}
	var whats []string
	for _, r := range got() {
		seen[r.key]++
		whats = append(whats, fmt.Sprintf("%s@%d", r.what, r.term))
	}
	if want := []string{"fired@5", "escalated@5", "escalated@9", "resolved@9"}; fmt.Sprint(whats) != fmt.Sprint(want) {
		t.Fatalf("sent %v, want %v", whats, want)
	}
	for k, n := range seen {
		if k == "" || n != 1 {
			t.Fatalf("idempotency key %q sent %d times: %v", k, n, seen)
		}
	}

	// A new occurrence of the same alert (it fires again after it resolved) is sent again.
	b.Notify(Notification{What: "fired", Site: "s", Alert: alertOn(10*time.Minute, 0, StateFiring)}, route)
	waitFor(t, "the new occurrence", func() bool { return len(got()) >= 5 })
}

// TestSingleInstanceSendsWithoutTerm: with no leadership (ha.enabled off) a notification is
// sent at once and its payload has no term, as before HA.
func TestSingleInstanceSendsWithoutTerm(t *testing.T) {
	srv, got := recorder(t)
	d := startDispatcher(t, srv.URL, nil)
	d.Notify(Notification{What: "fired", Site: "s", Alert: Alert{ID: "a", State: StateFiring}}, []string{"hook"})
	waitFor(t, "the notification", func() bool { return len(got()) == 1 })
	r := got()[0]
	if _, ok := r.raw["term"]; ok || r.key != "" {
		t.Fatalf("single instance: term %v / key %q in the notification", r.raw["term"], r.key)
	}
}

// TestDegradedSendsAfterTheFailoverTime: with the coordinator unreachable a notification is
// held for the failover time (a short blip pages nobody twice), then sent without a record,
// marked degraded: two pagers rather than none.
func TestDegradedSendsAfterTheFailoverTime(t *testing.T) {
	srv, got := recorder(t)
	l := &fakeLead{recs: &records{sent: map[string]ha.SentRecord{}}}
	l.set(ha.Degraded, 4)
	cfg := &configs.Config{Site: configs.Site{ID: "s"}, Alerting: configs.Alerting{RepeatInterval: time.Minute, Channels: []configs.AlertChannel{
		{Name: "hook", Type: "webhook", URL: srv.URL, Template: "json", Timeout: 5 * time.Second, QueueSize: 64, MaxAttempts: 1, ResendEvery: time.Minute}}}}
	d := NewDispatcher(nil, nil, NewMetrics(nil), slog.New(slog.DiscardHandler))
	d.Lead(l, 300*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, ConfigOf(cfg)) }()
	defer func() { cancel(); <-done }()
	for d.workerCount() < 1 {
		time.Sleep(time.Millisecond)
	}
	d.Notify(Notification{What: "fired", Site: "s", Alert: Alert{ID: "a", State: StateFiring}}, []string{"hook"})
	time.Sleep(100 * time.Millisecond)
	if n := len(got()); n != 0 {
		t.Fatalf("%d sent within the failover time of losing the coordinator", n)
	}
	waitFor(t, "the degraded send", func() bool { return len(got()) == 1 })
	if r := got()[0]; r.raw["degraded"] != true || r.term != 4 {
		t.Fatalf("degraded send: %v", r.raw)
	}
	if len(l.recs.sent) != 0 {
		t.Fatalf("a degraded send recorded %v", l.recs.sent)
	}
}

// TestNewLeaderGoesOnResendingToAlertmanager: Alertmanager forgets an alert nobody resends;
// the standby notes what is firing without sending it, and once it leads its Alertmanager
// channel resends it (Alertmanager keeps one alert by its labels).
func TestNewLeaderGoesOnResendingToAlertmanager(t *testing.T) {
	srv, got := recorder(t)
	l := &fakeLead{recs: &records{sent: map[string]ha.SentRecord{}}}
	l.set(ha.Standby, 3)
	cfg := &configs.Config{Site: configs.Site{ID: "s"}, Alerting: configs.Alerting{RepeatInterval: time.Minute, Channels: []configs.AlertChannel{
		{Name: "am", Type: "alertmanager", URL: srv.URL, Timeout: 5 * time.Second, QueueSize: 64, MaxAttempts: 1, ResendEvery: 100 * time.Millisecond}}}}
	d := NewDispatcher(nil, nil, NewMetrics(nil), slog.New(slog.DiscardHandler))
	d.Lead(l, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, ConfigOf(cfg)) }()
	defer func() { cancel(); <-done }()
	for d.workerCount() < 1 {
		time.Sleep(time.Millisecond)
	}
	n := Notification{What: "fired", Site: "s", Alert: Alert{ID: "a", State: StateFiring, StartsAt: time.Now()}}
	// The old leader recorded (and sent) it: the new leader does not send it again itself.
	name, err := d.name(context.Background(), &n)
	if err != nil {
		t.Fatal(err)
	}
	l.recs.sent[name] = ha.SentRecord{Term: 3}
	d.Notify(n, []string{"am"})
	time.Sleep(400 * time.Millisecond) // several resend periods
	if n := len(got()); n != 0 {
		t.Fatalf("the standby posted %d times to Alertmanager", n)
	}
	l.set(ha.Leader, 7)
	waitFor(t, "the new leader resends the firing alert", func() bool { return len(got()) >= 2 })
}
