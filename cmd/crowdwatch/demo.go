package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/app"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/firmware-sim/sim"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var sf serviceFlags
	var configPath, scenarioName string
	var speed float64
	var keepData bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo store: embedded broker, local database and the firmware simulator",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			overrides := sf.overrides()
			var cfg *configs.Config
			if configPath != "" {
				cfg, err = configs.Load(configPath, overrides)
			} else {
				cfg, err = configs.Parse(configs.DemoStore(), overrides)
			}
			if err != nil {
				return err
			}
			if cfg.MQTT.Broker != "" || len(cfg.MQTT.Embedded.Users) > 0 {
				return fmt.Errorf("demo: the demo runs its devices against an open embedded broker; use serve for %s", configPath)
			}
			// Every start is a fresh simulated morning: the embedded demo store starts from
			// empty files (occupancy, history, alerts), so a second `make demo` neither
			// replays nor adds to the last run. A store file of your own keeps its data.
			if configPath == "" && !keepData {
				if err := freshDemoData(cfg, log); err != nil {
					return err
				}
			}
			// No default password: the demo makes a user and a token per screen for this run
			// and prints them once the service is up.
			access, err := addDemoAccess(cfg)
			if err != nil {
				return err
			}
			yaml, err := configs.Scenario(scenarioName)
			if err != nil {
				return err
			}
			sc, err := scenario.Parse(yaml)
			if err != nil {
				return err
			}
			// Nobody wants to watch hours of a closed store: skip to a minute before opening
			// (the queue outside still builds up as the scenario says).
			fastForward := time.Duration(max(0, int(sc.Open-sc.Start)-1)) * time.Minute
			ctx, stop := signalContext()
			defer stop()
			a, err := app.New(cfg, app.Options{Logger: log, Version: versionString(), OnReady: func(a *app.App) {
				log.Info("demo: the simulated store is opening; watch the zones",
					"zones", "http://"+displayAddr(a.HTTPAddr())+"/api/v1/zones", "scenario", sc.Name, "speed", speed)
				access.print(cmd.OutOrStdout(), scheme(cfg)+displayAddr(a.HTTPAddr()))
				go runDemoCrowd(ctx, cfg, sc, speed, fastForward, "tcp://"+displayAddr(a.MQTTAddr()), log.With("component", "simulator"))
			}})
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "store file (default: the embedded demo store, configs/demo-store.yaml)")
	cmd.Flags().StringVar(&scenarioName, "scenario", "doorbuster", "shipped scenario: normal-day, doorbuster or evacuation")
	cmd.Flags().Float64Var(&speed, "speed", 10, "simulated seconds per real second")
	cmd.Flags().BoolVar(&keepData, "keep-data", false, "keep the last demo run's figures, history and alerts instead of starting a fresh morning")
	sf.register(cmd)
	return cmd
}

// freshDemoData removes the demo store's database, history, alert and sign-in files, so the
// demo starts with an empty store and a session of an earlier run (whose password was made
// for that run only) does not carry over. Only files the (embedded) demo store names are
// touched.
func freshDemoData(cfg *configs.Config, log *slog.Logger) error {
	for _, path := range []string{cfg.Storage.Path, cfg.HistoryPath(), cfg.AlertsPath(), cfg.AuthPath(), cfg.EventsPath()} {
		st, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil || !st.Mode().IsRegular() {
			return fmt.Errorf("demo: cannot start a fresh morning: %s is not a file the demo made (%v); remove it or pass --keep-data", path, err)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("demo: cannot start a fresh morning: %w", err)
		}
		log.Info("demo: removed the last run's data for a fresh morning (--keep-data keeps it)", "file", path)
	}
	return nil
}

// displayAddr turns a wildcard listen address into one a browser or client can use.
func displayAddr(addr string) string {
	if strings.HasPrefix(addr, ":") {
		return "127.0.0.1" + addr
	}
	if rest, ok := strings.CutPrefix(addr, "[::]:"); ok {
		return "127.0.0.1:" + rest
	}
	return addr
}

// runDemoCrowd plays the scenario day after day until ctx ends, each day with a new seed.
func runDemoCrowd(ctx context.Context, cfg *configs.Config, sc *scenario.Scenario, speed float64, skip time.Duration, broker string, log *slog.Logger) {
	for day := uint64(1); ctx.Err() == nil; day++ {
		sum, err := sim.Run(ctx, sim.Options{Config: cfg, Scenario: sc, Broker: broker, Seed: day, Speed: speed,
			FastForward: skip, Log: log})
		if err != nil {
			if ctx.Err() == nil {
				log.Error("demo: simulator stopped; starting the day again", "error", err)
				time.Sleep(time.Second)
			}
			continue
		}
		log.Info("demo: simulated day over; starting the next", "peaks", sum.Peak)
	}
}
