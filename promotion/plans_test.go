package promotion

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/zones"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func startPlans(t *testing.T, cfg *configs.Config, path string, clk *clock) *Plans {
	t.Helper()
	p, err := OpenPlans(cfg, PlansOptions{Path: path, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = p.Close()
	})
	return p
}

func testStore(t *testing.T) *configs.Config {
	t.Helper()
	cfg, err := configs.Parse([]byte(assessStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestPlansLifecycle(t *testing.T) {
	cfg := testStore(t)
	path := filepath.Join(t.TempDir(), "events.db")
	clk := &clock{t: time.Date(2026, 11, 12, 9, 0, 0, 0, time.UTC)}
	p := startPlans(t, cfg, path, clk)
	ctx := context.Background()
	in := PlanInput{ID: "sale", Kind: "double11", Start: "2026-11-12T10:00:00Z", End: "2026-11-12T12:00:00Z", Capacities: map[string]int{"hall": 120}}
	if _, err := p.Create(ctx, in, "mia"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(ctx, in, "mia"); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v", err)
	}
	if _, err := p.Create(ctx, PlanInput{ID: "d11", Start: "2026-11-20T10:00:00Z", End: "2026-11-20T12:00:00Z"}, "mia"); !errors.Is(err, ErrExists) {
		t.Errorf("create over the file's plan: %v", err)
	}
	if _, err := p.Update(ctx, "d11", in, "mia", true); !errors.Is(err, ErrFromFile) {
		t.Errorf("update of the file's plan: %v", err)
	}
	bad := in
	bad.ID, bad.Capacities = "bad", map[string]int{"ghost": 3}
	if _, err := p.Create(ctx, bad, "mia"); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown zone: %v", err)
	}
	ov := PlanInput{ID: "ov", Start: "2026-11-12T11:00:00Z", End: "2026-11-12T13:00:00Z"}
	if _, err := p.Create(ctx, ov, "mia"); !errors.Is(err, ErrInvalid) {
		t.Errorf("overlapping plan: %v", err)
	}
	if c, id := p.Schedule().Capacity("hall", clk.now()); c != 300 || id != "" {
		t.Errorf("before the plan: %d %q", c, id)
	}
	// Before it starts a plan may change freely.
	in.Capacities["hall"] = 110
	if _, err := p.Update(ctx, "sale", in, "mia", false); err != nil {
		t.Fatal(err)
	}
	clk.set(time.Date(2026, 11, 12, 10, 30, 0, 0, time.UTC))
	if c, id := p.Schedule().Capacity("hall", clk.now()); c != 110 || id != "sale" {
		t.Errorf("while it runs: %d %q", c, id)
	}
	if c, _ := p.Schedule().Capacity("upper", clk.now()); c != 100 {
		t.Errorf("a zone the plan does not name keeps its capacity: %d", c)
	}
	// While it runs, a change to its capacities needs force; a change that keeps them does not.
	in.Capacities = map[string]int{"hall": 150}
	if _, err := p.Update(ctx, "sale", in, "mia", false); !errors.Is(err, ErrRunning) {
		t.Errorf("unforced change while running: %v", err)
	}
	if c, _ := p.Schedule().Capacity("hall", clk.now()); c != 110 {
		t.Errorf("a refused change changed the capacity: %d", c)
	}
	in.Capacities = map[string]int{"hall": 110}
	in.Metered = []Metered{{Door: "main"}}
	if _, err := p.Update(ctx, "sale", in, "mia", false); err != nil {
		t.Errorf("a change that keeps the capacities: %v", err)
	}
	if err := p.Delete(ctx, "sale", "mia", false); !errors.Is(err, ErrRunning) {
		t.Errorf("unforced delete while running: %v", err)
	}
	in.Capacities = map[string]int{"hall": 150}
	if _, err := p.Update(ctx, "sale", in, "lead", true); err != nil {
		t.Fatal(err)
	}
	if c, _ := p.Schedule().Capacity("hall", clk.now()); c != 150 {
		t.Errorf("forced change: %d", c)
	}
	if got, _ := p.Schedule().Plan("sale"); got.UpdatedBy != "lead" || got.Origin != "api" {
		t.Errorf("plan %+v", got)
	}

	// A second open of the file finds the plan.
	p2, err := OpenPlans(cfg, PlansOptions{Path: filepath.Join(t.TempDir(), "other.db"), Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p2.Schedule().Plan("sale"); ok {
		t.Error("another file has the plan")
	}
	_ = p2.Close()
	if err := p.Delete(ctx, "sale", "lead", true); err != nil {
		t.Fatal(err)
	}
	if err := p.Delete(ctx, "sale", "lead", true); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete: %v", err)
	}
}

func TestPlansPersist(t *testing.T) {
	cfg := testStore(t)
	path := filepath.Join(t.TempDir(), "events.db")
	clk := &clock{t: time.Date(2026, 11, 12, 9, 0, 0, 0, time.UTC)}
	p, err := OpenPlans(cfg, PlansOptions{Path: path, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	if _, err := p.Create(context.Background(), PlanInput{ID: "sale", Name: Names{"en": "Sale", "zh": "促销"}, Start: "2026-11-12T10:00:00Z", End: "2026-11-12T12:00:00Z",
		Capacities: map[string]int{"hall": 120}}, "mia"); err != nil {
		t.Fatal(err)
	}
	cancel()
	<-done
	if _, err := p.Create(context.Background(), PlanInput{ID: "x"}, "mia"); !errors.Is(err, ErrStopped) {
		t.Errorf("after Run: %v", err)
	}
	_ = p.Close()
	p = startPlans(t, cfg, path, clk)
	got, ok := p.Schedule().Plan("sale")
	if !ok || got.Capacities["hall"] != 120 || got.Names["zh"] != "促销" || got.UpdatedBy != "mia" {
		t.Fatalf("after reopening: %+v", got)
	}
	// A command reads it while the service runs.
	cfg2 := *cfg
	cfg2.EventsFile = path
	if sched, err := LoadSchedule(&cfg2); err != nil {
		t.Fatal(err)
	} else if got, ok := sched.Plan("sale"); !ok || got.Origin != "api" {
		t.Errorf("LoadSchedule: %+v %v", got, ok)
	}
	// A file of another site is refused.
	xp := filepath.Join(t.TempDir(), "x.db")
	x, err := OpenPlans(cfg, PlansOptions{Path: xp})
	if err != nil {
		t.Fatal(err)
	}
	_ = x.Close()
	other := *cfg
	other.Site.ID = "s2"
	if _, err := OpenPlans(&other, PlansOptions{Path: xp}); err == nil {
		t.Error("a file of another site was opened")
	}
}

// fakeSource is a zones.Source with a settable snapshot.
type fakeSource struct {
	snap guarded[*zones.Snapshot]
	sig  owner.Signal
}

type guarded[T any] struct {
	mu sync.Mutex
	v  T
}

func (a *guarded[T]) Load() T   { a.mu.Lock(); defer a.mu.Unlock(); return a.v }
func (a *guarded[T]) Store(v T) { a.mu.Lock(); a.v = v; a.mu.Unlock() }

func (f *fakeSource) Snapshot() *zones.Snapshot            { return f.snap.Load() }
func (f *fakeSource) Subscribe() (<-chan struct{}, func()) { return f.sig.Subscribe() }

// TestInForce: a running plan rewrites capacity and ratio of the zones it names, and its
// start is signalled though the engine stays quiet.
func TestInForce(t *testing.T) {
	cfg := testStore(t)
	clk := &clock{t: time.Date(2026, 11, 12, 9, 59, 59, 900e6, time.UTC)}
	p := startPlans(t, cfg, "", clk)
	if _, err := p.Create(context.Background(), PlanInput{ID: "sale", Start: "2026-11-12T10:00:00Z", End: "2026-11-12T12:00:00Z",
		Capacities: map[string]int{"hall": 120}}, "mia"); err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{}
	src.snap.Store(&zones.Snapshot{Zones: []zones.ZoneState{{ID: "hall", Occupancy: 120, Capacity: 300, Ratio: 0.4}, {ID: "upper", Occupancy: 50, Capacity: 100, Ratio: 0.5}}})
	f := NewInForce(src, p, clk.now)
	ch, cancel := f.Subscribe()
	defer cancel()
	if z := f.Snapshot().Zones[0]; z.Capacity != 300 || z.Ratio != 0.4 {
		t.Errorf("before the plan: %+v", z)
	}
	// Drain the signal of the create.
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal for the new plan")
	}
	clk.set(time.Date(2026, 11, 12, 10, 0, 0, 0, time.UTC))
	// The plan's start is signalled by Plans' timer (it fires about 100 ms after creation).
	select {
	case <-ch:
	case <-time.After(5 * time.Second):
		t.Fatal("no signal at the plan's start")
	}
	s := f.Snapshot()
	if z := s.Zones[0]; z.Capacity != 120 || z.Ratio != 1 {
		t.Errorf("while the plan runs: %+v", z)
	}
	if z := s.Zones[1]; z.Capacity != 100 || z.Ratio != 0.5 {
		t.Errorf("a zone the plan does not name: %+v", z)
	}
	if src.snap.Load().Zones[0].Capacity != 300 {
		t.Error("the engine's snapshot was changed")
	}
	// The metric of the capacity in force follows the plan (crowdwatch_zone_capacity stays
	// the engine's, the configured one).
	if err := testutil.CollectAndCompare(zones.CapacityInForce(f), strings.NewReader(`
# HELP crowdwatch_zone_capacity_in_force Capacity of the zone in force now: a running event plan's where it names the zone, else the configured capacity.
# TYPE crowdwatch_zone_capacity_in_force gauge
crowdwatch_zone_capacity_in_force{zone="hall"} 120
crowdwatch_zone_capacity_in_force{zone="upper"} 100
`)); err != nil {
		t.Error(err)
	}
	if f.Snapshot() != s {
		t.Error("the same snapshot is rewritten again")
	}
	cancel()
	src.sig.Notify()
	select {
	case <-ch:
		t.Error("a signal after cancel")
	default:
	}
}

// UpdateAsOf and DeleteAsOf judge whether the plan is running at the time given, not at the
// plans' clock: every instance of a pair applying one change decides alike at a boundary.
func TestPlanChangeJudgedAsOf(t *testing.T) {
	end := time.Date(2026, 11, 12, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		clock   time.Time // when this instance applies it
		at      time.Time // the action's time
		refused bool
	}{
		{"taken 1 ms before the end, applied after it", end.Add(time.Second), end.Add(-time.Millisecond), true},
		{"taken at the end, applied 1 s before it (a clock behind)", end.Add(-time.Second), end, false},
		{"no time given: the clock", end.Add(-time.Second), time.Time{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{t: time.Date(2026, 11, 12, 9, 0, 0, 0, time.UTC)}
			p := startPlans(t, testStore(t), "", clk)
			ctx := context.Background()
			in := PlanInput{ID: "sale", Start: "2026-11-12T10:00:00Z", End: "2026-11-12T12:00:00Z", Capacities: map[string]int{"hall": 120}}
			if _, err := p.Create(ctx, in, "mia"); err != nil {
				t.Fatal(err)
			}
			clk.set(c.clock)
			in.Capacities = map[string]int{"hall": 90}
			_, err := p.UpdateAsOf(ctx, "sale", in, "mia", false, c.at)
			if errors.Is(err, ErrRunning) != c.refused {
				t.Fatalf("update: %v, want refused %v", err, c.refused)
			}
			err = p.DeleteAsOf(ctx, "sale", "mia", false, c.at)
			if errors.Is(err, ErrRunning) != c.refused {
				t.Fatalf("delete: %v, want refused %v", err, c.refused)
			}
		})
	}
}
