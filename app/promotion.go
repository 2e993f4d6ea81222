package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/zones"
)

// promotionSide holds the event plans (their file, events_path) and the capacities in force:
// the engine's read side as alerting, the live feed, the zone publisher and the API see it,
// with a running plan's capacities in place of the everyday ones (docs/events.md).
type promotionSide struct {
	plans   *promotion.Plans
	inForce *promotion.InForce
	service *promotion.Service
	run     runner
}

func newPromotion(cfg *configs.Config, engine zones.Source, log *slog.Logger) (*promotionSide, error) {
	plans, err := promotion.OpenPlans(cfg, promotion.PlansOptions{Path: cfg.EventsPath(), Logger: log.With("component", "events")})
	if err != nil {
		return nil, err
	}
	return &promotionSide{plans: plans, inForce: promotion.NewInForce(engine, plans, nil),
		service: &promotion.Service{Plans: plans, Config: cfg}}, nil
}

// capacityAt is the capacity in force for a zone at a time, for history's reports.
func (p *promotionSide) capacityAt(zone string, at time.Time) int {
	c, _ := p.plans.Schedule().Capacity(zone, at)
	return c
}

func (p *promotionSide) start() { p.run.start(p.plans.Run) }

func (p *promotionSide) stop(ctx context.Context) error {
	if p == nil {
		return nil
	}
	return p.run.stop(ctx)
}

// engineInForce is the engine as the API reads it: its snapshots with the capacities in force.
type engineInForce struct {
	*zones.Engine
	f *promotion.InForce
}

func (e engineInForce) Snapshot() *zones.Snapshot { return e.f.Snapshot() }

// eventPlans are the plans known now, the store file's and the API's, for the components
// that act on a plan's times and doors (the opening alert, the door meter, the
// announcements, the dashboard's countdown).
func (p *promotionSide) eventPlans() []configs.EventPlan {
	all := p.plans.Schedule().Plans()
	out := make([]configs.EventPlan, len(all))
	for i, pl := range all {
		out[i] = pl.EventPlan
	}
	return out
}
