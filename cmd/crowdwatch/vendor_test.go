package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/firmware-sim/encode"
)

// vendorDevice is one real-format device of the end-to-end test: it counts one zone of its
// own, so each format's exactness is judged alone.
type vendorDevice struct {
	id, format string
	lines      []string
	sensor     bool
	region     string
	interval   bool
	counting   string // devices[].counting, "" for the format's default
	serial     string
	decoded    string
}

var vendorDevices = []vendorDevice{
	{id: "ms-1", format: "milesight", lines: []string{"1", "2"}},
	{id: "ms-p", format: "milesight", lines: []string{"1"}, interval: true, counting: "interval"},
	{id: "ms-s", format: "milesight", sensor: true, region: "1"},
	{id: "xv-1", format: "xovis", lines: []string{"1008"}},
	{id: "ax-1", format: "axis", lines: []string{"1"}},
	{id: "ax-s", format: "axis", sensor: true, region: "Device1Scenario1", serial: "ACCC8E012345"},
	{id: "hk-1", format: "hikvision", lines: []string{"1", "2"}},
	{id: "hk-i", format: "hikvision", lines: []string{"1"}, interval: true, counting: "interval"},
	{id: "lw-1", format: "chirpstack", decoded: "milesight", lines: []string{"1"}},
}

func tokenHash(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// vendorStoreYAML declares every vendor device with its zone, door(s), broker account and
// push token.
func vendorStoreYAML() string {
	var zones, doors, sensors, devices, users, tokens strings.Builder
	for _, d := range vendorDevices {
		fmt.Fprintf(&zones, "  - {id: z-%s, capacity: 100000}\n", d.id)
		if d.sensor {
			fmt.Fprintf(&sensors, "  - {device: %s, zone: z-%s, region: %q}\n", d.id, d.id, d.region)
		}
		for _, l := range d.lines {
			fmt.Fprintf(&doors, "  - {id: %s-%s, from: outside, to: z-%s, counter: {device: %s, line: %q}}\n", d.id, l, d.id, d.id, l)
		}
		fmt.Fprintf(&devices, "  - {id: %s, format: %s", d.id, d.format)
		for k, v := range map[string]string{"counting": d.counting, "serial": d.serial, "decoded": d.decoded} {
			if v != "" {
				fmt.Fprintf(&devices, ", %s: %s", k, v)
			}
		}
		devices.WriteString("}\n")
		fmt.Fprintf(&users, "      - {username: %s, password: pw-%s, role: device}\n", d.id, d.id)
		fmt.Fprintf(&tokens, "    - {name: %s, sha256: %s, role: device, device: %s}\n", d.id, tokenHash("tok-"+d.id), d.id)
	}
	return `site: {id: vendor-store, timezone: UTC}
storage: {path: $DIR/cw.db}
http: {listen: "127.0.0.1:0"}
occupancy: {daily_reset: "off", max_clock_skew: 1h}
mqtt:
  embedded:
    listen: "127.0.0.1:0"
    users:
` + users.String() + `zones:
` + zones.String() + `doors:
` + doors.String() + `sensors:
` + sensors.String() + `devices:
` + devices.String() + `auth:
  tokens:
` + tokens.String()
}

// TestVendorFormatsEndToEnd sends each format's real payloads (firmware-sim/encode, as the
// devices make them) through the real path of the service in-process: the embedded broker
// for MQTT devices, HTTP pushes with the device's token for the others, with duplicates and
// out-of-order delivery. Each zone ends exactly at the device's truth, and a malformed
// report changes nothing.
func TestVendorFormatsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	svc := startApp(t, writeConfig(t, dir, vendorStoreYAML()))
	for _, d := range vendorDevices {
		t.Run(d.id+"-"+d.format, func(t *testing.T) { runVendorDevice(t, svc, d) })
	}
}

