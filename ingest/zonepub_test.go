package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

type zpEngine struct {
	snap atomic.Pointer[zones.Snapshot]
}

func (e *zpEngine) Snapshot() *zones.Snapshot { return e.snap.Load() }
func (e *zpEngine) Subscribe() (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}

type zpPub struct {
	mu   sync.Mutex
	last map[string]ZoneMessage
}

func (p *zpPub) Connected() bool { return true }
func (p *zpPub) Publish(topic string, payload []byte, _ bool) error {
	var m ZoneMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last[m.Zone] = m
	return nil
}
func (p *zpPub) get(zone string) (ZoneMessage, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, ok := p.last[zone]
	return m, ok
}

type zpLevels struct {
	st atomic.Pointer[alerting.Status]
}

func (l *zpLevels) Status() *alerting.Status { return l.st.Load() }

// TestZoneTopicCarriesShownLevel: the retained zone payload has the shown level (a figure
// over capacity is critical at once) and the pending alert, and a new pending alert is
// published although the count did not change.
func TestZoneTopicCarriesShownLevel(t *testing.T) {
	eng := &zpEngine{}
	eng.snap.Store(&zones.Snapshot{Zones: []zones.ZoneState{
		{ID: "hall", Occupancy: 151, Capacity: 100, Ratio: 1.51},
		{ID: "floor", Occupancy: 10, Capacity: 100, Ratio: 0.1},
	}})
	pub := &zpPub{last: map[string]ZoneMessage{}}
	lv := &zpLevels{}
	lv.st.Store(&alerting.Status{Zones: []alerting.ZoneStatus{{Zone: "hall", Shown: levels.Warning}, {Zone: "floor"}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		PublishZones(ctx, eng, pub, NewTopics("cw", "s"), 10*time.Millisecond, lv, slog.New(slog.DiscardHandler))
	}()
	defer func() { cancel(); <-done }()

	wait := func(what string, ok func() bool) {
		t.Helper()
		for i := 0; i < 500 && !ok(); i++ {
			time.Sleep(10 * time.Millisecond)
		}
		if !ok() {
			t.Fatalf("never published: %s", what)
		}
	}
	wait("hall critical", func() bool { m, ok := pub.get("hall"); return ok && m.Level == levels.Critical })
	warn := levels.Warning
	since := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	lv.st.Store(&alerting.Status{Zones: []alerting.ZoneStatus{{Zone: "hall", Shown: levels.Critical},
		{Zone: "floor", Pending: &warn, PendingSince: &since}}})
	wait("floor pending warning", func() bool {
		m, ok := pub.get("floor")
		return ok && m.Pending != nil && *m.Pending == levels.Warning && m.PendingSince != nil && m.PendingSince.Equal(since)
	})
}
