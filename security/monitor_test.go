package security

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fakeReporter struct {
	mu  sync.Mutex
	got []Finding
}

func (f *fakeReporter) ReportSecurity(_ context.Context, x Finding) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, x)
	return nil
}

func (f *fakeReporter) take() []Finding {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.got
	f.got = nil
	return out
}

var t0 = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

func newTestMonitor(reg prometheus.Registerer, queue int) *Monitor {
	return NewMonitor(MonitorOptions{Registerer: reg, Window: 5 * time.Minute, QueueSize: queue,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Threshold: func(k Kind) int { return map[Kind]int{SignInFailed: 5, ClientIDCollision: 1, TokenRefused: 0}[k] }})
}

func TestMonitorRaisesAtThresholdWithinWindow(t *testing.T) {
	cases := []struct {
		name  string
		kind  Kind
		gaps  []time.Duration // between successive events from one source
		want  int             // findings handed on
		count int             // the last finding's count
	}{
		{"four failures are not an attack", SignInFailed, []time.Duration{0, 10, 10, 10}, 0, 0},
		{"five within the window", SignInFailed, []time.Duration{0, 10, 10, 10, 10}, 1, 5},
		{"five spread over more than the window", SignInFailed, []time.Duration{0, 100, 100, 100, 100}, 0, 0},
		{"one collision is enough", ClientIDCollision, []time.Duration{0}, 1, 1},
		{"threshold 0 never raises", TokenRefused, []time.Duration{0, 1, 1, 1, 1, 1, 1}, 0, 0},
		// While a source keeps trying, the finding is refreshed at most every reportEvery.
		{"refreshed, not at every event", SignInFailed, []time.Duration{0, 1, 1, 1, 1, 1, 1, 1, 12}, 2, 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rep := &fakeReporter{}
			m := newTestMonitor(nil, 16)
			wins := map[sourceKey]*window{}
			at := t0
			for _, g := range c.gaps {
				at = at.Add(g * time.Second)
				m.handle(context.Background(), rep, wins, Event{Kind: c.kind, Source: "10.0.0.7", Subject: "guard1", At: at})
			}
			got := rep.take()
			if len(got) != c.want {
				t.Fatalf("%d findings %+v, want %d", len(got), got, c.want)
			}
			if c.want > 0 && got[len(got)-1].Count != c.count {
				t.Fatalf("last finding counts %d, want %d", got[len(got)-1].Count, c.count)
			}
		})
	}
}

func TestMonitorKeepsSourcesApart(t *testing.T) {
	rep := &fakeReporter{}
	m := newTestMonitor(nil, 16)
	wins := map[sourceKey]*window{}
	for i := range 8 {
		src := []string{"10.0.0.1", "10.0.0.2"}[i%2] // four each: neither reaches five
		m.handle(context.Background(), rep, wins, Event{Kind: SignInFailed, Source: src, At: t0.Add(time.Duration(i) * time.Second)})
	}
	if got := rep.take(); len(got) != 0 {
		t.Fatalf("two sources' attempts were added together: %+v", got)
	}
}

func TestMonitorRecordNeverBlocksAndCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := newTestMonitor(reg, 2)
	// Run is not started: the queue fills after two, the rest are counted and dropped.
	done := make(chan struct{})
	go func() {
		for range 50 {
			m.Record(Event{Kind: MQTTAuthFailed, Source: "10.0.0.3"})
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked on a full queue")
	}
	want := `
# HELP crowdwatch_security_events_total Refused attempts and other security events, by kind (docs/security.md).
# TYPE crowdwatch_security_events_total counter
crowdwatch_security_events_total{kind="mqtt_auth_failed"} 50
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "crowdwatch_security_events_total"); err != nil {
		t.Fatal(err)
	}
	if d := testutil.ToFloat64(m.dropped); d != 48 {
		t.Fatalf("dropped %v, want 48", d)
	}
}

func TestMonitorRunHandsFindingsOn(t *testing.T) {
	rep := &fakeReporter{}
	m := newTestMonitor(nil, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx, rep) }()
	// The port is dropped: one host's connections are one source.
	m.Record(Event{Kind: ClientIDCollision, Source: "10.0.0.9:51234", Subject: "store-042-dc-02"})
	deadline := time.Now().Add(10 * time.Second)
	var got []Finding
	for len(got) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
		got = rep.take()
	}
	cancel()
	<-done
	if len(got) != 1 || got[0].Source != "10.0.0.9" || len(got[0].Subjects) != 1 || got[0].Subjects[0] != "store-042-dc-02" {
		t.Fatalf("findings %+v", got)
	}
}

func TestMonitorBoundsSources(t *testing.T) {
	m := NewMonitor(MonitorOptions{MaxSources: 100, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	wins := map[sourceKey]*window{}
	for i := range 1000 {
		m.handle(context.Background(), nil, wins, Event{Kind: ACLRefused, Source: "10.0." + string(rune('a'+i%26)) + "." + time.Duration(i).String(),
			At: t0.Add(time.Duration(i) * time.Millisecond)})
	}
	if len(wins) > 100 {
		t.Fatalf("%d sources tracked, want at most 100", len(wins))
	}
}
