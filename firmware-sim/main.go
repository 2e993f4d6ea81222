// Command firmware-sim fills a store with simulated shoppers and door counters that behave
// like real firmware on the wire: `go run ./firmware-sim --config configs/demo-store.yaml
// --scenario doorbuster --speed 30`. See docs/simulator.md.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/encode"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/firmware-sim/sim"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		os.Exit(1)
	}
}

type runFlags struct {
	config, scenario, broker, username, password, day, truth, compare, token string
	format, ingest, deviceToken                                              string
	deviceTokens, axisSerials, regions                                       map[string]string
	seed                                                                     uint64
	speed                                                                    float64
	sample, checkpoint                                                       time.Duration
	exact                                                                    bool
	sensorNoise                                                              float64
	faults                                                                   scenario.Faults
	set                                                                      func(name string) bool
}

func newRootCmd() *cobra.Command {
	f := &runFlags{}
	cmd := &cobra.Command{
		Use:          "firmware-sim --config STORE.yaml [--scenario NAME|FILE]",
		Short:        "Simulate shoppers and the store's counters and sensors over MQTT",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.set = func(name string) bool { return cmd.Flags().Changed(name) }
			return runScenario(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "configs/demo-store.yaml", "store file, the same the service reads")
	fl.StringVar(&f.scenario, "scenario", "normal-day", "scenario name (configs/scenarios/NAME.yaml) or file")
	fl.StringVar(&f.broker, "broker", "", "broker URL (default: the store file's embedded broker on 127.0.0.1, or mqtt.broker)")
	fl.StringVar(&f.username, "username", "", "MQTT username for every device (default: the device id)")
	fl.StringVar(&f.password, "password", "", "MQTT password for every device")
	fl.Uint64Var(&f.seed, "seed", 1, "random seed: the same seed gives the same crowd and faults")
	fl.Float64Var(&f.speed, "speed", 30, "simulated seconds per real second; 0 = as fast as the broker acknowledges")
	fl.StringVar(&f.day, "day", "", "simulated date YYYY-MM-DD (default yesterday, so no report is in the future)")
	fl.StringVar(&f.truth, "truth", "", "write the true occupancy and crossings as CSV to this file")
	fl.DurationVar(&f.sample, "sample", 10*time.Second, "truth sampling interval, simulated time")
	fl.StringVar(&f.compare, "compare", "", "service URL (http://127.0.0.1:8080): compare its zones with the truth at checkpoints")
	fl.DurationVar(&f.checkpoint, "checkpoint", 10*time.Minute, "simulated time between comparisons")
	fl.StringVar(&f.token, "token", os.Getenv("CROWDWATCH_TOKEN"), "with --compare: a manager API token for a service with sign-in (default $CROWDWATCH_TOKEN)")
	fl.BoolVar(&f.exact, "exact", false, "with --compare: fail at the first checkpoint that differs")
	fl.Float64Var(&f.sensorNoise, "sensor-noise", 1, "standard deviation of area sensors' head counts, persons")
	fl.Float64Var(&f.faults.Duplicate, "duplicate", 0, "share of reports sent twice")
	fl.Float64Var(&f.faults.Reorder, "reorder", 0, "share of reports delivered after the next one")
	fl.Float64Var(&f.faults.Malformed, "malformed", 0, "share of reports followed by a malformed payload")
	fl.Float64Var(&f.faults.RebootPerHour, "reboot-per-hour", 0, "device reboots per device per hour")
	fl.Float64Var(&f.faults.OfflinePerHr, "offline-per-hour", 0, "outages per device per hour")
	fl.DurationVar(&f.faults.OfflineFor, "offline-for", 2*time.Minute, "length of an outage")
	fl.DurationVar(&f.faults.ClockSkew, "clock-skew", 0, "offset added to every device clock")
	fl.BoolVar(&f.faults.Wrap16, "wrap16", false, "start 16-bit counters near the top so they wrap")
	fl.StringSliceVar(&f.faults.IntervalDevices, "interval-devices", nil, "counters that send period_in/period_out")
	fl.Float64Var(&f.faults.MissIn, "miss-in", 0, "share of entries a counter misses")
	fl.Float64Var(&f.faults.MissOut, "miss-out", 0, "share of exits a counter misses")
	fl.Float64Var(&f.faults.Extra, "extra", 0, "share of crossings counted twice")
	fl.StringVar(&f.format, "format", "native", "wire format of every device: native, "+strings.Join(encode.Formats(), ", ")+" (docs/devices.md)")
	fl.StringVar(&f.ingest, "ingest", "", "service URL for HTTP push formats (POST URL/ingest/v1/DEVICE; default: the store file's http.listen on 127.0.0.1)")
	fl.StringVar(&f.deviceToken, "device-token", os.Getenv("CROWDWATCH_DEVICE_TOKEN"), "Bearer token of every push device (default $CROWDWATCH_DEVICE_TOKEN)")
	fl.StringToStringVar(&f.deviceTokens, "device-tokens", nil, "per push device: DEVICE=TOKEN,...")
	fl.StringToStringVar(&f.axisSerials, "axis-serial", nil, "Axis cameras' serials in their topics: DEVICE=SERIAL,...")
	fl.StringToStringVar(&f.regions, "region", nil, "area sensors' region, zone logic or scenario ids: DEVICE=ID,...")
	cmd.AddCommand(newReplayCmd(), newLoadCmd())
	return cmd
}

// loadStore reads the store file and works out the broker URL devices should use.
func loadStore(path, broker string) (*configs.Config, string, error) {
	cfg, err := configs.Load(path, nil)
	if err != nil {
		return nil, "", err
	}
	if broker == "" {
		broker = cfg.MQTT.Broker
	}
	if broker == "" {
		addr := cfg.MQTT.Embedded.Listen
		if strings.HasPrefix(addr, ":") {
			addr = "127.0.0.1" + addr
		}
		broker = "tcp://" + addr
	}
	return cfg, broker, nil
}

// storeDevices is what the store file says of each device's wire: its format
// (devices[].format, over --format), its area sensors' regions (sensors[].region) and its Axis
// cameras' serials, with the command line's --region and --axis-serial over them. The store
// file's device list arrives with the vendor formats in configs; until it is read here every
// device takes --format, and one line per map below wires it (formats[d.ID] = d.Format).
func storeDevices(_ *configs.Config, regions, serials map[string]string) (formats, reg, ser map[string]string) {
	formats, reg, ser = map[string]string{}, map[string]string{}, map[string]string{}
	for id, r := range regions {
		reg[id] = r
	}
	for id, s := range serials {
		ser[id] = s
	}
	return formats, reg, ser
}

// ingestURL is where push devices reach the service by default: its HTTP listener on this
// machine.
func ingestURL(cfg *configs.Config) string {
	addr := cfg.HTTP.Listen
	if addr == "" {
		return ""
	}
	if strings.HasPrefix(addr, ":") {
		addr = "127.0.0.1" + addr
	}
	return "http://" + addr
}

func loadScenario(name string) (*scenario.Scenario, error) {
	path := name
	if !strings.ContainsAny(name, "/.") {
		path = filepath.Join("configs", "scenarios", name+".yaml")
	}
	return scenario.Load(path)
}

func runScenario(cmd *cobra.Command, f *runFlags) error {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, broker, err := loadStore(f.config, f.broker)
	if err != nil {
		return err
	}
	sc, err := loadScenario(f.scenario)
	if err != nil {
		return err
	}
	// Fault flags override the scenario's keys only when given.
	for flag, apply := range map[string]func(){
		"duplicate": func() { sc.Faults.Duplicate = f.faults.Duplicate }, "reorder": func() { sc.Faults.Reorder = f.faults.Reorder },
		"malformed": func() { sc.Faults.Malformed = f.faults.Malformed }, "reboot-per-hour": func() { sc.Faults.RebootPerHour = f.faults.RebootPerHour },
		"offline-per-hour": func() { sc.Faults.OfflinePerHr = f.faults.OfflinePerHr }, "offline-for": func() { sc.Faults.OfflineFor = f.faults.OfflineFor },
		"clock-skew": func() { sc.Faults.ClockSkew = f.faults.ClockSkew }, "wrap16": func() { sc.Faults.Wrap16 = f.faults.Wrap16 },
		"interval-devices": func() { sc.Faults.IntervalDevices = f.faults.IntervalDevices }, "miss-in": func() { sc.Faults.MissIn = f.faults.MissIn },
		"miss-out": func() { sc.Faults.MissOut = f.faults.MissOut }, "extra": func() { sc.Faults.Extra = f.faults.Extra },
		"sensor-noise": func() { sc.Devices.SensorNoise = f.sensorNoise },
	} {
		if f.set(flag) {
			apply()
		}
	}
	opts := sim.Options{Config: cfg, Scenario: sc, Broker: broker, Username: f.username, Password: f.password,
		Seed: f.seed, Speed: f.speed, SampleEvery: f.sample, Log: log,
		Format: f.format, IngestURL: f.ingest,
		DeviceToken: f.deviceToken, DeviceTokens: f.deviceTokens}
	opts.Formats, opts.Regions, opts.Serials = storeDevices(cfg, f.regions, f.axisSerials)
	if opts.IngestURL == "" {
		opts.IngestURL = ingestURL(cfg)
	}
	if f.day != "" {
		if opts.Day, err = time.ParseInLocation(time.DateOnly, f.day, cfg.Location); err != nil {
			return fmt.Errorf("--day: %w", err)
		}
	}
	if f.truth != "" {
		out, err := os.Create(f.truth)
		if err != nil {
			return err
		}
		defer out.Close()
		opts.Truth = out
	}
	var cmp *sim.Comparer
	if f.compare != "" {
		cmp = &sim.Comparer{URL: f.compare, Token: f.token, Config: cfg, Exact: f.exact}
		opts.Checkpoint, opts.CheckpointEvery = cmp.Checkpoint, f.checkpoint
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log.Info("simulating", "scenario", sc.Name, "store", cfg.Site.ID, "broker", broker, "seed", f.seed, "speed", f.speed)
	sum, err := sim.Run(ctx, opts)
	if err != nil {
		return err
	}
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "scenario %s, seed %d: simulated %s to %s in %s\n", sc.Name, f.seed,
		sum.Start.Format("15:04"), sum.End.Format("15:04"), sum.WallDuration.Round(time.Millisecond))
	fmt.Fprintf(w, "reports %d (duplicates %d, malformed %d, refused %d), reboots %d, outages %d, checkpoints %d\n",
		sum.Reports, sum.Duplicates, sum.Malformed, sum.Refused, sum.Reboots, sum.Offlines, sum.Checkpoints)
	for _, z := range cfg.Zones {
		fmt.Fprintf(w, "  %-12s peak %5d  at end %5d  (capacity %d)\n", z.ID, sum.Peak[z.ID], sum.Truth[z.ID], z.Capacity)
	}
	if cmp != nil {
		fmt.Fprint(w, "\n"+cmp.Table())
	}
	return nil
}
