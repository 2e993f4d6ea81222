// Package app is the service's composition root: New builds every component from the
// configuration, Run starts them in order and, when its context ends or a component fails,
// stops them through one ordered list of named stops (lifecycle.go). cmd/crowdwatch keeps
// flags, signals and the call into it. docs/architecture.md, "Lifecycle".
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/web"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Options are what the caller (cmd/crowdwatch, a test) gives the service besides its
// configuration.
type Options struct {
	Logger  *slog.Logger // nil: slog.Default()
	Version string       // shown by the API and the ready log
	// Reload, when set, reloads the alerting settings from the store file on each value
	// received from Reload.Signal (SIGHUP, caught by cmd/crowdwatch) and, with
	// alerting.reload.watch_file, on a change to the file.
	Reload *Reload
	// OnReady is called once everything has started, with the addresses it serves.
	OnReady func(a *App)
	// StopTimeout bounds the whole shutdown (DefaultStopTimeout when zero).
	StopTimeout time.Duration
}

// Reload is the store file a running service reloads its alerting settings from.
type Reload struct {
	Path      string
	Overrides map[string]any
	Signal    <-chan struct{}
}

// App is one running service for one store.
type App struct {
	cfg  *configs.Config
	log  *slog.Logger
	opts Options
	lc   *lifecycle
	ran  bool

	httpLn  net.Listener
	store   *zones.Store
	reg     *prometheus.Registry
	monitor *security.Monitor
	engine  *zones.Engine
	topics  ingest.Topics
	mqtt    *mqttSide
	alerts  *alertingSide
	history *historySide
	promo   *promotionSide // event plans and the capacities in force (app/promotion.go)
	door    *doorSide      // metered doors and PA announcements (app/door.go)
	web     *webSide
	handler *httpSide
	ha      *haSide // nil unless ha.enabled (app/ha.go)
	// retained publishes the service's retained topics, re-asserted (app/mqtt.go).
	retained *ingest.Retainer

	engineRun  runner
	pubRun     runner
	monitorRun runner
}

