// Package sim runs a scenario: the crowd moves in simulated time, every configured counter
// and area sensor reports over MQTT like firmware (with the scenario's faults), and the truth
// is written down so the service's figures can be checked against it.
package sim

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/crowd"
	"github.com/crowdwatch/crowdwatch/firmware-sim/encode"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
)

// Options configure a run.
type Options struct {
	Config   *configs.Config
	Scenario *scenario.Scenario
	Broker   string // tcp://127.0.0.1:1883
	Username string // for every device, when the broker wants one; default: the device id
	Password string
	Seed     uint64
	// Speed is simulated seconds per real second; 0 runs as fast as the broker acknowledges.
	Speed float64
	// FastForward skips the first part of the day: the crowd moves but devices stay silent
	// and nothing waits for the clock; the next reports carry what was counted meanwhile.
	FastForward time.Duration
	// BootTag goes into every device's boot id. Default: a random tag per Run, so a second
	// run against the same service (a demo started again, the demo's next simulated day, the
	// simulator run twice on one date) boots fresh devices instead of repeating boot ids whose
	// sequence numbers the service has already seen and would discard as duplicates.
	BootTag string
	// Day is the simulated date. Default: yesterday, so no report is stamped in the future.
	Day time.Time
	// Truth, when set, receives the true occupancy per zone and crossings per door as CSV
	// every SampleEvery of simulated time (default 10s).
	Truth       io.Writer
	SampleEvery time.Duration
	// Checkpoint, when set, is called every CheckpointEvery of simulated time (and at the
	// end) with the crowd paused and every device's reports up to that moment acknowledged:
	// the service's figures should then match the truth.
	CheckpointEvery time.Duration
	Checkpoint      func(ctx context.Context, at time.Time, truth map[string]int64, sent map[string]Mark) error
	Log             *slog.Logger

	// Format is the wire format of every device not in Formats: "" or "native" is the
	// service's own protocol (docs/protocol.md), else one of encode.Formats() (milesight,
	// xovis, axis, hikvision, chirpstack). A device the format cannot express (a Hikvision
	// area sensor, a line a LoRa counter cannot number) stays native, with a warning.
	Format string
	// Formats maps a device id to its format, over Format: the store file's
	// devices[].format. A device named here that cannot speak its format is an error.
	Formats map[string]string
	// Regions maps an area sensor to the region, zone logic or scenario it reports
	// (sensors[].region); default: the format's first.
	Regions map[string]string
	// Serials maps an Axis device to its camera serial, the one in its MQTT topics.
	Serials map[string]string
	// IngestURL is the service's base URL for devices that push over HTTP:
	// POST <IngestURL>/ingest/v1/<device>.
	IngestURL string
	// DeviceToken is every push device's Bearer token; DeviceTokens, per device, over it.
	DeviceToken  string
	DeviceTokens map[string]string
}

// heartbeatEvery is how often, in simulated time, each device says it is alive.
const heartbeatEvery = 30 * time.Second

// Summary says what a run did.
type Summary struct {
	Start, End   time.Time
	Truth        map[string]int64
	Peak         map[string]int64
	Reports      int
	Duplicates   int
	Malformed    int
	Reboots      int
	Offlines     int
	Refused      int // push reports the service refused (4xx): the malformed ones, or a misconfiguration
	Checkpoints  int
	WallDuration time.Duration
}

