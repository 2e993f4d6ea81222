package zones

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"
)

const testStore = `
site: {id: test-site, timezone: Asia/Shanghai}
zones:
  - {id: store, capacity: 100, area_m2: 400}
  - {id: hall, parent: store, capacity: 10, area_m2: 20}
  - {id: floor2, parent: store, capacity: 50}
  - {id: shop, parent: floor2, capacity: 20}
doors:
  - {id: main, from: outside, to: hall, counter: {device: dc-01}}
  - {id: up, from: hall, to: floor2, counter: {device: dc-02, line: "1"}}
  - {id: shopdoor, from: floor2, to: shop, counter: {device: dc-02, line: "2"}}
  - {id: exit, from: shop, to: outside, counter: {device: dc-03, width: 16}}
  - {id: back, from: floor2, to: outside, counter: {device: dc-04, reversed: true}}
sensors:
  - {device: cam-07, zone: floor2}
`

type harness struct {
	t      testing.TB
	model  *Model
	store  *Store
	engine *Engine
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
	path   string
	now    time.Time
	mu     sync.Mutex
	// retention is the crossing log's retention for the engines this harness starts.
	retention time.Duration
}

func newHarness(t testing.TB, path string) *harness {
	t.Helper()
	return newHarnessFor(t, path, testStore)
}

// newHarnessFor runs an engine on another store file (its site id must be test-site).
func newHarnessFor(t testing.TB, path, store string) *harness {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "cw.db")
	}
	cfg, err := configs.Parse([]byte(store), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, model: NewModel(cfg), path: path, now: time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)}
	h.start()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) clock() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.now
}

// advance moves the engine's clock forward.
func (h *harness) advance(d time.Duration) {
	h.mu.Lock()
	h.now = h.now.Add(d)
	h.mu.Unlock()
}

func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s: %+v", what, h.engine.Snapshot().Zones)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *harness) start() {
	h.t.Helper()
	var err error
	if h.store, err = OpenStore(h.path, "test-site"); err != nil {
		h.t.Fatal(err)
	}
	h.reg = prometheus.NewRegistry()
	h.engine, err = NewEngine(h.model, h.store, NewMetrics(h.reg), Options{
		ResetHour: -1, Now: h.clock, CommitInterval: time.Millisecond, CommitOnIdle: true, LogRetention: h.retention,
		Logger: slog.New(slog.NewTextHandler(testWriter{h.t}, nil)),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { defer close(h.done); _ = h.engine.Run(ctx) }()
}

func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
	h.store.Close()
	h.cancel = nil
}

func (h *harness) restart() {
	h.stop()
	h.start()
}

func (h *harness) send(m *Message) Outcome {
	h.t.Helper()
	got := make(chan Outcome, 1)
	m.Received = time.Now()
	m.Done = func(o Outcome) { got <- o }
	if err := h.engine.Submit(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
	select {
	case o := <-got:
		return o
	case <-time.After(10 * time.Second):
		h.t.Fatal("no outcome within 10s")
		return Failed
	}
}

func counter(dev, boot string, seq uint64, lines ...LineCount) *Message {
	return &Message{Report: &Report{Device: dev, Kind: KindCounter, Boot: boot, Seq: seq, TS: time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC), Lines: lines}}
}

func line(id string, in, out uint64) LineCount { return LineCount{Line: id, In: in, Out: out} }

func (h *harness) occupancy() map[string]int64 {
	out := map[string]int64{}
	for _, z := range h.engine.Snapshot().Zones {
		out[z.ID] = z.Occupancy
	}
	return out
}

func (h *harness) expect(want map[string]int64) {
	h.t.Helper()
	got := h.occupancy()
	for id, w := range want {
		if got[id] != w {
			h.t.Errorf("zone %s: occupancy %d, want %d (all: %v)", id, got[id], w, got)
		}
	}
}

func TestNestedZonesMoveTogether(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 5, 0))))
	h.expect(map[string]int64{"hall": 5, "store": 5, "floor2": 0})
	mustApply(t, h.send(counter("dc-02", "b", 1, line("1", 2, 0))))
	h.expect(map[string]int64{"hall": 3, "floor2": 2, "store": 5})
	// Into a zone nested in the other side: only the inner zone gains.
	mustApply(t, h.send(counter("dc-02", "b", 2, line("1", 2, 0), line("2", 1, 0))))
	h.expect(map[string]int64{"hall": 3, "floor2": 2, "shop": 1, "store": 5})
	// Out of the store from a nested zone: every enclosing zone loses.
	mustApply(t, h.send(counter("dc-03", "b", 1, line("1", 1, 0))))
	h.expect(map[string]int64{"shop": 0, "floor2": 1, "store": 4, "hall": 3})
	// A reversed line: its "out" is a crossing from floor2 to outside.
	mustApply(t, h.send(counter("dc-04", "b", 1, line("1", 0, 1))))
	h.expect(map[string]int64{"floor2": 0, "store": 3})
	doors := h.engine.Snapshot().Doors
	if doors[4].In != 1 || doors[4].Out != 0 {
		t.Errorf("reversed door totals %+v", doors[4])
	}
}