// New builds every component from cfg: it binds the HTTP address and the embedded broker's
// (not serving yet), opens the files and restores the open alerts, and starts nothing. A
// failure runs the stops of what was built and leaves nothing open. After a successful New,
// call Run once: it is what stops and closes everything.
func New(cfg *configs.Config, opts Options) (_ *App, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	log := opts.Logger.With("site", cfg.Site.ID)
	a := &App{cfg: cfg, log: log, opts: opts, lc: newLifecycle(log, opts.StopTimeout), topics: ingest.TopicsFor(cfg)}

	// The stop order, in one place. It is not the reverse of the start order: the engine
	// goes first, so that what it holds is committed and acknowledged before MQTT goes away;
	// history right after it, so that the engine's last state is recorded; the zone and
	// service-status publishers before the broker or client, so that nothing re-asserts
	// "online" after the external client's last "offline"; MQTT (the client sends the last
	// acknowledgements and its "offline"); the live feed (clients are closed with "going
	// away" and reconnect to the next instance); HTTP, then the sign-in file (no handler
	// appends to its audit log any more); the security monitor, which reports to the alert
	// manager; alerting (its channel workers, manager and reloader, then alerts.db, which the
	// API's backups read until HTTP stops); and last the occupancy file and the HTTP
	// listener. Each stop does nothing for a component that was not built or not started.
	a.lc.onStop("engine", a.engineRun.stop)
	a.lc.onStop("history", func(ctx context.Context) error { return a.history.stop(ctx) })
	a.lc.onStop("retained publishers", a.pubRun.stop)
	a.lc.onStop("door meter and announcements", func(ctx context.Context) error { return a.door.stop(ctx) })
	a.lc.onStop("mqtt", func(ctx context.Context) error { return a.mqtt.stop(ctx) })
	a.lc.onStop("live feed", func(ctx context.Context) error { return a.web.stopLive(ctx) })
	a.lc.onStop("http", func(ctx context.Context) error { return a.handler.stop(ctx) })
	if cfg.HA.Enabled { // the operator action log, before the components it applies actions to
		a.lc.onStop("action log", func(ctx context.Context) error { return a.ha.stopLog(ctx) })
	}
	a.lc.onStop("event plans", func(ctx context.Context) error { return a.promo.stop(ctx) })
	a.lc.onStop("sign-in file", func(context.Context) error { return a.web.closeStore() })
	a.lc.onStop("security monitor", a.monitorRun.stop)
	a.lc.onStop("alerting", func(ctx context.Context) error { return a.alerts.stop(ctx) })
	a.lc.onStop("ha", func(ctx context.Context) error { return a.ha.stop(ctx) }) // resigns once nothing sends
	a.lc.onStop("alert file", func(context.Context) error { return a.alerts.close() })
	a.lc.onStop("occupancy file", a.closeStore)
	a.lc.onStop("http listener", a.closeListener)
	defer func() {
		if err != nil {
			_ = a.lc.stop()
		}
	}()

	// Everything that can fail on the configuration is done before any file is opened, so
	// that a start refused for its configuration leaves the disk as it was: the merged alert
	// thresholds, the HTTP address (bound now, served later) and its certificate. configs.Load
	// has checked the rest, the listen addresses' form included.
	if err := alerting.CheckLimits(cfg); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if a.httpLn, err = listenHTTP(cfg); err != nil {
		return nil, err
	}
	if a.store, err = zones.OpenStore(cfg.Storage.Path, cfg.Site.ID); err != nil {
		return nil, err
	}

	a.reg = prometheus.NewRegistry()
	// Intrusion detection (docs/security.md): the broker, sign-in and the API report what they
	// refuse from their start; the monitor counts it at once and evaluates it for alerts once
	// the alert manager runs (events wait in its bounded queue until then).
	a.monitor = security.NewMonitor(security.MonitorOptions{Registerer: a.reg, Window: cfg.Alerting.Security.Window,
		Threshold: func(k security.Kind) int { return cfg.Alerting.Security.SecurityThreshold(string(k)) },
		Logger:    log.With("component", "security")})
	a.store.RegisterMetrics(a.reg)
	a.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if a.engine, err = newEngine(cfg, a.store, a.reg, log); err != nil {
		return nil, err
	}

	// Build order: the MQTT side (listening, not yet serving), then the alert manager (its
	// channel needs MQTT; it opens alerts.db and restores the open alerts), then history
	// (which reads the manager's levels and events: it exists already, so nothing is bound
	// late), then sign-in and the live feed, then the HTTP handler.
	// The event plans: everything that judges a zone against its capacity reads the engine
	// through promotion.InForce, so a running plan's capacities are in force everywhere.
	if a.promo, err = newPromotion(cfg, a.engine, log); err != nil {
		return nil, err
	}
	a.reg.MustRegister(zones.CapacityInForce(a.promo.inForce)) // beside the configured capacity
	if a.mqtt, err = newMQTT(cfg, a.engine, a.monitor, a.reg, log); err != nil {
		return nil, err
	}
	if a.ha, err = newHA(cfg, log); err != nil {
		return nil, err
	}
	if a.alerts, err = newAlerting(cfg, a.engine, a.promo.inForce, a.promo.eventPlans, a.mqtt, a.topics, a.reg, log, opts.Reload); err != nil {
		return nil, err
	}
	a.ha.lead(a.alerts.dispatcher)
	a.ha.wire(a.alerts.manager, a.engine, a.promo.service)
	a.history = newHistory(cfg, a.engine, a.alerts.manager, a.reg, log)
	a.history.reader.CapacityAt = a.promo.capacityAt
	a.promo.service.History = a.history.reader
	a.door = newDoor(cfg, a.promo.inForce, a.engine.Model(), a.promo, a.alerts.manager, a.ha.publisher(a.mqtt), a.topics, log)
	a.promo.service.Records = a.door.records
	// The retained topics (service status, zones; guidance too with HA, so that a new leader
	// re-asserts it) go through one re-asserting publisher; with HA only the leader's reach
	// the broker (app/ha.go).
	a.retained = ingest.NewRetainer(a.ha.publisher(a.mqtt), retainedReassert, log.With("component", "retained-publisher"))
	var guidancePub web.Publisher = a.mqtt
	if a.ha != nil {
		guidancePub = a.retained
	}
	if a.web, err = newWeb(cfg, a.engine.Model(), a.promo.inForce, a.alerts.manager, a.door.meter, a.promo.eventPlans, guidancePub, a.topics, a.monitor, log); err != nil {
		return nil, err
	}
	a.web.store.RegisterMetrics(a.reg)
	a.web.shareSessions(a.ha, cfg.HA.CookieDomain, log) // one sign-in for every instance (app/hasessions.go)
	// Devices' HTTP pushes go to the engine like their MQTT messages (ingest/http.go).
	pushes, err := ingest.NewHTTP(a.engine, log.With("component", "http-ingest"), ingest.HTTPOptions{Registerer: a.reg,
		Model: a.engine.Model(), Devices: cfg.Devices.List, MaxBody: cfg.HTTP.Ingest.MaxBody})
	if err != nil {
		return nil, err
	}
	a.handler = &httpSide{ln: a.httpLn, log: log, handler: web.NewHandler(web.Options{Engine: a.ha.engine(engineInForce{a.engine, a.promo.inForce}), Broker: a.mqtt,
		Gatherer: a.reg, Auth: a.web.authz, SignIn: a.web.authz, Live: a.web.live, Alerting: a.ha.alerting(a.alerts.manager),
		Log: log.With("component", "http"), Version: opts.Version, History: a.history.reader,
		Backups: &serviceBackups{store: a.store, alerts: a.alerts.manager, auth: a.web.store, historyPath: cfg.HistoryPath(),
			eventsPath: cfg.EventsPath()},
		Audit: a.web.store, Events: a.monitor, Registerer: a.reg, Promotion: a.ha.promotion(a.promo.service), HA: a.ha.handler(),
		DrillControl: a.ha.drills(a.alerts.manager), Announcements: a.door.announcer, Metering: a.door.meter, Ingest: pushes})}
	return a, nil
}

