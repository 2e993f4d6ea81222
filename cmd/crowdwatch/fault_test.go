package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
)

const floodStore = `
site: {id: flood}
http: {listen: "127.0.0.1:0"}
storage: {path: "$DIR/flood.db"}
mqtt: {embedded: {listen: "127.0.0.1:0"}, max_payload: 4096}
occupancy: {daily_reset: "off"}
auth:
  tokens: [{name: officer, sha256: "$SUM", role: security}]
zones:
  - {id: hall, capacity: 100000}
  - {id: annex, capacity: 100000}
doors:
  - {id: main, from: outside, to: hall, counter: {device: dc-01, line: "1"}}
  - {id: side, from: outside, to: annex, counter: {device: dc-02, line: "1"}}
`

// TestFloodLeavesRealTrafficExact floods the service with malformed and oversized payloads
// (on a configured counter's own topic and on unknown topics) and with WebSocket connection
// attempts that are refused, while a real counter reports; the real counter's count must be
// exact and the flooded counter's zone untouched.
func TestFloodLeavesRealTrafficExact(t *testing.T) {
	dir := t.TempDir()
	svc := startApp(t, writeConfig(t, dir, strings.ReplaceAll(floodStore, "$SUM", tokenSum(securityToken))))
	broker := "tcp://" + svc.MQTT
	const reports = 300

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	floodCtx, stopFlood := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var junkSent, wsTried atomic.Int64

	junk := [][]byte{
		[]byte(`{"boot":"x","seq":`),
		[]byte(`not json at all`),
		[]byte(`{"boot":"x","seq":1,"ts":"yesterday","in":-5,"out":"many"}`),
		[]byte(`{"boot":"x","seq":1,"ts":"2026-01-01T00:00:00Z","in":1e400,"out":0}`),
		[]byte(`{"boot":"` + strings.Repeat("A", 5000) + `","seq":1,"in":1,"out":0}`), // over max_payload
		[]byte(strings.Repeat("[", 4000)),
		{0xff, 0xfe, 0x00, 0x01},
	}
	topics := []string{"crowdwatch/flood/counter/dc-02", "crowdwatch/flood/counter/nobody", "crowdwatch/flood/status/dc-02", "crowdwatch/#junk"}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20000 && floodCtx.Err() == nil; i++ {
				cl := paho.NewClient(paho.NewClientOptions().AddBroker(broker).SetClientID(fmt.Sprintf("flood-%d-%d", w, i)).
					SetAutoReconnect(false).SetConnectTimeout(2 * time.Second))
				if tok := cl.Connect(); !tok.WaitTimeout(3*time.Second) || tok.Error() != nil {
					continue
				}
				// Until the broker drops this client (an oversized or refused payload may).
				for j := 0; j < 200 && cl.IsConnectionOpen() && floodCtx.Err() == nil; j++ {
					cl.Publish(topics[(i+j)%len(topics)], byte(j%2), false, junk[(i+j)%len(junk)]).WaitTimeout(time.Second)
					junkSent.Add(1)
				}
				cl.Disconnect(0)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 100000 && floodCtx.Err() == nil; i++ {
			hdr := http.Header{}
			switch i % 3 {
			case 0: // no credentials
			case 1:
				hdr.Set("Authorization", "Bearer not-a-token")
			case 2:
				hdr.Set("Origin", "http://evil.example")
			}
			c, resp, err := websocket.DefaultDialer.DialContext(floodCtx, "ws://"+svc.HTTP+"/api/v1/live", hdr)
			if err == nil {
				c.Close()
				t.Errorf("a WebSocket connection without valid credentials was accepted (attempt %d)", i)
				return
			}
			if resp != nil {
				resp.Body.Close()
			}
			wsTried.Add(1)
		}
	}()

	// A dashboard with a valid token must see the real count through the flood.
	dash, _, err := websocket.DefaultDialer.DialContext(ctx, "ws://"+svc.HTTP+"/api/v1/live", http.Header{"Authorization": {"Bearer " + securityToken}})
	if err != nil {
		t.Fatalf("the dashboard cannot connect: %v", err)
	}
	defer dash.Close()
	sawAll := make(chan struct{})
	var annex atomic.Int64
	go func() {
		for {
			var m struct {
				Zones []struct {
					ID        string `json:"id"`
					Occupancy int64  `json:"occupancy"`
				} `json:"zones"`
			}
			if err := dash.ReadJSON(&m); err != nil {
				return
			}
			for _, z := range m.Zones {
				switch z.ID {
				case "annex":
					annex.Store(z.Occupancy)
				case "hall":
					if z.Occupancy == reports {
						close(sawAll)
						return
					}
				}
			}
		}
	}()

	real := paho.NewClient(device.Options(broker, "real-dc-01"))
	if tok := real.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer real.Disconnect(100)
	for seq := 1; seq <= reports; seq++ {
		if err := device.PublishAcked(ctx, real, "crowdwatch/flood/counter/dc-01", []byte(report("real", seq, uint64(seq), 0))); err != nil {
			t.Fatalf("report %d: %v\n%s", seq, err, svc.logs)
		}
	}
	stopFlood()
	wg.Wait()
	t.Logf("real reports %d acknowledged during %d junk publishes and %d refused WebSocket attempts", reports, junkSent.Load(), wsTried.Load())
	if junkSent.Load() == 0 || wsTried.Load() == 0 {
		t.Fatalf("the flood did not run: %d junk publishes, %d WebSocket attempts", junkSent.Load(), wsTried.Load())
	}
	select {
	case <-sawAll:
	case <-time.After(10 * time.Second):
		t.Fatalf("the dashboard did not see hall at %d within 10s of the last report", reports)
	}
	if n := annex.Load(); n != 0 {
		t.Errorf("annex, whose counter only sent junk, shows %d people; want 0", n)
	}
	resp, err := http.Get("http://" + svc.HTTP + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/readyz after the flood: %s", resp.Status)
	}
}
