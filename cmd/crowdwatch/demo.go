package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/firmware-sim/sim"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var sf serviceFlags
	var configPath, scenarioName string
	var speed float64
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
			return runService(ctx, cfg, log, func(httpAddr, mqttAddr string) {
				log.Info("demo: the simulated store is opening; watch the zones",
					"zones", "http://"+displayAddr(httpAddr)+"/api/v1/zones", "scenario", sc.Name, "speed", speed)
				access.print(cmd.OutOrStdout(), scheme(cfg)+displayAddr(httpAddr))
				go runDemoCrowd(ctx, cfg, sc, speed, fastForward, "tcp://"+displayAddr(mqttAddr), log.With("component", "simulator"))
			}, nil)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "store file (default: the embedded demo store, configs/demo-store.yaml)")
	cmd.Flags().StringVar(&scenarioName, "scenario", "doorbuster", "shipped scenario: normal-day, doorbuster or evacuation")
	cmd.Flags().Float64Var(&speed, "speed", 10, "simulated seconds per real second")
	sf.register(cmd)
	return cmd
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
