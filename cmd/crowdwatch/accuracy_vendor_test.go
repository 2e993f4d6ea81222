package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/encode"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/firmware-sim/sim"
	"github.com/crowdwatch/crowdwatch/zones"
)

// vendorRegions is the region each format's area sensor reports (sensors[].region).
var vendorRegions = map[string]string{"milesight": "1", "xovis": "1", "axis": "Device1Scenario1", "chirpstack": "1"}

// TestDoorbusterAccuracyPerVendorFormat runs the door-buster opening through each vendor
// format: every device of the demo store that the format can express speaks it (the others
// stay native), over the embedded broker or HTTP pushes with its device token, while devices
// send duplicates, reorder, reset (a vendor counter resets where a native one reboots), drop
// offline and send garbage. At every checkpoint every zone must equal the truth exactly.
func TestDoorbusterAccuracyPerVendorFormat(t *testing.T) {
	demo, err := os.ReadFile("../../configs/demo-store.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range encode.Formats() {
		t.Run(format, func(t *testing.T) { runVendorDoorbuster(t, string(demo), format) })
	}
}

func runVendorDoorbuster(t *testing.T, demo, format string) {
	dir := t.TempDir()
	base, err := configs.Parse([]byte(demo), nil)
	if err != nil {
		t.Fatal(err)
	}
	// Which devices speak the format: those its encoder can express, as the simulator decides.
	lines := map[string][]string{}
	var order []string
	for _, d := range base.Doors {
		if d.Counter.Device == "" {
			continue
		}
		if _, ok := lines[d.Counter.Device]; !ok {
			order = append(order, d.Counter.Device)
		}
		lines[d.Counter.Device] = append(lines[d.Counter.Device], d.Counter.Line)
	}
	sensors := map[string]bool{}
	for _, s := range base.Sensors {
		sensors[s.Device] = true
		order = append(order, s.Device)
	}
	formatsOf := map[string]string{}
	regions := map[string]string{}
	serials := map[string]string{}
	tokens := map[string]string{}
	var devices, toks strings.Builder
	for i, id := range order {
		dev := encode.Device{ID: id, Sensor: sensors[id], Lines: lines[id], Region: vendorRegions[format]}
		if format == "axis" {
			dev.Serial = fmt.Sprintf("ACCC8E%06d", i)
		}
		if _, err := encode.New(format, dev); err != nil {
			continue // stays native
		}
		formatsOf[id] = format
		fmt.Fprintf(&devices, "  - {id: %s, format: %s", id, format)
		if format == "chirpstack" {
			devices.WriteString(", decoded: milesight")
		}
		if dev.Serial != "" {
			serials[id] = dev.Serial
			fmt.Fprintf(&devices, ", serial: %s", dev.Serial)
		}
		devices.WriteString("}\n")
		if sensors[id] {
			regions[id] = dev.Region
		}
		tokens[id] = "tok-" + id
		fmt.Fprintf(&toks, "    - {name: %s, sha256: %s, role: device, device: %s}\n", id, tokenHash("tok-"+id), id)
	}
	if len(formatsOf) < 3 {
		t.Fatalf("only %v speak %s", formatsOf, format)
	}
	store := demo
	for id, region := range regions {
		store = strings.Replace(store, "{device: "+id+", zone: ", fmt.Sprintf("{device: %s, region: %q, zone: ", id, region), 1)
	}
	// Device clocks are trusted across the simulated day (it runs faster than real time).
	store += "\ndevices:\n" + devices.String() + "auth:\n  tokens:\n" + toks.String()
	path := writeConfig(t, dir, store)
	overrides := map[string]any{"storage.path": dir + "/cw.db", "http.listen": "127.0.0.1:0", "mqtt.embedded.listen": "127.0.0.1:0",
		"occupancy.daily_reset": "off", "occupancy.max_clock_skew": "48h"}
	cfg, err := configs.Load(path, overrides)
	if err != nil {
		t.Fatal(err)
	}
	svc := startAppWith(t, path, overrides)

	sc, err := scenario.Load("../../configs/scenarios/doorbuster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The hour around the opening: the queue, the surge past the entrance's capacity.
	sc.Start, sc.End = 7*60+30, 8*60+30
	sc.Devices.SensorNoise = 0
	sc.Faults = scenario.Faults{Duplicate: 0.05, Reorder: 0.05, Malformed: 0.01, RebootPerHour: 1,
		OfflinePerHr: 1, OfflineFor: 2 * time.Minute}
	cmp := &sim.Comparer{URL: "http://" + svc.HTTP, Config: cfg, Exact: true}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sum, err := sim.Run(ctx, sim.Options{Config: cfg, Scenario: sc, Broker: "tcp://" + svc.MQTT, Seed: 42,
		Speed: 0, CheckpointEvery: 10 * time.Minute, Checkpoint: cmp.Checkpoint,
		Formats: formatsOf, Regions: regions, Serials: serials, IngestURL: "http://" + svc.HTTP, DeviceTokens: tokens})
	if err != nil {
		// Say what the service did last: the crossing log's latest entries, with the device
		// time of each and when it was applied.
		svc.stop()
		if st, err2 := zones.OpenStore(dir+"/cw.db", cfg.Site.ID); err2 == nil {
			var last []*zones.LogEntry
			_ = st.Entries("log", func(e *zones.LogEntry) error {
				last = append(last, e)
				if len(last) > 60 {
					last = last[1:]
				}
				return nil
			})
			st.Close()
			for _, e := range last {
				t.Logf("log: applied %s %s %s ts=%v zone=%s value=%d before=%d doors=%v", e.At.Format("15:04:05.000"), e.Kind, e.Device, e.TS, e.Zone, e.Value, e.Before, e.Doors)
			}
		}
		t.Fatal(err)
	}
	if sum.Checkpoints < 6 || sum.Duplicates == 0 {
		t.Fatalf("the run was too short or had no duplicates: %+v", sum)
	}
	if sum.Peak["entrance"] <= 150 {
		t.Fatalf("the surge never passed the entrance's capacity: %v", sum.Peak)
	}
	t.Logf("%s on %v: %d reports, %d duplicates, %d malformed (%d refused), %d resets, %d outages, %d checkpoints in %s\n%s",
		format, formatsOf, sum.Reports, sum.Duplicates, sum.Malformed, sum.Refused, sum.Reboots, sum.Offlines, sum.Checkpoints, sum.WallDuration, cmp.Table())
}
