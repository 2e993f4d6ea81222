package zones

import (
	"context"
	"sync"
	"testing"
	"time"
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
