package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
)

// crashStore gives each device its own zone, so the order in which different devices' reports
// are applied cannot matter and the expected figures are exact.
const crashStore = `
site: {id: crash-site, timezone: UTC}
http: {listen: "$HTTP"}
# A long group-commit window keeps messages in flight at any instant, so a kill always has
# something to lose if acknowledgements ever ran ahead of commits.
storage: {path: $DIR/cw.db, commit_mode: interval, commit_interval: 25ms}
mqtt: {embedded: {listen: "$MQTT"}}
occupancy: {daily_reset: "off"}
zones:
  - {id: store, capacity: 100000}
  - {id: z1, parent: store, capacity: 100000}
  - {id: z2, parent: store, capacity: 100000}
  - {id: z3, parent: store, capacity: 100000}
  - {id: z4, parent: store, capacity: 100000}
  - {id: z5, parent: store, capacity: 100000}
doors:
  - {id: d1, from: outside, to: z1, counter: {device: dc-01}}
  - {id: d2, from: outside, to: z2, counter: {device: dc-02}}
  - {id: d3, from: outside, to: z3, counter: {device: dc-03, width: 16}}
  - {id: d4in, from: outside, to: z4, counter: {device: dc-04, line: "1"}}
  - {id: d4out, from: z4, to: outside, counter: {device: dc-04, line: "2"}}
  - {id: d5, from: outside, to: z5, counter: {device: dc-05}}
`

// crashDevice publishes like firmware and keeps the truth of what it counted.
type crashDevice struct {
	id       string
	zone     string
	interval bool   // period_in/period_out reports
	width16  bool   // starts near the top of a 16-bit counter, to wrap under load
	reboot   bool   // restarts (new boot, totals from zero) half way
	twoLines bool   // line 1 in, line 2 out of the same zone
	net      int64  // truth: people this device moved into its zone
	sent     uint64 // reports acknowledged
}

func (d *crashDevice) run(ctx context.Context, broker string, steps int, pace time.Duration, rng *rand.Rand) error {
	cl := paho.NewClient(device.Options(broker, d.id))
	defer cl.Disconnect(100)
	topic := "crowdwatch/crash-site/counter/" + d.id
	boot, seq := d.id+"-boot-1", 0
	var in, out, in2, out2 uint64 // totals since boot (line 2 only for twoLines)
	if d.width16 {
		in, out = 65000, 64990
		d.net = 10
	}
	for i := 0; i < steps; i++ {
		if d.reboot && i == steps/2 {
			boot, seq, in, out, in2, out2 = d.id+"-boot-2", 0, 0, 0, 0, 0
		}
		dIn, dOut := uint64(rng.IntN(4)), uint64(0)
		if occ := d.net + int64(dIn); occ > 0 {
			dOut = uint64(rng.Int64N(min(occ, 2) + 1))
		}
		d.net += int64(dIn) - int64(dOut)
		seq++
		msg := map[string]any{"boot": boot, "seq": seq, "ts": time.Now().UTC().Format(time.RFC3339Nano)}
		switch {
		case d.interval:
			msg["period_in"], msg["period_out"] = dIn, dOut
		case d.twoLines:
			in += dIn
			out2 += dOut // leaving through the exit line, counted as its "in"
			msg["lines"] = map[string]any{"1": map[string]uint64{"in": in, "out": out}, "2": map[string]uint64{"in": out2, "out": in2}}
		case d.width16:
			in, out = (in+dIn)%65536, (out+dOut)%65536
			msg["in"], msg["out"] = in, out
		default:
			in, out = in+dIn, out+dOut
			msg["in"], msg["out"] = in, out
		}
		payload, _ := json.Marshal(msg)
		if err := device.PublishAcked(ctx, cl, topic, payload); err != nil {
			return fmt.Errorf("%s step %d: %w", d.id, i, err)
		}
		d.sent++
		time.Sleep(pace + time.Duration(rng.IntN(8))*time.Millisecond)
	}
	return nil
}

// TestCrashLosesNothing kills the real binary with SIGKILL again and again while devices
// publish, restarts it, and requires the final occupancy to be exactly what was published
// and acknowledged: nothing lost, nothing counted twice.
func TestCrashLosesNothing(t *testing.T) {
	t.Run("embedded broker", func(t *testing.T) { crashTest(t, false) })
	// With an external broker the service acknowledges to mosquitto only after committing,
	// so mosquitto redelivers whatever a crash left unacknowledged.
	t.Run("mosquitto", func(t *testing.T) { crashTest(t, true) })
}

func crashTest(t *testing.T, external bool) {
	dir := t.TempDir()
	httpAddr, mqttAddr := freePort(t), freePort(t)
	cfgYAML := crashStore
	// On the embedded broker a killed service also stalls the devices; mosquitto keeps
	// accepting, so there the devices are paced to publish across several crashes.
	pace := time.Duration(0)
	if external {
		pace = 12 * time.Millisecond
		mqttAddr = startMosquitto(t).addr
		cfgYAML = strings.Replace(cfgYAML, `mqtt: {embedded: {listen: "$MQTT"}}`, `mqtt: {broker: "tcp://$MQTT"}`, 1)
	}
	for k, v := range map[string]string{"$HTTP": httpAddr, "$MQTT": mqttAddr} {
		cfgYAML = strings.ReplaceAll(cfgYAML, k, v)
	}
	cfgPath := writeConfig(t, dir, cfgYAML)
	svc := startService(t, "serve", "--config", cfgPath)
	// A broker drops what is published before the service's session first subscribes; that
	// is MQTT, not a loss this test is about (docs/protocol.md), so devices start after it.
	waitReady(t, svc)

	devices := []*crashDevice{
		{id: "dc-01", zone: "z1", reboot: true},
		{id: "dc-02", zone: "z2", interval: true},
		{id: "dc-03", zone: "z3", width16: true},
		{id: "dc-04", zone: "z4", twoLines: true},
		{id: "dc-05", zone: "z5", interval: true},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(devices))
	for i, d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.run(ctx, "tcp://"+mqttAddr, 300, pace, rand.New(rand.NewPCG(uint64(i), 7))); err != nil {
				errs <- err
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()

	rng := rand.New(rand.NewPCG(99, 1))
	kills := 0
	for kills < 6 {
		select {
		case <-finished:
		case <-time.After(time.Duration(150+rng.IntN(400)) * time.Millisecond):
			svc.kill()
			kills++
			svc = startService(t, "serve", "--config", cfgPath)
			continue
		}
		break
	}
	select {
	case <-finished:
	case <-ctx.Done():
		t.Fatal("devices did not finish publishing")
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if kills < 3 {
		t.Fatalf("only %d kills happened while devices published; the test proves too little", kills)
	}
	want := map[string]int64{"store": 0}
	for _, d := range devices {
		want[d.zone] = d.net
		want["store"] += d.net
	}
	t.Logf("%d kills; expected %v", kills, want)
	svc.waitOccupancy(want, 30*time.Second)

	// And once more after a final crash with nothing in flight.
	svc.kill()
	svc = startService(t, "serve", "--config", cfgPath)
	svc.waitOccupancy(want, 10*time.Second)
}
