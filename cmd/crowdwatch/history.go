package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
	"github.com/crowdwatch/crowdwatch/zones"
)

// startHistory runs the history recorder on the engine's snapshots and returns the reader the
// API uses and the function that stops the recorder (after the engine, so that the last
// state is recorded). A history that cannot be recorded is logged, not fatal: the live
// figures matter more than their history.
func startHistory(cfg *configs.Config, engine *zones.Engine, reg prometheus.Registerer, log *slog.Logger) (*history.Reader, func()) {
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
		Log: log,
		// Levels and alert events come from the alerting manager once it is wired:
		// Levels: alertManager (Status()), and reader.Events below.
	})
	reader := history.NewReader(path, &site, 5*time.Second)
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
