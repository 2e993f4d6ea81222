package ingest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// benchStore has one door per device so every message changes state and is logged.
func benchStore(devices int) string {
	var b strings.Builder
	b.WriteString("site: {id: bench, timezone: UTC}\nmqtt: {embedded: {listen: \"127.0.0.1:0\", max_connections: 10000, max_connections_per_address: 10000}}\nzones:\n  - {id: store, capacity: 1000000}\n")
	b.WriteString("doors:\n")
	for i := range devices {
		fmt.Fprintf(&b, "  - {id: d%d, from: outside, to: store, counter: {device: dc-%d}}\n", i, i)
	}
	return b.String()
}

type benchService struct {
	engine *zones.Engine
	broker *Broker
	store  *zones.Store
	// stopEngine stops only the engine, leaving the broker up; stop stops everything.
	stopEngine, stop func()
}

func startBenchService(b testing.TB, devices int) *benchService {
	b.Helper()
	return startStoreService(b, benchStore(devices), BrokerOptions{})
}

// startStoreService runs an engine and the embedded broker for a store file.
func startStoreService(b testing.TB, yaml string, opts BrokerOptions) *benchService {
	b.Helper()
	cfg, err := configs.Parse([]byte(yaml), map[string]any{"storage.path": filepath.Join(b.TempDir(), "b.db")})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := zones.OpenStore(cfg.Storage.Path, cfg.Site.ID)
	if err != nil {
		b.Fatal(err)
	}
	engine, err := zones.NewEngine(zones.NewModel(cfg), store, nil, zones.Options{ResetHour: -1, Logger: log,
		CommitInterval: cfg.Storage.CommitInterval, CommitBatch: cfg.Storage.CommitBatch, CommitOnIdle: true})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = engine.Run(ctx) }()
	broker, err := NewBroker(engine, log, brokerOptions(cfg, engine.Model(), opts))
	if err != nil {
		b.Fatal(err)
	}
	if err := broker.Serve(); err != nil {
		b.Fatal(err)
	}
	var once sync.Once
	return &benchService{engine: engine, broker: broker, store: store, stopEngine: func() {
		once.Do(func() { cancel(); <-done })
	}, stop: func() {
		once.Do(func() { cancel(); <-done })
		broker.Close()
		store.Close()
	}}
}

// BenchmarkIngestEmbedded measures messages per second from MQTT devices through the embedded
// broker into committed bbolt state: each message counts only once its PUBACK, which is sent
// after the commit, has reached the device.
func BenchmarkIngestEmbedded(b *testing.B) {
	for _, devices := range []int{10, 100} {
		b.Run(fmt.Sprintf("devices=%d", devices), func(b *testing.B) {
			svc := startBenchService(b, devices)
			defer svc.stop()
			clients := make([]paho.Client, devices)
			for i := range clients {
				opts := paho.NewClientOptions().AddBroker("tcp://" + svc.broker.Addr().String()).SetClientID(fmt.Sprintf("dc-%d", i))
				clients[i] = paho.NewClient(opts)
				if tok := clients[i].Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
					b.Fatal(tok.Error())
				}
			}
			ts := time.Now().UTC().Format(time.RFC3339)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for i, cl := range clients {
				n := b.N / devices
				if i < b.N%devices {
					n++
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					topic := fmt.Sprintf("crowdwatch/bench/counter/dc-%d", i)
					for seq := 1; seq <= n; seq++ {
						payload := fmt.Sprintf(`{"boot":"b","seq":%d,"ts":%q,"in":%d,"out":0}`, seq, ts, seq)
						if tok := cl.Publish(topic, 1, false, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
							b.Errorf("publish: %v", tok.Error())
							return
						}
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
			if got := svc.engine.Snapshot().Zones[0].Occupancy; got != int64(b.N) {
				b.Fatalf("committed occupancy %d after %d messages of one crossing each", got, b.N)
			}
			if fi, err := os.Stat(svc.store.Path()); err == nil && b.N >= 10000 {
				// The file grows in large steps, so this is only meaningful for long runs.
				b.ReportMetric(float64(fi.Size())/float64(b.N), "dbbytes/msg")
			}
			for _, cl := range clients {
				cl.Disconnect(50)
			}
		})
	}
}

func BenchmarkDecodeCounter(b *testing.B) {
	payload := []byte(`{"boot":"a1b2c3","seq":123456,"ts":"2026-11-11T10:00:00+08:00","lines":{"1":{"in":12345,"out":12001},"2":{"in":88,"out":91}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if m := Decode(KindCounter, "dc-01", payload, 4096); m.Reject != nil {
			b.Fatal(m.Reject)
		}
	}
}

// brokerOptions fills opts with the broker's part of a store file, as app does.
func brokerOptions(cfg *configs.Config, model *zones.Model, opts BrokerOptions) BrokerOptions {
	opts.Embedded, opts.MaxPayload, opts.Site = cfg.MQTT.Embedded, cfg.MQTT.MaxPayload, cfg.Site.ID
	opts.Topics, opts.Model, opts.Warnings = TopicsFor(cfg), model, cfg.EmbeddedBrokerWarnings()
	opts.Devices = cfg.Devices.List
	return opts
}
