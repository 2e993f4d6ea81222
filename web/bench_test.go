package web

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
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
	// Coalescing off the critical path: every change goes out. Every client is one address:
	// the feed's limits are lifted.
	f := startLiveLimited(b, nil, 64, time.Millisecond, FeedLimits{PerPrincipal: 5000, PerAddress: 5000, Total: 5000})
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

// BenchmarkFeedUpdate is the feed's work per update for a store of 200 zones, of which
// `changed` moved since the last update: build the view from the snapshot, diff it with the
// last one, encode the update once for every client. No clients: fan-out is BenchmarkFanout.
func BenchmarkFeedUpdate(b *testing.B) {
	const zoneCount = 200
	cfg := &configs.Config{Site: configs.Site{ID: "s1", Name: "Store"}}
	for i := range zoneCount {
		cfg.Zones = append(cfg.Zones, configs.Zone{ID: fmt.Sprintf("z%d", i), Capacity: 100})
	}
	snapshot := func(round int) *zones.Snapshot {
		s := &zones.Snapshot{Taken: time.Now()}
		for i := range zoneCount {
			occ := int64(i % 50)
			if i < round%zoneCount+20 && i >= round%zoneCount { // 20 zones move each round
				occ += int64(round % 7)
			}
			s.Zones = append(s.Zones, zones.ZoneState{ID: fmt.Sprintf("z%d", i), Name: "Zone", Occupancy: occ, Capacity: 100, Ratio: float64(occ) / 100})
			s.Devices = append(s.Devices, zones.DeviceStatus{ID: fmt.Sprintf("dc-%d", i), Online: true, Reports: uint64(round), Seq: uint64(round)})
		}
		return s
	}
	snaps := make([]*zones.Snapshot, 70)
	for i := range snaps {
		snaps[i] = snapshot(i)
	}
	eng := &liveEngine{ch: make(chan struct{}, 1)}
	eng.snap.Store(snaps[0])
	l := NewLive(LiveOptions{Layout: LayoutOf(cfg, nil), Engine: eng, Log: slog.New(slog.DiscardHandler)})
	cur := l.build(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		eng.snap.Store(snaps[(i+1)%len(snaps)])
		next := l.build(cur.screens)
		if dash, _ := l.diff(cur, next, uint64(i)); dash == nil {
			b.Fatal("no update for a changed snapshot")
		}
		cur = next
	}
}
