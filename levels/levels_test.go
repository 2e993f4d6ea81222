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
