package ingest

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

func connectTB(t *testing.T, svc *benchService, id string, opts ...func(*paho.ClientOptions)) paho.Client {
	t.Helper()
	o := paho.NewClientOptions().AddBroker("tcp://" + svc.broker.Addr().String()).SetClientID(id).SetAutoReconnect(false)
	for _, f := range opts {
		f(o)
	}
	c, err := testkit.Connect(t, o)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBrokerAcknowledgesRejectsButDoesNotForwardThem(t *testing.T) {
	svc := startBenchService(t, 1)
	defer svc.stop()
	forwarded := make(chan string, 10)
	watcher := connectTB(t, svc, "watcher")
	watcher.Subscribe("crowdwatch/bench/counter/#", 1, func(_ paho.Client, m paho.Message) { forwarded <- string(m.Payload()) })
	dev := connectTB(t, svc, "dc-0")
	tok := dev.Publish("crowdwatch/bench/counter/dc-0", 1, false, "garbage")
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("a rejected report was not acknowledged: %v", tok.Error())
	}
	good := testkit.CounterReport("b", 1, 4, 0)
	if tok := dev.Publish("crowdwatch/bench/counter/dc-0", 1, false, good); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	// The PUBACK came after the commit, so the state is already there.
	if got := svc.engine.Snapshot().Zones[0].Occupancy; got != 4 {
		t.Fatalf("occupancy right after the acknowledgement: %d", got)
	}
	select {
	case p := <-forwarded:
		if p != good {
			t.Fatalf("forwarded %q, want only the good report", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the good report was not forwarded")
	}
}

func TestBrokerDoesNotAcknowledgeWhatItCannotStore(t *testing.T) {
	svc := startBenchService(t, 1)
	defer svc.stop()
	dev := connectTB(t, svc, "dc-0")
	svc.stopEngine()
	tok := dev.Publish("crowdwatch/bench/counter/dc-0", 1, false,
		fmt.Sprintf(`{"boot":"b","seq":1,"ts":%q,"in":4,"out":0}`, time.Now().UTC().Format(time.RFC3339)))
	if tok.WaitTimeout(3*time.Second) && tok.Error() == nil {
		t.Fatal("a report was acknowledged although the engine could not store it")
	}
	waitFor(t, "the device to be disconnected", func() bool { return !dev.IsConnectionOpen() })
	if got := svc.engine.Snapshot().Zones[0].Occupancy; got != 0 {
		t.Fatalf("occupancy %d", got)
	}
}

func TestWillMarksDeviceOffline(t *testing.T) {
	svc := startBenchService(t, 1)
	defer svc.stop()
	// The device reaches the broker through a relay whose cable the test can pull.
	relay, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	cut := make(chan struct{})
	go func() {
		in, err := relay.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", svc.broker.Addr().String())
		if err != nil {
			in.Close()
			return
		}
		go io.Copy(out, in)
		go io.Copy(in, out)
		<-cut
		in.Close()
		out.Close()
	}()
	o := paho.NewClientOptions().AddBroker("tcp://"+relay.Addr().String()).SetClientID("dc-0").SetAutoReconnect(false).
		SetWill("crowdwatch/bench/status/dc-0", "offline", 1, true)
	dev := paho.NewClient(o)
	if tok := dev.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	dev.Publish("crowdwatch/bench/status/dc-0", 1, true, "online").WaitTimeout(5 * time.Second)
	waitFor(t, "the device online", func() bool { return svc.engine.Snapshot().Devices[0].Online })
	close(cut) // power cut: the broker sees the connection drop and sends the will
	waitFor(t, "the will to mark the device offline", func() bool { return !svc.engine.Snapshot().Devices[0].Online })
}

// TestSubscriberGetsEveryRetainedTopic: the embedded broker's per-client queue of pending
// writes (maxPendingWrites, smaller than mochi's default to save memory per counter) still
// holds a big store's burst of retained topics on subscribing; a queue too small drops them.
func TestSubscriberGetsEveryRetainedTopic(t *testing.T) {
	svc := startBenchService(t, 1)
	defer svc.stop()
	// A 400-zone store's retained topics: a zone, a screen, a device and an alert topic each.
	const topics = 1600
	for i := range topics {
		if err := svc.broker.Publish(fmt.Sprintf("crowdwatch/bench/zone/z%d", i), []byte(`{"occupancy":1}`), true); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	got := map[string]bool{}
	c := connectTB(t, svc, "reader-1")
	defer c.Disconnect(0)
	tok := c.Subscribe("crowdwatch/bench/#", 1, func(_ paho.Client, m paho.Message) {
		mu.Lock()
		got[m.Topic()] = true
		mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	n := func() int { mu.Lock(); defer mu.Unlock(); return len(got) }
	deadline := time.Now().Add(10 * time.Second)
	for n() < topics && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n() != topics {
		t.Fatalf("the subscriber got %d of %d retained topics", n(), topics)
	}
}
