package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/security"
)

// securedStore is a store with two counters, a reader and the limits small enough to reach.
const securedStore = `
site: {id: store-042, timezone: UTC}
mqtt:
  embedded:
    listen: "127.0.0.1:0"
    connect_timeout: 1s
    max_connections: %d
    max_connections_per_address: %d
    users:
      - {username: dc-01, password: pass-01, role: device}
      - {username: dc-02, password: pass-02, role: device}
      - {username: sign, password: pass-sign, role: reader}
zones: [{id: entrance, capacity: 100}]
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
  - {id: side-door, from: outside, to: entrance, counter: {device: dc-02}}
`

func startSecured(t *testing.T, maxConn, perAddr int) (*benchService, *testkit.Events, *prometheus.Registry) {
	t.Helper()
	ev := &testkit.Events{}
	reg := prometheus.NewRegistry()
	svc := startStoreService(t, fmt.Sprintf(securedStore, maxConn, perAddr), BrokerOptions{Security: ev, Registerer: reg})
	t.Cleanup(svc.stop)
	return svc, ev, reg
}

// rawConnect sends one MQTT 3.1.1 CONNECT from a chosen local address and returns the
// connection and the CONNACK's return code (-1 if the broker closed the connection first).
func rawConnect(t *testing.T, addr, local string, c packets.ConnectParams) (net.Conn, int) {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c.ProtocolName = []byte("MQTT")
	c.Keepalive = 30
	c.UsernameFlag, c.PasswordFlag = len(c.Username) > 0, len(c.Password) > 0
	pk := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connect}, ProtocolVersion: 4, Connect: c}
	var buf bytes.Buffer
	if err := pk.ConnectEncode(&buf); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(buf.Bytes()); err != nil {
		return conn, -1
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		return conn, -1
	}
	_ = conn.SetReadDeadline(time.Time{})
	if ack[0] != 0x20 {
		t.Fatalf("not a CONNACK: % x", ack)
	}
	return conn, int(ack[3])
}

const (
	connAccepted         = 0x00
	connIDRejected       = 0x02 // MQTT 3.1.1 "identifier rejected"
	connNotAuthorized    = 0x05
	base                 = "crowdwatch/store-042/"
	deviceWillPayload    = "offline"
	connBadUserOrPasswd3 = 0x05 // mochi answers a bad password with 3.1.1's "not authorized"
)

// A device's Last Will passes the same ACL as its publishes, and is small.
func TestWillOutsideTheAccountIsRefused(t *testing.T) {
	svc, ev, _ := startSecured(t, 100, 100)
	addr := svc.broker.Addr().String()
	cases := []struct{ topic, payload string }{
		{base + "zone/entrance", `{"zone":"entrance","occupancy":0,"capacity":100,"ratio":0}`},
		{base + "guidance/main-door", `{"state":"welcome","color":"green"}`},
		{base + "service/status", "offline"},
		{base + "alert/x", `{"severity":"info"}`},
		{base + "status/dc-02", "offline"},
		{"elsewhere/topic", "x"},
		{base + "status/#", "offline"},                       // a wildcard is no topic to publish on
		{base + "status/dc-01", strings.Repeat("x", 60<<10)}, // its own topic, but 60 KB
	}
	for i, tc := range cases {
		conn, code := rawConnect(t, addr, "", packets.ConnectParams{ClientIdentifier: fmt.Sprintf("store-042-dc-01-%d", i),
			Clean: true, Username: []byte("dc-01"), Password: []byte("pass-01"),
			WillFlag: true, WillTopic: tc.topic, WillPayload: []byte(tc.payload), WillQos: 1, WillRetain: true})
		conn.Close() // the drop that would send the will
		if code != connNotAuthorized {
			t.Errorf("will on %s (%d bytes): CONNACK %d, want %d (not authorized)", tc.topic, len(tc.payload), code, connNotAuthorized)
		}
	}
	if got := ev.Of(security.WillRefused); len(got) != len(cases) {
		t.Errorf("%d will refusals reported, want %d: %+v", len(got), len(cases), got)
	} else if !strings.HasPrefix(got[0].Source, "127.0.0.1:") || got[0].Subject != cases[0].topic {
		t.Errorf("event without source or subject: %+v", got[0])
	}

	// The device's own, small will is accepted and sent when it drops off; once it is there,
	// the refused ones would have been too, and none is.
	conn, code := rawConnect(t, addr, "", packets.ConnectParams{ClientIdentifier: "store-042-dc-01", Clean: true,
		Username: []byte("dc-01"), Password: []byte("pass-01"),
		WillFlag: true, WillTopic: base + "status/dc-01", WillPayload: []byte(deviceWillPayload), WillQos: 1, WillRetain: true})
	if code != connAccepted {
		t.Fatalf("the device's own will was refused: CONNACK %d", code)
	}
	conn.Close()
	waitFor(t, "the device's own will", func() bool { return len(svc.broker.server.Topics.Messages(base+"status/dc-01")) == 1 })
	for _, m := range svc.broker.server.Topics.Messages("#") {
		if m.TopicName != base+"status/dc-01" {
			t.Errorf("a refused will was retained on %s: %q", m.TopicName, m.Payload)
		}
	}
}

