package main

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const embeddedStore = `
site: {id: it-store, timezone: Asia/Shanghai}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
zones:
  - {id: store, capacity: 1200, area_m2: 4000}
  - {id: entrance, parent: store, capacity: 150, area_m2: 90}
  - {id: floor2, parent: store, capacity: 500, area_m2: 1600}
doors:
  - {id: main-door, from: outside, to: entrance, width_m: 4.0, counter: {device: dc-01, line: "1"}}
  - {id: escalator-up, from: entrance, to: floor2, width_m: 1.2, counter: {device: dc-02}}
  - {id: escalator-down, from: floor2, to: entrance, width_m: 1.2, counter: {device: dc-02, line: "2"}}
sensors:
  - {device: cam-07, zone: floor2}
`

// TestEmbeddedBrokerEndToEnd runs the app in this process (startApp): it needs no SIGKILL,
// so it is the pattern for tests that do not.
func TestEmbeddedBrokerEndToEnd(t *testing.T) {
	dir := t.TempDir()
	svc := startApp(t, writeConfig(t, dir, embeddedStore))
	broker := "tcp://" + svc.MQTT
	dev, err := mqttClient(t, broker, "dc-01", "", "")
	if err != nil {
		t.Fatal(err)
	}
	base := "crowdwatch/it-store/"
	publish(t, dev, base+"counter/dc-01", report("b1", 1, 30, 2))
	publish(t, dev, base+"counter/dc-02", `{"boot":"x","seq":1,"ts":"`+time.Now().UTC().Format(time.RFC3339)+`","lines":{"1":{"in":10,"out":1},"2":{"in":3,"out":0}}}`)
	// A repeat, bad input and strangers change nothing.
	publish(t, dev, base+"counter/dc-01", report("b1", 1, 30, 2))
	publish(t, dev, base+"counter/dc-01", `{"boot":"b1","seq":2,`)
	publish(t, dev, base+"counter/dc-01", report("b1", 3, 0, 0)[:10]+strings.Repeat(" ", 5000)+"}")
	publish(t, dev, base+"counter/dc-99", report("b1", 1, 500, 0))
	publish(t, dev, base+"counter/dc-01", `{"boot":"b1","seq":4,"ts":"2026-11-11T00:00:00Z","in":-5,"out":0}`)
	publish(t, dev, base+"counter/dc-01", report("b1", 5, 31, 2)) // one more person in
	// entrance: 31-2 in, 10-1 up, 3 down => 29 - 9 + 3 = 23; floor2: 9 - 3 = 6
	svc.waitOccupancy(map[string]int64{"entrance": 23, "floor2": 6, "store": 29}, 10*time.Second)

	// The area sensor re-anchors floor2 and the store by the same difference.
	publish(t, dev, base+"occupancy/cam-07", `{"boot":"c","seq":1,"ts":"`+time.Now().UTC().Format(time.RFC3339)+`","count":10}`)
	svc.waitOccupancy(map[string]int64{"entrance": 23, "floor2": 10, "store": 33}, 10*time.Second)

	svc.waitMetrics(
		`crowdwatch_ingest_messages_total{outcome="rejected",reason="oversized"} 1`,
		`crowdwatch_ingest_messages_total{outcome="rejected",reason="malformed"} 1`,
		`crowdwatch_ingest_messages_total{outcome="rejected",reason="unknown_device"} 1`,
		`crowdwatch_ingest_messages_total{outcome="rejected",reason="negative"} 1`,
		`crowdwatch_ingest_messages_total{outcome="duplicate",reason=""} 1`,
		`crowdwatch_zone_occupancy{zone="entrance"} 23`,
		`crowdwatch_door_crossings_total{direction="in",door="main-door"} 31`,
		`crowdwatch_device_online{device="dc-01"} 1`,
	)

	// A sign subscribing later gets each zone's state at once, retained.
	sign, err := mqttClient(t, broker, "led-1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 16)
	sign.Subscribe(base+"zone/entrance", 1, func(_ paho.Client, msg paho.Message) {
		select {
		case got <- msg.Payload():
		default:
		}
	})
	// The retained state may trail the API by one publishing interval; it must catch up.
	deadline := time.After(10 * time.Second)
	for seen := false; !seen; {
		select {
		case p := <-got:
			var z struct {
				Occupancy int64    `json:"occupancy"`
				Capacity  int      `json:"capacity"`
				Density   *float64 `json:"density"`
			}
			if err := json.Unmarshal(p, &z); err != nil || z.Capacity != 150 || z.Density == nil {
				t.Fatalf("zone topic payload %s (%v)", p, err)
			}
			seen = z.Occupancy == 23
		case <-deadline:
			t.Fatal("the retained zone state never showed 23 people in the entrance")
		}
	}

	var devs struct {
		Devices []struct {
			ID     string `json:"id"`
			Online bool   `json:"online"`
			Seq    uint64 `json:"seq"`
		} `json:"devices"`
	}
	if err := svc.getJSON("/api/v1/devices", &devs); err != nil {
		t.Fatal(err)
	}
	if len(devs.Devices) != 3 || devs.Devices[0].ID != "dc-01" || devs.Devices[0].Seq != 5 || !devs.Devices[0].Online {
		t.Errorf("devices %+v", devs)
	}

	// A clean restart keeps everything.
	svc.stop()
	svc = startApp(t, writeConfig(t, dir, embeddedStore))
	svc.waitOccupancy(map[string]int64{"entrance": 23, "floor2": 10, "store": 33}, 10*time.Second)
}

func TestEmbeddedBrokerConfinesDevices(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.Replace(embeddedStore, `mqtt: {embedded: {listen: "127.0.0.1:0"}}`, `mqtt:
  embedded:
    listen: "127.0.0.1:0"
    users:
      - {username: dc-01, password: s3cret-1, role: device}
      - {username: dc-02, password: s3cret-2, role: device}
      - {username: sign, password: s3cret-3, role: reader}`, 1)
	svc := startApp(t, writeConfig(t, dir, cfg))
	broker := "tcp://" + svc.MQTT
	base := "crowdwatch/it-store/"
	if _, err := mqttClient(t, broker, "intruder", "dc-01", "wrong"); err == nil {
		t.Fatal("a client with a wrong password was let in")
	}
	if _, err := mqttClient(t, broker, "anon", "", ""); err == nil {
		t.Fatal("an anonymous client was let in")
	}
	dev1, err := mqttClient(t, broker, "dc-01", "dc-01", "s3cret-1")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, dev1, base+"counter/dc-01", report("b", 1, 5, 0))
	svc.waitOccupancy(map[string]int64{"entrance": 5}, 10*time.Second)
	// dc-01 may not speak for dc-02: MQTT 3.1.1 has no negative PUBACK, so the broker
	// disconnects it and the report changes nothing.
	dev1.Publish(base+"counter/dc-02", 1, false, `{"boot":"x","seq":1,"ts":"`+time.Now().UTC().Format(time.RFC3339)+`","in":50,"out":0}`).WaitTimeout(3 * time.Second)
	signClient, err := mqttClient(t, broker, "sign", "sign", "s3cret-3")
	if err != nil {
		t.Fatal(err)
	}
	signClient.Publish(base+"counter/dc-01", 1, false, report("b", 2, 500, 0)).WaitTimeout(3 * time.Second)
	dev2, err := mqttClient(t, broker, "dc-02", "dc-02", "s3cret-2")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, dev2, base+"counter/dc-02", `{"boot":"x","seq":1,"ts":"`+time.Now().UTC().Format(time.RFC3339)+`","in":2,"out":0}`)
	svc.waitOccupancy(map[string]int64{"entrance": 3, "floor2": 2, "store": 5}, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	if got, _ := svc.occupancy(); !matches(got, map[string]int64{"entrance": 3, "floor2": 2, "store": 5}) {
		t.Fatalf("a refused publish changed occupancy: %v", got)
	}
}

