package zones

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/configs"
)

// BenchmarkEngineSubmitCommit measures the engine alone: decoded reports in, group commits to
// bbolt, acknowledgements out, without MQTT.
func BenchmarkEngineSubmitCommit(b *testing.B) {
	h := newHarness(b, "")
	defer h.stop()
	devs := []string{"dc-01", "dc-02", "dc-04"} // dc-03 is a 16-bit counter
	ts := time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	done := func(Outcome) { wg.Done() }
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		seq := uint64(i/len(devs) + 1)
		wg.Add(1)
		m := &Message{Received: time.Now(), Done: done, Report: &Report{Device: devs[i%len(devs)], Kind: KindCounter,
			Boot: "b", Seq: seq, TS: ts, Lines: []LineCount{{Line: "1", In: seq * 2, Out: seq}}}}
		if err := h.engine.Submit(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// benchEngine is an engine that is not running: the benchmark drives apply and commit itself
// from this goroutine, as Run would.
func benchEngine(b *testing.B) *Engine {
	b.Helper()
	cfg, err := configs.Parse([]byte(testStore), nil)
	if err != nil {
		b.Fatal(err)
	}
	store, err := OpenStore(filepath.Join(b.TempDir(), "cw.db"), "test-site")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	now := time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)
	e, err := NewEngine(NewModel(cfg), store, NewMetrics(prometheus.NewRegistry()), Options{
		ResetHour: -1, Now: func() time.Time { return now }, CommitInterval: time.Millisecond, CommitOnIdle: true,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func benchReport(i int) *Message {
	devs := []string{"dc-01", "dc-02", "dc-04"}
	seq := uint64(i/len(devs) + 1)
	return &Message{Received: time.Now(), Report: &Report{Device: devs[i%len(devs)], Kind: KindCounter, Boot: "b", Seq: seq,
		TS: time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC), Lines: []LineCount{{Line: "1", In: seq * 2, Out: seq}}}}
}

// BenchmarkApply is the in-memory part of one report: normalising the counter, moving people
// through the door and its zones, staging the writes. The staged batch is dropped every 256
// reports without writing, so no disk time is included.
func BenchmarkApply(b *testing.B) {
	e := benchEngine(b)
	msgs := make([]*Message, b.N)
	for i := range msgs {
		msgs[i] = benchReport(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if o, reason := e.apply(msgs[i]); o != Applied {
			b.Fatalf("report %d: %v %s", i, o, reason)
		}
		if i%256 == 255 {
			e.pending.clear()
		}
	}
}

// BenchmarkCommit is one group commit to bbolt (fsync included) of a batch of reports from 3
// counters, per report. batch=1 is a quiet store (each report committed alone); larger
// batches are what the idle-commit policy forms under load.
func BenchmarkCommit(b *testing.B) {
	for _, size := range []int{1, 16, 128} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			e := benchEngine(b)
			next := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += size {
				b.StopTimer()
				for range size {
					if o, _ := e.apply(benchReport(next)); o != Applied {
						b.Fatal("report not applied")
					}
					next++
				}
				b.StartTimer()
				if err := e.store.commit(&e.pending, e.occ); err != nil {
					b.Fatal(err)
				}
				e.pending.clear()
			}
		})
	}
}

// BenchmarkRecord encodes and decodes one record of each kind (zones/record.go), the work a
// commit and a store's load do per record.
func BenchmarkRecord(b *testing.B) {
	dev := sampleDevices()[1]
	ent := sampleEntries()[0]
	zone := zoneRecord{Occupancy: -3, Updated: recT0, Clamped: 1, Anchored: 1 << 50, LastAnchor: -7, Corrected: 2}
	door := doorRecord{In: 1 << 40, Out: 5}
	devB, _ := appendDevice(nil, dev)
	entB, zoneB, doorB := appendEntry(nil, ent), appendZone(nil, &zone), appendDoor(nil, &door)
	for _, c := range []struct {
		name   string
		encode func(buf []byte) []byte
		decode func() error
	}{
		{"device", func(buf []byte) []byte { buf, _ = appendDevice(buf, dev); return buf },
			func() error { var d deviceState; return decodeRecord(devB, &d) }},
		{"entry", func(buf []byte) []byte { return appendEntry(buf, ent) },
			func() error { var e LogEntry; return decodeRecord(entB, &e) }},
		{"zone", func(buf []byte) []byte { return appendZone(buf, &zone) },
			func() error { var z zoneRecord; return decodeRecord(zoneB, &z) }},
		{"door", func(buf []byte) []byte { return appendDoor(buf, &door) },
			func() error { var d doorRecord; return decodeRecord(doorB, &d) }},
	} {
		b.Run("encode="+c.name, func(b *testing.B) {
			buf := make([]byte, 0, 512)
			b.ReportAllocs()
			for b.Loop() {
				buf = c.encode(buf[:0])
			}
		})
		b.Run("decode="+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.decode(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
