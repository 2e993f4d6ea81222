package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
	"github.com/crowdwatch/crowdwatch/firmware-sim/replay"
)

// newReplayCmd plays a recorded CalIt2-format file through one counter device.
func newReplayCmd() *cobra.Command {
	var config, broker, file, id string
	var steps int
	var speed float64
	cmd := &cobra.Command{
		Use:   "replay --file CalIt2.data --device ID",
		Short: "Replay a real door counter's half-hour counts as a counter device's cumulative reports",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, url, err := loadStore(config, broker)
			if err != nil {
				return err
			}
			hs, err := replay.LoadFile(file)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			cl := paho.NewClient(device.Options(url, "replay-"+id).SetUsername(id))
			defer cl.Disconnect(100)
			topic := cfg.MQTT.TopicPrefix + "/" + cfg.Site.ID + "/counter/" + id
			points := replay.Spread(hs, steps)
			boot := fmt.Sprintf("replay-%d", time.Now().Unix())
			start := time.Now()
			for i, p := range points {
				if speed > 0 && i > 0 {
					due := start.Add(time.Duration(float64(p.At.Sub(points[0].At)) / speed))
					select {
					case <-time.After(time.Until(due)):
					case <-ctx.Done():
						return ctx.Err()
					}
				}
				payload := fmt.Sprintf(`{"boot":%q,"seq":%d,"ts":%q,"in":%d,"out":%d}`, boot, i+1, p.At.UTC().Format(time.RFC3339), p.In, p.Out)
				if err := device.PublishAcked(ctx, cl, topic, []byte(payload)); err != nil {
					return err
				}
			}
			last := points[len(points)-1]
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d half hours (%s to %s) as %d reports in %s: %d in, %d out\n",
				len(hs), hs[0].Start.Format(time.DateOnly), hs[len(hs)-1].End.Format(time.DateOnly), len(points),
				time.Since(start).Round(time.Millisecond), last.In, last.Out)
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "configs/demo-store.yaml", "store file")
	cmd.Flags().StringVar(&broker, "broker", "", "broker URL (default from the store file)")
	cmd.Flags().StringVar(&file, "file", "testdata/calit2/CalIt2.data", "CalIt2-format file")
	cmd.Flags().StringVar(&id, "device", "dc-01", "counter device to report as")
	cmd.Flags().IntVar(&steps, "steps", 3, "reports per half hour, the crossings spread evenly over them")
	cmd.Flags().Float64Var(&speed, "speed", 0, "recorded seconds per real second; 0 = as fast as acknowledged")
	return cmd
}
