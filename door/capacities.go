// Package door controls admission at a promotion's metered entrances: one goroutine (Meter)
// owns each metered door's state and says, for its screen and the retained guidance topic,
// "enter" or "wait" (docs/events.md, "At the door"). It also keeps what happened there and
// in drills for the review (Records).
package door

import (
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Capacities says the capacity in force for a zone at a time: the running event plan's
// capacity while one runs, else the zone's everyday one. The plan engineer's component in
// package promotion takes this place once merged; PlanCapacities is the small default.
type Capacities interface {
	CapacityAt(zone string, t time.Time) int
}

// PlanCapacities is Capacities from the store file's plans (events[].capacities).
type PlanCapacities struct {
	events   []configs.EventPlan
	everyday map[string]int
}

// NewPlanCapacities reads the plans and the zones' capacities of cfg.
func NewPlanCapacities(cfg *configs.Config) *PlanCapacities {
	p := &PlanCapacities{events: cfg.Events, everyday: map[string]int{}}
	for _, z := range cfg.Zones {
		p.everyday[z.ID] = z.Capacity
	}
	return p
}

// CapacityAt is the event capacity of zone while a plan that names it runs, else its
// everyday capacity (0 for an unknown zone).
func (p *PlanCapacities) CapacityAt(zone string, t time.Time) int {
	if e := RunningPlan(p.events, t); e != nil {
		if c, ok := e.Capacities[zone]; ok {
			return c
		}
	}
	return p.everyday[zone]
}

// RunningPlan is the plan running at t (Start <= t < End), the first in the file when
// several overlap; nil when none runs.
func RunningPlan(events []configs.EventPlan, t time.Time) *configs.EventPlan {
	for i := range events {
		e := &events[i]
		if !t.Before(e.Start) && t.Before(e.End) {
			return e
		}
	}
	return nil
}

// NextOpening is the first plan whose doors open after t and no later than within, or nil.
func NextOpening(events []configs.EventPlan, t time.Time, within time.Duration) *configs.EventPlan {
	var best *configs.EventPlan
	for i := range events {
		e := &events[i]
		if e.DoorsOpen.After(t) && !e.DoorsOpen.After(t.Add(within)) && (best == nil || e.DoorsOpen.Before(best.DoorsOpen)) {
			best = e
		}
	}
	return best
}
