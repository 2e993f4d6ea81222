package main

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
)

func newDemoCmd(g *globalFlags) *cobra.Command {
	var sf serviceFlags
	var configPath string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the demo store: embedded broker, local database and simulated door counters",
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
			ctx, stop := signalContext()
			defer stop()
			return runService(ctx, cfg, log, func(httpAddr, mqttAddr string) {
				log.Info("demo: simulated shoppers and counters are starting; open the API",
					"zones", "http://"+displayAddr(httpAddr)+"/api/v1/zones")
				go runDemoCrowd(ctx, cfg, "tcp://"+displayAddr(mqttAddr), log.With("component", "demo-crowd"))
			})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "store file (default: the embedded demo store, configs/demo-store.yaml)")
	sf.register(cmd)
	return cmd
}

// displayAddr turns a wildcard listen address into one a browser or client can use.
func displayAddr(addr string) string {
	if len(addr) > 0 && addr[0] == ':' {
		return "127.0.0.1" + addr
	}
	if len(addr) > 5 && addr[:5] == "[::]:" {
		return "127.0.0.1" + addr[4:]
	}
	return addr
}

// runDemoCrowd is a small stand-in for the firmware simulator: shoppers arrive at the outside
// doors, wander through the doors between zones and leave, and every door counter and area
// sensor reports what it saw over MQTT like real firmware.
func runDemoCrowd(ctx context.Context, cfg *configs.Config, broker string, log *slog.Logger) {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 42))
	counters := map[string]*device.Counter{}
	dcfg := func(id string) device.Config {
		return device.Config{Broker: broker, Prefix: cfg.MQTT.TopicPrefix, Site: cfg.Site.ID, ID: id, Interval: time.Second}
	}
	for _, d := range cfg.Doors {
		if d.Counter.Device == "" || counters[d.Counter.Device] != nil {
			continue
		}
		var lines []string
		for _, o := range cfg.Doors {
			if o.Counter.Device == d.Counter.Device {
				lines = append(lines, o.Counter.Line)
			}
		}
		c := device.NewCounter(dcfg(d.Counter.Device), lines...)
		counters[d.Counter.Device] = c
		go c.Run(ctx)
	}
	sensors := map[string]*device.Sensor{}
	for _, s := range cfg.Sensors {
		sn := device.NewSensor(dcfg(s.Device))
		sensors[s.Device] = sn
		go sn.Run(ctx)
	}
	defer func() {
		for _, c := range counters {
			c.Close()
		}
		for _, s := range sensors {
			s.Close()
		}
	}()

	// here[z] is how many people stand in zone z and not in one of its children.
	here := map[string]int{}
	parent := map[string]string{}
	for _, z := range cfg.Zones {
		parent[z.ID] = z.Parent
	}
	exits := map[string]int{}
	for _, d := range cfg.Doors {
		exits[d.From]++
		exits[d.To]++
	}
	const tick = 250 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Arrivals swell and ebb over a ten-minute cycle so the demo shows busy and quiet.
		phase := time.Since(start).Seconds() / 600 * 2 * math.Pi
		arrivalPerDoor := 0.9 + 0.8*math.Sin(phase) // persons per second
		for _, d := range cfg.Doors {
			var in, out uint64
			if d.From == configs.Outside {
				in = poisson(rng, arrivalPerDoor*tick.Seconds())
			} else {
				in = leaving(rng, here[d.From], exits[d.From], tick)
			}
			if d.To != configs.Outside {
				out = leaving(rng, here[d.To], exits[d.To], tick)
			}
			if d.From != configs.Outside {
				in = min(in, uint64(here[d.From]))
				here[d.From] -= int(in)
			}
			if d.To != configs.Outside {
				out = min(out, uint64(here[d.To]))
				here[d.To] -= int(out)
				here[d.To] += int(in)
			}
			if d.From != configs.Outside {
				here[d.From] += int(out)
			}
			if c := counters[d.Counter.Device]; c != nil {
				if d.Counter.Reversed {
					in, out = out, in
				}
				c.Cross(d.Counter.Line, in, out)
			}
		}
		for _, s := range cfg.Sensors {
			total := 0
			for z, n := range here {
				for a := z; a != ""; a = parent[a] {
					if a == s.Zone {
						total += n
						break
					}
				}
			}
			noise := rng.IntN(3) - 1
			sensors[s.Device].Set(int64(max(0, total+noise)))
		}
	}
}

// leaving draws how many of n people in a zone head for one of its doors in one tick, for a
// mean stay of about four minutes.
func leaving(rng *rand.Rand, n, doors int, tick time.Duration) uint64 {
	if n <= 0 || doors == 0 {
		return 0
	}
	return poisson(rng, float64(n)*tick.Seconds()/240/float64(doors))
}

func poisson(rng *rand.Rand, mean float64) uint64 {
	l, k, p := math.Exp(-mean), uint64(0), 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}
