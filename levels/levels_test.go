package levels

import "testing"

func f(v float64) *float64 { return &v }

func TestInstant(t *testing.T) {
	cases := []struct {
		name    string
		ratio   float64
		density *float64
		want    Level
	}{
		{"empty", 0, nil, Normal},
		{"just below busy", 0.59, nil, Normal},
		{"busy", 0.6, nil, Busy},
		{"warning by ratio", 0.85, nil, Warning},
		{"critical by ratio", 1.0, nil, Critical},
		{"over capacity", 1.4, nil, Critical},
		{"warning by density", 0.1, f(2), Warning},
		{"critical by density", 0.1, f(3.5), Critical},
		{"evacuate by density", 0.1, f(5), Evacuate},
		{"ratio worse than density", 1.0, f(2.1), Critical},
		{"density below every threshold", 0.7, f(1.9), Busy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := Instant(c.ratio, c.density); got != c.want {
				t.Errorf("Instant(ratio %v) = %v, want %v", c.ratio, got, c.want)
			}
		})
	}
}

func TestNamesRoundTrip(t *testing.T) {
	for lv := Normal; lv <= Evacuate; lv++ {
		b, err := lv.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back Level
		if err := back.UnmarshalText(b); err != nil || back != lv {
			t.Errorf("%v: read back as %v (%v)", lv, back, err)
		}
	}
	var l Level = Warning
	for _, bad := range []string{"", "Warning", "evacuation", "4"} {
		if err := l.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("%q accepted as a level", bad)
		}
		if l != Warning {
			t.Errorf("%q changed the level to %v", bad, l)
		}
	}
	if s := Level(Count).String(); s != "unknown" {
		t.Errorf("Level(%d) is %q", Count, s)
	}
}

// TestDefaultsAreOrdered: each level's trigger is above the lower levels' (alerting refuses
// thresholds out of order, so built-in ones out of order would refuse every configuration).
func TestDefaultsAreOrdered(t *testing.T) {
	d := Default()
	for _, tr := range [][Count]float64{d.Ratio, d.Density} {
		last := 0.0
		for lv := Busy; lv <= Evacuate; lv++ {
			if tr[lv] == 0 {
				continue
			}
			if tr[lv] <= last {
				t.Errorf("%v trigger %v not above %v", lv, tr[lv], last)
			}
			last = tr[lv]
		}
	}
}
