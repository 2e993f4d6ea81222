package app

import (
	"context"
	"errors"
	"log/slog"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/announce"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/door"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/zones"
)

// doorSide is promotion day at the door: the meter of the metered entrances (its episodes
// kept in the alert file through the manager) and the PA announcements.
type doorSide struct {
	meter     *door.Meter
	announcer *announce.Announcer
	meterRun  runner
	paRun     runner
}

// newDoor builds the meter and the announcer. Capacities in force come from the store
// file's plans (door.PlanCapacities) until the plan component replaces them.
func newDoor(cfg *configs.Config, engine *zones.Engine, manager *alerting.Manager, pub announce.Publisher,
	topics ingest.Topics, log *slog.Logger) *doorSide {
	caps := door.NewPlanCapacities(cfg)
	meter := door.NewMeter(door.Options{Config: cfg, Model: zones.NewModel(cfg), Engine: engine, Alerts: manager,
		Capacities: caps, Episodes: door.Records{Store: manager}, Log: log.With("component", "door")})
	pa := announce.New(announce.Options{Config: cfg, Engine: engine, Alerts: manager, Admissions: meter, Publisher: pub,
		Topic: topics.Announce, Capacities: caps, Log: log.With("component", "announce")})
	return &doorSide{meter: meter, announcer: pa}
}

func (d *doorSide) start() {
	d.meterRun.start(func(ctx context.Context) error { d.meter.Run(ctx); return nil })
	d.paRun.start(func(ctx context.Context) error { d.announcer.Run(ctx); return nil })
}

// stop ends both; the meter keeps the episode under way through the (still running) manager.
func (d *doorSide) stop(ctx context.Context) error {
	if d == nil {
		return nil
	}
	return errors.Join(d.paRun.stop(ctx), d.meterRun.stop(ctx))
}
