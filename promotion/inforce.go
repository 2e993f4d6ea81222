package promotion

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/crowdwatch/crowdwatch/zones"
)

// ScheduleSource is where the capacities in force come from (Plans; a fixed Schedule in
// tests and commands).
type ScheduleSource interface {
	Schedule() *Schedule
	Subscribe() (<-chan struct{}, func())
}

// InForce is the engine's read side with the capacities in force: while a plan runs, each
// zone it names has the plan's capacity and the ratio to it, everywhere that reads
// snapshots through it (levels and alerts, screens, the zone topic, the API). Its signal is
// the engine's and the plans' together, so a plan that starts in a quiet store is acted on
// at once.
type InForce struct {
	src   zones.Source
	plans ScheduleSource
	now   func() time.Time
	// last caches the rewritten snapshot for one engine snapshot and one plan.
	last atomic.Pointer[inForceCache]
}

type inForceCache struct {
	from  *zones.Snapshot
	sched *Schedule
	plan  string
	out   *zones.Snapshot
}

var _ zones.Source = (*InForce)(nil)

// NewInForce wraps src; now is the clock that decides which plan runs (time.Now when nil).
func NewInForce(src zones.Source, plans ScheduleSource, now func() time.Time) *InForce {
	if now == nil {
		now = time.Now
	}
	return &InForce{src: src, plans: plans, now: now}
}

// Snapshot is the engine's latest snapshot with the capacities in force now. Without a
// running plan it is the engine's own.
func (f *InForce) Snapshot() *zones.Snapshot {
	snap := f.src.Snapshot()
	if snap == nil {
		return nil
	}
	sched := f.plans.Schedule()
	p := sched.Running(f.now())
	if p == nil || len(p.Capacities) == 0 {
		return snap
	}
	if c := f.last.Load(); c != nil && c.from == snap && c.sched == sched && c.plan == p.ID {
		return c.out
	}
	out := *snap
	out.Zones = make([]zones.ZoneState, len(snap.Zones))
	copy(out.Zones, snap.Zones)
	for i := range out.Zones {
		z := &out.Zones[i]
		if c, ok := p.Capacities[z.ID]; ok && c > 0 {
			z.Capacity = c
			z.Ratio = float64(z.Occupancy) / float64(c)
		}
	}
	f.last.Store(&inForceCache{from: snap, sched: sched, plan: p.ID, out: &out})
	return &out
}

// Subscribe signals after each engine snapshot and each change of the plans.
func (f *InForce) Subscribe() (<-chan struct{}, func()) {
	a, cancelA := f.src.Subscribe()
	b, cancelB := f.plans.Subscribe()
	out := make(chan struct{}, 1)
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		for {
			select {
			case <-a:
			case <-b:
			case <-done:
				return
			}
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			close(done)
			<-exited
			cancelA()
			cancelB()
			select { // a signal sent before the cancel is not read after it
			case <-out:
			default:
			}
		})
	}
}

// Fixed is a ScheduleSource that never changes (commands, tests).
type Fixed struct{ S *Schedule }

func (f Fixed) Schedule() *Schedule { return f.S }

func (Fixed) Subscribe() (<-chan struct{}, func()) { return make(chan struct{}), func() {} }
