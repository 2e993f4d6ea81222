package zones

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"
)

// jumpStore has one door per counter width, with and without a width_m.
const jumpStore = `
site: {id: test-site, timezone: UTC}
zones:
  - {id: hall, capacity: 1000}
  - {id: shop, capacity: 1000}
  - {id: yard, capacity: 1000}
doors:
  - {id: d64, from: outside, to: hall, width_m: 2, counter: {device: dc-64, width: 64}}
  - {id: d32, from: outside, to: shop, counter: {device: dc-32}}
  - {id: d16, from: outside, to: yard, width_m: 1, counter: {device: dc-16, width: 16}}
`

// report is one counter report made at ts, on line "1" unless lines are given.
type report struct {
	dev, boot string
	seq       uint64
	after     time.Duration // service clock moves this far before the report arrives
	ts        time.Duration // the device's ts, from the harness's start time
	in, out   uint64
	interval  bool
	want      Outcome
	reason    string
}

func TestImpossibleJumpsAreRefusedAndRealOnesAreNot(t *testing.T) {
	cases := []struct {
		name    string
		reports []report
		want    map[string]int64
	}{
		{"a 64-bit counter read as 2^64-1 after in:5", []report{
			{dev: "dc-64", boot: "A", seq: 1, in: 5, want: Applied},
			{dev: "dc-64", boot: "A", seq: 2, after: time.Second, ts: time.Second, in: math.MaxUint64, want: Rejected, reason: "out_of_range"},
			{dev: "dc-64", boot: "A", seq: 3, after: time.Second, ts: 2 * time.Second, in: 6, want: Applied},
		}, map[string]int64{"hall": 6}},
		{"a new boot at 2^63, even with the time since the last report", []report{
			{dev: "dc-64", boot: "A", seq: 1, in: 1 << 63, want: Rejected, reason: "out_of_range"},
			{dev: "dc-64", boot: "A", seq: 2, in: 1<<63 + 1, want: Rejected, reason: "out_of_range"},
			{dev: "dc-64", boot: "B", seq: 1, in: 3, want: Applied},
			{dev: "dc-64", boot: "C", seq: 1, after: 24 * time.Hour, ts: 24 * time.Hour, in: 1 << 63, want: Rejected, reason: "out_of_range"},
		}, map[string]int64{"hall": 3}},
		{"more than a 2 m door passes in the time, until the time is there", []report{
			{dev: "dc-64", boot: "A", seq: 1, in: 10, want: Applied},
			// 1000 people through 2 m in 10 s (allowed at least a minute: 320).
			{dev: "dc-64", boot: "A", seq: 2, after: 10 * time.Second, ts: 10 * time.Second, in: 1010, want: Rejected, reason: "out_of_range"},
			// The refusal changed nothing, so the time since seq 1 keeps growing: after 10
			// minutes the same totals fit (3200) and count in full.
			{dev: "dc-64", boot: "A", seq: 3, after: 10 * time.Minute, ts: 10 * time.Minute, in: 1010, want: Applied},
		}, map[string]int64{"hall": 1010}},
		{"a reboot's first report is bounded by the time since the previous boot's last", []report{
			{dev: "dc-64", boot: "A", seq: 1, in: 1, want: Applied},
			{dev: "dc-64", boot: "B", seq: 1, after: 5 * time.Second, ts: 5 * time.Second, in: 5000, want: Rejected, reason: "out_of_range"},
			{dev: "dc-64", boot: "B", seq: 2, after: 5 * time.Second, ts: 10 * time.Second, in: 4, want: Applied},
		}, map[string]int64{"hall": 5}},
		{"a gap after a two-hour outage at a door of unknown width", []report{
			{dev: "dc-32", boot: "A", seq: 1, in: 10, want: Applied},
			{dev: "dc-32", boot: "A", seq: 2, after: 2 * time.Hour, ts: 2 * time.Hour, in: 50010, out: 40000, want: Applied},
		}, map[string]int64{"shop": 10010}},
		{"a backlog the device made over half an hour, delivered at once", []report{
			{dev: "dc-64", boot: "A", seq: 1, after: 30 * time.Minute, in: 0, want: Applied},
			{dev: "dc-64", boot: "A", seq: 2, ts: 30 * time.Minute, in: 5000, out: 4000, want: Applied},
		}, map[string]int64{"hall": 1000}},
		{"a device clock that stands still, after an outage by the service's clock", []report{
			{dev: "dc-64", boot: "A", seq: 1, in: 0, want: Applied},
			{dev: "dc-64", boot: "A", seq: 2, after: time.Hour, in: 9000, want: Applied},
		}, map[string]int64{"hall": 9000}},
		{"16-bit wraps, from a first report near the top", []report{
			{dev: "dc-16", boot: "A", seq: 1, in: 65500, out: 65500, want: Applied},
			{dev: "dc-16", boot: "A", seq: 2, after: time.Second, ts: time.Second, in: 20, out: 10, want: Applied},
			{dev: "dc-16", boot: "A", seq: 3, after: time.Second, ts: 2 * time.Second, in: 65535, out: 65535, want: Rejected, reason: "out_of_range"},
		}, map[string]int64{"yard": 10}},
		{"a period count beyond any report", []report{
			{dev: "dc-32", boot: "A", seq: 1, in: MaxCrossingsPerReport + 1, interval: true, want: Rejected, reason: "out_of_range"},
			{dev: "dc-32", boot: "A", seq: 2, in: 3, interval: true, want: Applied},
			{dev: "dc-32", boot: "A", seq: 3, after: time.Second, ts: time.Second, in: 200000, interval: true, want: Rejected, reason: "out_of_range"},
		}, map[string]int64{"shop": 3}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarnessFor(t, "", jumpStore)
			start := h.clock()
			for i, r := range tc.reports {
				h.advance(r.after)
				m := counter(r.dev, r.boot, r.seq, line("1", r.in, r.out))
				m.Report.TS, m.Report.Interval = start.Add(r.ts), r.interval
				before := stateOf(h.engine)
				if got := h.send(m); got != r.want {
					t.Fatalf("report %d: %v, want %v", i, got, r.want)
				}
				if after := stateOf(h.engine); r.want == Rejected && after != before {
					t.Fatalf("report %d was refused but changed the state:\n%s\n%s", i, before, after)
				}
			}
			h.expect(tc.want)
			rejected := 0
			for _, r := range tc.reports {
				if r.reason == "out_of_range" {
					rejected++
				}
			}
			if v := testutil.ToFloat64(h.engine.metrics.messages.WithLabelValues("rejected", "out_of_range")); v != float64(rejected) {
				t.Errorf("out_of_range rejections metric = %v, want %d", v, rejected)
			}
		})
	}
}

