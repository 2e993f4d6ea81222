package history

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/zones"
)

// fakeEngine publishes snapshots of one zone and one door as the engine does.
type fakeEngine struct {
	mu      sync.Mutex
	snap    *zones.Snapshot
	changed owner.Signal
}

func (f *fakeEngine) Snapshot() *zones.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeEngine) Subscribe() (<-chan struct{}, func()) { return f.changed.Subscribe() }

func (f *fakeEngine) set(in, out uint64) {
	f.mu.Lock()
	occ := int64(in - out)
	f.snap = &zones.Snapshot{Zones: []zones.ZoneState{{ID: "hall", Occupancy: occ, Capacity: 10, Ratio: float64(occ) / 10}},
		Doors: []zones.DoorState{{ID: "main", In: in, Out: out}}}
	f.mu.Unlock()
	f.changed.Notify()
}

func oneZoneSite() Site {
	return Site{ID: "one", Loc: time.UTC, Zones: []ZoneInfo{{ID: "hall", Capacity: 10}},
		Doors: []DoorInfo{{ID: "main", From: "outside", To: "hall"}}}
}

// startRecorder runs a recorder with fast intervals; stop ends it and waits.
func startRecorder(t *testing.T, eng *fakeEngine, path string, buffer int, now func() time.Time) (stop func(), reg *prometheus.Registry) {
	reg = prometheus.NewRegistry()
	rec, err := NewRecorder(eng, reg, Options{Path: path, Site: oneZoneSite(), SampleInterval: 10 * time.Millisecond,
		FlushInterval: 30 * time.Millisecond, LockTimeout: 50 * time.Millisecond, BufferBytes: buffer, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("recorder: %v", err)
		}
	})
	t.Cleanup(stop)
	// The recorder's first look at the engine sets the door baselines: wait for its first write.
	for range 500 {
		var wm int64
		if err := NewReader(path, nil, time.Second).view(context.Background(), func(q *txq) error { wm = q.wm; return nil }); err == nil && wm > 0 {
			return stop, reg
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("the recorder wrote nothing")
	return stop, reg
}

// waitVisitors polls a report of the last and next hour until it shows want visitors.
func waitVisitors(t *testing.T, path string, want int64) {
	t.Helper()
	r := NewReader(path, nil, time.Second)
	var got int64
	var err error
	for range 500 {
		now := time.Now()
		var rep *Report
		rep, err = r.Report(context.Background(), now.Add(-time.Hour), now.Add(time.Hour))
		if err == nil {
			if got = rep.Visitors; got == want {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("history shows %d visitors (%v), want %d", got, err, want)
}

// TestRecorderKeepsRecordsWhileTheFileIsBusyAndAcrossRestarts: a reader holding the file
// makes flushes fail; the records wait and are written once it lets go. A restart carries
// the crossings made while the recorder was down.
func TestRecorderKeepsRecordsWhileTheFileIsBusyAndAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	eng := &fakeEngine{}
	eng.set(0, 0)
	stop, reg := startRecorder(t, eng, path, 1<<20, nil)
	eng.set(5, 1)
	waitVisitors(t, path, 5)

	// A long report holds a shared lock: flushes time out and keep their records.
	db, err := openFile(path, true, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	eng.set(9, 2)
	for range 500 {
		if testkit.Metric(t, reg, "crowdwatch_history_flush_errors_total") > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := testkit.Metric(t, reg, "crowdwatch_history_flush_errors_total"); n == 0 {
		t.Fatal("no flush failed while the file was held")
	}
	db.Close()
	waitVisitors(t, path, 9)
	stop()

	// Down: people keep coming; the counters' totals carry them.
	eng.set(12, 3)
	stop, _ = startRecorder(t, eng, path, 1<<20, nil) // restarts after the crossings
	waitVisitors(t, path, 12)
	stop()
}

// TestRecorderDropsRawRecordsBeyondItsBuffer: with the file held and a tiny buffer, raw
// records are dropped and counted, and the minute and hour roll-ups, built from every sample
// in memory, still count every crossing once their windows close. The recorder's clock runs
// 200 ms per reading, so minutes pass quickly.
func TestRecorderDropsRawRecordsBeyondItsBuffer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	var clock atomic.Int64
	base := time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC)
	now := func() time.Time { return base.Add(time.Duration(clock.Add(200)) * time.Millisecond) }
	eng := &fakeEngine{}
	eng.set(0, 0)
	stop, reg := startRecorder(t, eng, path, 64, now)
	db, err := openFile(path, true, false, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 41 {
		eng.set(uint64(1+i), 0)
		time.Sleep(5 * time.Millisecond)
	}
	for range 500 {
		if testkit.Metric(t, reg, "crowdwatch_history_dropped_total") > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	db.Close()
	// Let the recorder's clock pass two more minutes, so the windows with the dropped samples
	// close and are written.
	until := base.Add(time.Duration(clock.Load())*time.Millisecond + 2*time.Minute).UnixMilli()
	r := NewReader(path, nil, time.Second)
	for range 1000 {
		var wm int64
		_ = r.view(context.Background(), func(q *txq) error { wm = q.wm; return nil })
		if wm > until {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if n := testkit.Metric(t, reg, "crowdwatch_history_dropped_total"); n == 0 {
		t.Fatal("nothing was dropped with a 64-byte buffer")
	}
	rep, err := r.Report(context.Background(), base, time.UnixMilli(until))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Zones[0].Entries != 41 || rep.Visitors != 41 {
		t.Errorf("roll-ups counted %d entries and %d visitors, want 41", rep.Zones[0].Entries, rep.Visitors)
	}
}
