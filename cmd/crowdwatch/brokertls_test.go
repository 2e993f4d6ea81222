package main

import (
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

const tlsBrokerStore = `
site: {id: tls-store, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt:
  embedded:
    listen: "$PLAIN"
    tls: {listen: "127.0.0.1:0", cert_file: $CERT, key_file: $KEY}
    users:
      - {username: dc-01, password: dev-pass-01, role: device}
      - {username: dc-02, password: dev-pass-02, role: device}
zones:
  - {id: store, capacity: 1200}
  - {id: entrance, parent: store, capacity: 150}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
  - {id: side-door, from: outside, to: entrance, counter: {device: dc-02}}
`

var tlsReady = regexp.MustCompile(`msg="crowdwatch ready".* mqtt_tls=(\S+)`)

// The embedded broker's TLS listener, with mosquitto_pub --cafile as the device
// (docs/security.md), and end to end: a will outside the account is refused at CONNECT.
func TestEmbeddedBrokerTLSWithMosquittoPub(t *testing.T) {
	pub := need(t, "mosquitto_pub", "mosquitto-clients")
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	store := strings.NewReplacer("$CERT", cert, "$KEY", key, "$PLAIN", "").Replace(tlsBrokerStore)
	path := writeConfig(t, dir, store)
	out, err := exec.Command(binPath, "check-config", path).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "TLS 127.0.0.1:0") || strings.Contains(string(out), "WARNING") {
		t.Fatalf("check-config of a TLS-only broker: %v\n%s", err, out)
	}
	svc := startService(t, "serve", "--config", path)
	m := tlsReady.FindStringSubmatch(svc.logs.String())
	if m == nil || m[1] != svc.MQTT {
		t.Fatalf("the ready line does not give the TLS address (%q):\n%s", svc.MQTT, svc.logs)
	}
	_, port, _ := net.SplitHostPort(m[1])
	device := []string{"-h", "127.0.0.1", "-p", port, "-u", "dc-01", "-P", "dev-pass-01", "-q", "1", "-i", "tls-store-dc-01"}

	if out, err := exec.Command(pub, append(device, "--cafile", ca, "-t", "crowdwatch/tls-store/counter/dc-01",
		"-m", report("b", 1, 7, 0))...).CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_pub --cafile: %v %s", err, out)
	}
	svc.waitOccupancy(map[string]int64{"entrance": 7, "store": 7}, 15*time.Second)

	// Without TLS the listener does not speak MQTT; with a will on a zone topic the CONNECT is
	// refused.
	if out, err := exec.Command(pub, append(device, "-t", "crowdwatch/tls-store/counter/dc-01", "-m", report("b", 2, 9, 0))...).CombinedOutput(); err == nil {
		t.Errorf("a plain-TCP client got through the TLS listener: %s", out)
	}
	if out, err := exec.Command(pub, append(device, "--cafile", ca, "--will-topic", "crowdwatch/tls-store/zone/entrance",
		"--will-payload", `{"zone":"entrance","occupancy":0}`, "--will-retain", "-t", "crowdwatch/tls-store/counter/dc-01",
		"-m", report("b", 3, 100, 0))...).CombinedOutput(); err == nil {
		t.Errorf("a will on a zone topic was accepted: %s", out)
	}
	occ, err := svc.occupancy()
	if err != nil || occ["entrance"] != 7 {
		t.Fatalf("occupancy %v (%v): a refused connection published", occ, err)
	}
	if !strings.Contains(svc.logs.String(), "Last Will on") {
		t.Errorf("the refused will is not in the log:\n%s", svc.logs)
	}
}

// check-config warns when device accounts use plain TCP off loopback.
func TestCheckConfigWarnsAboutPlainDeviceListener(t *testing.T) {
	dir := t.TempDir()
	_, cert, key := writeTestPKI(t, dir)
	for _, tc := range []struct {
		plain string
		warn  bool
	}{{":1883", true}, {"0.0.0.0:1883", true}, {"127.0.0.1:1883", false}} {
		path := writeConfig(t, dir, strings.NewReplacer("$CERT", cert, "$KEY", key, "$PLAIN", tc.plain).Replace(tlsBrokerStore))
		out, err := exec.Command(binPath, "check-config", path).CombinedOutput()
		if err != nil {
			t.Fatalf("check-config: %v\n%s", err, out)
		}
		if got := strings.Contains(string(out), "WARNING   mqtt.embedded.listen "+tc.plain+" is plain TCP"); got != tc.warn {
			t.Errorf("listen %s: warning %v, want %v:\n%s", tc.plain, got, tc.warn, out)
		}
	}
}

// The service re-asserts its retained topics, so a spoof on a broker with loose
// rules (here an anonymous mosquitto) does not stay in front of the readers.
func TestRetainedSpoofsAreOverwritten(t *testing.T) {
	mq := startMosquitto(t)
	dir := t.TempDir()
	svc := startService(t, "serve", "--config", writeConfig(t, dir, strings.ReplaceAll(mosquittoStore, "$BROKER", mq.addr)))
	waitReady(t, svc)
	base := "crowdwatch/mq-store/"
	mosquittoPub(t, mq.addr, base+"counter/dc-01", report("b1", 1, 30, 0))
	svc.waitOccupancy(map[string]int64{"entrance": 30}, 15*time.Second)

	// A reader sees the spoof arrive, then the service's own state replace it.
	reader, err := mqttClient(t, "tcp://"+mq.addr, "reader", "", "")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 100)
	for _, topic := range []string{base + "zone/entrance", base + "service/status"} {
		if tok := reader.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) {
			got <- m.Topic() + " " + string(m.Payload())
		}); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	// The service's own state first, so that what comes after the spoof is a re-assertion.
	for seen := false; !seen; {
		select {
		case m := <-got:
			seen = strings.HasPrefix(m, base+"zone/entrance ") && strings.Contains(m, `"occupancy":30`)
		case <-time.After(15 * time.Second):
			t.Fatal("the zone state never reached the reader")
		}
	}
	const spoof = `{"zone":"entrance","occupancy":0,"capacity":150,"ratio":0}`
	mosquittoPub(t, mq.addr, base+"zone/entrance", spoof, "-r")
	mosquittoPub(t, mq.addr, base+"service/status", "offline", "-r")
	var spoofed, statusSpoofed, zoneBack, statusBack bool
	deadline := time.After(30 * time.Second) // three re-assertion periods
	for !(zoneBack && statusBack) {
		select {
		case m := <-got:
			switch {
			case m == base+"zone/entrance "+spoof:
				spoofed = true
			case spoofed && strings.HasPrefix(m, base+"zone/entrance ") && strings.Contains(m, `"occupancy":30`):
				zoneBack = true
			case m == base+"service/status offline":
				statusSpoofed = true
			case statusSpoofed && m == base+"service/status online":
				statusBack = true
			}
		case <-deadline:
			t.Fatalf("spoof seen %v; zone re-asserted %v; status re-asserted %v", spoofed, zoneBack, statusBack)
		}
	}
}
