package security

import (
	"context"
	"log/slog"
	"net"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Finding is what the monitor hands on when one source has made Threshold attempts of one
// kind within the window: the alert a person should look at.
type Finding struct {
	Kind   Kind
	Source string
	// Subjects are the accounts, users, client ids or topics tried (the latest few).
	Subjects []string
	// Count is how many events of this kind came from this source since it was last quiet for
	// a whole window.
	Count  int
	Detail string
	First  time.Time
	Last   time.Time
}

// Reporter takes findings (the alert manager).
type Reporter interface {
	ReportSecurity(ctx context.Context, f Finding) error
}

// MonitorOptions configure a Monitor.
type MonitorOptions struct {
	Logger *slog.Logger
	// Registerer receives crowdwatch_security_events_total{kind} and the drop counter.
	Registerer prometheus.Registerer
	Window     time.Duration
	// Threshold says how many events of a kind from one source within Window raise a finding;
	// 0 never.
	Threshold func(Kind) int
	// QueueSize bounds the events waiting for the monitor; beyond it they are counted (the
	// metric is incremented at Record) and dropped from alerting.
	QueueSize int
	// MaxSources bounds the sources tracked at once; the one heard from longest ago goes.
	MaxSources int
	Now        func() time.Time
}

// Monitor counts security events and turns repeated ones into findings. Record is safe from
// any goroutine and never blocks; Run owns the per-source windows.
type Monitor struct {
	o       MonitorOptions
	in      chan Event
	events  *prometheus.CounterVec
	dropped prometheus.Counter
}

// NewMonitor returns a monitor; call Run to start it.
func NewMonitor(o MonitorOptions) *Monitor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Window <= 0 {
		o.Window = 5 * time.Minute
	}
	if o.Threshold == nil {
		o.Threshold = func(Kind) int { return 5 }
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 1024
	}
	if o.MaxSources <= 0 {
		o.MaxSources = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Monitor{o: o, in: make(chan Event, o.QueueSize),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowdwatch_security_events_total",
			Help: "Refused attempts and other security events, by kind (docs/security.md)."}, []string{"kind"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_security_events_dropped_total",
			Help: "Security events counted but not evaluated for alerts because the monitor's queue was full."}),
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(m.events, m.dropped)
	}
	return m
}

// Record counts e and queues it for the monitor without blocking.
func (m *Monitor) Record(e Event) {
	if e.At.IsZero() {
		e.At = m.o.Now()
	}
	// One attacker's connections come from many ports: attempts are counted per host.
	if host, _, err := net.SplitHostPort(e.Source); err == nil {
		e.Source = host
	}
	m.events.WithLabelValues(string(e.Kind)).Inc()
	select {
	case m.in <- e:
	default:
		m.dropped.Inc()
	}
}

type sourceKey struct {
	kind   Kind
	source string
}

// window holds one source's recent events of one kind.
type window struct {
	times    []time.Time // the latest events, oldest first, at most the threshold's number
	count    int         // events in this streak (since the source was last quiet for a window)
	first    time.Time
	last     time.Time
	subjects []string
	detail   string
	reported time.Time // when a finding was last handed on
	logged   time.Time
}

const (
	// reportEvery: while a source keeps trying, its finding is refreshed this often (the
	// alert's count and last time), not at every event.
	reportEvery = 10 * time.Second
	// logEvery: each source's events are logged at once the first time, then summarised at
	// most this often, so an attack cannot flood the log.
	logEvery    = time.Minute
	maxSubjects = 5
)

// Run evaluates events until ctx ends and hands findings to rep (nil: they are only logged).
// Events recorded before Run starts wait in the queue, so the monitor can be made before the
// components that report to it and started once the alert manager exists.
func (m *Monitor) Run(ctx context.Context, rep Reporter) error {
	wins := map[sourceKey]*window{}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-m.in:
			m.handle(ctx, rep, wins, e)
		}
	}
}

func (m *Monitor) handle(ctx context.Context, rep Reporter, wins map[sourceKey]*window, e Event) {
	k := sourceKey{e.Kind, e.Source}
	w := wins[k]
	if w == nil {
		if len(wins) >= m.o.MaxSources {
			evictOldest(wins)
		}
		w = &window{first: e.At}
		wins[k] = w
	}
	// A streak ends when a source has been quiet for a whole window; times keeps the latest
	// threshold events, which is all that judging "threshold events within the window" needs.
	if w.last.Before(e.At.Add(-m.o.Window)) {
		w.times, w.count, w.first = w.times[:0], 0, e.At
	}
	threshold := m.o.Threshold(e.Kind)
	w.times = append(w.times, e.At)
	if keep := max(threshold, 1); len(w.times) > keep {
		w.times = w.times[len(w.times)-keep:]
	}
	w.count++
	w.last, w.detail = e.At, e.Detail
	if e.Subject != "" {
		if i := indexOf(w.subjects, e.Subject); i >= 0 {
			w.subjects = append(w.subjects[:i], w.subjects[i+1:]...)
		}
		w.subjects = append(w.subjects, e.Subject)
		if len(w.subjects) > maxSubjects {
			w.subjects = w.subjects[len(w.subjects)-maxSubjects:]
		}
	}
	if w.logged.IsZero() || e.At.Sub(w.logged) >= logEvery {
		w.logged = e.At
		m.o.Logger.Warn("security event", "kind", e.Kind, "source", e.Source, "subject", e.Subject,
			"detail", e.Detail, "in_window", w.count)
	}
	within := len(w.times) >= threshold && !w.times[0].Before(e.At.Add(-m.o.Window))
	if threshold <= 0 || !within || rep == nil {
		return
	}
	if !w.reported.IsZero() && e.At.Sub(w.reported) < reportEvery {
		return
	}
	w.reported = e.At
	f := Finding{Kind: e.Kind, Source: e.Source, Subjects: append([]string(nil), w.subjects...), Count: w.count,
		Detail: w.detail, First: w.first, Last: w.last}
	if err := rep.ReportSecurity(ctx, f); err != nil && ctx.Err() == nil {
		m.o.Logger.Error("security: could not raise an alert", "kind", e.Kind, "source", e.Source, "err", err)
	}
}

func evictOldest(wins map[sourceKey]*window) {
	keys := make([]sourceKey, 0, len(wins))
	for k := range wins {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return wins[keys[i]].last.Before(wins[keys[j]].last) })
	for _, k := range keys[:max(1, len(keys)/10)] {
		delete(wins, k)
	}
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}