func runVendorDevice(t *testing.T, svc *service, d vendorDevice) {
	rng := rand.New(rand.NewPCG(uint64(len(d.id)), uint64(d.id[0])))
	const steps = 40
	start := time.Now().Add(-steps * 20 * time.Second).Truncate(time.Second)
	enc, err := encode.New(d.format, encode.Device{ID: d.id, Sensor: d.sensor, Lines: d.lines, Region: d.region,
		Interval: d.interval, Serial: d.serial, TopicBase: "crowdwatch/vendor-store/", Start: start})
	if err != nil {
		t.Fatal(err)
	}
	totals := map[string][2]uint64{}
	for _, l := range d.lines {
		totals[l] = [2]uint64{}
	}
	var occupancy int64
	var msgs []encode.Message
	// The first report is the device's baseline (its totals before it was configured are
	// not the store's people): it carries zeros and is delivered first.
	msgs = append(msgs, enc.Report(start, totals, 0)...)
	for k := 1; k <= steps; k++ {
		for _, l := range d.lines {
			in := uint64(rng.IntN(6))
			out := uint64(rng.IntN(int(min(occupancy+int64(in), 5)) + 1))
			totals[l] = [2]uint64{totals[l][0] + in, totals[l][1] + out}
			occupancy += int64(in) - int64(out)
		}
		if d.sensor {
			occupancy = int64(rng.IntN(80))
		}
		msgs = append(msgs, enc.Report(start.Add(time.Duration(k)*20*time.Second), totals, occupancy)...)
	}
	if len(msgs) < steps/2 {
		t.Fatalf("the encoder made %d reports for %d steps", len(msgs), steps)
	}
	// Faults after the baseline: a tenth delivered twice (the copy a little later), a tenth
	// swapped with the next; never the last one, so the newest total arrives last.
	delivery := []encode.Message{msgs[0]}
	rest := msgs[1:]
	dups, swaps := 0, 0
	for i := 0; i < len(rest); i++ {
		if i+2 < len(rest) && rng.IntN(10) == 0 {
			rest[i], rest[i+1] = rest[i+1], rest[i]
			swaps++
		}
		delivery = append(delivery, rest[i])
		if rng.IntN(10) == 0 {
			delivery = append(delivery, rest[i])
			dups++
		}
	}
	var mq paho.Client
	for _, m := range delivery {
		deliver(t, svc, &mq, d.id, m, http.StatusOK)
	}
	want := map[string]int64{"z-" + d.id: max(occupancy, 0)}
	svc.waitOccupancy(want, 10*time.Second)
	// A malformed report is refused (4xx over HTTP, acknowledged and dropped over MQTT) and
	// changes nothing.
	deliver(t, svc, &mq, d.id, enc.Malformed(), http.StatusBadRequest)
	got, err := svc.occupancy()
	if err != nil || got["z-"+d.id] != want["z-"+d.id] {
		t.Fatalf("after a malformed report: %v (%v), want %v", got, err, want)
	}
	var devices struct {
		Devices []struct {
			ID, Format, Counting, LastSemantics string
			LastReading                         *time.Time `json:"last_reading"`
		} `json:"devices"`
	}
	if err := svc.getJSON("/api/v1/devices", &devices); err != nil {
		t.Fatal(err)
	}
	for _, dev := range devices.Devices {
		if dev.ID == d.id && (dev.Format != d.format || dev.LastReading == nil) {
			t.Errorf("devices API: %+v", dev)
		}
	}
	t.Logf("%s: %d reports delivered (%d duplicates, %d swaps), zone at %d", d.format, len(delivery), dups, swaps, want["z-"+d.id])
}

