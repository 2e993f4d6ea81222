package alerting

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/levels"
)

func TestResolveLimits(t *testing.T) {
	defaults := configs.Thresholds{WarningRatio: ptr(0.8), ClearAfter: ptr(10 * time.Second)}
	l, err := ResolveLimits(&configs.Thresholds{CriticalDensity: ptr(3.0)}, &defaults)
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want float64
	}{
		{"warning ratio from the defaults block", l.Ratio[levels.Warning], 0.8},
		{"critical ratio built in", l.Ratio[levels.Critical], 1.0},
		{"critical density from the zone", l.Density[levels.Critical], 3.0},
		{"evacuate density built in", l.Density[levels.Evacuate], 5},
		{"busy built in", l.Ratio[levels.Busy], 0.6},
		{"clear after from defaults (s)", l.ClearAfter.Seconds(), 10},
		{"warning hold built in (s)", l.For[levels.Warning].Seconds(), 60},
		{"critical hold built in (s)", l.For[levels.Critical].Seconds(), 15},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	// A zone override can break the order its defaults had.
	if _, err := ResolveLimits(&configs.Thresholds{WarningDensity: ptr(4.0)}, nil); err == nil || !strings.Contains(err.Error(), "critical_density") {
		t.Fatalf("warning density 4 above critical 3.5 accepted: %v", err)
	}
}

// TestLevelHysteresis steps one zone's tracker through figures over time and checks the level
// after each step: hold-downs before entering, clearing below 90 % for 30 s, no flapping.
func TestLevelHysteresis(t *testing.T) {
	l, err := ResolveLimits(nil, nil) // warning 0.85 for 60 s, critical 1.0 for 15 s, clear 0.9 x for 30 s
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		at    int // seconds
		ratio float64
		want  levels.Level
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"busy at once, warning only after its hold-down", []step{
			{0, 0.7, levels.Busy}, {10, 0.86, levels.Busy}, {69, 0.9, levels.Busy}, {70, 0.9, levels.Warning}}},
		{"a dip below the trigger restarts the hold-down", []step{
			{0, 0.86, levels.Busy}, {50, 0.84, levels.Busy}, {55, 0.86, levels.Busy}, {110, 0.86, levels.Busy}, {115, 0.86, levels.Warning}}},
		{"critical after 15 s even before warning's 60 s", []step{
			{0, 1.05, levels.Busy}, {14, 1.05, levels.Busy}, {15, 1.05, levels.Critical}}},
		{"hovering at the line does not flap", []step{
			{0, 1.0, levels.Busy}, {15, 1.0, levels.Critical}, {20, 0.99, levels.Critical}, {30, 1.01, levels.Critical},
			{40, 0.95, levels.Critical}, {60, 0.91, levels.Critical}, {200, 0.92, levels.Critical}}},
		{"clears after 30 s below 90 % of the trigger, to the level still held", []step{
			{0, 1.2, levels.Busy}, {15, 1.2, levels.Critical}, {20, 0.8, levels.Critical}, {49, 0.8, levels.Critical}, {50, 0.8, levels.Warning},
			{60, 0.5, levels.Warning}, {89, 0.5, levels.Warning}, {90, 0.5, levels.Normal}}},
		{"going back up during the clear wait keeps the level", []step{
			{0, 1.2, levels.Busy}, {15, 1.2, levels.Critical}, {20, 0.5, levels.Critical}, {45, 0.95, levels.Critical}, {70, 0.5, levels.Critical},
			{99, 0.5, levels.Critical}, {100, 0.5, levels.Normal}}},
	}
	base := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var tr levelTracker
			for _, s := range c.steps {
				if got := tr.step(&l, s.ratio, nil, base.Add(time.Duration(s.at)*time.Second)); got != s.want {
					t.Fatalf("t=%ds ratio %.2f: level %s, want %s", s.at, s.ratio, got, s.want)
				}
			}
		})
	}
}

func TestLevelTakesTheWorseOfRatioAndDensity(t *testing.T) {
	l, _ := ResolveLimits(nil, nil)
	for _, c := range []struct {
		ratio, density float64
		want           levels.Level
	}{
		{0.1, 0.5, levels.Normal},
		{0.1, 2.1, levels.Warning},  // a packed entrance in a store far under capacity
		{0.3, 3.6, levels.Critical}, // density critical at 3.5
		{0.3, 5.2, levels.Evacuate}, // density evacuate at 5
		{1.1, 0.2, levels.Critical},
	} {
		d := c.density
		if got := l.Reached(c.ratio, &d, 1); got != c.want {
			t.Errorf("ratio %.2f density %.1f: %s, want %s", c.ratio, c.density, got, c.want)
		}
	}
}