func mustApply(t *testing.T, o Outcome) {
	t.Helper()
	if o != Applied {
		t.Fatalf("outcome %v, want applied", o)
	}
}

func TestDuplicatesAndRejectionsChangeNothing(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 5, 0))))
	before := h.occupancy()
	cases := []struct {
		name string
		msg  *Message
		want Outcome
	}{
		{"same seq again", counter("dc-01", "b", 1, line("1", 5, 0)), Duplicate},
		{"older seq", counter("dc-01", "b", 0, line("1", 1, 0)), Duplicate},
		{"unknown device", counter("dc-99", "b", 1, line("1", 5, 0)), Rejected},
		{"counter report from a sensor", counter("cam-07", "b", 1, line("1", 5, 0)), Rejected},
		{"decode rejection", &Message{Reject: Reject("malformed", "not JSON")}, Rejected},
		{"ts in the future", &Message{Report: &Report{Device: "dc-01", Kind: KindCounter, Boot: "b", Seq: 9,
			TS: h.clock().Add(time.Hour), Lines: []LineCount{line("1", 50, 0)}}}, Rejected},
		{"16-bit device reading past its width", counter("dc-03", "b", 1, line("1", 70000, 0)), Rejected},
		{"sensor negative count", &Message{Report: &Report{Device: "cam-07", Kind: KindSensor, Boot: "b", Seq: 1, TS: h.clock(), Count: -3}}, Rejected},
		{"status from unknown device", &Message{Status: &Status{Device: "ghost", Online: true}}, Rejected},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := h.send(tc.msg); got != tc.want {
				t.Fatalf("outcome %v, want %v", got, tc.want)
			}
			if got := h.occupancy(); fmt.Sprint(got) != fmt.Sprint(before) {
				t.Fatalf("state changed: %v -> %v", before, got)
			}
		})
	}
	if v := testutil.ToFloat64(h.engine.metrics.messages.WithLabelValues("rejected", "unknown_device")); v != 2 {
		t.Errorf("unknown_device rejections metric = %v", v)
	}
	if v := testutil.ToFloat64(h.engine.metrics.messages.WithLabelValues("duplicate", "")); v != 2 {
		t.Errorf("duplicate metric = %v", v)
	}
}

func TestDeficitsAreExactUntilTheyPersist(t *testing.T) {
	h := newHarness(t, "")
	// The escalator counter reports people going up before the door counter reports them
	// coming in: the hall is shown at 0, not negative, and nothing is lost.
	mustApply(t, h.send(counter("dc-02", "b", 1, line("1", 4, 0))))
	h.expect(map[string]int64{"hall": 0, "floor2": 4, "store": 0})
	if z, _ := h.engine.Snapshot().Zone("hall"); z.Deficit != 4 || z.Clamped != 0 {
		t.Fatalf("hall while the entrance report is late: %+v", z)
	}
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 6, 0))))
	h.expect(map[string]int64{"hall": 2, "floor2": 4, "store": 6})

	// More people counted out than in, with every counter of the hall reporting: after
	// ClampAfter the deficit is drift and is clamped, so new arrivals are not hidden.
	mustApply(t, h.send(counter("dc-01", "b", 2, line("1", 6, 5))))
	h.expect(map[string]int64{"hall": 0, "store": 1})
	time.Sleep(1200 * time.Millisecond) // a liveness tick sees the deficit start
	h.advance(2 * time.Minute)
	// Both counters of the hall keep reporting, nothing new: the deficit is real drift.
	mustApply(t, h.send(counter("dc-01", "b", 3, line("1", 6, 5))))
	mustApply(t, h.send(counter("dc-02", "b", 2, line("1", 4, 0), line("2", 0, 0))))
	h.waitFor("hall clamped", func() bool { z, _ := h.engine.Snapshot().Zone("hall"); return z.Clamped == 3 && z.Deficit == 0 })
	mustApply(t, h.send(counter("dc-01", "b", 4, line("1", 8, 5))))
	h.expect(map[string]int64{"hall": 2})
}

