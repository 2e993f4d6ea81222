package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/zones"
)

func init() { testkit.RegisterTestFormat() }

const vendorIngestStore = `
site: {id: store-042, timezone: UTC}
mqtt:
  embedded:
    listen: "127.0.0.1:0"
    users:
      - {username: ms-1, password: pass-ms, role: device}
      - {username: ax-1, password: pass-ax, role: device}
      - {username: ax-2, password: pass-ax2, role: device}
      - {username: dc-01, password: pass-01, role: device}
zones: [{id: entrance, capacity: 1000}]
doors:
  - {id: north, from: outside, to: entrance, counter: {device: ms-1, line: "1"}}
  - {id: gate, from: outside, to: entrance, counter: {device: ax-1, line: "Device1Scenario1"}}
  - {id: gate2, from: outside, to: entrance, counter: {device: ax-2, line: "Device1Scenario1"}}
  - {id: main, from: outside, to: entrance, counter: {device: dc-01}}
devices:
  - {id: ms-1, format: testkit}
  - {id: ax-1, format: axis, serial: ACCC8E012345, counting: since_reset}
  - {id: ax-2, format: axis, serial: ACCC8E099999, counting: since_reset}
`

func totalsNow(line string, in, out uint64) string {
	now := time.Now().UTC()
	return testkit.TestPayload(testkit.TestReading{Sem: "since_reset", Time: &now, Lines: []testkit.TestLine{{ID: line, In: in, Out: out}}})
}

func doorIn(e *zones.Engine, id string) (uint64, uint64) {
	for _, d := range e.Snapshot().Doors {
		if d.ID == id {
			return d.In, d.Out
		}
	}
	return 0, 0
}

func TestVendorDeviceOverEmbeddedBroker(t *testing.T) {
	svc := startStoreService(t, vendorIngestStore, BrokerOptions{})
	defer svc.stop()
	dev := connectTB(t, svc, "ms-1", func(o *paho.ClientOptions) { o.SetUsername("ms-1").SetPassword("pass-ms") })
	topic := "crowdwatch/store-042/counter/ms-1"
	testkit.Publish(t, dev, topic, totalsNow("1", 100, 50)) // the baseline
	testkit.Publish(t, dev, topic, totalsNow("1", 104, 51))
	// Acknowledged after the commit: the effect is there at once.
	if in, out := doorIn(svc.engine, "north"); in != 4 || out != 1 {
		t.Fatalf("after the acknowledgement: in=%d out=%d, want 4, 1", in, out)
	}
	testkit.Publish(t, dev, topic, totalsNow("1", 104, 51))      // a duplicate
	testkit.Publish(t, dev, topic, `{"readings": [{"sem": 1}]}`) // malformed: acknowledged, changes nothing
	testkit.Publish(t, dev, "crowdwatch/store-042/occupancy/ms-1", totalsNow("1", 106, 51))
	if in, out := doorIn(svc.engine, "north"); in != 6 || out != 1 {
		t.Fatalf("in=%d out=%d, want 6, 1", in, out)
	}
	// The native device next to it still speaks the native protocol.
	native := connectTB(t, svc, "dc-01", func(o *paho.ClientOptions) { o.SetUsername("dc-01").SetPassword("pass-01") })
	testkit.Publish(t, native, "crowdwatch/store-042/counter/dc-01", testkit.CounterReport("b1", 1, 3, 0))
	if in, _ := doorIn(svc.engine, "main"); in != 3 {
		t.Fatalf("native device: in=%d, want 3", in)
	}
	if got := svc.engine.Snapshot().Devices[0]; got.Format != testkit.TestFormat || got.LastReading == nil || got.LastSemantics != "since_reset" {
		t.Errorf("devices API: %+v", got)
	}
}

// axisPayload is one Object Analytics crossline message with total crossings since startTime.
func axisPayload(serial string, total int) string {
	now := time.Now().UTC()
	return `{"topic":"axis:CameraApplicationPlatform/ObjectAnalytics/Device1Scenario1","timestamp":` +
		jsonNumber(now.UnixMilli()) + `,"serial":"` + serial + `","message":{"source":{},"key":{},"data":{"startTime":"2026-11-11T08:00:00Z","reason":"human","total":"` +
		jsonNumber(int64(total)) + `","totalHuman":"` + jsonNumber(int64(total)) + `","totalCar":"0"}}}`
}