// A client id belongs to one account.
func TestClientIDBelongsToOneAccount(t *testing.T) {
	svc, ev, _ := startSecured(t, 100, 100)
	addr := svc.broker.Addr().String()
	dc02 := connectTB(t, svc, "store-042-dc-02", func(o *paho.ClientOptions) {
		o.SetUsername("dc-02").SetPassword("pass-02").SetCleanSession(false)
	})

	// dc-01 takes dc-02's id, by the documented <site>-<device> name and by a free-form id
	// dc-02 holds a session under.
	_, code := rawConnect(t, addr, "", packets.ConnectParams{ClientIdentifier: "store-042-dc-02", Clean: true,
		Username: []byte("dc-01"), Password: []byte("pass-01")})
	if code != connIDRejected {
		t.Errorf("dc-01 as store-042-dc-02: CONNACK %d, want %d (identifier rejected)", code, connIDRejected)
	}
	other := connectTB(t, svc, "side-door-counter", func(o *paho.ClientOptions) { o.SetUsername("dc-02").SetPassword("pass-02") })
	_, code = rawConnect(t, addr, "", packets.ConnectParams{ClientIdentifier: "side-door-counter", Clean: true,
		Username: []byte("dc-01"), Password: []byte("pass-01")})
	if code != connIDRejected {
		t.Errorf("dc-01 as a live session's id: CONNACK %d, want %d", code, connIDRejected)
	}
	// The owner going away does not free its id for another account.
	other.Disconnect(50)
	waitFor(t, "the clean session to end", func() bool { _, ok := svc.broker.server.Clients.Get("side-door-counter"); return !ok })
	_, code = rawConnect(t, addr, "", packets.ConnectParams{ClientIdentifier: "side-door-counter", Clean: true,
		Username: []byte("dc-01"), Password: []byte("pass-01")})
	if code != connIDRejected {
		t.Errorf("dc-01 as an id dc-02 used before: CONNACK %d, want %d", code, connIDRejected)
	}

	// The real dc-02 was not disconnected: its report is acknowledged.
	good := fmt.Sprintf(`{"boot":"b","seq":1,"ts":%q,"in":3,"out":0}`, time.Now().UTC().Format(time.RFC3339))
	if tok := dc02.Publish(base+"counter/dc-02", 1, false, good); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("dc-02 lost its connection to the impostor: %v", tok.Error())
	}
	if got := ev.Of(security.ClientIDCollision); len(got) != 3 || got[0].Subject != "store-042-dc-02" ||
		!strings.HasPrefix(got[0].Source, "127.0.0.1:") {
		t.Fatalf("collisions reported: %+v", got)
	}
	// The same account taking over its own session (a device reconnecting) still works.
	_, code = rawConnect(t, addr, "", packets.ConnectParams{ClientIdentifier: "store-042-dc-02", Clean: false,
		Username: []byte("dc-02"), Password: []byte("pass-02")})
	if code != connAccepted {
		t.Fatalf("dc-02 reconnecting under its own id: CONNACK %d", code)
	}
}

// Connections over the limits are closed at accept time and counted.
func TestConnectionLimits(t *testing.T) {
	svc, ev, reg := startSecured(t, 3, 2)
	addr := svc.broker.Addr().String()
	login := packets.ConnectParams{Clean: true, Username: []byte("sign"), Password: []byte("pass-sign")}
	held := []net.Conn{}
	for i, local := range []string{"127.0.0.1", "127.0.0.1", "127.0.0.2"} {
		login.ClientIdentifier = fmt.Sprintf("sign-%d", i)
		conn, code := rawConnect(t, addr, local, login)
		if code != connAccepted {
			t.Fatalf("connection %d from %s within the limits: CONNACK %d", i, local, code)
		}
		held = append(held, conn)
	}
	login.ClientIdentifier = "sign-x"
	if _, code := rawConnect(t, addr, "127.0.0.1", login); code != -1 {
		t.Errorf("a third connection from one address got CONNACK %d; want it closed", code)
	}
	if _, code := rawConnect(t, addr, "127.0.0.3", login); code != -1 {
		t.Errorf("a fourth connection got CONNACK %d; want it closed", code)
	}
	if got := testkit.Metric(t, reg, "crowdwatch_mqtt_connections_refused_total", RefusedPerAddress); got != 1 {
		t.Errorf("refused per address: %v", got)
	}
	if got := testkit.Metric(t, reg, "crowdwatch_mqtt_connections_refused_total", RefusedTotal); got != 1 {
		t.Errorf("refused over the total: %v", got)
	}
	if got := ev.Of(security.ConnectionLimit); len(got) != 2 || !strings.HasPrefix(got[0].Source, "127.0.0.1:") ||
		!strings.HasPrefix(got[1].Source, "127.0.0.3:") {
		t.Errorf("limit events: %+v", got)
	}
	// A place freed is a place again.
	held[0].Close()
	waitFor(t, "the freed connection to be released", func() bool { return testkit.Metric(t, reg, "crowdwatch_mqtt_connections") == 2 })
	login.ClientIdentifier = "sign-y"
	if _, code := rawConnect(t, addr, "127.0.0.1", login); code != connAccepted {
		t.Errorf("after a close, CONNACK %d", code)
	}
}

