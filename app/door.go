package app

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/announce"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/door"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/zones"
)

// doorSide is promotion day at the door: the meter of the metered entrances (its episodes
// kept in the alert file through the manager) and the PA announcements.
type doorSide struct {
	records   door.Records // the review's metering episodes and drills (promotion.Records)
	meter     *door.Meter
	announcer *announce.Announcer
	meterRun  runner
	paRun     runner
}

// newDoor builds the meter and the announcer on the capacities in force and the plans known
// now (the store file's and the API's), both from the promotion side.
func newDoor(cfg *configs.Config, src zones.Source, model *zones.Model, promo *promotionSide, manager *alerting.Manager,
	pub announce.Publisher, topics ingest.Topics, log *slog.Logger) *doorSide {
	caps := scheduleCapacities{promo.plans}
	plans := promo.eventPlans
	records := door.Records{Store: manager}
	meter := door.NewMeter(door.Options{Config: cfg, Model: model, Engine: src, Alerts: manager,
		Capacities: caps, Plans: plans, Episodes: records, Log: log.With("component", "door")})
	pa := announce.New(announce.Options{Config: cfg, Engine: src, Alerts: manager, Admissions: meter, Publisher: pub,
		Topic: topics.Announce, Capacities: caps, Plans: plans, Repeat: cfg.EventDay.AnnounceRepeat, Log: log.With("component", "announce")})
	records.Open = meter.OpenEpisodes
	return &doorSide{records: records, meter: meter, announcer: pa}
}

// scheduleCapacities is door.Capacities from the plans' schedule.
type scheduleCapacities struct{ src promotion.ScheduleSource }

func (c scheduleCapacities) CapacityAt(zone string, t time.Time) int {
	n, _ := c.src.Schedule().Capacity(zone, t)
	return n
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
