package app

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ha"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/zones"
)

// A pair of instances in one process without MQTT or HTTP: each its own alert manager and
// plans on its own files and its own occupancy (set by the test), its own action log on one
// real etcd, the action handler and the API's adapters of app/haactions.go between them.
// The clock is the test's, shared: hold-downs and escalations are the test's to step.

const pairStore = `
site: {id: pair-site, timezone: UTC}
storage: {path: $DIR/cw.db}
alerting:
  escalation: {after: 2m, groups: [security, duty_manager]}
  repeat_interval: 5m
  channels:
    - {name: radio, type: mqtt}
    - {name: managers, type: webhook, url: "http://127.0.0.1:1/hook"}
  routes:
    - {channel: radio, group: security, min_severity: warning}
    - {channel: managers, group: duty_manager}
zones:
  - {id: store, capacity: 1000}
  - {id: entrance, parent: store, capacity: 100, area_m2: 50}
doors:
  - {id: main, from: outside, to: entrance, width_m: 3, counter: {device: dc-01}}
  - {id: inner, from: entrance, to: store, width_m: 2, counter: {device: dc-02}}
  - {id: back, from: store, to: outside, width_m: 2, counter: {device: dc-03}}
`

type pairClock struct{ ns atomic.Int64 }

func (c *pairClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *pairClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *pairClock) add(d time.Duration) { c.ns.Add(int64(d)) }

type pairSource struct {
	model *zones.Model
	clock *pairClock
	mu    sync.Mutex
	occ   map[string]int64
	snap  *zones.Snapshot
	ch    chan struct{}
}

func (s *pairSource) Snapshot() *zones.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}
func (s *pairSource) Subscribe() (<-chan struct{}, func()) { return s.ch, func() {} }

// publish builds a snapshot from the figures at the clock's time and wakes the manager.
func (s *pairSource) publish() {
	s.mu.Lock()
	now := s.clock.now()
	snap := &zones.Snapshot{Taken: now}
	for _, z := range s.model.Zones {
		o := s.occ[z.ID]
		zs := zones.ZoneState{ID: z.ID, Name: z.Name, Occupancy: o, Capacity: z.Capacity, Ratio: float64(o) / float64(z.Capacity), AreaM2: z.AreaM2}
		if z.AreaM2 > 0 {
			d := float64(o) / z.AreaM2
			zs.Density = &d
		}
		snap.Zones = append(snap.Zones, zs)
	}
	for _, d := range s.model.Doors {
		snap.Doors = append(snap.Doors, zones.DoorState{ID: d.ID, From: d.From, To: d.To, Device: d.Device})
	}
	for _, d := range s.model.Devices {
		seen := now
		snap.Devices = append(snap.Devices, zones.DeviceStatus{ID: d.ID, Kind: d.Kind, Doors: d.Doors, Online: true, LastSeen: &seen})
	}
	s.snap = snap
	s.mu.Unlock()
	select {
	case s.ch <- struct{}{}:
	default:
	}
}

func (s *pairSource) setOcc(zone string, n int64) {
	s.mu.Lock()
	s.occ[zone] = n
	s.mu.Unlock()
}

type pairNotes struct {
	mu  sync.Mutex
	got []alerting.Notification
}

func (n *pairNotes) Notify(x alerting.Notification, _ []string) {
	n.mu.Lock()
	n.got = append(n.got, x)
	n.mu.Unlock()
}

func (n *pairNotes) whats(id string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, x := range n.got {
		if x.Alert.ID == id {
			out = append(out, x.What)
		}
	}
	return out
}

type pairInst struct {
	t      *testing.T
	name   string
	dir    string
	etcd   *testkit.EtcdServer
	clock  *pairClock
	cfg    *configs.Config
	src    *pairSource
	notes  *pairNotes
	m      *alerting.Manager
	plans  *promotion.Plans
	x      *actions
	log    *ha.Log
	api    haAlerting
	drills haDrills
	promo  haPromotion
	logOpt func(*ha.LogOptions) // the test's changes to the log's options
	cancel context.CancelFunc
	wg     sync.WaitGroup
	runErr chan error
}

func newPairInst(t *testing.T, e *testkit.EtcdServer, clock *pairClock, name string, opt func(*ha.LogOptions)) *pairInst {
	t.Helper()
	p := &pairInst{t: t, name: name, dir: filepath.Join(t.TempDir(), name), etcd: e, clock: clock, notes: &pairNotes{}, logOpt: opt}
	cfg, err := configs.Parse([]byte(strings.ReplaceAll(pairStore, "$DIR", p.dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	p.cfg = cfg
	p.src = &pairSource{model: zones.NewModel(cfg), clock: clock, occ: map[string]int64{}, ch: make(chan struct{}, 1)}
	p.src.publish()
	p.start()
	t.Cleanup(p.stop)
	return p
}

func pairClient(t *testing.T, e *testkit.EtcdServer) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// start opens the instance's files and runs its manager, plans and action log.
func (p *pairInst) start() {
	t := p.t
	t.Helper()
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := alerting.New(alerting.Options{Config: alerting.ConfigOf(p.cfg), Path: p.cfg.AlertsPath(), Model: p.src.model,
		Source: p.src, Notifier: p.notes, Now: p.clock.now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	plans, err := promotion.OpenPlans(p.cfg, promotion.PlansOptions{Path: p.cfg.EventsPath(), Now: p.clock.now, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	p.m, p.plans = m, plans
	p.x = newActions(p.name, discard)
	p.x.alerts, p.x.plans = m, &promotion.Service{Plans: plans, Config: p.cfg}
	o := ha.LogOptions{Keys: ha.KeysFor("/pair", p.cfg.Site.ID), Instance: p.name, Site: p.cfg.Site.ID,
		StatePath: filepath.Join(p.dir, "ha.db"), Apply: p.x.apply, Logger: discard,
		Snapshot: p.x.snapshot, Restore: p.x.restore, SnapshotEvery: 100 * time.Millisecond}
	if p.logOpt != nil {
		p.logOpt(&o)
	}
	if p.log, err = ha.OpenLog(pairClient(t, p.etcd), o); err != nil {
		t.Fatal(err)
	}
	p.x.appendf = p.log.Append
	p.api = haAlerting{Manager: m, x: p.x}
	p.drills = haDrills{Manager: m, x: p.x}
	p.promo = haPromotion{Promotion: p.x.plans, x: p.x}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	p.runErr = make(chan error, 1)
	for _, run := range []func(context.Context) error{m.Run, plans.Run} {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); _ = run(ctx) }()
	}
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.runErr <- p.log.Run(ctx) }()
}

// stop stops everything and closes the files; a second call does nothing.
func (p *pairInst) stop() {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	p.wg.Wait()
	_ = p.log.Close()
	_ = p.m.Close()
}

func (p *pairInst) restart() {
	p.stop()
	p.start()
}

// eval has the instance evaluate its figures at the clock's time: the manager evaluates
// right after each command (one goroutine), so after two the test reads what it did.
func (p *pairInst) eval() {
	p.src.publish()
	for range 2 {
		_, _ = p.m.Alerts(context.Background(), alerting.Filter{})
	}
}

func (p *pairInst) alert(id string) *alerting.Alert {
	list, err := p.m.Alerts(context.Background(), alerting.Filter{State: "open"})
	if err != nil {
		p.t.Fatal(err)
	}
	for _, a := range list {
		if a.ID == id {
			return &a
		}
	}
	return nil
}

func pairUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
