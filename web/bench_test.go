package web

import (
	"encoding/json"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// BenchmarkFanout measures the live feed end to end over loopback WebSockets: one zone
// changes rate times a second (each change one update message to every dashboard client);
// every client reads and decodes each message. b.N is the number of changes. Reported:
// deliveries/s, p50 and p99 delivery latency (from the update's "at" to its decoding by the
// client) and heap per client (both ends of each connection are in this process).
//
//	go test -run '^$' -bench Fanout -benchtime 300x ./web
func BenchmarkFanout(b *testing.B) {
	for _, bc := range []struct{ clients, rate int }{{100, 100}, {1000, 100}, {1000, 200}, {3000, 50}} {
		b.Run(fmt.Sprintf("clients=%d/updates=%d", bc.clients, bc.rate), func(b *testing.B) {
			benchFanout(b, bc.clients, bc.rate)
		})
	}
}

func benchFanout(b *testing.B, clients, rate int) {
	f := startLiveEvery(b, nil, 64, time.Millisecond) // coalescing off the critical path: every change goes out
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	conns := make([]*websocket.Conn, clients)
	for i := range conns {
		conns[i] = f.dial(b, "")
		read(b, conns[i]) // the snapshot
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)

	var mu sync.Mutex
	latencies := make([]time.Duration, 0, clients*b.N)
	var wg sync.WaitGroup
	final := int64(-1)
	for _, c := range conns {
		wg.Add(1)
		go func(c *websocket.Conn) {
			defer wg.Done()
			own := make([]time.Duration, 0, b.N)
			defer func() { mu.Lock(); latencies = append(latencies, own...); mu.Unlock() }()
			for {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, data, err := c.ReadMessage()
				if err != nil {
					return
				}
				var m struct {
					Type  string    `json:"type"`
					At    time.Time `json:"at"`
					Zones []struct {
						Occupancy int64 `json:"occupancy"`
					} `json:"zones"`
				}
				if json.Unmarshal(data, &m) != nil || m.Type != "update" {
					continue
				}
				own = append(own, time.Since(m.At))
				if len(m.Zones) > 0 && m.Zones[0].Occupancy == final {
					return
				}
			}
		}(c)
	}
	every := time.Second / time.Duration(rate)
	b.ResetTimer()
	start := time.Now()
	next := start
	for i := range b.N {
		f.engine.set(int64(i%1000) + 1)
		next = next.Add(every)
		time.Sleep(time.Until(next))
	}
	final = 5000
	time.Sleep(5 * time.Millisecond)
	f.engine.set(final)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	slices.Sort(latencies)
	pct := func(p float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(float64(len(latencies))/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/float64(clients)/1024, "heap-KB/client")
	b.ReportMetric(float64(f.live.Drops()), "dropped")
	b.ReportMetric(0, "ns/op")
}
