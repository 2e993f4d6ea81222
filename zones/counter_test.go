package zones

import (
	"errors"
	"fmt"
	"testing"
)

func TestCounterDelta(t *testing.T) {
	cases := []struct {
		name     string
		old, cur uint64
		width    int
		want     uint64
	}{
		{"rise", 10, 15, 32, 5},
		{"same", 10, 10, 32, 0},
		{"16-bit wrap", 65530, 4, 16, 10},
		{"16-bit wrap to zero", 65535, 0, 16, 1},
		{"16-bit reset from low value", 1200, 3, 16, 3},
		{"32-bit wrap", 1<<32 - 2, 5, 32, 7},
		{"32-bit reset", 50000, 7, 32, 7},
		{"64-bit never wraps", 100, 7, 64, 7},
		{"16-bit just under half range is a wrap", 40000, 7000, 16, 7000 + 65536 - 40000},
		{"16-bit beyond half range is a reset", 20000, 7000, 16, 7000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := counterDelta(tc.old, tc.cur, tc.width); got != tc.want {
				t.Fatalf("counterDelta(%d, %d, %d) = %d, want %d", tc.old, tc.cur, tc.width, got, tc.want)
			}
		})
	}
}

// step is one report to a fresh device and the crossings it must yield on line "1".
type step struct {
	boot     string
	seq      uint64
	in, out  uint64
	interval bool
	wantIn   uint64
	wantOut  uint64
	wantErr  string // "duplicate", or a reject reason
}

func TestApplyCounterSequences(t *testing.T) {
	cases := []struct {
		name  string
		width int
		steps []step
	}{
		{"totals rise", 32, []step{
			{boot: "a", seq: 1, in: 3, out: 1, wantIn: 3, wantOut: 1},
			{boot: "a", seq: 2, in: 5, out: 4, wantIn: 2, wantOut: 3},
		}},
		{"repeated seq changes nothing", 32, []step{
			{boot: "a", seq: 1, in: 3, wantIn: 3},
			{boot: "a", seq: 1, in: 3, wantErr: "duplicate"},
		}},
		{"older seq changes nothing", 32, []step{
			{boot: "a", seq: 5, in: 9, wantIn: 9},
			{boot: "a", seq: 4, in: 7, wantErr: "duplicate"},
			{boot: "a", seq: 6, in: 10, wantIn: 1},
		}},
		{"gap loses nothing", 32, []step{
			{boot: "a", seq: 1, in: 1, wantIn: 1},
			{boot: "a", seq: 9, in: 40, out: 2, wantIn: 39, wantOut: 2},
		}},
		{"first report of a boot counts from zero", 32, []step{
			{boot: "a", seq: 17, in: 12, out: 4, wantIn: 12, wantOut: 4},
		}},
		{"reboot starts again from zero", 32, []step{
			{boot: "a", seq: 1, in: 100, out: 90, wantIn: 100, wantOut: 90},
			{boot: "b", seq: 1, in: 2, out: 1, wantIn: 2, wantOut: 1},
			{boot: "b", seq: 2, in: 5, out: 1, wantIn: 3},
		}},
		{"late message from the previous boot counts once", 32, []step{
			{boot: "a", seq: 1, in: 10, wantIn: 10},
			{boot: "b", seq: 1, in: 2, wantIn: 2},
			{boot: "a", seq: 2, in: 13, wantIn: 3},
			{boot: "a", seq: 2, in: 13, wantErr: "duplicate"},
			{boot: "b", seq: 2, in: 4, wantIn: 2},
		}},
		{"16-bit wrap", 16, []step{
			{boot: "a", seq: 1, in: 65530, wantIn: 65530},
			{boot: "a", seq: 2, in: 3, wantIn: 9},
		}},
		{"reset within a boot is not negative people", 32, []step{
			{boot: "a", seq: 1, in: 500, out: 480, wantIn: 500, wantOut: 480},
			{boot: "a", seq: 2, in: 4, out: 2, wantIn: 4, wantOut: 2},
		}},
		{"value beyond the counter width is refused", 16, []step{
			{boot: "a", seq: 1, in: 70000, wantErr: "out_of_range"},
		}},
		{"interval reports add each period once, in any order", 32, []step{
			{boot: "a", seq: 1, in: 3, interval: true, wantIn: 3},
			{boot: "a", seq: 3, in: 2, out: 1, interval: true, wantIn: 2, wantOut: 1},
			{boot: "a", seq: 2, in: 4, interval: true, wantIn: 4},
			{boot: "a", seq: 2, in: 4, interval: true, wantErr: "duplicate"},
			{boot: "a", seq: 3, in: 2, interval: true, wantErr: "duplicate"},
		}},
		{"interval report beyond the window is refused", 32, []step{
			{boot: "a", seq: 100, in: 1, interval: true, wantIn: 1},
			{boot: "a", seq: 30, in: 1, interval: true, wantErr: "stale"},
		}},
		{"interval after reboot", 32, []step{
			{boot: "a", seq: 5, in: 1, interval: true, wantIn: 1},
			{boot: "b", seq: 1, in: 2, interval: true, wantIn: 2},
			{boot: "a", seq: 6, in: 3, interval: true, wantIn: 3},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := &deviceState{}
			for i, s := range tc.steps {
				r := &Report{Boot: s.boot, Seq: s.seq, Interval: s.interval, Lines: []LineCount{{Line: "1", In: s.in, Out: s.out}}}
				got, err := d.applyCounter(r, tc.width)
				if s.wantErr != "" {
					var rej *RejectError
					switch {
					case s.wantErr == "duplicate" && errors.Is(err, errDuplicate):
					case errors.As(err, &rej) && rej.Reason == s.wantErr:
					default:
						t.Fatalf("step %d: want %s, got %v (%v)", i, s.wantErr, err, got)
					}
					continue
				}
				if err != nil {
					t.Fatalf("step %d: %v", i, err)
				}
				if len(got) != 1 || got[0].In != s.wantIn || got[0].Out != s.wantOut {
					t.Fatalf("step %d: got %+v, want in=%d out=%d", i, got, s.wantIn, s.wantOut)
				}
			}
		})
	}
}

func TestBootsAreBoundedAndOldOnesRefused(t *testing.T) {
	d := &deviceState{}
	boot := func(i int) string { return fmt.Sprintf("boot-%d", i) }
	for i := range maxBoots + maxRetired + 10 {
		if _, err := d.applyCounter(&Report{Boot: boot(i), Seq: 1, Lines: []LineCount{{Line: "1", In: 1}}}, 32); err != nil {
			t.Fatal(err)
		}
	}
	last := boot(maxBoots + maxRetired + 9)
	if len(d.Boots) != maxBoots || len(d.Retired) != maxRetired || d.current().Boot != last {
		t.Fatalf("kept %d boots and %d retired, current %q", len(d.Boots), len(d.Retired), d.current().Boot)
	}
	// A very late report from a retired boot must not count its totals again from zero.
	_, err := d.applyCounter(&Report{Boot: boot(20), Seq: 2, Lines: []LineCount{{Line: "1", In: 50}}}, 32)
	var rej *RejectError
	if !errors.As(err, &rej) || rej.Reason != "stale_boot" {
		t.Fatalf("late report from a retired boot: %v", err)
	}
	if d.current().Boot != last {
		t.Fatalf("a retired boot became current: %q", d.current().Boot)
	}
	// The same for an area sensor: an old boot's reading never displaces the current one.
	if err := d.applySensor(&Report{Boot: boot(20), Seq: 9}); !errors.As(err, &rej) {
		t.Fatalf("sensor reading from a retired boot: %v", err)
	}
}