// TestEvacSeconds checks the arithmetic against cases worked by hand.
func TestEvacSeconds(t *testing.T) {
	level := func(w float64) exit { return exit{perMin: w * 80} }
	stairs := func(w float64) exit { return exit{perMin: w * 66} }
	cases := []struct {
		name  string
		n     int64
		exits []exit
		pre   time.Duration
		want  float64
		ok    bool
	}{
		// docs/alerting.md's example: 1,200 people, two 6 m exits (one assumed blocked), 80 /m/min: 2.5 min.
		{"reference example, widest of two 6 m exits removed", 1200, []exit{level(6), level(6)}, 0, 150, true},
		{"pre-movement added", 1200, []exit{level(6), level(6)}, time.Minute, 210, true},
		{"widest removed: 4 m gone, 2+1.2 m left", 512, []exit{level(4), level(2), level(1.2)}, 0, 512.0 / (3.2 * 80) * 60, true},
		// stairs 1.2 m x 66 = 79.2/min; level 2 m x 80 = 160/min is the largest flow, removed.
		{"stairs have their own flow", 100, []exit{stairs(1.2), level(2)}, 0, 100 / 79.2 * 60, true},
		{"a single exit is used as it is", 160, []exit{level(2)}, 30 * time.Second, 60 + 30, true},
		{"no exits with a width: no estimate", 100, nil, 0, 0, false},
		{"empty zone: pre-movement only", 0, []exit{level(2), level(2)}, 45 * time.Second, 45, true},
	}
	for _, c := range cases {
		got, ok := evacSeconds(c.n, c.exits, c.pre)
		if ok != c.ok || math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: %v %v, want %v %v", c.name, got, ok, c.want, c.ok)
		}
	}
}

func TestTrendRates(t *testing.T) {
	base := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	var tr trend
	window := time.Minute
	// 10 in and 4 out every 5 s: 120 in/min, 72 net/min.
	for i := 0; i <= 36; i++ {
		tr.add(flowSample{at: base.Add(time.Duration(i*5) * time.Second), in: uint64(10 * i), out: uint64(4 * i)}, window)
		in, net, ok := tr.rates(window)
		if i*5 < 30 {
			if ok {
				t.Fatalf("t=%ds: a rate from less than half the window", i*5)
			}
			continue
		}
		if !ok || math.Abs(in-120) > 1e-9 || math.Abs(net-72) > 1e-9 {
			t.Fatalf("t=%ds: in %v net %v ok %v, want 120 72", i*5, in, net, ok)
		}
	}
	if n := len(tr.samples); n > 14 {
		t.Fatalf("%d samples kept for a 60 s window of 5 s samples", n)
	}
}

// Fed far more often than its resolution (an evaluation per commit in a busy store), a
// trend keeps a bounded number of samples and still gives the exact rate.
func TestTrendStaysBoundedWhenFedOften(t *testing.T) {
	base := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	var tr trend
	window := time.Minute
	// One sample per millisecond for 5 minutes: 3 in and 1 out per 100 ms.
	for ms := 0; ms <= 300_000; ms++ {
		tr.add(flowSample{at: base.Add(time.Duration(ms) * time.Millisecond), in: uint64(ms / 100 * 3), out: uint64(ms / 100)}, window)
	}
	if n := len(tr.samples); n > seriesPoints+2 {
		t.Errorf("%d samples kept, want at most %d", n, seriesPoints+2)
	}
	in, net, ok := tr.rates(window)
	if !ok || math.Abs(in-1800) > 9 || math.Abs(net-1200) > 6 { // counts step every 100 ms: within 0.5 %
		t.Errorf("in %v net %v ok %v, want 1800 and 1200 per minute", in, net, ok)
	}
	if span := tr.samples[len(tr.samples)-1].at.Sub(tr.samples[0].at); span < window || span > window+window/seriesPoints {
		t.Errorf("samples span %v, want the window (%v) to within one step", span, window)
	}
}
