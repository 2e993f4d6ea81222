package zones

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// vtest is a decoder registered under a test-only name, so these tests need no real vendor
// format: the engine sees only Readings.
type vtest struct{}

func (vtest) Name() string                                    { return "vtest" }
func (vtest) Decode(formats.Input) ([]formats.Reading, error) { return nil, nil }
func (vtest) Counting() formats.Semantics                     { return formats.SinceReset }

func init() {
	if _, ok := formats.Lookup("vtest"); !ok {
		formats.Register(vtest{})
	}
}

const vendorStore = `
site: {id: test-site, timezone: UTC}
occupancy: {max_clock_skew: 2m}
zones:
  - {id: store, capacity: 10000}
  - {id: upper, parent: store, capacity: 1000}
  - {id: promo, parent: store, capacity: 1000}
doors:
  - {id: a, from: outside, to: store, counter: {device: sr, line: "1"}}
  - {id: a2, from: outside, to: store, counter: {device: sr, line: "2"}}
  - {id: b, from: outside, to: store, counter: {device: iv, line: "1"}}
  - {id: c, from: outside, to: store, counter: {device: inc, line: "1"}}
  - {id: d, from: store, to: upper, counter: {device: lora, line: "1", width: 16}}
  - {id: e, from: outside, to: store, swap: true, counter: {device: sw, line: "L"}}
sensors:
  - {device: area, zone: promo, region: "1"}
devices:
  - {id: sr, format: vtest}
  - {id: iv, format: vtest, counting: interval}
  - {id: inc, format: vtest, counting: increment}
  - {id: lora, format: vtest}
  - {id: sw, format: vtest}
  - {id: area, format: vtest}
`

// vsend submits a vendor message received at the engine's clock.
func (h *harness) vsend(device string, readings ...formats.Reading) Outcome {
	h.t.Helper()
	got := make(chan Outcome, 1)
	for i := range readings {
		readings[i].Device = device
	}
	m := &Message{Vendor: &VendorReport{Device: device, Readings: readings}, Received: h.clock(),
		Done: func(o Outcome) { got <- o }}
	if err := h.engine.Submit(context.Background(), m); err != nil {
		h.t.Fatal(err)
	}
	select {
	case o := <-got:
		return o
	case <-time.After(10 * time.Second):
		h.t.Fatal("no outcome within 10s")
		return Failed
	}
}

func totals(at time.Time, lines ...formats.Line) formats.Reading {
	return formats.Reading{Semantics: formats.SinceReset, Lines: lines, DeviceTime: at}
}

func fl(id string, in, out uint64) formats.Line { return formats.Line{ID: id, In: in, Out: out} }

func (h *harness) door(id string) (in, out uint64) {
	for _, d := range h.engine.Snapshot().Doors {
		if d.ID == id {
			return d.In, d.Out
		}
	}
	h.t.Fatalf("no door %s", id)
	return 0, 0
}

func (h *harness) expectDoor(id string, in, out uint64) {
	h.t.Helper()
	if gi, go_ := h.door(id); gi != in || go_ != out {
		h.t.Errorf("door %s: in=%d out=%d, want in=%d out=%d", id, gi, go_, in, out)
	}
}

func expectOutcome(t *testing.T, what string, got, want Outcome) {
	t.Helper()
	if got != want {
		t.Errorf("%s: outcome %s, want %s", what, got, want)
	}
}

func TestSinceResetCountsDifferencesResetsAndIgnoresLateOnes(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	t0 := h.clock()
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

	// The first total is the baseline: what the device counted before it was ours is not.
	expectOutcome(t, "baseline", h.vsend("sr", totals(at(0), fl("1", 500, 400))), Applied)
	h.expectDoor("a", 0, 0)
	h.advance(10 * time.Second)
	expectOutcome(t, "growth", h.vsend("sr", totals(at(10), fl("1", 510, 403))), Applied)
	h.expectDoor("a", 10, 3)
	expectOutcome(t, "the same totals again", h.vsend("sr", totals(at(10), fl("1", 510, 403))), Duplicate)
	// A late duplicate of the baseline: an older time, a lower total. Not a reset.
	h.vsend("sr", totals(at(0), fl("1", 500, 400)))
	h.expectDoor("a", 10, 3)
	// A decrease with a later device time is a reset: the new total counts from zero.
	h.advance(10 * time.Second)
	h.vsend("sr", totals(at(20), fl("1", 4, 1)))
	h.expectDoor("a", 14, 4)
	// A late reading from before that reset: higher totals, but older. Nothing.
	h.vsend("sr", totals(at(15), fl("1", 512, 403)))
	h.expectDoor("a", 14, 4)
	// A new epoch is a reset even when the totals grew past the old ones.
	h.advance(10 * time.Second)
	r := totals(at(30), fl("1", 20, 5))
	r.Epoch = "2026-11-11T10:00:25Z"
	h.vsend("sr", r) // the first epoch seen is adopted: counts the difference 16, 4
	h.expectDoor("a", 30, 8)
	h.advance(10 * time.Second)
	r = totals(at(40), fl("1", 21, 6))
	r.Epoch = "2026-11-11T10:00:35Z"
	h.vsend("sr", r)
	h.expectDoor("a", 51, 14)
	// A late reading of the previous epoch changes nothing.
	r = totals(at(32), fl("1", 25, 5))
	r.Epoch = "2026-11-11T10:00:25Z"
	h.vsend("sr", r)
	h.expectDoor("a", 51, 14)
	// The device says it was reset.
	h.advance(10 * time.Second)
	r = totals(at(50), fl("1", 2, 0))
	r.Reset = true
	h.vsend("sr", r)
	h.expectDoor("a", 53, 14)
	// Never negative: occupancy is what the doors say.
	h.expect(map[string]int64{"store": 53 - 14})
}