func jsonNumber(n int64) string { b, _ := json.Marshal(n); return string(b) }

func TestAxisEventTopicIsItsSerialsDevice(t *testing.T) {
	ev := &testkit.Events{}
	svc := startStoreService(t, vendorIngestStore, BrokerOptions{Security: ev})
	defer svc.stop()
	cam := connectTB(t, svc, "ax-1", func(o *paho.ClientOptions) { o.SetUsername("ax-1").SetPassword("pass-ax") })
	topic := "axis/ACCC8E012345/event/CameraApplicationPlatform/ObjectAnalytics/Device1Scenario1"
	testkit.Publish(t, cam, topic, axisPayload("ACCC8E012345", 20))
	testkit.Publish(t, cam, topic, axisPayload("ACCC8E012345", 27))
	testkit.Publish(t, cam, topic, axisPayload("ACCC8E012345", 27))
	in, out := doorIn(svc.engine, "gate")
	if in+out != 7 {
		t.Fatalf("gate: in=%d out=%d, want 7 crossings", in, out)
	}
	// Another camera's account may not publish as this serial; the ACL refuses and reports it.
	other := connectTB(t, svc, "ax-2", func(o *paho.ClientOptions) { o.SetUsername("ax-2").SetPassword("pass-ax2") })
	other.Publish(topic, 1, false, axisPayload("ACCC8E012345", 90)).WaitTimeout(2 * time.Second)
	waitFor(t, "the ACL refusal", func() bool { return len(ev.Of("acl_refused")) >= 1 })
	// Nor may any device publish on a serial nobody declares.
	cam.Publish("axis/FFFFFFFFFFFF/event/x", 1, false, "{}").WaitTimeout(2 * time.Second)
	waitFor(t, "the second ACL refusal", func() bool { return len(ev.Of("acl_refused")) >= 2 })
	if in2, out2 := doorIn(svc.engine, "gate"); in2 != in || out2 != out {
		t.Fatalf("refused publishes changed the gate: %d/%d", in2, out2)
	}
	if in, out := doorIn(svc.engine, "gate2"); in+out != 0 {
		t.Fatalf("gate2 counted %d/%d from another camera's serial", in, out)
	}
}

// pushService is an engine and the HTTP ingest on a mux, without authentication (web/auth
// tests the device tokens).
type pushService struct {
	engine *zones.Engine
	srv    *httptest.Server
	reg    *prometheus.Registry
	stop   func()
}

func startPushService(t *testing.T, yaml string, run bool, queue int) *pushService {
	t.Helper()
	cfg, err := configs.Parse([]byte(yaml), map[string]any{"storage.path": filepath.Join(t.TempDir(), "p.db"), "http.ingest.max_body": 2048})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := zones.OpenStore(cfg.Storage.Path, cfg.Site.ID)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	engine, err := zones.NewEngine(zones.NewModel(cfg), store, zones.NewMetrics(reg), zones.Options{ResetHour: -1, Logger: log, CommitOnIdle: true, QueueSize: queue})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	if run {
		go func() { defer close(done); _ = engine.Run(ctx) }()
	} else {
		close(done)
	}
	h, err := NewHTTP(engine, log, HTTPOptions{Registerer: reg, Model: engine.Model(), Devices: cfg.Devices.List, MaxBody: cfg.HTTP.Ingest.MaxBody})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /ingest/v1/{device}", h)
	srv := httptest.NewServer(mux)
	var once sync.Once
	s := &pushService{engine: engine, srv: srv, reg: reg, stop: func() {
		once.Do(func() { srv.Close(); cancel(); <-done; store.Close() })
	}}
	t.Cleanup(s.stop)
	return s
}