// Run plays the scenario to its end or until ctx ends.
func Run(ctx context.Context, o Options) (*Summary, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.SampleEvery <= 0 {
		o.SampleEvery = 10 * time.Second
	}
	if o.Day.IsZero() {
		o.Day = time.Now().In(o.Config.Location).AddDate(0, 0, -1)
	}
	sc := o.Scenario
	c := crowd.New(o.Config, sc, o.Day, o.Seed)
	rng := rand.New(rand.NewPCG(o.Seed, 0xdecafbad))
	devices, byID, err := buildDevices(o, rng, c.Start())
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer func() {
		stop()
		for _, d := range devices {
			<-d.done
		}
	}()
	for _, d := range devices {
		user := o.Username
		if user == "" {
			user = d.id
		}
		go d.run(runCtx, o.Broker, user, o.Password)
	}

	var truth *csv.Writer
	if o.Truth != nil {
		truth = csv.NewWriter(o.Truth)
		_ = truth.Write([]string{"time", "kind", "id", "occupancy_or_in", "out"})
	}
	sum := &Summary{Start: c.Start(), End: c.End(), Peak: map[string]int64{}}
	wallStart := time.Now()
	const step = time.Second
	nextSample, nextCheck := c.Start(), c.Start().Add(o.CheckpointEvery)
	for c.Now().Before(c.End()) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		moved := c.Step(step)
		now := c.Now()
		for i, d := range o.Config.Doors {
			dev := byID[d.Counter.Device]
			if dev == nil || (moved[i][0] == 0 && moved[i][1] == 0) {
				continue
			}
			in, out := moved[i][0], moved[i][1]
			if d.Counter.Reversed {
				in, out = out, in
			}
			dev.count(d.Counter.Line, in, out)
		}
		occ := c.Occupancy()
		for z, n := range occ {
			sum.Peak[z] = max(sum.Peak[z], n)
		}
		if now.Sub(c.Start()) < o.FastForward {
			wallStart = time.Now()
			continue
		}
		if beat := now.Sub(c.Start()); beat%heartbeatEvery == 0 {
			for _, dev := range devices {
				dev.heartbeat(now)
			}
		}
		for _, dev := range devices {
			if now.Before(dev.nextAt) {
				continue
			}
			dev.report(now, sensorReading(dev, occ, sc, rng))
			jitter := 1 + sc.Devices.Jitter*(2*rng.Float64()-1)
			dev.nextAt = now.Add(time.Duration(float64(dev.every) * jitter))
		}
		if truth != nil && !now.Before(nextSample) {
			writeTruth(truth, now, o.Config, occ, c.Crossings)
			nextSample = now.Add(o.SampleEvery)
		}
		if o.Checkpoint != nil && o.CheckpointEvery > 0 && !now.Before(nextCheck) {
			if err := checkpoint(ctx, o, devices, now, occ); err != nil {
				return nil, err
			}
			sum.Checkpoints++
			nextCheck = now.Add(o.CheckpointEvery)
		}
		if o.Speed > 0 {
			due := wallStart.Add(time.Duration(float64(now.Sub(c.Start())-o.FastForward) / o.Speed))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
		}
	}
	if o.Checkpoint != nil {
		if err := checkpoint(ctx, o, devices, c.Now(), c.Occupancy()); err != nil {
			return nil, err
		}
		sum.Checkpoints++
	}
	for _, d := range devices {
		if err := d.flush(ctx); err != nil {
			return nil, err
		}
	}
	if truth != nil {
		writeTruth(truth, c.Now(), o.Config, c.Occupancy(), c.Crossings)
		truth.Flush()
	}
	for _, d := range devices {
		sum.Reports += d.published
		sum.Duplicates += d.duplicates
		sum.Malformed += d.malformed
		sum.Reboots += d.reboots
		sum.Offlines += d.offlines
		sum.Refused += d.refused
	}
	sum.Truth = c.Occupancy()
	sum.WallDuration = time.Since(wallStart)
	return sum, nil
}

func buildDevices(o Options, rng *rand.Rand, start time.Time) ([]*simDevice, map[string]*simDevice, error) {
	base := o.Config.MQTT.TopicPrefix + "/" + o.Config.Site.ID + "/"
	byID := map[string]*simDevice{}
	var devices []*simDevice
	add := func(id string, sensor bool) *simDevice {
		faults := o.Scenario.Faults
		// Real counters differ: each miscounts at its own rate around the scenario's.
		spread := 0.5 + rng.Float64()
		faults.MissIn, faults.MissOut, faults.Extra = faults.MissIn*spread, faults.MissOut*spread, faults.Extra*spread
		d := &simDevice{id: id, sensor: sensor, every: o.Scenario.Devices.Interval, faults: faults,
			rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())), totals: map[string][2]uint64{}, sent: map[string][2]uint64{},
			status: base + "status/" + id, out: make(chan outbound, 8192), done: make(chan struct{}), width: 32, log: o.Log}
		d.topic = base + "counter/" + id
		if sensor {
			d.topic = base + "occupancy/" + id
		}
		d.interval = slices.Contains(o.Scenario.Faults.IntervalDevices, id)
		// Devices start out of step with each other, as real ones do.
		d.nextAt = start.Add(time.Duration(rng.Float64() * float64(d.every)))
		byID[id] = d
		devices = append(devices, d)
		return d
	}
	for _, door := range o.Config.Doors {
		if door.Counter.Device == "" {
			continue
		}
		d := byID[door.Counter.Device]
		if d == nil {
			d = add(door.Counter.Device, false)
		}
		d.width = door.Counter.Width
		d.totals[door.Counter.Line] = [2]uint64{}
	}
	for _, s := range o.Config.Sensors {
		add(s.Device, true).zone = s.Zone
	}
	for _, id := range o.Scenario.Faults.IntervalDevices {
		if d := byID[id]; d == nil || d.sensor {
			return nil, nil, fmt.Errorf("faults.interval_devices: %q is not a counter of this store", id)
		}
	}
	for _, d := range devices {
		if err := vendorFormat(o, d, base, start); err != nil {
			return nil, nil, err
		}
	}
	tag := o.BootTag
	if tag == "" {
		tag = strings.ToLower(cryptorand.Text()[:8])
	}
	for _, d := range devices {
		d.runTag = tag
		d.startBoot(start, o.Scenario.Faults.Wrap16)
	}
	return devices, byID, nil
}

