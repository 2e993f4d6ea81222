package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/zones"
)

// alertingSide is the alert manager (its database open and its open alerts restored by New),
// its notification channels and, for a service run from a file, the reloader.
type alertingSide struct {
	cfg        *configs.Config
	manager    *alerting.Manager
	dispatcher *alerting.Dispatcher
	metrics    *alerting.Metrics
	log        *slog.Logger
	reload     *Reload
	run        runner
}

func newAlerting(cfg *configs.Config, engine *zones.Engine, src zones.Source, plans func() []configs.EventPlan, mqtt mqttConn,
	topics ingest.Topics, reg *prometheus.Registry, log *slog.Logger, reload *Reload) (*alertingSide, error) {
	metrics := alerting.NewMetrics(reg)
	alog := log.With("component", "alerting")
	dispatcher := alerting.NewDispatcher(mqtt, topics, metrics, alog)
	manager, err := alerting.New(alertingOptions(cfg, engine, src, plans, dispatcher, metrics, alog))
	if err != nil {
		return nil, err
	}
	return &alertingSide{cfg: cfg, manager: manager, dispatcher: dispatcher, metrics: metrics, log: alog, reload: reload}, nil
}

// alertingOptions are the alert manager's inputs: alerting's part of the store file
// (alerting.ConfigOf), the alert file, the engine's model, the snapshots with the capacities
// in force, the promotion plans known now, and the channels.
func alertingOptions(cfg *configs.Config, engine *zones.Engine, src zones.Source, plans func() []configs.EventPlan,
	n alerting.Notifier, metrics *alerting.Metrics, log *slog.Logger) alerting.Options {
	return alerting.Options{Config: alerting.ConfigOf(cfg), Path: cfg.AlertsPath(), Model: engine.Model(), Source: src,
		Plans: plans, Notifier: n, Metrics: metrics, Logger: log}
}

// start runs the channel workers, the manager and the reloader.
func (s *alertingSide) start() {
	s.run.start(func(ctx context.Context) error {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); s.dispatcher.Run(ctx, alerting.ConfigOf(s.cfg)) }()
		go func() { defer wg.Done(); _ = s.manager.Run(ctx) }()
		if s.reload != nil {
			wg.Add(1)
			go func() { defer wg.Done(); s.watch(ctx) }()
		}
		wg.Wait()
		return nil
	})
}

// watch reloads the alerting settings on each reload signal and, with watch_file, on a change
// to the file, until ctx ends.
func (s *alertingSide) watch(ctx context.Context) {
	r, current := s.reload, s.cfg
	refused := func(err error) {
		s.metrics.Reloaded(false)
		s.log.Error("config reload rejected; the previous settings stay in force", "path", r.Path, "error", err)
	}
	configs.Watch(ctx, r.Path, r.Overrides, r.Signal, s.cfg.Alerting.Reload.WatchFile, s.cfg.Alerting.Reload.Debounce,
		func(next *configs.Config) {
			set := alerting.ConfigOf(next)
			if err := s.manager.Reload(ctx, set); err != nil {
				refused(err)
				return
			}
			s.dispatcher.Reload(set)
			s.metrics.Reloaded(true)
			if current.NeedsRestart(next) {
				s.log.Warn("config reloaded: alerting settings applied; other changes (zones, doors, devices, MQTT, storage, HTTP) take effect after a restart", "path", r.Path)
			} else {
				s.log.Info("config reloaded: alerting settings applied", "path", r.Path)
			}
			current = next
		},
		refused)
}

// stop stops the workers, the manager and the reloader (nothing when they never ran).
func (s *alertingSide) stop(ctx context.Context) error {
	if s == nil {
		return nil
	}
	return s.run.stop(ctx)
}

// close closes alerts.db, after the manager has stopped.
func (s *alertingSide) close() error {
	if s == nil {
		return nil
	}
	if err := s.manager.Close(); err != nil {
		return fmt.Errorf("alerting: closing the alert database: %w", err)
	}
	return nil
}
