package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/web"
	"github.com/crowdwatch/crowdwatch/zones"
)

// serviceFlags are the common settings a flag can override (over the file and environment).
type serviceFlags struct {
	httpListen, mqttListen, storagePath, broker string
}

func (f *serviceFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.httpListen, "http-listen", "", "HTTP address (overrides http.listen)")
	cmd.Flags().StringVar(&f.mqttListen, "mqtt-listen", "", "embedded broker address (overrides mqtt.embedded.listen)")
	cmd.Flags().StringVar(&f.storagePath, "storage-path", "", "database file (overrides storage.path)")
	cmd.Flags().StringVar(&f.broker, "broker", "", "external broker URL instead of the embedded one (overrides mqtt.broker)")
}

func (f *serviceFlags) overrides() map[string]any {
	o := map[string]any{}
	for key, v := range map[string]string{"http.listen": f.httpListen, "mqtt.embedded.listen": f.mqttListen,
		"storage.path": f.storagePath, "mqtt.broker": f.broker} {
		if v != "" {
			o[key] = v
		}
	}
	return o
}

func newServeCmd(g *globalFlags) *cobra.Command {
	var configPath string
	var sf serviceFlags
	cmd := &cobra.Command{
		Use:   "serve --config FILE",
		Short: "Run the service for a store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			cfg, err := configs.Load(configPath, sf.overrides())
			if err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			return runService(ctx, cfg, log, nil, &reloadSource{path: configPath, overrides: sf.overrides()})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "store file (YAML)")
	_ = cmd.MarkFlagRequired("config")
	sf.register(cmd)
	return cmd
}

// started tells the caller where the service listens once it is up.
type started func(httpAddr, mqttAddr string)

// mqttSide is the embedded broker or the external-broker client.
type mqttSide interface {
	Connected() bool
	Publish(topic string, payload []byte, retain bool) error
}

// retainedReassert is how often the service publishes its retained topics again unchanged.
const retainedReassert = 10 * time.Second

// reloadSource is the file a running service reloads its alerting settings from.
type reloadSource struct {
	path      string
	overrides map[string]any
}

