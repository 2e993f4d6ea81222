package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/loadbench"
)

// newBenchCmd is the load tool (package loadbench): N counters through a broker into a
// crowdwatch service (this binary, `serve`, as a child process) and out to M WebSocket
// clients, then the same publishers through the same kind of broker to a bare subscriber.
func newBenchCmd() *cobra.Command {
	var f loadbench.Options
	cmd := &cobra.Command{
		Use:   "bench --devices N --rate R --clients M --duration D",
		Short: "Measure the whole path on loopback (ingest, publish-to-WebSocket latency, CPU, RSS, losses) against the bare broker",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.Check(); err != nil {
				return err
			}
			ctx, stop := signalContext()
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, 2*f.Duration+2*time.Minute) // hard cap
			defer cancel()
			return loadbench.Run(ctx, cmd.OutOrStdout(), f)
		},
	}
	cmd.Flags().IntVar(&f.Devices, "devices", 20, "counters publishing (one per zone)")
	cmd.Flags().Float64Var(&f.Rate, "rate", 10, "reports per second per counter (0: each as soon as the previous is acknowledged)")
	cmd.Flags().IntVar(&f.Clients, "clients", 50, "WebSocket live-feed clients")
	cmd.Flags().IntVar(&f.Zones, "zones", 200, "zones in the generated store")
	cmd.Flags().DurationVar(&f.Duration, "duration", 10*time.Second, "load time per phase (at most 10m)")
	cmd.Flags().StringVar(&f.Broker, "broker", "embedded", "embedded or mosquitto (an external mosquitto on a free loopback port)")
	cmd.Flags().IntVar(&f.Measure, "measure-clients", 20, "clients that decode every message and measure latency; the others read every frame without decoding it, as a browser on its own device costs the service the same")
	cmd.Flags().StringVar(&f.Profile, "profile", "", "directory to save the service's CPU profile (over the load) and heap profile (after it) for go tool pprof")
	cmd.Flags().BoolVar(&f.Baseline, "baseline", true, "also run the same load against the bare broker")
	cmd.Flags().StringVar(&f.Service, "service", "", "crowdwatch binary to run as the service (default: this one), to measure two builds under the same load")
	return cmd
}
