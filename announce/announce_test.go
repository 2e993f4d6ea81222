package announce

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

const store = `
site: {id: t-site, timezone: UTC}
storage: {path: /nonexistent/cw.db}
zones:
  - {id: queue, name: {en: Queue, zh: 排队区}, capacity: 2000}
  - {id: hall, name: {en: Main hall, zh: 大厅}, capacity: 100}
doors:
  - {id: main, from: queue, to: hall, width_m: 1, counter: {device: dc-01}}
events:
  - id: doorbuster
    start: "2026-11-27T06:00:00Z"
    end: "2026-11-27T12:00:00Z"
    capacities: {hall: 80}
    metered: [{door: main, queue: queue}]
event_day:
  announcements:
    full: {en: "{zone} is full, sorry."}
`

type engine struct {
	mu   sync.Mutex
	snap *zones.Snapshot
	ch   chan struct{}
}

func (e *engine) Snapshot() *zones.Snapshot            { e.mu.Lock(); defer e.mu.Unlock(); return e.snap }
func (e *engine) Subscribe() (<-chan struct{}, func()) { return e.ch, func() {} }
func (e *engine) set(occ map[string]int64) {
	s := &zones.Snapshot{}
	for _, z := range []struct {
		id  string
		cap int
	}{{"queue", 2000}, {"hall", 100}} {
		s.Zones = append(s.Zones, zones.ZoneState{ID: z.id, Occupancy: occ[z.id], Capacity: z.cap, Ratio: float64(occ[z.id]) / float64(z.cap)})
	}
	e.mu.Lock()
	e.snap = s
	e.mu.Unlock()
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

type alerts struct{ s *alerting.Status }

func (a alerts) Status() *alerting.Status             { return a.s }
func (a alerts) Subscribe() (<-chan struct{}, func()) { return nil, func() {} }

type admissions map[string]guidance.Admission

func (a admissions) Admissions() map[string]guidance.Admission { return a }
func (a admissions) Subscribe() (<-chan struct{}, func())      { return nil, func() {} }

type pub struct {
	mu  sync.Mutex
	got []Message
	top []string
}

func (p *pub) Publish(topic string, b []byte, retain bool) error {
	var m Message
	if err := json.Unmarshal(b, &m); err != nil || retain {
		panic("bad announcement")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.got, p.top = append(p.got, m), append(p.top, topic)
	return nil
}
func (p *pub) Connected() bool { return true }
func (p *pub) take() []Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.got
	p.got = nil
	return out
}

func newAnnouncer(t *testing.T, st *alerting.Status, ad admissions) (*Announcer, *engine, *pub) {
	cfg, err := configs.Parse([]byte(store), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &engine{ch: make(chan struct{}, 1)}
	e.set(map[string]int64{})
	p := &pub{}
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	a := New(Options{Config: cfg, Engine: e, Alerts: alerts{st}, Admissions: ad, Publisher: p, Capacities: planCaps{cfg},
		Topic: func(z string) string { return "cw/t-site/announce/" + z }, Now: func() time.Time { return now }})
	return a, e, p
}

func TestStatesAndTexts(t *testing.T) {
	wait := 330.0
	cases := []struct {
		name   string
		occ    map[string]int64
		status *alerting.Status
		ad     admissions
		zone   string
		state  string
		en, zh string
	}{
		{"busy", map[string]int64{"hall": 70}, nil, nil, "hall", Busy, "Main hall is busy", "大厅人流较多"},
		{"full at the event capacity (80), under the everyday one (100)", map[string]int64{"hall": 80}, nil, nil, "hall", Full,
			"Main hall is full, sorry.", "大厅人数已满"},
		{"full: the store's own text in English, the built-in in Chinese", map[string]int64{"hall": 100}, nil, nil, "hall", Full,
			"Main hall is full, sorry.", "大厅人数已满"},
		{"metering with the expected wait", map[string]int64{"queue": 66}, nil,
			admissions{"main": {Door: "main", State: guidance.Wait, WaitSeconds: &wait}}, "queue", Metering, "about 6 minutes", "约6分钟"},
		{"metering, queue wait unknown", map[string]int64{"queue": 66}, nil,
			admissions{"main": {Door: "main", State: guidance.Wait}}, "queue", Metering, "about a few minutes", "约几分钟"},
		{"drill over full", map[string]int64{"hall": 100}, &alerting.Status{Drills: []alerting.Drill{{Affected: []string{"hall"}}}}, nil,
			"hall", Drill, "This is a drill", "这是演练"},
		{"evacuation over drill", map[string]int64{"hall": 10}, &alerting.Status{
			Drills:      []alerting.Drill{{Affected: []string{"hall"}}},
			Evacuations: []alerting.Evacuation{{Zone: "hall", Affected: []string{"hall"}}}}, nil,
			"hall", Evacuation, "Please leave Main hall now", "请立即从最近的出口离开大厅"},
		{"nothing to say", map[string]int64{"hall": 10}, nil, nil, "hall", "", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, e, _ := newAnnouncer(t, c.status, c.ad)
			e.set(c.occ)
			if got := a.StateOf(c.zone); got != c.state {
				t.Fatalf("state %q, want %q", got, c.state)
			}
			if c.state == "" {
				return
			}
			msgs, err := a.Preview(c.zone, "")
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 2 || msgs[0].Language != "zh" || msgs[1].Language != "en" {
				t.Fatalf("messages %+v", msgs)
			}
			if !strings.Contains(msgs[1].Text, c.en) || !strings.Contains(msgs[0].Text, c.zh) || msgs[0].Priority != Priority[c.state] {
				t.Fatalf("texts %q / %q", msgs[1].Text, msgs[0].Text)
			}
		})
	}
}

func TestRunAnnouncesChangesAndManual(t *testing.T) {
	a, e, p := newAnnouncer(t, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitFor := func(n int) []Message {
		t.Helper()
		for range 200 {
			p.mu.Lock()
			got := len(p.got)
			p.mu.Unlock()
			if got >= n {
				return p.take()
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("fewer than %d announcements: %+v", n, p.take())
		return nil
	}
	e.set(map[string]int64{"hall": 100})
	got := waitFor(2)
	if got[0].State != Full || got[0].Zone != "hall" || p.top[0] != "cw/t-site/announce/hall" || got[0].Manual {
		t.Fatalf("automatic %+v on %v", got, p.top)
	}
	if _, err := a.Announce(context.Background(), "hall", "", ""); err == nil {
		t.Fatal("manual announcement without who")
	}
	if _, err := a.Announce(context.Background(), "nowhere", "", "guard-li"); err == nil {
		t.Fatal("manual announcement to an unknown zone")
	}
	msgs, err := a.Announce(context.Background(), "hall", "busy", "guard-li")
	if err != nil || len(msgs) != 2 {
		t.Fatal(msgs, err)
	}
	got = waitFor(2)
	if !got[0].Manual || got[0].By != "guard-li" || got[0].State != Busy || !slices.ContainsFunc(got, func(m Message) bool { return m.Language == "en" }) {
		t.Fatalf("manual %+v", got)
	}
}

// planCaps is the plan's capacity while it runs, else the zone's (door.PlanCapacities does
// the same; announce does not import door).
type planCaps struct{ cfg *configs.Config }

func (p planCaps) CapacityAt(zone string, t time.Time) int {
	for _, e := range p.cfg.Events {
		if !t.Before(e.Start) && t.Before(e.End) {
			if c, ok := e.Capacities[zone]; ok {
				return c
			}
		}
	}
	for _, z := range p.cfg.Zones {
		if z.ID == zone {
			return z.Capacity
		}
	}
	return 0
}
