package history

import (
	"testing"

	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// fakeView is the alert manager's view as history sees it (LevelView).
type fakeView map[string]levels.Level

func (v fakeView) AlertLevel(zone string) (levels.Level, bool) {
	lv, ok := v[zone]
	return lv, ok
}

func TestLevelFromTheAlertView(t *testing.T) {
	c := &core{levelOf: DefaultLevel}
	busy := zones.ZoneState{ID: "a", Ratio: 0.7}
	cases := []struct {
		name string
		view LevelView
		zone zones.ZoneState
		want levels.Level
	}{
		{"no view: the built-in thresholds", nil, busy, levels.Busy},
		{"the view's level, not the figures'", fakeView{"a": levels.Critical}, busy, levels.Critical},
		{"the view's normal holds too", fakeView{"a": levels.Normal}, busy, levels.Normal},
		{"a zone the view does not know: the built-in thresholds", fakeView{"b": levels.Critical}, busy, levels.Busy},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.level(tc.zone, tc.view); got != tc.want {
				t.Errorf("level = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestBandsAreTheLowerTrigger(t *testing.T) {
	tr := levels.Default()
	tr.Ratio[levels.Busy] = 0 // off: no busy band
	got := Bands(tr, 100, 20) // ratio: 85 / 100 persons; density: 40 / 70 / 100 persons
	want := []Band{{levels.Warning, 40}, {levels.Critical, 70}, {levels.Evacuate, 100}}
	if len(got) != len(want) {
		t.Fatalf("bands %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("band %d = %v, want %v", i, got[i], want[i])
		}
	}
	if d := DefaultBands(100, 0); len(d) != 3 || d[0] != (Band{levels.Busy, 60}) || d[2] != (Band{levels.Critical, 100}) {
		t.Errorf("default bands without an area: %v", d)
	}
}