func TestSinceResetLinesOfOneDeviceAreIndependentAndUnboundOnesNotStored(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	t0 := h.clock()
	h.vsend("sr", totals(t0, fl("1", 0, 0), fl("2", 0, 0)))
	for i := range 50 {
		h.advance(time.Second)
		h.vsend("sr", totals(h.clock(), fl("1", uint64(i+1), 0), fl("2", 0, uint64(i)), fl(fmt.Sprintf("ghost-%d", i), 9, 9)))
	}
	h.expectDoor("a", 50, 0)
	h.expectDoor("a2", 0, 49)
	rec := h.deviceRecord("sr")
	if len(rec.Vendor.Lines) != 2 || len(rec.Vendor.Unbound) > maxSeenLines {
		t.Errorf("record holds %d lines and %d unbound ids: %+v", len(rec.Vendor.Lines), len(rec.Vendor.Unbound), rec.Vendor)
	}
	if got := testutil.ToFloat64(h.engine.metrics.unbound.WithLabelValues("sr")); got != 50 {
		t.Errorf("unbound lines counted %v, want 50", got)
	}
}

func (h *harness) deviceRecord(id string) *deviceState {
	h.t.Helper()
	var d deviceState
	err := h.store.db.View(func(tx *bolt.Tx) error {
		return decodeRecord(tx.Bucket(bucketDevices).Get([]byte(id)), &d)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return &d
}

func window(start time.Time, minutes int, in, out uint64) formats.Reading {
	return formats.Reading{Semantics: formats.Interval, Lines: []formats.Line{fl("1", in, out)},
		WindowStart: start, WindowEnd: start.Add(time.Duration(minutes) * time.Minute), DeviceTime: start.Add(time.Duration(minutes) * time.Minute)}
}

func TestIntervalWindowsCountOnceInAnyOrder(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	t0 := h.clock().Add(-10 * time.Minute)
	w := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Minute) }
	expectOutcome(t, "window 2", h.vsend("iv", window(w(2), 1, 5, 1)), Applied)
	expectOutcome(t, "window 0, late", h.vsend("iv", window(w(0), 1, 3, 0)), Applied)
	expectOutcome(t, "window 2 again", h.vsend("iv", window(w(2), 1, 5, 1)), Duplicate)
	expectOutcome(t, "window 1", h.vsend("iv", window(w(1), 1, 2, 2)), Applied)
	h.expectDoor("b", 10, 3)
	// A window that overlaps one counted is refused: part of it was counted.
	expectOutcome(t, "overlap", h.vsend("iv", window(w(1).Add(30*time.Second), 1, 7, 7)), Rejected)
	// A total since reset from a device counted by intervals is ignored, and counted as such.
	expectOutcome(t, "other semantics", h.vsend("iv", totals(h.clock(), fl("1", 900, 0))), Applied)
	h.expectDoor("b", 10, 3)
	if got := testutil.ToFloat64(h.engine.metrics.ignored.WithLabelValues("iv", "since_reset")); got != 1 {
		t.Errorf("ignored readings %v, want 1", got)
	}
	// Restart in the middle: the windows counted are on disk and stay counted once.
	h.restart()
	expectOutcome(t, "window 0 after restart", h.vsend("iv", window(w(0), 1, 3, 0)), Duplicate)
	h.vsend("iv", window(w(3), 1, 1, 0))
	h.expectDoor("b", 11, 3)
}

