package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// startHistory runs the history recorder on the engine's snapshots and returns the reader the
// API uses and the function that stops the recorder (after the engine, so that the last
// state is recorded). A history that cannot be recorded is logged, not fatal: the live
// figures matter more than their history.
func startHistory(cfg *configs.Config, engine *zones.Engine, alerts *alertLink, reg prometheus.Registerer, log *slog.Logger) (*history.Reader, func()) {
	log = log.With("component", "history")
	site := history.SiteFromConfig(cfg)
	path := cfg.HistoryPath()
	rec, err := history.NewRecorder(engine, reg, history.Options{
		Path:           path,
		Site:           site,
		SampleInterval: cfg.History.SampleInterval,
		FlushInterval:  cfg.History.FlushInterval,
		BufferBytes:    cfg.History.BufferBytes,
		Retention: history.Retention{Raw: cfg.History.RetainRaw, Minute: cfg.History.RetainMinutes,
			Hour: cfg.History.RetainHours},
		Log:    log,
		Levels: alerts,
	})
	reader := history.NewReader(path, &site, 5*time.Second)
	reader.DamagedBlocks = prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_history_damaged_blocks_total",
		Help: "Stored history blocks that reads left out because they did not decode (each read that meets one counts it)."})
	reg.MustRegister(reader.DamagedBlocks)
	reader.Events = alerts
	reader.BandsOf = bandsFromConfig(cfg)
	if err != nil {
		log.Error("history: not recorded", "error", err)
		return reader, func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := rec.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("history: the recorder stopped; live figures are not affected", "path", path, "error", err)
		}
	}()
	return reader, func() { cancel(); <-done }
}

// alertLink hands history the alert manager, which starts after it (the manager needs the
// MQTT side, and history must start before MQTT to see the first crossings).
type alertLink struct {
	m atomic.Pointer[alerting.Manager]
}

func (l *alertLink) Status() *alerting.Status {
	if m := l.m.Load(); m != nil {
		return m.Status()
	}
	return nil
}

func (l *alertLink) Events(from, to time.Time) ([]alerting.Event, error) {
	m := l.m.Load()
	if m == nil {
		return nil, errors.New("alerting is not running")
	}
	return m.Events(from, to)
}

// bandsFromConfig gives charts each zone's own level thresholds in persons, with its
// overrides (zones[].alerts) over alerting.defaults: for each level the lower of the ratio
// and the density trigger.
func bandsFromConfig(cfg *configs.Config) func(history.ZoneInfo) []history.Band {
	limits := map[string]alerting.Limits{}
	for _, z := range cfg.Zones {
		if l, err := alerting.ResolveLimits(z.Alerts, &cfg.Alerting.Defaults); err == nil {
			limits[z.ID] = l
		}
	}
	return func(z history.ZoneInfo) []history.Band {
		l, ok := limits[z.ID]
		if !ok {
			return history.DefaultBands(z.Capacity, z.AreaM2)
		}
		var out []history.Band
		for lv := levels.Busy; lv <= levels.Evacuate; lv++ {
			occ, set := 0.0, false
			if r := l.Ratio[lv]; r > 0 && z.Capacity > 0 {
				occ, set = r*float64(z.Capacity), true
			}
			if d := l.Density[lv]; d > 0 && z.AreaM2 > 0 {
				if v := d * z.AreaM2; !set || v < occ {
					occ, set = v, true
				}
			}
			if set {
				out = append(out, history.Band{Level: lv, Occupancy: occ})
			}
		}
		return out
	}
}