func TestNoClampWhileACounterIsDown(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-02", "b", 1, line("1", 4, 0))))
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 0, 0))))
	mustApply(t, h.send(&Message{Status: &Status{Device: "dc-01", Online: false}}))
	h.advance(5 * time.Minute)
	time.Sleep(2500 * time.Millisecond) // two liveness ticks
	if z, _ := h.engine.Snapshot().Zone("hall"); z.Clamped != 0 || z.Deficit != 4 {
		t.Fatalf("clamped while the door counter was offline: %+v", z)
	}
	// The counter comes back; its totals carry what it saw while away.
	mustApply(t, h.send(counter("dc-01", "b", 2, line("1", 7, 0))))
	h.expect(map[string]int64{"hall": 3, "floor2": 4, "store": 7})
}

func TestSensorReanchorsZoneAndParents(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 30, 0))))
	mustApply(t, h.send(counter("dc-02", "b", 1, line("1", 10, 0))))
	h.expect(map[string]int64{"floor2": 10, "store": 30})
	sensor := func(seq uint64, n int64) *Message {
		return &Message{Report: &Report{Device: "cam-07", Kind: KindSensor, Boot: "s", Seq: seq, TS: h.clock(), Count: n}}
	}
	mustApply(t, h.send(sensor(1, 14)))
	h.expect(map[string]int64{"floor2": 14, "store": 34, "hall": 20})
	if got := h.send(sensor(1, 2)); got != Duplicate {
		t.Fatalf("older head count: %v", got)
	}
	mustApply(t, h.send(sensor(2, 12)))
	z, _ := h.engine.Snapshot().Zone("floor2")
	if z.Anchored != 6 || z.LastAnchor != -2 {
		t.Fatalf("anchor record %+v", z)
	}
}

func TestCorrectionIsAudited(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 8, 0))))
	z, err := h.engine.Correct(context.Background(), "hall", 3, "guard-7", "head count at 10:05")
	if err != nil {
		t.Fatal(err)
	}
	if z.Occupancy != 3 {
		t.Fatalf("corrected zone %+v", z)
	}
	h.expect(map[string]int64{"hall": 3, "store": 3})
	if _, err := h.engine.Correct(context.Background(), "nowhere", 3, "x", "y"); err == nil {
		t.Fatal("correction of an unknown zone accepted")
	}
	if _, err := h.engine.Correct(context.Background(), "hall", -1, "x", "y"); err == nil {
		t.Fatal("negative correction accepted")
	}
	var audit []*LogEntry
	if err := h.store.Entries("audit", func(e *LogEntry) error { audit = append(audit, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(audit) != 1 || audit[0].By != "guard-7" || audit[0].Before != 8 || audit[0].Value != 3 || audit[0].Reason == "" {
		t.Fatalf("audit log %+v", audit)
	}
}

// TestCorrectionIsBounded: a correction beyond MaxCorrectionFactor × capacity is refused and
// changes nothing (9223372036854775807 was accepted, the parent zone wrapped and
// the corrected total went negative).
func TestCorrectionIsBounded(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 8, 0))))
	for _, v := range []int64{101, 1 << 40, math.MaxInt64, -1, math.MinInt64} {
		_, err := h.engine.Correct(context.Background(), "hall", v, "x", "y")
		if !errors.Is(err, ErrCorrectionRange) || !strings.Contains(err.Error(), "between 0 and 100") {
			t.Errorf("correction to %d: %v, want a range error that says the range", v, err)
		}
	}
	h.expect(map[string]int64{"hall": 8, "store": 8})
	if _, err := h.engine.Correct(context.Background(), "hall", 100, "x", "ten times capacity"); err != nil {
		t.Fatalf("a correction to the limit: %v", err)
	}
	if _, err := h.engine.Correct(context.Background(), "hall", 0, "x", "back"); err != nil {
		t.Fatal(err)
	}
	h.expect(map[string]int64{"hall": 0, "store": 0})
	for _, z := range h.engine.Snapshot().Zones {
		if z.Corrected < 0 || z.Occupancy < 0 {
			t.Errorf("zone %s: %+v", z.ID, z)
		}
	}
	var audit []*LogEntry
	if err := h.store.Entries("audit", func(e *LogEntry) error { audit = append(audit, e); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(audit) != 2 {
		t.Fatalf("audit log has %d entries, want the 2 accepted corrections", len(audit))
	}
}

func TestDailyReset(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 8, 0))))
	if err := h.engine.ResetAll(context.Background(), "system", "daily reset"); err != nil {
		t.Fatal(err)
	}
	h.expect(map[string]int64{"hall": 0, "store": 0})
	// Device totals are not reset: the next report counts only new crossings.
	mustApply(t, h.send(counter("dc-01", "b", 2, line("1", 10, 0))))
	h.expect(map[string]int64{"hall": 2, "store": 2})
}