func (s *pushService) push(t *testing.T, device, contentType, body string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Post(s.srv.URL+"/ingest/v1/"+device, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, a
}

func TestHTTPPushAnswersAfterCommitAndRefusalsChangeNothing(t *testing.T) {
	s := startPushService(t, vendorIngestStore, true, 0)
	ok := func(body string, want string) {
		t.Helper()
		code, a := s.push(t, "ms-1", "application/json", body)
		if code != http.StatusOK || a["outcome"] != want {
			t.Fatalf("push answered %d %v, want 200 %s", code, a, want)
		}
	}
	ok(totalsNow("1", 10, 0), "applied")
	ok(totalsNow("1", 15, 2), "applied")
	// 2xx only after the commit: the effect is readable the moment the answer arrives.
	if in, out := doorIn(s.engine, "north"); in != 5 || out != 2 {
		t.Fatalf("after 200: in=%d out=%d", in, out)
	}
	ok(totalsNow("1", 15, 2), "duplicate")
	refused := []struct {
		device, body string
		code         int
		reason       string
	}{
		{"ms-1", `{"readings": [{"sem": "sometimes"}]}`, http.StatusUnsupportedMediaType, "unsupported"},
		{"ms-1", `not json`, http.StatusBadRequest, "malformed"},
		{"ms-1", strings.Repeat(" ", 3000), http.StatusRequestEntityTooLarge, "oversized"},
		{"nobody", totalsNow("1", 99, 0), http.StatusNotFound, "unknown_device"},
		{"ms-1", totalsNow("1", 15+5_000_000, 2), http.StatusUnprocessableEntity, "out_of_range"},
	}
	for _, r := range refused {
		code, a := s.push(t, r.device, "application/json", r.body)
		if code != r.code || a["reason"] != r.reason || a["outcome"] != "rejected" || a["error"] == "" {
			t.Errorf("%s %.30q: answered %d %v, want %d %s", r.device, r.body, code, a, r.code, r.reason)
		}
	}
	if in, out := doorIn(s.engine, "north"); in != 5 || out != 2 {
		t.Fatalf("refused pushes changed the door: in=%d out=%d", in, out)
	}
	// Counted with the MQTT rejections, by reason.
	for _, reason := range []string{"malformed", "oversized", "unknown_device", "out_of_range", "unsupported"} {
		if got := testutil.ToFloat64(metricVec(t, s.reg, "crowdwatch_ingest_messages_total", "rejected", reason)); got != 1 {
			t.Errorf("rejections %s counted %v, want 1", reason, got)
		}
	}
	// A native device may push its own protocol too.
	if code, a := s.push(t, "dc-01", "application/json", testkit.CounterReport("b", 1, 2, 0)); code != http.StatusOK {
		t.Fatalf("native push: %d %v", code, a)
	}
}

// metricVec finds one series of a counter vector by its outcome and reason labels.
func metricVec(t *testing.T, g prometheus.Gatherer, name, outcome, reason string) prometheus.Collector {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["outcome"] == outcome && labels["reason"] == reason {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
}

func TestHTTPPushUnderAFullQueueIs503(t *testing.T) {
	// The engine does not run: its queue of one fills with the first message.
	s := startPushService(t, vendorIngestStore, false, 1)
	if err := s.engine.TrySubmit(&zones.Message{}); err != nil {
		t.Fatal(err)
	}
	// A push that waited for the queue would hold the device; the answer must come at once.
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Post(s.srv.URL+"/ingest/v1/ms-1", "application/json", bytes.NewReader([]byte(totalsNow("1", 1, 0))))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("full queue answered %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func TestHTTPPushesInFlightAreBounded(t *testing.T) {
	// The engine does not run, so every push waits for a commit that never comes.
	s := startPushService(t, vendorIngestStore, false, 2*MaxPushesInFlight)
	cfg, _ := configs.Parse([]byte(vendorIngestStore), nil)
	h, err := NewHTTP(s.engine, nil, HTTPOptions{Model: s.engine.Model(), Devices: cfg.Devices.List, MaxBody: cfg.HTTP.Ingest.MaxBody})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("POST /ingest/v1/{device}", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range MaxPushesInFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/ingest/v1/ms-1", strings.NewReader(totalsNow("1", 1, 0)))
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
	}
	waitFor(t, "the pushes to wait for their commit", func() bool { return len(h.inflight) == MaxPushesInFlight })
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Post(srv.URL+"/ingest/v1/ms-1", "application/json", strings.NewReader(totalsNow("1", 1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("push %d answered %d, want 503", MaxPushesInFlight+1, resp.StatusCode)
	}
	cancel() // the waiting devices give up; their handlers return
	wg.Wait()
}
