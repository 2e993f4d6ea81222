package sim

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/encode"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// fakeService reads what the simulated vendors' devices send, over MQTT and HTTP push, with
// the service's decoders, and credits it per device as docs/protocol.md says.
type fakeService struct {
	t        *testing.T
	mu       sync.Mutex
	decoders map[string]formats.Decoder
	ledgers  map[string]*encode.Ledger
	bodies   map[string]int // HTTP bodies seen, to check a 503 is retried with the same body
	posts    int
	refused  int
	retried  int
	failed   []string
}

func (s *fakeService) take(device, transport, topic, contentType string, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dec, ok := s.decoders[device]
	if !ok {
		s.failed = append(s.failed, "a report for unknown device "+device+" on "+topic)
		return nil
	}
	rs, err := dec.Decode(formats.Input{Device: device, Transport: transport, Topic: topic, ContentType: contentType, Body: body, ReceivedAt: time.Now()})
	if err != nil {
		return err
	}
	for _, r := range rs {
		if err := s.ledgers[device].Apply(r); err != nil {
			s.failed = append(s.failed, err.Error())
		}
	}
	return nil
}

func (s *fakeService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	device, ok := strings.CutPrefix(r.URL.Path, "/ingest/v1/")
	body, _ := io.ReadAll(r.Body)
	if !ok || r.Method != http.MethodPost || r.Header.Get("Authorization") != "Bearer tok-"+device {
		http.Error(w, "who are you", http.StatusUnauthorized)
		s.mu.Lock()
		s.failed = append(s.failed, "a push without the device's token: "+r.URL.Path)
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.posts++
	first := s.bodies[string(body)] == 0
	s.bodies[string(body)]++
	if !first {
		s.retried++
	}
	// Every 11th new body fails once, as a service restarting would: the device must send
	// the same body again.
	fail := first && s.posts%11 == 0
	s.mu.Unlock()
	if fail {
		http.Error(w, "restarting", http.StatusServiceUnavailable)
		return
	}
	if err := s.take(device, "http", "", r.Header.Get("Content-Type"), body); err != nil {
		s.mu.Lock()
		s.refused++
		s.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// The simulator speaks every vendor's format, over MQTT and HTTP push, with its faults, and
// what it sends adds up, read by the service's decoders, to exactly what the crowd did.
func TestVendorFormatsAddUpToTheTruth(t *testing.T) {
	cfg, err := configs.Load("../../configs/demo-store.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := scenario.Load("../../configs/scenarios/doorbuster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Start, sc.End = 7*60+55, 8*60+25
	sc.Faults = scenario.Faults{Duplicate: 0.1, Reorder: 0.1, Malformed: 0.05, RebootPerHour: 6, OfflinePerHr: 2, OfflineFor: time.Minute,
		IntervalDevices: []string{"dc-04"}}
	deviceFormats := map[string]string{"dc-01": "milesight", "dc-02": "xovis", "dc-03": "hikvision", "dc-04": "chirpstack",
		"dc-05": "axis", "cam-07": "axis"}
	counting := map[string]formats.Semantics{"dc-04": formats.Interval}

	svc := &fakeService{t: t, decoders: map[string]formats.Decoder{}, ledgers: map[string]*encode.Ledger{}, bodies: map[string]int{}}
	for dev, f := range deviceFormats {
		decoded := ""
		if f == "chirpstack" {
			decoded = "milesight"
		}
		d, err := formats.ForDevice(f, decoded)
		if err != nil {
			t.Fatal(err)
		}
		c := counting[dev]
		if c == 0 {
			c = d.Counting()
		}
		svc.decoders[dev], svc.ledgers[dev] = d, encode.NewLedger(c)
	}
	web := httptest.NewServer(svc)
	defer web.Close()

	// The broker hands every device publish to the fake service, by topic.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	broker := mqtt.New(&mqtt.Options{InlineClient: true})
	_ = broker.AddHook(new(auth.AllowHook), nil)
	_ = broker.AddListener(listeners.NewNet("t", ln))
	if err := broker.Serve(); err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	base := cfg.MQTT.TopicPrefix + "/" + cfg.Site.ID + "/"
	serials := map[string]string{"cam-07": "ACCC8E000007"}
	var mqttRefused int
	err = broker.Subscribe("#", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
		device := ""
		switch {
		case strings.HasPrefix(pk.TopicName, base+"counter/"), strings.HasPrefix(pk.TopicName, base+"occupancy/"):
			device = pk.TopicName[strings.LastIndexByte(pk.TopicName, '/')+1:]
		case strings.HasPrefix(pk.TopicName, "axis/ACCC8E000007/event/"):
			device = "cam-07"
		default:
			return
		}
		if err := svc.take(device, "mqtt", pk.TopicName, "", pk.Payload); err != nil {
			svc.mu.Lock()
			mqttRefused++
			svc.mu.Unlock()
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	var truth bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tokens := map[string]string{}
	for dev := range deviceFormats {
		tokens[dev] = "tok-" + dev
	}
	sum, err := Run(ctx, Options{Config: cfg, Scenario: sc, Broker: "tcp://" + ln.Addr().String(), Seed: 3, Truth: &truth,
		SampleEvery: time.Minute, Formats: deviceFormats, Serials: serials, IngestURL: web.URL, DeviceTokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	svc.mu.Lock()
	defer svc.mu.Unlock()
	for _, f := range svc.failed {
		t.Error(f)
	}
	rows, err := csv.NewReader(&truth).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	crossings := map[string][2]uint64{}
	for _, r := range rows[1:] {
		if r[1] == "door" {
			in, _ := strconv.ParseUint(r[3], 10, 64)
			out, _ := strconv.ParseUint(r[4], 10, 64)
			crossings[r[2]] = [2]uint64{in, out}
		}
	}
	for _, d := range cfg.Doors {
		got, want := svc.ledgers[d.Counter.Device].Credit(d.Counter.Line), crossings[d.ID]
		if got != want || want == [2]uint64{} {
			t.Errorf("door %s (%s, %s): the service would count %v, the crowd made %v", d.ID, d.Counter.Device, deviceFormats[d.Counter.Device], got, want)
		}
	}
	if n := svc.ledgers["cam-07"].Area("Device1Scenario1"); n < 0 || sum.Truth["floor2"] > 0 && n == 0 {
		t.Errorf("the Axis area sensor's last count is %d, floor2 ends at %d", n, sum.Truth["floor2"])
	}
	if sum.Malformed == 0 || sum.Reboots == 0 || sum.Offlines == 0 || sum.Duplicates == 0 {
		t.Fatalf("the faults did not all happen, the test shows nothing: %+v", sum)
	}
	if svc.retried == 0 || svc.refused == 0 || mqttRefused == 0 || sum.Refused != svc.refused {
		t.Errorf("retried %d, refused %d over HTTP (the simulator says %d), %d over MQTT: want some of each", svc.retried, svc.refused, sum.Refused, mqttRefused)
	}
}
