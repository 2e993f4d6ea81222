package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest"
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
			return runService(ctx, cfg, log, nil)
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

// runService runs the whole service until ctx ends or a component fails, then stops it in
// order: the engine commits and acknowledges what it holds, then MQTT, HTTP and the file close.
func runService(ctx context.Context, cfg *configs.Config, log *slog.Logger, onStart started) error {
	log = log.With("site", cfg.Site.ID)
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
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	hour, minute, _ := cfg.Occupancy.ResetClock()
	engine, err := zones.NewEngine(zones.NewModel(cfg), store, zones.NewMetrics(reg), zones.Options{
		CommitInterval: cfg.Storage.CommitInterval,
		CommitOnIdle:   cfg.Storage.CommitMode == "idle",
		CommitBatch:    cfg.Storage.CommitBatch,
		QueueSize:      cfg.MQTT.QueueSize,
		MaxClockSkew:   cfg.Occupancy.MaxClockSkew,
		OfflineAfter:   cfg.Devices.OfflineAfter,
		ResetHour:      hour,
		ResetMinute:    minute,
		Location:       cfg.Location,
		Logger:         log.With("component", "engine"),
	})
	if err != nil {
		return err
	}

	httpLn, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return fmt.Errorf("http: cannot listen on %s: %w", cfg.HTTP.Listen, err)
	}

	// Each component gets its own context so shutdown can go in order.
	engineCtx, stopEngine := context.WithCancel(context.Background())
	mqttCtx, stopMQTT := context.WithCancel(context.Background())
	httpCtx, stopHTTP := context.WithCancel(context.Background())
	defer stopEngine()
	defer stopMQTT()
	defer stopHTTP()
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(engineCtx) }()

	var (
		mqtt     mqttSide
		mqttAddr string
		stopSide func()
	)
	g, gctx := errgroup.WithContext(ctx)
	if cfg.MQTT.Broker == "" {
		broker, err := ingest.NewBroker(cfg, engine, log)
		if err != nil {
			httpLn.Close()
			stopEngine()
			<-engineDone
			return err
		}
		if err := broker.Serve(); err != nil {
			broker.Close()
			httpLn.Close()
			stopEngine()
			<-engineDone
			return err
		}
		mqtt, mqttAddr, stopSide = broker, broker.Addr().String(), broker.Close
		_ = broker.Publish(ingest.NewTopics(cfg.MQTT.TopicPrefix, cfg.Site.ID).Service(), []byte("online"), true)
	} else {
		client, err := ingest.NewClient(cfg, engine, log.With("component", "mqtt-client"))
		if err != nil {
			httpLn.Close()
			stopEngine()
			<-engineDone
			return err
		}
		clientDone := make(chan struct{})
		go func() { defer close(clientDone); _ = client.Run(mqttCtx) }()
		mqtt, mqttAddr = client, cfg.MQTT.Broker
		stopSide = func() { stopMQTT(); <-clientDone }
	}

	topics := ingest.NewTopics(cfg.MQTT.TopicPrefix, cfg.Site.ID)
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		ingest.PublishZones(mqttCtx, engine, mqtt, topics, 250*time.Millisecond, log.With("component", "zone-publisher"))
	}()
	log.Warn("http: the API is open to anyone who can reach it; sign-in and roles come with the dashboard")
	handler := web.NewHandler(web.Options{Engine: engine, Broker: mqtt, Gatherer: reg,
		Log: log.With("component", "http"), Version: versionString()})
	g.Go(func() error { return web.Serve(httpCtx, httpLn, handler, log) })

	log.Info("crowdwatch ready", "http", httpLn.Addr().String(), "mqtt", mqttAddr,
		"storage", cfg.Storage.Path, "zones", len(cfg.Zones), "doors", len(cfg.Doors), "version", versionString())
	if onStart != nil {
		onStart(httpLn.Addr().String(), mqttAddr)
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case <-gctx.Done():
		runErr = errors.New("a component failed")
	case err := <-engineDone:
		engineDone <- err
		runErr = fmt.Errorf("occupancy engine stopped: %v", err)
	}
	stopEngine()
	if err := <-engineDone; err != nil {
		log.Error("engine", "error", err)
	}
	stopSide()
	stopMQTT()
	<-pubDone
	stopHTTP()
	if err := g.Wait(); err != nil {
		runErr = err
	}
	if runErr != nil {
		log.Error("crowdwatch stopped", "error", runErr)
		return runErr
	}
	log.Info("crowdwatch stopped cleanly")
	return nil
}