func TestBadConfigNeverStarts(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, `
site: {id: s, timezone: Atlantis/Capital}
storage: {path: $DIR/cw.db}
zones:
  - {id: a, parent: b, capacity: 10}
  - {id: b, parent: a, capacity: 0}
doors:
  - {id: d, from: a, to: a, counter: {device: x}}
  - {id: e, from: outside, to: ghost, counter: {device: x}}
`)
	for _, args := range [][]string{{"serve", "--config", path}, {"check-config", path}} {
		out, err := exec.Command(binPath, args...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("%v: exit %v, want 1\n%s", args, err, out)
		}
		for _, want := range []string{"site.timezone", "parent cycle", "zones[1].capacity", `doors[0]: door "d" leads from "a" to itself`,
			`doors[1].to: unknown zone "ghost"`, `doors[1].counter: device "x" line "1" is already bound`} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v: output lacks %q:\n%s", args, want, out)
			}
		}
	}
	if out, err := exec.Command(binPath, "check-config", "configs-that-do-not-exist.yaml").CombinedOutput(); err == nil {
		t.Errorf("check-config of a missing file succeeded: %s", out)
	}
}

func TestSecondInstanceOnSameDatabaseFails(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, embeddedStore)
	startService(t, "serve", "--config", path)
	out, err := exec.Command(binPath, "serve", "--config", path).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "locked by another process") {
		t.Fatalf("second instance: %v\n%s", err, out)
	}
}