// A connection that never sends CONNECT is closed after connect_timeout.
func TestConnectDeadline(t *testing.T) {
	svc, _, reg := startSecured(t, 100, 100)
	conn, err := net.Dial("tcp", svc.broker.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitFor(t, "the broker to hold the idle connection", func() bool { return testkit.Metric(t, reg, "crowdwatch_mqtt_connections") == 1 })
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second)) // 10× connect_timeout
	if n, err := conn.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("an idle connection was still open (read %d, %v)", n, err)
	}
	waitFor(t, "the idle connection to be released", func() bool { return testkit.Metric(t, reg, "crowdwatch_mqtt_connections") == 0 })
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestRefusalsAreReported(t *testing.T) {
	svc, ev, _ := startSecured(t, 100, 100)
	addr := svc.broker.Addr().String()
	if _, code := rawConnect(t, addr, "", packets.ConnectParams{ClientIdentifier: "x", Clean: true,
		Username: []byte("dc-01"), Password: []byte("wrong")}); code != connBadUserOrPasswd3 {
		t.Errorf("wrong password: CONNACK %d", code)
	}
	if _, code := rawConnect(t, addr, "", packets.ConnectParams{ClientIdentifier: "y", Clean: true,
		Username: []byte("nobody"), Password: []byte("x")}); code != connBadUserOrPasswd3 {
		t.Errorf("unknown account: CONNACK %d", code)
	}
	if got := ev.Of(security.MQTTAuthFailed); len(got) != 2 || got[1].Subject != "nobody" || !strings.HasPrefix(got[1].Source, "127.0.0.1:") {
		t.Errorf("auth failures: %+v", got)
	}
	dev := connectTB(t, svc, "store-042-dc-01", func(o *paho.ClientOptions) { o.SetUsername("dc-01").SetPassword("pass-01") })
	dev.Publish(base+"counter/dc-02", 1, false, "{}").WaitTimeout(5 * time.Second)
	sign := connectTB(t, svc, "sign-1", func(o *paho.ClientOptions) { o.SetUsername("sign").SetPassword("pass-sign") })
	sign.Subscribe("#", 1, nil).WaitTimeout(5 * time.Second)
	waitFor(t, "two ACL refusals", func() bool { return len(ev.Of(security.ACLRefused)) == 2 })
	got := ev.Of(security.ACLRefused)
	if got[0].Subject != base+"counter/dc-02" || got[1].Subject != "#" {
		t.Errorf("ACL refusals: %+v", got)
	}
}

// On an open broker (the demo) nobody but the service writes its own topics, and a report
// from an undeclared device is reported.
func TestOpenBrokerProtectsServiceTopics(t *testing.T) {
	ev := &testkit.Events{}
	svc := startStoreService(t, benchStore(1), BrokerOptions{Security: ev})
	defer svc.stop()
	if _, code := rawConnect(t, svc.broker.Addr().String(), "", packets.ConnectParams{ClientIdentifier: "x", Clean: true,
		WillFlag: true, WillTopic: "crowdwatch/bench/zone/store", WillPayload: []byte("{}"), WillRetain: true}); code != connNotAuthorized {
		t.Errorf("a will on a zone topic: CONNACK %d", code)
	}
	if _, code := rawConnect(t, svc.broker.Addr().String(), "", packets.ConnectParams{ClientIdentifier: "w", Clean: true,
		WillFlag: true, WillTopic: "crowdwatch/bench/status/#", WillPayload: []byte("offline")}); code != connNotAuthorized {
		t.Errorf("a will on a wildcard: CONNACK %d", code)
	}
	if _, code := rawConnect(t, svc.broker.Addr().String(), "", packets.ConnectParams{ClientIdentifier: "inline", Clean: true}); code != connIDRejected {
		t.Errorf("a client taking the service's own client id: CONNACK %d", code)
	}
	c := connectTB(t, svc, "anyone")
	c.Publish("crowdwatch/bench/guidance/main", 1, true, `{"state":"welcome"}`).WaitTimeout(5 * time.Second)
	c2 := connectTB(t, svc, "ghost")
	c2.Publish("crowdwatch/bench/counter/ghost", 1, false, "{}").WaitTimeout(5 * time.Second)
	waitFor(t, "the refusals", func() bool { return len(ev.Of(security.ACLRefused)) == 1 && len(ev.Of(security.UnknownDevice)) == 1 })
	if n := len(svc.broker.server.Topics.Messages("crowdwatch/bench/guidance/#")); n != 0 {
		t.Errorf("a client's guidance was retained")
	}
	if got := ev.Of(security.UnknownDevice)[0]; got.Subject != "ghost" {
		t.Errorf("unknown device event: %+v", got)
	}
}
