package main

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// bridgeConf is the bridge a remote site's mosquitto runs (docs/ha.md, "A standby at another
// site"); the test uses the file as it ships, with the store broker's address filled in.
const bridgeConf = "../../deploy/ha/mosquitto-bridge.conf"

// startBridgedMosquitto runs a second mosquitto, the remote site's, with the shipped bridge
// to the store's broker at store.
func startBridgedMosquitto(t *testing.T, store string) *mosquitto {
	t.Helper()
	bin := need(t, "mosquitto", "mosquitto")
	shipped, err := os.ReadFile(bridgeConf)
	if err != nil {
		t.Fatal(err)
	}
	const address = "address broker.store.lan:1883"
	if !strings.Contains(string(shipped), "\n"+address+"\n") {
		t.Fatalf("%s has no line %q for the test to fill in", bridgeConf, address)
	}
	bridge := strings.Replace(string(shipped), address, "address "+store, 1)
	dir := t.TempDir()
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	// The site's own part (listener, persistence, logging), then the shipped file.
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`user root
listener %s 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
log_dest stderr
log_type error
log_type warning
`, port, dir)+bridge), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &mosquitto{addr: addr, bin: bin, conf: conf, logs: &syncBuffer{}}
	m.start(t)
	t.Cleanup(func() {
		if m.cmd.ProcessState == nil {
			m.cmd.Process.Kill()
			<-m.done
		}
		if t.Failed() {
			t.Logf("remote mosquitto output:\n%s", m.logs)
		}
	})
	return m
}

// crash ends the broker with SIGKILL (no save), as a power cut at the remote site does.
func (m *mosquitto) crash() {
	m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
}

// stopClean stops the broker with SIGTERM: it saves its persistent sessions first.
func (m *mosquitto) stopClean() {
	m.cmd.Process.Signal(syscall.SIGTERM)
	<-m.done
}

// TestBridgeStandbyAtAnotherSite: the devices and the leader (a) on the store's mosquitto,
// the standby (b) on another mosquitto bridged to it with deploy/ha/mosquitto-bridge.conf.
// The standby counts exactly through the bridge, across a crash of the remote broker in the
// middle of the load (the devices' next reports repair what the crash lost) and across a
// longer outage of it with the devices quiet afterwards (the store's broker queues for the
// bridge's session, the remote one kept the standby's); the leader's retained zone topics
// reach the remote site.
func TestBridgeStandbyAtAnotherSite(t *testing.T) {
	e := testkit.Etcd(t)
	store := startMosquitto(t)
	remote := startBridgedMosquitto(t, store.addr)
	p := runPair(t, pairOptions{etcd: e.Endpoint, broker: store.addr, brokerOf: map[string]string{"b": remote.addr}})
	a, b, term, d := p.a, p.b, p.term, p.doors
	if err := d.walk(40, 30, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "through the bridge", d.truth(), a, b)

	// The leader's retained zone topic, published at the store, is on the remote broker.
	zoneTerm := make(chan int64, 64)
	watcher, err := mqttClient(t, "tcp://"+remote.addr, "remote-sign", "", "")
	if err != nil {
		t.Fatal(err)
	}
	watcher.Subscribe("crowdwatch/ha-site/zone/#", 1, func(_ paho.Client, m paho.Message) {
		var v struct {
			Term int64 `json:"term"`
		}
		_ = json.Unmarshal(m.Payload(), &v)
		select {
		case zoneTerm <- v.Term:
		default:
		}
	}).Wait()
	waitFor(t, 20*time.Second, "the leader's zone topic on the remote broker", func() bool {
		for {
			select {
			case got := <-zoneTerm:
				if got == term {
					return true
				}
			default:
				return false
			}
		}
	})

	// The remote broker crashes in the middle of the load and comes back.
	load := make(chan error, 1)
	go func() { load <- d.walk(80, 65, 20*time.Millisecond) }()
	time.Sleep(400 * time.Millisecond)
	mid := d.truth()
	remote.crash()
	remote.start(t)
	if err := <-load; err != nil {
		t.Fatal(err)
	}
	if mid["hall"] >= 80 && mid["annex"] >= 65 {
		t.Fatalf("the load was over (%v) before the remote broker crashed", mid)
	}
	checkpointPair(t, "across the remote broker's crash", d.truth(), a, b)

	// The link down for longer, and no heartbeat to repeat the totals afterwards: only the
	// persistent sessions bring the standby the reports of the outage. The remote broker stops
	// cleanly (it saves the standby's session); the store's broker queues for the bridge's.
	d.quiet()
	remote.stopClean()
	if err := d.walk(15, 25, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "the link down", d.truth(), a)
	remote.start(t)
	checkpointPair(t, "the link back", d.truth(), a, b)
	if r, got := a.role(); r != "leader" || got != term {
		t.Errorf("a is %s in term %d, want leader in %d", r, got, term)
	}
	if r, _ := b.role(); r != "standby" {
		t.Errorf("b is %s, want standby", r)
	}
}