// vendorFormat gives a device the encoder of its format, if it has one other than native.
func vendorFormat(o Options, d *simDevice, base string, start time.Time) error {
	format, explicit := o.Formats[d.id]
	if !explicit {
		format = o.Format
	}
	if format == "" || format == "native" {
		return nil
	}
	enc, err := encode.New(format, encode.Device{ID: d.id, Sensor: d.sensor, Lines: slices.Collect(maps.Keys(d.totals)),
		Region: o.Regions[d.id], Interval: d.interval, Serial: o.Serials[d.id], TopicBase: base, Start: start,
		ClockSkew: d.faults.ClockSkew})
	if err != nil {
		if explicit {
			return err
		}
		o.Log.Warn("device stays on the native protocol", "device", d.id, "format", format, "why", err)
		return nil
	}
	d.enc, d.format = enc, format
	if enc.Transport() == encode.HTTP {
		if o.IngestURL == "" {
			return fmt.Errorf("device %s: format %s pushes over HTTP: the service's URL is needed (--ingest)", d.id, format)
		}
		d.pushURL = strings.TrimRight(o.IngestURL, "/") + "/ingest/v1/" + url.PathEscape(d.id)
		d.token = o.DeviceToken
		if t, ok := o.DeviceTokens[d.id]; ok {
			d.token = t
		}
	}
	return nil
}

func sensorReading(d *simDevice, occ map[string]int64, sc *scenario.Scenario, rng *rand.Rand) int64 {
	if !d.sensor {
		return 0
	}
	n := float64(occ[d.zone]) + sc.Devices.SensorNoise*rng.NormFloat64()
	return max(0, int64(math.Round(n)))
}

// checkpoint pauses the crowd, has every counter report what it counted and waits for the
// acknowledgements, then has every sensor report the settled truth, and calls back.
func checkpoint(ctx context.Context, o Options, devices []*simDevice, now time.Time, occ map[string]int64) error {
	for _, sensors := range []bool{false, true} {
		for _, d := range devices {
			if d.sensor != sensors {
				continue
			}
			d.settle(now, sensorReading(d, occ, o.Scenario, rand.New(rand.NewPCG(uint64(now.Unix()), 1))))
		}
		for _, d := range devices {
			if err := d.flush(ctx); err != nil {
				return err
			}
		}
	}
	sent := map[string]Mark{}
	for _, d := range devices {
		if d.enc == nil {
			// A vendor's device has no boot and seq to wait for: its reports were
			// acknowledged (MQTT) or committed (HTTP 2xx) before flush returned.
			sent[d.id] = Mark{Boot: d.boot, Seq: d.lastSeq}
		}
	}
	return o.Checkpoint(ctx, now, occ, sent)
}

// Mark is the last report a device made: once the service shows it, it has everything.
type Mark struct {
	Boot string
	Seq  uint64
}

func writeTruth(w *csv.Writer, now time.Time, cfg *configs.Config, occ map[string]int64, crossings [][2]uint64) {
	ts := now.Format(time.RFC3339)
	for _, z := range cfg.Zones {
		_ = w.Write([]string{ts, "zone", z.ID, strconv.FormatInt(occ[z.ID], 10), ""})
	}
	for i, d := range cfg.Doors {
		_ = w.Write([]string{ts, "door", d.ID, strconv.FormatUint(crossings[i][0], 10), strconv.FormatUint(crossings[i][1], 10)})
	}
}