// stateOf is what a report may change: zones, doors, and each device's boots and totals.
func stateOf(e *Engine) string {
	s := e.Snapshot()
	state := fmt.Sprint(s.Zones, s.Doors)
	done := make(chan string, 1)
	// The device records belong to the engine goroutine: read them there.
	_, _ = e.do(context.Background(), func() (any, error) {
		known := map[string]*deviceState{}
		for id, d := range e.devices {
			if len(d.Boots) > 0 || !d.LastSeen.IsZero() || d.Online || d.Reports > 0 {
				known[id] = d // an empty record is the same as none
			}
		}
		b, _ := json.Marshal(known)
		done <- string(b)
		return nil, nil
	})
	return state + <-done
}

// A refused report is not proof the device works: it must not make it look alive.
func TestRefusedReportDoesNotKeepADeviceOnline(t *testing.T) {
	h := newHarnessFor(t, "", jumpStore)
	if got := h.send(counter("dc-64", "A", 1, line("1", 1<<63, 0))); got != Rejected {
		t.Fatalf("outcome %v", got)
	}
	for _, d := range h.engine.Snapshot().Devices {
		if d.ID == "dc-64" && (d.Online || d.LastSeen != nil || d.Boot != "") {
			t.Fatalf("a refused report changed the device: %+v", d)
		}
	}
}