// deliver sends one report as the device would: MQTT on its topic with its account, or an
// HTTP push with its token and the vendor's content type, expecting wantHTTP (any 4xx when
// it is a 4xx).
func deliver(t *testing.T, svc *service, mq *paho.Client, device string, m encode.Message, wantHTTP int) {
	t.Helper()
	if m.Topic != "" {
		if *mq == nil {
			c, err := mqttClient(t, "tcp://"+svc.MQTT, device, device, "pw-"+device)
			if err != nil {
				t.Fatal(err)
			}
			*mq = c
		}
		publish(t, *mq, m.Topic, string(m.Body))
		return
	}
	req, err := http.NewRequest(http.MethodPost, "http://"+svc.HTTP+"/ingest/v1/"+device, bytes.NewReader(m.Body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok-"+device)
	req.Header.Set("Content-Type", m.ContentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != wantHTTP && !(wantHTTP >= 400 && wantHTTP < 500 && resp.StatusCode >= 400 && resp.StatusCode < 500) {
		t.Fatalf("push answered %d %s, want %d", resp.StatusCode, body, wantHTTP)
	}
}

// TestVendorFormatsThroughMosquitto: a Milesight counter on the site's topic and an Axis
// camera on its own axis/<serial>/event topic, through a real mosquitto to the service as an
// external broker's client (subscribed to the Axis topics because an Axis serial is mapped),
// with a duplicate, a late report and a malformed one.
func TestVendorFormatsThroughMosquitto(t *testing.T) {
	mq := startMosquitto(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, `site: {id: mq-vendor, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {broker: "tcp://`+mq.addr+`", client_id: crowdwatch-mq-vendor}
occupancy: {daily_reset: "off"}
zones: [{id: store, capacity: 1000}, {id: promo, parent: store, capacity: 100}]
doors:
  - {id: north, from: outside, to: store, counter: {device: ms-1, line: "1"}}
sensors:
  - {device: ax-s, zone: promo, region: Device1Scenario1}
devices:
  - {id: ms-1, format: milesight}
  - {id: ax-s, format: axis, serial: ACCC8E012345}
`)
	svc := startApp(t, cfg)
	waitReady(t, svc)
	total := func(at time.Time, in, out int) string {
		return fmt.Sprintf(`{"device_info":{"device_sn":"6384E16179950009"},"line_total_data":[{"line":1,"line_name":"Line1","total":{"in_counted":%d,"out_counted":%d,"capacity_counted":0}}],"time_info":{"time":%q}}`,
			in, out, at.UTC().Format(time.RFC3339))
	}
	t0 := time.Now().Add(-time.Minute).Truncate(time.Second)
	topic := "crowdwatch/mq-vendor/counter/ms-1"
	mosquittoPub(t, mq.addr, topic, total(t0, 500, 480)) // the baseline
	mosquittoPub(t, mq.addr, topic, total(t0.Add(20*time.Second), 530, 490))
	mosquittoPub(t, mq.addr, topic, total(t0.Add(20*time.Second), 530, 490)) // a duplicate
	mosquittoPub(t, mq.addr, topic, total(t0.Add(10*time.Second), 515, 485)) // late: changes nothing
	mosquittoPub(t, mq.addr, topic, `{"line_total_data":[{"line":1,`)
	area := func(at time.Time, n int) string {
		return fmt.Sprintf(`{"topic":"axis:CameraApplicationPlatform/ObjectAnalytics/Device1Scenario1","timestamp":%d,"serial":"ACCC8E012345",`+
			`"message":{"source":{},"key":{},"data":{"scenario":"Occupancy","total":"%d","human":"%d"}}}`, at.UnixMilli(), n, n)
	}
	axisTopic := "axis/ACCC8E012345/event/CameraApplicationPlatform/ObjectAnalytics/Device1Scenario1"
	mosquittoPub(t, mq.addr, axisTopic, area(t0.Add(30*time.Second), 12))
	mosquittoPub(t, mq.addr, axisTopic, area(t0.Add(25*time.Second), 40)) // older: changes nothing
	// store: 30 in, 10 out, and the 12 the area count put into promo, which is inside it.
	svc.waitOccupancy(map[string]int64{"store": 32, "promo": 12}, 15*time.Second)
	svc.waitMetrics(`crowdwatch_ingest_messages_total{outcome="rejected",reason="malformed"} 1`)
}

// TestCheckConfigSaysWhatEachDeviceExpects: per device its format, where it is read, what it
// is counted by and what is bound; an unknown format is refused with the known ones.
func TestCheckConfigSaysWhatEachDeviceExpects(t *testing.T) {
	dir := t.TempDir()
	path := writeConfig(t, dir, `site: {id: s1, timezone: UTC}
storage: {path: $DIR/cw.db}
zones: [{id: store, capacity: 100}, {id: upper, parent: store, capacity: 10}]
doors:
  - {id: north, from: outside, to: store, counter: {device: ms-1, line: "1"}}
  - {id: side, from: outside, to: store, counter: {device: ax-1, line: "Device1Scenario1"}, swap: true}
  - {id: main, from: outside, to: store, counter: {device: dc-1}}
sensors:
  - {device: ms-2, zone: upper, region: "1"}
devices:
  - {id: ms-1, format: milesight, offline_after: 15m}
  - {id: ax-1, format: axis, serial: ACCC8E012345, counting: since_reset}
  - {id: ms-2, format: milesight}
auth:
  tokens:
    - {name: ms-1, sha256: `+tokenHash("t")+`, role: device, device: ms-1}
`)
	out, err := exec.Command(binPath, "check-config", path).CombinedOutput()
	if err != nil {
		t.Fatalf("check-config: %v\n%s", err, out)
	}
	for _, want := range []string{
		"  ms-1                 milesight\n    expects  MQTT crowdwatch/s1/counter/ms-1 or crowdwatch/s1/occupancy/ms-1, or HTTP POST /ingest/v1/ms-1\n    counts   counted by its since_reset readings",
		`bound    line "1" -> door north`,
		"or axis/ACCC8E012345/event/..., or HTTP POST /ingest/v1/ax-1 (no device token in auth.tokens: pushes are refused)",
		`bound    line "Device1Scenario1" -> door side (in and out swapped)`,
		"counts   counted by its absolute readings (area counts)",
		`bound    region "1" -> zone upper`,
		"  dc-1                 native\n    expects  MQTT crowdwatch/s1/counter/dc-1",
		"bound    line \"1\" -> door north\n    offline  after 15m0s of silence (its own offline_after)\n",
		"bound    region \"1\" -> zone upper\n    offline  after 30s of silence (devices.offline_after)\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check-config output lacks %q:\n%s", want, out)
		}
	}
	bad := writeConfig(t, t.TempDir(), `site: {id: s1, timezone: UTC}
zones: [{id: store, capacity: 100}]
doors: [{id: north, from: outside, to: store, counter: {device: ms-1}}]
devices: [{id: ms-1, format: acme}]
`)
	out, err = exec.Command(binPath, "check-config", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `devices[0].format: unknown format "acme" (known: native, axis, chirpstack, hikvision, milesight, xovis)`) {
		t.Errorf("check-config of an unknown format: %v\n%s", err, out)
	}
	short := writeConfig(t, t.TempDir(), `site: {id: s1, timezone: UTC}
zones: [{id: store, capacity: 100}]
doors: [{id: north, from: outside, to: store, counter: {device: ms-1}}]
devices: [{id: ms-1, format: milesight, offline_after: 500ms}]
`)
	out, err = exec.Command(binPath, "check-config", short).CombinedOutput()
	if err == nil || !strings.Contains(string(out), `devices[0].offline_after: 500ms must be at least 1s`) {
		t.Errorf("check-config of a device offline_after under a second: %v\n%s", err, out)
	}
}