// HTTPAddr is the address the API and dashboard are served on (bound by New).
func (a *App) HTTPAddr() string { return a.httpLn.Addr().String() }

// MQTTAddr is the embedded broker's address (bound by New), or the external broker's URL.
func (a *App) MQTTAddr() string { return a.mqtt.addr() }

// MQTTTLSAddr is the embedded broker's TLS address, or "" without one.
func (a *App) MQTTTLSAddr() string { return a.mqtt.tlsAddr() }

// Run starts the components and runs until ctx ends or one of them fails, then stops them
// all (the stop order is in New) and returns the first failure joined with the stops' errors.
//
// Start order: the engine, then history (so that it sees the first crossings; on the very
// first start its baseline is the engine's state before MQTT serves), then MQTT serves, then
// the retained publishers, then alerting runs (evaluates, notifies: until then its Status
// holds the levels it restored), the security monitor, the live feed, and last HTTP.
func (a *App) Run(ctx context.Context) error {
	if a.ran {
		return errors.New("app: Run called twice")
	}
	a.ran = true
	runErr := a.start()
	if runErr == nil {
		a.log.Info("crowdwatch ready", append([]any{"http", a.HTTPAddr(), "mqtt", a.MQTTAddr()}, append(a.mqtt.tlsAttrs(),
			"storage", a.cfg.Storage.Path, "zones", len(a.cfg.Zones), "doors", len(a.cfg.Doors), "version", a.opts.Version)...)...)
		if a.opts.OnReady != nil {
			a.opts.OnReady(a)
		}
		select {
		case <-ctx.Done():
			a.log.Info("shutting down")
		case err := <-a.handler.run.done:
			a.handler.run.ended = true
			runErr = err
		case err := <-a.engineRun.done:
			a.engineRun.ended = true
			runErr = fmt.Errorf("occupancy engine stopped: %v", err)
		}
	}
	if err := errors.Join(runErr, a.lc.stop()); err != nil {
		a.log.Error("crowdwatch stopped", "error", err)
		return err
	}
	a.log.Info("crowdwatch stopped cleanly")
	return nil
}

// start starts the components in order; an error leaves the stopping to Run.
func (a *App) start() error {
	a.engineRun.start(a.engine.Run)
	a.promo.start()
	a.history.start()
	if err := a.mqtt.serve(); err != nil {
		return err
	}
	a.pubRun.start(a.retainedPublishers)
	a.ha.start(a.retained)
	a.alerts.start()
	a.door.start()
	a.monitorRun.start(func(ctx context.Context) error { return a.monitor.Run(ctx, a.alerts.manager) })
	a.web.startLive()
	a.handler.start()
	return nil
}

func (a *App) closeStore(context.Context) error {
	if a.store == nil {
		return nil
	}
	if err := a.store.Close(); err != nil {
		return fmt.Errorf("storage: closing: %w", err)
	}
	return nil
}

func (a *App) closeListener(context.Context) error {
	if a.httpLn != nil {
		_ = a.httpLn.Close() // closed already once HTTP has served
	}
	return nil
}

// newEngine builds the occupancy engine on the open store.
func newEngine(cfg *configs.Config, store *zones.Store, reg prometheus.Registerer, log *slog.Logger) (*zones.Engine, error) {
	hour, minute, _ := cfg.Occupancy.ResetClock()
	return zones.NewEngine(zones.NewModel(cfg), store, zones.NewMetrics(reg), zones.Options{
		CommitInterval: cfg.Storage.CommitInterval,
		CommitOnIdle:   cfg.Storage.CommitMode == "idle",
		CommitBatch:    cfg.Storage.CommitBatch,
		QueueSize:      cfg.MQTT.QueueSize,
		MaxClockSkew:   cfg.Occupancy.MaxClockSkew,
		OfflineAfter:   cfg.Devices.OfflineAfter,
		ClampAfter:     cfg.Occupancy.ClampAfter,
		LogRetention:   cfg.Storage.LogRetention,
		ResetHour:      hour,
		ResetMinute:    minute,
		Location:       cfg.Location,
		Logger:         log.With("component", "engine"),
	})
}

// runner is one goroutine of the app's, started at most once and stopped by cancelling its
// context and waiting for it.
type runner struct {
	cancel context.CancelFunc
	done   chan error
	ended  bool // its return has been received already (it ended by itself)
}

func (r *runner) start(run func(context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- run(ctx) }()
}

// stop cancels the goroutine and waits for its return, or for ctx.
func (r *runner) stop(ctx context.Context) error {
	if r.cancel == nil || r.ended {
		return nil
	}
	r.cancel()
	select {
	case err := <-r.done:
		r.ended = true
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