func TestIntervalRecordIsBounded(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	t0 := h.clock().Add(-time.Duration(maxVendorWindows+50) * time.Minute)
	for i := range maxVendorWindows + 10 {
		h.vsend("iv", window(t0.Add(time.Duration(i)*time.Minute), 1, 1, 0))
	}
	if n := len(h.deviceRecord("iv").Vendor.Windows["1"]); n != maxVendorWindows {
		t.Errorf("record holds %d windows, want %d", n, maxVendorWindows)
	}
	// The oldest window, forgotten, cannot be counted again: it is refused as too old.
	expectOutcome(t, "forgotten window", h.vsend("iv", window(t0, 1, 1, 0)), Rejected)
	h.expectDoor("b", maxVendorWindows+10, 0)
}

func event(key string, in, out uint64) formats.Reading {
	return formats.Reading{Semantics: formats.Increment, Key: key, Lines: []formats.Line{fl("1", in, out)}}
}

func TestIncrementsCountOncePerKeyWithABoundedMemory(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	expectOutcome(t, "event 1", h.vsend("inc", event("1008001:1", 1, 0)), Applied)
	expectOutcome(t, "event 1 re-sent", h.vsend("inc", event("1008001:1", 1, 0)), Duplicate)
	h.vsend("inc", event("1008002:1", 0, 1), event("1008001:2", 1, 0))
	h.expectDoor("c", 2, 1)
	for i := range maxVendorKeys + 100 {
		h.vsend("inc", event(fmt.Sprintf("k%d", i), 0, 0))
	}
	if n := len(h.deviceRecord("inc").Vendor.Keys); n != maxVendorKeys {
		t.Errorf("record holds %d keys, want at most %d", n, maxVendorKeys)
	}
	h.restart()
	expectOutcome(t, "a recent key after restart", h.vsend("inc", event(fmt.Sprintf("k%d", maxVendorKeys+99), 1, 0)), Duplicate)
	h.expectDoor("c", 2, 1)
}

func TestLoRaFramesThroughTwoGatewaysCountOnce(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	frame := func(fcnt uint64, in, out uint64) formats.Reading {
		r := totals(time.Time{}, fl("1", in, out)) // LoRa has no clock: timed by receive time
		r.Seq, r.HasSeq = fcnt, true
		return r
	}
	h.vsend("lora", frame(10, 100, 100))
	h.advance(time.Second)
	h.vsend("lora", frame(11, 105, 101))
	h.advance(time.Second)
	h.vsend("lora", frame(12, 108, 101))
	h.expectDoor("d", 8, 1)
	// The second gateway's copy of frame 11 arrives late, with a later receive time and a
	// lower total than frame 12: by its frame counter it is a duplicate, not a reset.
	h.advance(time.Second)
	expectOutcome(t, "frame 11 through the second gateway", h.vsend("lora", frame(11, 105, 101)), Duplicate)
	h.expectDoor("d", 8, 1)
	// Frame 14 arrives before frame 13 (a gateway's backhaul was slow): 13, never seen, is
	// older by its frame counter, so its lower total is not a reset.
	h.advance(time.Second)
	h.vsend("lora", frame(14, 110, 102))
	h.advance(time.Second)
	expectOutcome(t, "frame 13 after 14", h.vsend("lora", frame(13, 109, 101)), Duplicate)
	h.expectDoor("d", 10, 2)
	// A 16-bit counter cannot read 70000.
	expectOutcome(t, "too wide", h.vsend("lora", frame(15, 70000, 0)), Rejected)
	// Wrapping past the top of the 16-bit counter is a wrap, not a reset (an hour later, so
	// that the impossible-jump bound lets 65422 crossings through).
	h.advance(time.Hour)
	h.vsend("lora", frame(16, 65530, 102))
	h.advance(time.Minute)
	h.vsend("lora", frame(17, 3, 102))
	h.expectDoor("d", 65530-100+9, 2)
}

func TestAbsoluteReanchorsByTheNewestReading(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	t0 := h.clock()
	area := func(at time.Time, region string, n int64) formats.Reading {
		return formats.Reading{Semantics: formats.Absolute, Region: region, Count: n, DeviceTime: at}
	}
	h.vsend("area", area(t0, "1", 40))
	h.expect(map[string]int64{"promo": 40})
	h.vsend("area", area(t0.Add(-time.Second), "1", 10)) // older: changes nothing
	h.expect(map[string]int64{"promo": 40})
	h.vsend("area", area(t0.Add(time.Second), "2", 99)) // another region: not bound
	h.expect(map[string]int64{"promo": 40})
	h.vsend("area", area(t0.Add(2*time.Second), "1", 35))
	h.expect(map[string]int64{"promo": 35, "store": 35})
	expectOutcome(t, "negative", h.vsend("area", area(t0.Add(3*time.Second), "1", -1)), Rejected)
	h.expect(map[string]int64{"promo": 35})
}

