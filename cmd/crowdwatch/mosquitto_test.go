package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// need finds a program the interop tests use. The test command (make test) installs them;
// run alone, a missing one is a skip with the fix, except under CI=true where nothing skips.
func need(t *testing.T, program, pkg string) string {
	t.Helper()
	for _, p := range []string{program, "/usr/sbin/" + program, "/usr/bin/" + program} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("%s is not installed: run `make deps` or `apt-get install %s`", program, pkg)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// mosquitto is a real mosquitto broker on a loopback port, with persistence so that a
// client's persistent session and its queued messages survive.
type mosquitto struct {
	addr      string
	bin, conf string
	cmd       *exec.Cmd
	done      chan error
	logs      *syncBuffer
}

func (m *mosquitto) start(t *testing.T) {
	t.Helper()
	m.cmd = exec.Command(m.bin, "-c", m.conf)
	m.done = make(chan error, 1)
	m.cmd.Stdout, m.cmd.Stderr = m.logs, m.logs
	if err := m.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func(cmd *exec.Cmd, done chan error) { done <- cmd.Wait() }(m.cmd, m.done)
	waitListening(t, m.addr, m.logs)
}

// restart stops the broker the way an operator's restart does (it saves its persistent
// sessions) and starts it again on the same port.
func (m *mosquitto) restart(t *testing.T) {
	t.Helper()
	m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done
	m.start(t)
}

func startMosquitto(t *testing.T) *mosquitto {
	t.Helper()
	bin := need(t, "mosquitto", "mosquitto")
	dir := t.TempDir()
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	// "user root" stops mosquitto, started as root in CI, from dropping to a user that cannot
	// read the test's private temporary folder; it is ignored when not root.
	err := os.WriteFile(conf, []byte(fmt.Sprintf(`user root
listener %s 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
# The default (1000) drops messages silently under load; a store's service must get them all.
max_queued_messages 0
log_dest stderr
log_type error
log_type warning
`, port, dir)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{addr: addr, bin: bin, conf: conf, logs: &syncBuffer{}}
	m.start(t)
	t.Cleanup(func() {
		m.cmd.Process.Kill()
		<-m.done
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", m.logs)
		}
	})
	return m
}

// mosquittoPub publishes one message at QoS 1 with the real mosquitto_pub client.
func mosquittoPub(t *testing.T, addr, topic, payload string, extra ...string) {
	t.Helper()
	bin := need(t, "mosquitto_pub", "mosquitto-clients")
	host, port, _ := net.SplitHostPort(addr)
	args := append([]string{"-h", host, "-p", port, "-q", "1", "-t", topic, "-m", payload}, extra...)
	if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub %s: %v\n%s", topic, err, out)
	}
}

const mosquittoStore = `
site: {id: mq-store, timezone: Europe/Berlin}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {broker: "tcp://$BROKER", client_id: crowdwatch-mq-test}
zones:
  - {id: store, capacity: 1200}
  - {id: entrance, parent: store, capacity: 150, area_m2: 90}
  - {id: floor2, parent: store, capacity: 500}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
  - {id: escalator-up, from: entrance, to: floor2, counter: {device: dc-02}}
  - {id: escalator-down, from: floor2, to: entrance, counter: {device: dc-02, line: "2"}}
  - {id: side-door, from: outside, to: floor2, counter: {device: dc-03}}
`

func TestMosquittoInterop(t *testing.T) {
	mq := startMosquitto(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, strings.ReplaceAll(mosquittoStore, "$BROKER", mq.addr))
	svc := startService(t, "serve", "--config", cfg)
	waitReady(t, svc)
	now := func() string { return time.Now().UTC().Format(time.RFC3339) }
	base := "crowdwatch/mq-store/"
	mosquittoPub(t, mq.addr, base+"counter/dc-01", report("b1", 1, 40, 5))
	mosquittoPub(t, mq.addr, base+"counter/dc-01", report("b1", 1, 40, 5)) // repeat
	mosquittoPub(t, mq.addr, base+"counter/dc-02", `{"boot":"e","seq":1,"ts":"`+now()+`","lines":{"1":{"in":12,"out":0},"2":{"in":2,"out":0}}}`)
	mosquittoPub(t, mq.addr, base+"counter/dc-03", `{"boot":"s","seq":1,"ts":"`+now()+`","period_in":4,"period_out":1}`)
	mosquittoPub(t, mq.addr, base+"counter/dc-03", `{"boot":"s","seq":2,"ts":"`+now()+`","period_in":2,"period_out":0}`)
	mosquittoPub(t, mq.addr, base+"counter/dc-03", `{"boot":"s","seq":1,"ts":"`+now()+`","period_in":4,"period_out":1}`) // redelivered
	mosquittoPub(t, mq.addr, base+"counter/dc-01", `not json at all`)
	mosquittoPub(t, mq.addr, base+"counter/dc-01", `{"boot":"b1","seq":2,"ts":"`+now()+`","in":"forty","out":5}`)
	mosquittoPub(t, mq.addr, base+"counter/intruder", report("b1", 1, 999, 0))
	mosquittoPub(t, mq.addr, base+"status/dc-01", "online", "-r")
	// entrance: 35 - 12 + 2 = 25; floor2: 12 - 2 + (4-1) + 2 = 15
	svc.waitOccupancy(map[string]int64{"entrance": 25, "floor2": 15, "store": 40}, 15*time.Second)
	// The rejected messages came after the last one that changed a zone.
	svc.waitMetrics(
		`crowdwatch_ingest_messages_total{outcome="rejected",reason="malformed"} 1`,
		`crowdwatch_ingest_messages_total{outcome="rejected",reason="wrong_type"} 1`,
		`crowdwatch_ingest_messages_total{outcome="rejected",reason="unknown_device"} 1`,
		`crowdwatch_ingest_messages_total{outcome="duplicate",reason=""} 2`,
	)

	// The zone state reaches a plain subscriber through the external broker, retained.
	sub := need(t, "mosquitto_sub", "mosquitto-clients")
	host, port, _ := net.SplitHostPort(mq.addr)
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := exec.Command(sub, "-h", host, "-p", port, "-t", base+"zone/entrance", "-C", "1", "-W", "5").CombinedOutput()
		if err == nil && strings.Contains(string(out), `"occupancy":25`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retained zone state through mosquitto: %v %s", err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// While the service is down, the broker keeps its persistent session's messages.
	svc.stop()
	mosquittoPub(t, mq.addr, base+"counter/dc-01", report("b1", 3, 50, 5))
	mosquittoPub(t, mq.addr, base+"counter/dc-03", `{"boot":"s","seq":3,"ts":"`+now()+`","period_in":1,"period_out":0}`)
	svc = startService(t, "serve", "--config", cfg)
	svc.waitOccupancy(map[string]int64{"entrance": 35, "floor2": 16, "store": 51}, 15*time.Second)
}

func waitReady(t *testing.T, svc *service) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var body map[string]any
	for time.Now().Before(deadline) {
		if err := svc.getJSON("/readyz", &body); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("service never became ready: %v", body)
}