func TestScheduledResetFires(t *testing.T) {
	cfg, _ := configs.Parse([]byte(testStore), nil)
	m := NewModel(cfg)
	s, err := OpenStore(filepath.Join(t.TempDir(), "r.db"), "test-site")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// The clock says 03:59:59.9 in Shanghai; the reset is at 04:00.
	base := time.Date(2026, 11, 11, 3, 59, 59, 900_000_000, cfg.Location)
	start := time.Now()
	now := func() time.Time { return base.Add(time.Since(start)) }
	e, err := NewEngine(m, s, nil, Options{ResetHour: 4, ResetMinute: 0, Location: cfg.Location, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go e.Run(ctx)
	done := make(chan Outcome, 1)
	msg := counter("dc-01", "b", 1, line("1", 8, 0))
	msg.Report.TS = base
	msg.Done = func(o Outcome) { done <- o }
	_ = e.Submit(ctx, msg)
	mustApply(t, <-done)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if z, _ := e.Snapshot().Zone("hall"); z.Occupancy == 0 && z.Corrected == 8 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("reset did not fire: %+v", e.Snapshot().Zones)
}

func TestNextReset(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	sh, _ := time.LoadLocation("Asia/Shanghai")
	cases := []struct {
		name string
		now  time.Time
		loc  *time.Location
		h, m int
		want time.Time
	}{
		{"later today", time.Date(2026, 11, 11, 1, 0, 0, 0, sh), sh, 4, 0, time.Date(2026, 11, 11, 4, 0, 0, 0, sh)},
		{"tomorrow", time.Date(2026, 11, 11, 5, 0, 0, 0, sh), sh, 4, 0, time.Date(2026, 11, 12, 4, 0, 0, 0, sh)},
		{"exactly now is tomorrow", time.Date(2026, 11, 11, 4, 0, 0, 0, sh), sh, 4, 0, time.Date(2026, 11, 12, 4, 0, 0, 0, sh)},
		{"across DST end (25-hour day)", time.Date(2026, 10, 31, 23, 0, 0, 0, ny), ny, 3, 0, time.Date(2026, 11, 1, 3, 0, 0, 0, ny)},
		{"skipped by DST start", time.Date(2026, 3, 8, 0, 0, 0, 0, ny), ny, 2, 30, time.Date(2026, 3, 8, 3, 30, 0, 0, ny)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextReset(tc.now, tc.loc, tc.h, tc.m); !got.Equal(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStateSurvivesRestartAndLogReplays(t *testing.T) {
	h := newHarness(t, "")
	rng := rand.New(rand.NewPCG(1, 2))
	totals := map[string][2]uint64{}
	seq := map[string]uint64{}
	devs := []string{"dc-01", "dc-02", "dc-03", "dc-04"}
	for i := range 400 {
		dev := devs[rng.IntN(len(devs))]
		if i%100 == 50 {
			h.restart()
		}
		t0 := totals[dev]
		t0[0] += uint64(rng.IntN(4))
		t0[1] += uint64(rng.IntN(3))
		totals[dev] = t0
		seq[dev]++
		h.send(counter(dev, "b", seq[dev], line("1", t0[0], t0[1])))
		if i%37 == 0 {
			h.send(&Message{Report: &Report{Device: "cam-07", Kind: KindSensor, Boot: "s", Seq: uint64(i + 1), TS: h.clock(), Count: int64(rng.IntN(20))}})
		}
		if i == 200 {
			if _, err := h.engine.Correct(context.Background(), "hall", 1, "t", "test"); err != nil {
				t.Fatal(err)
			}
		}
	}
	before, doorsBefore := h.occupancy(), h.engine.Snapshot().Doors
	h.restart()
	if after := h.occupancy(); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("restart changed state: %v -> %v", before, after)
	}
	// Each commit rewrites only the doors it changed; every door's totals must come back.
	if after := h.engine.Snapshot().Doors; fmt.Sprint(after) != fmt.Sprint(doorsBefore) {
		t.Fatalf("restart changed door totals: %+v -> %+v", doorsBefore, after)
	}
	// A repeat of the last report after the restart is still a duplicate.
	if o := h.send(counter("dc-01", "b", seq["dc-01"], line("1", totals["dc-01"][0], totals["dc-01"][1]))); o != Duplicate {
		t.Fatalf("repeat after restart: %v", o)
	}
	replayed, err := Replay(h.store, h.model)
	if err != nil {
		t.Fatal(err)
	}
	for i, z := range h.engine.Snapshot().Zones {
		if max(replayed[i], 0) != z.Occupancy || max(-replayed[i], 0) != z.Deficit {
			t.Errorf("zone %s: replay %d, state %d (deficit %d)", z.ID, replayed[i], z.Occupancy, z.Deficit)
		}
	}
}

func TestDoneCallbacksInSubmissionOrder(t *testing.T) {
	h := newHarness(t, "")
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i := range 500 {
		wg.Add(1)
		m := counter("dc-01", "b", uint64(i%50+1), line("1", uint64(i%50+1), 0))
		if i%7 == 0 {
			m = &Message{Reject: Reject("malformed", "x")}
		}
		m.Received = time.Now()
		m.Done = func(Outcome) { mu.Lock(); order = append(order, i); mu.Unlock(); wg.Done() }
		if err := h.engine.Submit(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	for i, v := range order {
		if v != i {
			t.Fatalf("done #%d was message %d", i, v)
		}
	}
}

func TestDeviceLiveness(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 1, 0))))
	dev := h.engine.Snapshot().Devices[0]
	if dev.ID != "dc-01" || !dev.Online || dev.LastSeen == nil || dev.Seq != 1 || dev.Boot != "b" {
		t.Fatalf("device after a report: %+v", dev)
	}
	mustApply(t, h.send(&Message{Status: &Status{Device: "dc-01", Online: false}}))
	if h.engine.Snapshot().Devices[0].Online {
		t.Fatal("device still online after its offline status")
	}
	mustApply(t, h.send(&Message{Status: &Status{Device: "dc-01", Online: true}}))
	h.mu.Lock()
	h.now = h.now.Add(time.Minute)
	h.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for h.engine.Snapshot().Devices[0].Online {
		if time.Now().After(deadline) {
			t.Fatal("silent device never went offline")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOpenStoreRefusesForeignFiles(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.db")
	writeFile(t, garbage, []byte("this is not a database, it is a shopping list"))
	if _, err := OpenStore(garbage, "s"); err == nil {
		t.Fatal("opened a text file as a database")
	}
	other := filepath.Join(dir, "other.db")
	s, err := OpenStore(other, "store-1")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenStore(other, "store-2"); err == nil {
		t.Fatal("opened another site's database")
	}
	s, err = OpenStore(other, "store-1")
	if err != nil {
		t.Fatalf("reopening own database: %v", err)
	}
	if _, err := OpenStore(other, "store-1"); err == nil {
		t.Fatal("opened a database held by another instance")
	}
	s.Close()
}

func TestOpenStoreRefusesOtherBboltFiles(t *testing.T) {
	path := filepath.Join(t.TempDir(), "foreign.db")
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("users")); return err }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = OpenStore(path, "s")
	if !errors.Is(err, ErrForeignFile) {
		t.Fatalf("want ErrForeignFile, got %v", err)
	}
}

// testWriter sends engine logs to the test's log, shown only on failure.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestFailedCommitRollsBackAndIsNotAcknowledged(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 5, 0))))
	var fail atomic.Bool
	fail.Store(true)
	h.store.failCommit = func() error {
		if fail.Load() {
			return errors.New("no space left on device")
		}
		return nil
	}
	if o := h.send(counter("dc-01", "b", 2, line("1", 9, 0))); o != Failed {
		t.Fatalf("outcome during a failing disk: %v", o)
	}
	if h.engine.Healthy() {
		t.Fatal("engine reports healthy after a failed commit")
	}
	h.expect(map[string]int64{"hall": 5, "store": 5})
	if _, err := h.engine.Correct(context.Background(), "hall", 1, "g", "r"); err == nil {
		t.Fatal("a correction reported success while the disk fails")
	}
	h.expect(map[string]int64{"hall": 5})
	// The disk recovers; the device resends the report it never got acknowledged.
	fail.Store(false)
	mustApply(t, h.send(counter("dc-01", "b", 2, line("1", 9, 0))))
	h.expect(map[string]int64{"hall": 9, "store": 9})
	if !h.engine.Healthy() {
		t.Fatal("engine still unhealthy after a good commit")
	}
	h.restart()
	h.expect(map[string]int64{"hall": 9, "store": 9})
}

func TestRetainedStatusDoesNotMakeADeviceLive(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(&Message{Status: &Status{Device: "dc-02", Online: true}, Retained: true}))
	dev := h.engine.Snapshot().Devices[1]
	if dev.ID != "dc-02" || dev.Online || dev.LastSeen != nil {
		t.Fatalf("a retained online status made the device look alive: %+v", dev)
	}
	mustApply(t, h.send(&Message{Status: &Status{Device: "dc-02", Online: true}}))
	if dev := h.engine.Snapshot().Devices[1]; !dev.Online || dev.LastSeen == nil {
		t.Fatalf("a live status: %+v", dev)
	}
}

func TestMetricsLintAndShowState(t *testing.T) {
	h := newHarness(t, "")
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 7, 2))))
	problems, err := testutil.GatherAndLint(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("metric %s: %s", p.Metric, p.Text)
	}
	want := `
# HELP crowdwatch_zone_occupancy People in the zone now.
# TYPE crowdwatch_zone_occupancy gauge
crowdwatch_zone_occupancy{zone="floor2"} 0
crowdwatch_zone_occupancy{zone="hall"} 5
crowdwatch_zone_occupancy{zone="shop"} 0
crowdwatch_zone_occupancy{zone="store"} 5
`
	if err := testutil.GatherAndCompare(h.reg, strings.NewReader(want), "crowdwatch_zone_occupancy"); err != nil {
		t.Error(err)
	}
}