func TestSkewedClockIsTimedByReceiveTime(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	t0 := h.clock()
	h.vsend("sr", totals(t0, fl("1", 0, 0)))
	// A device clock an hour behind: its readings would all look late. Timed by receive time
	// they count.
	h.advance(5 * time.Second)
	h.vsend("sr", totals(t0.Add(-time.Hour), fl("1", 3, 0)))
	h.expectDoor("a", 3, 0)
	h.advance(5 * time.Second)
	h.vsend("sr", totals(t0.Add(-time.Hour+time.Second), fl("1", 1, 0))) // a reset, seen by receive time
	h.expectDoor("a", 4, 0)
	if got := testutil.ToFloat64(h.engine.metrics.untrusted.WithLabelValues("sr")); got != 2 {
		t.Errorf("untrusted clock readings %v, want 2", got)
	}
}

func TestSwapExchangesInAndOut(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	h.vsend("sw", totals(h.clock(), fl("L", 0, 0)))
	h.advance(time.Second)
	h.vsend("sw", totals(h.clock(), fl("L", 2, 7)))
	h.expectDoor("e", 7, 2)
}

func TestRefusedVendorMessageChangesNothing(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	h.vsend("iv", window(h.clock().Add(-time.Minute), 1, 1, 0))
	before := h.deviceRecord("iv")
	// One message, two readings: the first fine, the second an impossible jump for a
	// one-minute window of a 10 m door. Neither counts.
	o := h.vsend("iv", window(h.clock().Add(-3*time.Minute), 1, 4, 0), window(h.clock().Add(-2*time.Minute), 1, 2_000_000, 0))
	expectOutcome(t, "impossible jump", o, Rejected)
	h.expectDoor("b", 1, 0)
	after := h.deviceRecord("iv")
	if len(after.Vendor.Windows["1"]) != len(before.Vendor.Windows["1"]) || after.Reports != before.Reports {
		t.Errorf("a refused message changed the record: %+v -> %+v", before.Vendor, after.Vendor)
	}
	// Sent again without the glitch, the good window counts.
	h.vsend("iv", window(h.clock().Add(-3*time.Minute), 1, 4, 0))
	h.expectDoor("b", 5, 0)
}

func TestVendorStateSurvivesRestartExactly(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	t0 := h.clock()
	h.vsend("sr", totals(t0, fl("1", 100, 0)))
	h.advance(time.Second)
	h.vsend("sr", totals(h.clock(), fl("1", 130, 10)))
	h.restart()
	// Redelivered after the restart: nothing new.
	expectOutcome(t, "redelivery", h.vsend("sr", totals(t0.Add(time.Second), fl("1", 130, 10))), Duplicate)
	h.advance(time.Second)
	h.vsend("sr", totals(h.clock(), fl("1", 131, 10)))
	h.restart()
	h.advance(time.Second)
	h.vsend("sr", totals(h.clock(), fl("1", 5, 2))) // a reset, recognised from the reloaded totals
	h.expectDoor("a", 36, 12)
	h.expect(map[string]int64{"store": 24})
	occ, err := Replay(h.store, h.model)
	if err != nil {
		t.Fatal(err)
	}
	if occ[0] != 24 {
		t.Errorf("replayed log gives %d, want 24", occ[0])
	}
}

func TestVendorReadingsForNativeDevicesAreRefused(t *testing.T) {
	h := newHarness(t, "")
	o := h.vsend("dc-01", totals(h.clock(), fl("1", 1, 0)))
	expectOutcome(t, "vendor reading for a native device", o, Rejected)
	if !strings.Contains(fmt.Sprint(h.engine.Snapshot().Devices[0].Format), "native") {
		t.Errorf("devices API format %q", h.engine.Snapshot().Devices[0].Format)
	}
}

func TestAbsoluteReadingsOfOneSecondAreOrderedByArrivalButCopiesLose(t *testing.T) {
	h := newHarnessFor(t, "", vendorStore)
	t0 := h.clock().Truncate(time.Second)
	area := func(n int64) formats.Reading {
		return formats.Reading{Semantics: formats.Absolute, Region: "1", Count: n, DeviceTime: t0}
	}
	h.vsend("area", area(20))
	h.vsend("area", area(25)) // the same second, later: the device's later word
	h.expect(map[string]int64{"promo": 25})
	h.vsend("area", area(20)) // a late copy of the first
	h.expect(map[string]int64{"promo": 25})
}
