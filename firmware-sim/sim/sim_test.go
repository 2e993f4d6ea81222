package sim

import (
	"bytes"
	"context"
	"encoding/csv"
	"net"
	"strconv"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
)

// broker is a bare MQTT broker for the devices to talk to.
func broker(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := mqtt.New(&mqtt.Options{InlineClient: true})
	_ = s.AddHook(new(auth.AllowHook), nil)
	_ = s.AddListener(listeners.NewNet("t", ln))
	if err := s.Serve(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return "tcp://" + ln.Addr().String()
}

func runOnce(t *testing.T, url string, seed uint64) (*Summary, []byte) {
	t.Helper()
	cfg, err := configs.Load("../../configs/demo-store.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Load("../../configs/scenarios/doorbuster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Start, sc.End = 7*60+55, 8*60+10
	sc.Faults = scenario.Faults{Duplicate: 0.1, Reorder: 0.1, RebootPerHour: 2}
	var truth bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum, err := Run(ctx, Options{Config: cfg, Scenario: sc, Broker: url, Seed: seed, Truth: &truth, SampleEvery: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	return sum, truth.Bytes()
}

func TestRunIsDeterministicAndWritesTheTruth(t *testing.T) {
	url := broker(t)
	a, truthA := runOnce(t, url, 5)
	b, truthB := runOnce(t, url, 5)
	if !bytes.Equal(truthA, truthB) || a.Reports != b.Reports || a.Duplicates != b.Duplicates {
		t.Fatalf("the same seed gave different runs: %d/%d reports, %d/%d duplicates", a.Reports, b.Reports, a.Duplicates, b.Duplicates)
	}
	rows, err := csv.NewReader(bytes.NewReader(truthA)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]int64{}
	for _, r := range rows[1:] {
		if r[1] == "zone" {
			n, err := strconv.ParseInt(r[3], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			last[r[2]] = n
		}
	}
	for z, n := range a.Truth {
		if last[z] != n {
			t.Errorf("zone %s: truth file ends at %d, the run at %d", z, last[z], n)
		}
	}
	if a.Truth["store"] == 0 || a.Reports < 15*60*3 {
		t.Fatalf("nothing happened: %+v", a)
	}
	if _, c := runOnce(t, url, 6); bytes.Equal(c, truthA) {
		t.Fatal("another seed gave the same crowd")
	}
}
