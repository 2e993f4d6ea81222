package configs

import (
	"errors"
	"flag"
	"os"
	"strings"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/validate_order.golden")

// TestValidateReportsEveryProblemInOrder breaks one setting of each section of the demo store
// and compares the problems, in order, with testdata/validate_order.golden: Validate's checks
// live in the files of their sections, and moving them must not lose or reorder a message.
func TestValidateReportsEveryProblemInOrder(t *testing.T) {
	cfg, err := Parse(DemoStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Site.ID = "bad id"
	cfg.Storage.Path = ""
	cfg.Storage.CommitInterval = time.Hour
	cfg.HTTP.LiveInterval = time.Hour
	cfg.Storage.CommitMode = "sometimes"
	cfg.Storage.CommitBatch = 0
	cfg.HTTP.Listen = "nowhere"
	cfg.MQTT.TopicPrefix = "a/#"
	cfg.MQTT.MaxPayload = 1
	cfg.MQTT.QueueSize = 0
	cfg.Occupancy.DailyReset = "25:00"
	cfg.Occupancy.ClampAfter = 0
	cfg.Devices.OfflineAfter = 0
	cfg.Zones = append(cfg.Zones, Zone{ID: cfg.Zones[0].ID, Capacity: 0, Parent: "nowhere"})
	cfg.Doors = append(cfg.Doors, Door{ID: cfg.Doors[0].ID, From: "x", To: "x", WidthM: -1,
		Counter: Counter{Device: cfg.Doors[0].Counter.Device, Line: cfg.Doors[0].Counter.Line, Width: 8}})
	cfg.Sensors = append(cfg.Sensors, Sensor{Device: cfg.Doors[0].Counter.Device, Zone: "nowhere"})
	cfg.MQTT.Embedded.Users = append(cfg.MQTT.Embedded.Users, User{Username: "ghost", Password: "p", Role: "device"},
		User{Username: "ghost", Role: "admin"})
	var ve *ValidationError
	if err := cfg.Validate(); !errors.As(err, &ve) {
		t.Fatalf("Validate = %v, want a ValidationError", err)
	}
	var got strings.Builder
	for _, p := range ve.Problems {
		got.WriteString(p.Error() + "\n")
	}
	const golden = "testdata/validate_order.golden"
	if *updateGolden {
		if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got.String() != string(want) {
		t.Errorf("problems:\n%s\nwant (%s):\n%s", got.String(), golden, want)
	}
}