// runService runs the whole service until ctx ends or a component fails, then stops it in
// order: the engine commits and acknowledges what it holds, then MQTT, HTTP, alerting and the
// files close. With reload set, SIGHUP and file changes reload the alerting settings.
func runService(ctx context.Context, cfg *configs.Config, log *slog.Logger, onStart started, reload *reloadSource) error {
	log = log.With("site", cfg.Site.ID)
	// Everything that can fail on the configuration is done before any file is opened, so
	// that a start refused for its configuration leaves the disk as it was: the merged alert
	// thresholds, the HTTP address (bound now, served later) and its certificate. configs.Load
	// has checked the rest, the listen addresses' form included.
	if err := alerting.CheckLimits(cfg); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http: cannot listen on %s: %w", cfg.HTTP.Listen, err)
	}
	defer httpLn.Close()
	if httpLn, err = listenTLS(cfg, httpLn); err != nil {
		return err
	}

	store, err := zones.OpenStore(cfg.Storage.Path, cfg.Site.ID)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("storage: closing", "error", err)
		}
	}()

	reg := prometheus.NewRegistry()
	// Intrusion detection (docs/security.md): the broker, sign-in and the API report what they
	// refuse from their start; the monitor counts it at once and evaluates it for alerts once
	// the alert manager exists (events wait in its bounded queue until then).
	monitor := security.NewMonitor(security.MonitorOptions{Registerer: reg, Window: cfg.Alerting.Security.Window,
		Threshold: func(k security.Kind) int { return cfg.Alerting.Security.SecurityThreshold(string(k)) },
		Logger:    log.With("component", "security")})
	var sec security.Sink = monitor
	store.RegisterMetrics(reg)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hour, minute, _ := cfg.Occupancy.ResetClock()
	engine, err := zones.NewEngine(zones.NewModel(cfg), store, zones.NewMetrics(reg), zones.Options{
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
	if err != nil {
		return err
	}

	// Shutdown runs these in order, not in reverse of start-up: the engine goes first so
	// that what it holds is committed and acknowledged before MQTT goes away.
	var stops []func()
	stopAll := func() {
		for _, stop := range stops {
			stop()
		}
		stops = nil
	}
	defer stopAll()

	engineCtx, stopEngine := context.WithCancel(context.Background())
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(engineCtx) }()
	stops = append(stops, func() {
		stopEngine()
		if err := <-engineDone; err != nil {
			log.Error("engine", "error", err)
		}
	})

	// Start order: the MQTT side is built (listening, not yet serving), then the alert manager
	// (it needs MQTT for its channel, and opens its database), then history (which reads the
	// manager's levels and events: it exists already, so nothing is bound late), and only then
	// does MQTT serve, so that history sees the first crossings. The manager runs once MQTT is
	// up; until then it shows the levels it restored from its open alerts.
	mqttCtx, stopMQTT := context.WithCancel(context.Background())
	defer stopMQTT()
	var (
		mqtt     mqttSide
		mqttAddr string
		mqttTLS  []any
		// serveMQTT starts serving; stopMQTTSide stops what it started; closeUnserved
		// releases what was built when the start fails before serving.
		serveMQTT                   func() error
		stopMQTTSide, closeUnserved func()
	)
	topics := ingest.TopicsFor(cfg)
	if cfg.MQTT.Broker == "" {
		broker, err := ingest.NewBroker(cfg, engine, log, ingest.BrokerOptions{Security: sec, Registerer: reg})
		if err != nil {
			return err
		}
		stopMQTTSide, closeUnserved = broker.Close, broker.Close
		serveMQTT = func() error {
			if err := broker.Serve(); err != nil {
				return err
			}
			mqttAddr = broker.Addr().String()
			if a := broker.TLSAddr(); a != nil {
				mqttTLS = []any{"mqtt_tls", a.String()}
			}
			return nil
		}
		mqtt = broker
	} else {
		client, err := ingest.NewClient(cfg, engine, log.With("component", "mqtt-client"), ingest.ClientOptions{Security: sec})
		if err != nil {
			return err
		}
		clientDone := make(chan struct{})
		stopMQTTSide, closeUnserved = func() { stopMQTT(); <-clientDone }, func() {}
		serveMQTT = func() error {
			go func() { defer close(clientDone); _ = client.Run(mqttCtx) }()
			return nil
		}
		mqtt, mqttAddr = client, cfg.MQTT.Broker
	}
	alerts, runAlerting, err := newAlerting(cfg, engine, mqtt, topics, reg, log, reload)
	if err != nil {
		closeUnserved()
		return err
	}
	// Until the manager runs, closing its database is all there is to stop.
	stopAlerting := func() {
		if err := alerts.Close(); err != nil {
			log.Error("alerting: closing the alert database", "error", err)
		}
	}

	// History (package history): its own file, recorder and reader; it stops right after
	// the engine so that the engine's last state is recorded.
	historyReader, stopHistory := startHistory(cfg, engine, alerts, reg, log)
	stops = append(stops, stopHistory)

	// The zone and service-status publishers stop before the broker or client does, so that
	// nothing re-asserts "online" after the external client's last "offline".
	stopPublishers := func() {}
	stops = append(stops, func() { stopPublishers() })
	stops = append(stops, stopMQTTSide)
	// Until the manager runs, a failed start closes its database after the rest has stopped.
	alertingRuns := false
	defer func() {
		if !alertingRuns {
			stopAll()
			stopAlerting()
		}
	}()
	if err := serveMQTT(); err != nil {
		return err
	}
	// The service's own retained topics (service status, zone states) are re-asserted every
	// retainedReassert, so a retained message someone else put there does not last.
	pubCtx, stopPub := context.WithCancel(context.Background())
	retained := ingest.NewRetainer(mqtt, retainedReassert, log.With("component", "retained-publisher"))
	var pubs sync.WaitGroup
	pubs.Add(2)
	go func() { defer pubs.Done(); retained.Run(pubCtx) }()
	_ = retained.Publish(topics.Service(), []byte("online"), true)
	go func() {
		defer pubs.Done()
		ingest.PublishZones(pubCtx, engine, retained, topics, 250*time.Millisecond, alerts, log.With("component", "zone-publisher"))
	}()
	stopPublishers = func() { stopPub(); pubs.Wait() }

	stopAlerting, alertingRuns = runAlerting(), true
	monitorCtx, stopMonitor := context.WithCancel(context.Background())
	defer stopMonitor()
	monitorDone := make(chan struct{})
	go func() { defer close(monitorDone); _ = monitor.Run(monitorCtx, alerts) }()

	// The dashboard, guidance screens and their live feed, and sign-in (web/...).
	authz, authStore, live, err := startWeb(cfg, engine, alerts, mqtt, topics, sec, log, &stops)
	if err != nil {
		stopAlerting()
		return err
	}
	authStore.RegisterMetrics(reg)
	handler := web.NewHandler(web.Options{Engine: engine, Broker: mqtt, Gatherer: reg, Auth: authz, SignIn: authz, Live: live, Alerting: alerts,
		Log: log.With("component", "http"), Version: versionString(), History: historyReader,
		Backups: &serviceBackups{store: store, alerts: alerts, historyPath: cfg.HistoryPath()},
		Audit:   authStore, Events: sec, Registerer: reg})
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopHTTP()
	httpDone := make(chan error, 1)
	go func() { httpDone <- web.Serve(httpCtx, httpLn, handler, log) }()
	var httpErr error
	stops = append(stops, func() {
		stopHTTP()
		if err := <-httpDone; err != nil && httpErr == nil {
			httpErr = err
		}
		// After HTTP: no handler appends to the audit log any more.
		if err := authStore.Close(); err != nil {
			log.Error("auth: closing the sign-in file", "error", err)
		}
	})
	stops = append(stops, func() { stopMonitor(); <-monitorDone }, stopAlerting)

	log.Info("crowdwatch ready", append([]any{"http", httpLn.Addr().String(), "mqtt", mqttAddr}, append(mqttTLS,
		"storage", cfg.Storage.Path, "zones", len(cfg.Zones), "doors", len(cfg.Doors), "version", versionString())...)...)
	if onStart != nil {
		onStart(httpLn.Addr().String(), mqttAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case httpErr = <-httpDone:
		httpDone <- httpErr // for the stop function
		runErr = httpErr
	case err := <-engineDone:
		engineDone <- err
		runErr = fmt.Errorf("occupancy engine stopped: %v", err)
	}
	stopAll()
	if runErr == nil {
		runErr = httpErr
	}
	if runErr != nil {
		log.Error("crowdwatch stopped", "error", runErr)
		return runErr
	}
	log.Info("crowdwatch stopped cleanly")
	return nil
}

// newAlerting builds the alert manager (its database open, its open alerts restored) and
// returns it with the function that starts it, its notification channels and, for a service
// run from a file, the reloader; that function returns the one that stops them in that
// order's reverse and closes the database.
func newAlerting(cfg *configs.Config, engine *zones.Engine, mqtt mqttSide, topics ingest.Topics, reg *prometheus.Registry,
	log *slog.Logger, reload *reloadSource) (*alerting.Manager, func() (stop func()), error) {
	metrics := alerting.NewMetrics(reg)
	alog := log.With("component", "alerting")
	dispatcher := alerting.NewDispatcher(mqtt, topics, metrics, alog)
	manager, err := alerting.New(alerting.Options{Config: cfg, Model: engine.Model(), Source: engine,
		Notifier: dispatcher, Metrics: metrics, Logger: alog})
	if err != nil {
		return nil, nil, err
	}
	return manager, func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); dispatcher.Run(ctx, cfg) }()
		go func() { defer wg.Done(); _ = manager.Run(ctx) }()
		if reload != nil {
			current := cfg
			wg.Add(1)
			go func() {
				defer wg.Done()
				configs.Watch(ctx, reload.path, reload.overrides, cfg.Alerting.Reload.WatchFile, cfg.Alerting.Reload.Debounce,
					func(next *configs.Config) {
						if err := manager.Reload(ctx, next); err != nil {
							metrics.Reloaded(false)
							alog.Error("config reload rejected; the previous settings stay in force", "path", reload.path, "error", err)
							return
						}
						dispatcher.Reload(next)
						metrics.Reloaded(true)
						if current.NeedsRestart(next) {
							alog.Warn("config reloaded: alerting settings applied; other changes (zones, doors, devices, MQTT, storage, HTTP) take effect after a restart", "path", reload.path)
						} else {
							alog.Info("config reloaded: alerting settings applied", "path", reload.path)
						}
						current = next
					},
					func(err error) {
						metrics.Reloaded(false)
						alog.Error("config reload rejected; the previous settings stay in force", "path", reload.path, "error", err)
					})
			}()
		}
		return func() {
			cancel()
			wg.Wait()
			if err := manager.Close(); err != nil {
				log.Error("alerting: closing the alert database", "error", err)
			}
		}
	}, nil
}