// Every sum is checked: a crossing that would take a zone past the top of int64 is refused,
// not wrapped to a negative figure.
func TestOccupancyArithmeticIsOverflowChecked(t *testing.T) {
	h := newHarnessFor(t, "", jumpStore)
	// A correction cannot take a zone there (it is bounded to 10 x capacity)...
	if _, err := h.engine.Correct(context.Background(), "hall", math.MaxInt64-2, "test", "overflow"); err == nil {
		t.Fatal("a correction to 2^63-3 was accepted")
	}
	// ...so the sums are checked on the figures, as a replayed log entry would meet them.
	top := newOccupancy(h.model)
	top.zones[0].Occupancy = math.MaxInt64 - 2
	if _, err := top.applyDoors([]DoorDelta{{Door: "d64", In: 5}}, h.clock()); err == nil {
		t.Fatal("a crossing past the top of int64 was applied")
	}
	if top.zones[0].Occupancy != math.MaxInt64-2 {
		t.Fatalf("a refused crossing changed the zone: %+v", top.zones[0])
	}
	if _, err := top.applyDoors([]DoorDelta{{Door: "d64", In: 2}}, h.clock()); err != nil || top.zones[0].Occupancy != math.MaxInt64 {
		t.Fatalf("a crossing up to the top of int64: %v, %+v", err, top.zones[0])
	}

	// And below the bottom, and on the doors' totals.
	o := newOccupancy(h.model)
	o.zones[0].Occupancy = math.MinInt64 + 1
	if _, err := o.applyDoors([]DoorDelta{{Door: "d64", Out: 2}}, h.clock()); err == nil {
		t.Fatal("a crossing below the bottom of int64 was applied")
	}
	if _, err := o.applyDoors([]DoorDelta{{Door: "d64", In: math.MaxUint64}}, h.clock()); err == nil {
		t.Fatal("in=2^64-1 was applied")
	}
	o.doors[0].In = math.MaxUint64
	if _, err := o.applyDoors([]DoorDelta{{Door: "d64", In: 1}}, h.clock()); err == nil {
		t.Fatal("a door's total wrapped")
	}
	if o.zones[0].Occupancy != math.MinInt64+1 || o.doors[0].In != math.MaxUint64 {
		t.Fatalf("a refused crossing changed the figures: %+v %+v", o.zones[0], o.doors[0])
	}
	if _, err := o.set(0, math.MaxInt64, h.clock()); err == nil {
		t.Fatal("an anchor overflowing the difference was applied")
	}
}

// unboundStore binds only line "1" of dc-01.
const unboundStore = `
site: {id: test-site, timezone: UTC}
zones:
  - {id: hall, capacity: 1000}
doors:
  - {id: main, from: outside, to: hall, counter: {device: dc-01, line: "1"}}
`

// storedDevice reads a device's record as the database holds it.
func storedDevice(t *testing.T, path, id string) deviceState {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var d deviceState
	err = db.View(func(tx *bolt.Tx) error { return decodeRecord(tx.Bucket(bucketDevices).Get([]byte(id)), &d) })
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A device naming ever new line ids, none bound to a door, must not grow its stored record:
// only bound lines are kept, the others are counted in a metric.
func TestUnboundLinesAreNotStored(t *testing.T) {
	path := t.TempDir() + "/cw.db"
	h := newHarnessFor(t, path, unboundStore)
	const reports, extra = 20, 40
	for seq := uint64(1); seq <= reports; seq++ {
		lines := []LineCount{line("1", seq, 0)}
		for j := range extra {
			lines = append(lines, line(fmt.Sprintf("x%d-%d", seq, j), 7, 7))
		}
		mustApply(t, h.send(counter("dc-01", "A", seq, lines...)))
	}
	h.expect(map[string]int64{"hall": reports})
	if v := testutil.ToFloat64(h.engine.metrics.unbound.WithLabelValues("dc-01")); v != reports*extra {
		t.Errorf("unbound lines metric = %v, want %d", v, reports*extra)
	}
	// A report with only unbound lines counts nothing and keeps nothing.
	mustApply(t, h.send(counter("dc-01", "A", reports+1, line("zz", 1, 1))))
	h.stop()
	d := storedDevice(t, path, "dc-01")
	if len(d.Boots) != 1 || len(d.Boots[0].Totals) != 1 || d.Boots[0].Totals["1"] != [2]uint64{reports, 0} {
		t.Fatalf("stored record keeps %d lines, want only line 1 (%v)", len(d.Boots[0].Totals), d.Boots[0].Totals["1"])
	}
}

// A record written before unbound lines were refused is cleaned when it is loaded.
func TestStoredUnboundLinesArePrunedOnLoad(t *testing.T) {
	path := t.TempDir() + "/cw.db"
	h := newHarnessFor(t, path, unboundStore)
	mustApply(t, h.send(counter("dc-01", "A", 1, line("1", 3, 0))))
	h.stop()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDevices)
		var d deviceState
		if err := decodeRecord(b.Get([]byte("dc-01")), &d); err != nil {
			return err
		}
		for j := range 500 {
			d.Boots[0].Totals[fmt.Sprintf("junk-%d", j)] = [2]uint64{1, 1}
		}
		v, _ := json.Marshal(&d)
		return b.Put([]byte("dc-01"), v)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	h.start()
	mustApply(t, h.send(counter("dc-01", "A", 2, line("1", 4, 0))))
	h.expect(map[string]int64{"hall": 4})
	h.stop()
	if d := storedDevice(t, path, "dc-01"); len(d.Boots[0].Totals) != 1 {
		t.Fatalf("after a load and a report the record still has %d lines", len(d.Boots[0].Totals))
	}
}