// TestLogPruning keeps the crossing log to its retention: old entries are folded into the
// log's base and deleted, in chunks, and the base plus what is kept still replays to exactly
// the stored figures, across a restart.
func TestLogPruning(t *testing.T) {
	h := newHarness(t, "")
	h.stop()
	h.retention = time.Hour
	h.start()
	var in, out uint64
	seq := uint64(0)
	send := func(n int) {
		for range n {
			seq++
			in += 3
			out += 1
			h.send(counter("dc-01", "b", seq, line("1", in, out)))
		}
	}
	count := func() int {
		n := 0
		if err := h.store.Entries("log", func(*LogEntry) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	send(pruneChunk + 300) // all of them soon older than the retention
	if _, err := h.engine.Correct(context.Background(), "hall", 7, "t", "head count"); err != nil {
		t.Fatal(err)
	}
	before := count()
	h.advance(2 * time.Hour)
	send(1) // a commit: prunes one chunk
	if got := count(); got != before+1-pruneChunk {
		t.Fatalf("after the first prune %d entries, want %d", got, before+1-pruneChunk)
	}
	send(1) // the backlog goes on the next commit, not after ten minutes
	if got := count(); got != 2 {
		t.Fatalf("after the backlog %d entries, want the 2 recent ones", got)
	}
	h.restart()
	replayed, err := Replay(h.store, h.model)
	if err != nil {
		t.Fatal(err)
	}
	for i, z := range h.engine.Snapshot().Zones {
		if max(replayed[i], 0) != z.Occupancy {
			t.Errorf("zone %s: replay %d, state %d", z.ID, replayed[i], z.Occupancy)
		}
	}
	audit := 0
	_ = h.store.Entries("audit", func(*LogEntry) error { audit++; return nil })
	if audit != 1 {
		t.Fatalf("the audit trail lost its correction: %d entries", audit)
	}
}

// The storage gauges read the live file: its size and bbolt's free pages.
func TestStoreMetrics(t *testing.T) {
	h := newHarness(t, "")
	reg := prometheus.NewRegistry()
	h.store.RegisterMetrics(reg)
	for i := range uint64(50) {
		h.send(counter("dc-01", "b", i+1, line("1", i+1, 0)))
	}
	fi, err := os.Stat(h.path)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 3 {
		t.Fatalf("%d metrics (%v), want 3", n, err)
	}
	if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", problems, err)
	}
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		v := mf.GetMetric()[0].GetGauge().GetValue()
		switch mf.GetName() {
		case "crowdwatch_storage_file_bytes":
			if v != float64(fi.Size()) {
				t.Errorf("file bytes %v, want %d", v, fi.Size())
			}
		case "crowdwatch_storage_free_pages":
			if v <= 0 {
				t.Errorf("free pages %v after 50 commits, want some (copy-on-write frees pages)", v)
			}
		}
	}
}
