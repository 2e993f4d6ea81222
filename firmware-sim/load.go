package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
)

// newLoadCmd is the benchmark load: N of the store's counters each send R reports a second
// for a fixed time, every report one more person in.
func newLoadCmd() *cobra.Command {
	var (
		config, broker string
		devices        int
		rate           float64
		duration       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "load --devices N --rate R --duration D",
		Short: "Drive N counters at R reports per second each for a fixed time",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, url, err := loadStore(config, broker)
			if err != nil {
				return err
			}
			var ids []string
			seen := map[string]bool{}
			for _, d := range cfg.Doors {
				if id := d.Counter.Device; id != "" && !seen[id] && d.Counter.Line == "1" {
					seen[id] = true
					ids = append(ids, id)
				}
			}
			if devices > len(ids) {
				return fmt.Errorf("--devices %d: the store file has only %d counters with a line \"1\"", devices, len(ids))
			}
			if rate <= 0 || duration <= 0 || duration > time.Hour {
				return fmt.Errorf("--rate must be > 0 and --duration between 0 and 1h")
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, duration+30*time.Second)
			defer cancel()
			var sent atomic.Int64
			var wg sync.WaitGroup
			start := time.Now()
			for _, id := range ids[:devices] {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := paho.NewClient(device.Options(url, "load-"+id).SetUsername(id))
					if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
						fmt.Fprintln(cmd.ErrOrStderr(), "load:", id, tok.Error())
						return
					}
					defer cl.Disconnect(100)
					topic := cfg.MQTT.TopicPrefix + "/" + cfg.Site.ID + "/counter/" + id
					boot := fmt.Sprintf("load-%d", start.UnixNano())
					tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
					defer tick.Stop()
					for seq := 1; time.Since(start) < duration; seq++ {
						<-tick.C
						p := fmt.Sprintf(`{"boot":%q,"seq":%d,"ts":%q,"in":%d,"out":0}`, boot, seq, time.Now().UTC().Format(time.RFC3339Nano), seq)
						if err := device.PublishAcked(ctx, cl, topic, []byte(p)); err != nil {
							return
						}
						sent.Add(1)
					}
				}()
			}
			wg.Wait()
			el := time.Since(start)
			fmt.Fprintf(cmd.OutOrStdout(), "load: %d devices, %d reports acknowledged in %s: %.0f reports/s (asked %.0f)\n",
				devices, sent.Load(), el.Round(time.Millisecond), float64(sent.Load())/el.Seconds(), float64(devices)*rate)
			return nil
		},
	}
	cmd.Flags().StringVar(&config, "config", "configs/demo-store.yaml", "store file")
	cmd.Flags().StringVar(&broker, "broker", "", "broker URL (default from the store file)")
	cmd.Flags().IntVar(&devices, "devices", 1, "counters to drive (the store's first N)")
	cmd.Flags().Float64Var(&rate, "rate", 10, "reports per second per counter")
	cmd.Flags().DurationVar(&duration, "duration", 10*time.Second, "how long to drive them (at most 1h)")
	return cmd
}
