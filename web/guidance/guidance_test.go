package guidance

import (
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/web/assets"
	"github.com/crowdwatch/crowdwatch/zones"
)

func f(v float64) *float64 { return &v }

var screen = configs.Screen{ID: "door-a", Zone: "a", Languages: []string{"zh", "en"},
	Alternatives: []configs.Pointer{
		{Zone: "b", Arrow: "right", Label: map[string]string{"en": "Entrance B", "zh": "B 入口"}},
		{Zone: "c", Arrow: "left"},
	},
	Exit: configs.Pointer{Arrow: "down", Label: map[string]string{"en": "East exit", "zh": "东出口"}},
}

func rd(id string, occ int64, capacity int, lv levels.Level) Reading {
	return Reading{Zone: zones.ZoneState{ID: id, Name: "Zone " + id, Occupancy: occ, Capacity: capacity,
		Ratio: float64(occ) / float64(capacity)}, Level: lv}
}

func TestCompute(t *testing.T) {
	n, b, w, c, e := levels.Normal, levels.Busy, levels.Warning, levels.Critical, levels.Evacuate
	cases := []struct {
		name       string
		readings   []Reading
		evacuating []string
		state      State
		target     string
		arrow      string
		left       int64
	}{
		{"quiet", []Reading{rd("a", 10, 100, n), rd("b", 5, 100, n)}, nil, Welcome, "", "", 90},
		{"busy points to the least loaded alternative", []Reading{rd("a", 70, 100, b), rd("b", 40, 100, n), rd("c", 20, 100, n)}, nil, Busy, "c", "left", 30},
		{"busy skips an alternative at warning", []Reading{rd("a", 70, 100, b), rd("b", 40, 100, n), rd("c", 20, 100, w)}, nil, Busy, "b", "right", 30},
		{"busy skips an alternative fuller than itself", []Reading{rd("a", 70, 100, b), rd("b", 80, 100, b)}, nil, Busy, "", "", 30},
		{"warning is busy", []Reading{rd("a", 90, 100, w), rd("b", 10, 100, n)}, nil, Busy, "b", "right", 10},
		{"busy without alternatives in the data", []Reading{rd("a", 70, 100, b)}, nil, Busy, "", "", 30},
		{"critical is full", []Reading{rd("a", 100, 100, c), rd("b", 10, 100, n)}, nil, Full, "b", "right", 0},
		{"over capacity never shows negative places", []Reading{rd("a", 130, 100, c)}, nil, Full, "", "", 0},
		{"evacuate level stops entry", []Reading{rd("a", 50, 100, e)}, nil, Full, "", "", 50},
		{"evacuation overrides everything", []Reading{rd("a", 10, 100, n), rd("b", 5, 100, n)}, []string{"a"}, Evacuate, "", "down", 90},
		{"unknown zone is neutral", nil, nil, Neutral, "", "", 0},
		{"uncertain zone is neutral", []Reading{{Zone: zones.ZoneState{ID: "a", Capacity: 100}, Uncertain: true}}, nil, Neutral, "", "", 100},
		{"evacuating alternative is not pointed to", []Reading{rd("a", 70, 100, b), rd("b", 10, 100, n)}, []string{"b"}, Busy, "", "", 30},
	}
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs := map[string]Reading{}
			for _, r := range tc.readings {
				rs[r.Zone.ID] = r
			}
			ev := map[string]bool{}
			for _, z := range tc.evacuating {
				ev[z] = true
			}
			g := Compute(screen, Route{}, rs, ev, now)
			if g.State != tc.state || g.Target != tc.target || g.Arrow != tc.arrow || g.PlacesLeft != tc.left {
				t.Errorf("got state %s target %q arrow %q left %d, want %s %q %q %d", g.State, g.Target, g.Arrow, g.PlacesLeft,
					tc.state, tc.target, tc.arrow, tc.left)
			}
		})
	}
}

func TestHold(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	hold := 30 * time.Second
	g := func(s State, target string, at time.Duration) Guidance {
		return Guidance{State: s, Target: target, At: t0.Add(at), Since: t0.Add(at)}
	}
	cases := []struct {
		name      string
		shown     Guidance
		next      Guidance
		wantState State
		wantSince time.Duration
	}{
		{"escalation shows at once", g(Welcome, "", 0), g(Busy, "b", time.Second), Busy, time.Second},
		{"full shows at once", g(Busy, "b", 0), g(Full, "", time.Second), Full, time.Second},
		{"evacuation shows at once", g(Full, "", 0), g(Evacuate, "", time.Second), Evacuate, time.Second},
		{"neutral over welcome at once", g(Welcome, "", 0), g(Neutral, "", time.Second), Neutral, time.Second},
		{"relaxing waits", g(Busy, "b", 0), g(Welcome, "", 29*time.Second), Busy, 0},
		{"relaxing after the hold", g(Busy, "b", 0), g(Welcome, "", 30*time.Second), Welcome, 30 * time.Second},
		{"other alternative waits", g(Busy, "b", 0), g(Busy, "c", 10*time.Second), Busy, 0},
		{"same state keeps its start", g(Busy, "b", 0), g(Busy, "b", 40*time.Second), Busy, 0},
		{"stand-down waits too", g(Evacuate, "", 0), g(Welcome, "", 5*time.Second), Evacuate, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Hold(c.shown, true, c.next, hold)
			if got.State != c.wantState || !got.Since.Equal(t0.Add(c.wantSince)) {
				t.Errorf("got %s since +%v, want %s since +%v", got.State, got.Since.Sub(t0), c.wantState, c.wantSince)
			}
			if !got.At.Equal(c.next.At) {
				t.Errorf("At = %v, want the newest %v", got.At, c.next.At)
			}
		})
	}
	if got := Hold(Guidance{}, false, g(Welcome, "", 0), hold); got.State != Welcome {
		t.Errorf("first guidance %s, want welcome", got.State)
	}
}

// A screen that escalates and relaxes over time: escalations are never delayed, relaxing at
// most once per hold time.
func TestHoldSequence(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	raw := []State{Welcome, Busy, Welcome, Busy, Welcome, Welcome, Welcome, Full, Busy, Busy, Busy, Busy}
	want := []State{Welcome, Busy, Busy, Busy, Welcome, Welcome, Welcome, Full, Full, Full, Busy, Busy}
	var shown Guidance
	for i, s := range raw {
		next := Guidance{State: s, At: t0.Add(time.Duration(i) * 10 * time.Second), Since: t0.Add(time.Duration(i) * 10 * time.Second)}
		shown = Hold(shown, i > 0, next, 30*time.Second)
		if shown.State != want[i] {
			t.Errorf("step %d (+%ds, raw %s): shown %s, want %s", i, i*10, s, shown.State, want[i])
		}
	}
}

func TestRender(t *testing.T) {
	cat, err := assets.Messages()
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name     string
		readings []Reading
		evac     []string
		lang     string
		title    string
		detail   string
	}{
		{"welcome en", []Reading{rd("a", 10, 100, levels.Normal)}, nil, "en", "Welcome", "90 places left"},
		{"welcome zh", []Reading{rd("a", 10, 100, levels.Normal)}, nil, "zh", "欢迎光临", "尚余 90 个位置"},
		{"busy en", []Reading{rd("a", 70, 100, levels.Busy), rd("b", 5, 100, levels.Normal)}, nil, "en", "Busy", "Please use Entrance B"},
		{"busy zh", []Reading{rd("a", 70, 100, levels.Busy), rd("b", 5, 100, levels.Normal)}, nil, "zh", "人流较多", "请使用B 入口"},
		{"busy unlabelled alternative uses the zone name", []Reading{rd("a", 70, 100, levels.Busy), rd("c", 5, 100, levels.Normal)}, nil, "en", "Busy", "Please use Zone c"},
		{"full en", []Reading{rd("a", 100, 100, levels.Critical)}, nil, "en", "Full", "Please wait"},
		{"evacuate en", nil, []string{"a"}, "en", "Evacuate now", "Leave by East exit"},
		{"neutral zh", nil, nil, "zh", "请听从工作人员指引", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := map[string]Reading{}
			for _, r := range c.readings {
				rs[r.Zone.ID] = r
			}
			ev := map[string]bool{}
			for _, z := range c.evac {
				ev[z] = true
			}
			g := Compute(screen, Route{}, rs, ev, now)
			Render(&g, cat)
			tx := g.Text[c.lang]
			if tx.Title != c.title || (c.detail != "" && tx.Detail != c.detail) {
				t.Errorf("%s: got %q / %q, want %q / %q", c.lang, tx.Title, tx.Detail, c.title, c.detail)
			}
		})
	}
}

// A screen never points to a place that may not take people, held or not.
func TestHoldTargets(t *testing.T) {
	t0 := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	hold := 30 * time.Second
	g := func(s State, target string, at time.Duration, acceptable ...string) Guidance {
		x := Guidance{State: s, Target: target, At: t0.Add(at), Since: t0.Add(at), acceptable: acceptable}
		if len(acceptable) > 0 {
			x.alt = pointer{zone: acceptable[0]}
		}
		return x
	}
	cases := []struct {
		name        string
		shown, next Guidance
		state       State
		target      string
	}{
		{"other alternative waits while the old one takes people", g(Busy, "b", 0), g(Busy, "c", 10*time.Second, "c", "b"), Busy, "b"},
		{"other alternative after the hold", g(Busy, "b", 0), g(Busy, "c", 30*time.Second, "c", "b"), Busy, "c"},
		{"an alternative that fills is dropped at once", g(Busy, "b", 0), g(Busy, "", 10*time.Second), Busy, ""},
		{"an alternative that fills is replaced at once", g(Busy, "b", 0), g(Busy, "c", 10*time.Second, "c"), Busy, "c"},
		{"held busy keeps an acceptable arrow", g(Busy, "b", 0), g(Welcome, "", 10*time.Second, "c", "b"), Busy, "b"},
		{"held busy drops an arrow to a full place", g(Busy, "b", 0), g(Welcome, "", 10*time.Second, "c"), Busy, "c"},
		{"held full without alternatives", g(Full, "b", 0), g(Busy, "", 10*time.Second), Full, ""},
		{"held evacuation keeps its exit", g(Evacuate, "exit", 0), g(Welcome, "", 10*time.Second), Evacuate, "exit"},
		{"held neutral points nowhere", g(Neutral, "", 0), g(Welcome, "", 10*time.Second, "c"), Neutral, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Hold(c.shown, true, c.next, hold)
			if got.State != c.state || got.Target != c.target {
				t.Errorf("got %s -> %q, want %s -> %q", got.State, got.Target, c.state, c.target)
			}
		})
	}
}

// Chinese sign texts put the place's name straight against the text.
func TestSignTextsNoSpacesAroundNames(t *testing.T) {
	cat, err := assets.Messages()
	if err != nil {
		t.Fatal(err)
	}
	for key, s := range cat["zh"] {
		if strings.HasPrefix(key, "sign.") && (strings.Contains(s, " {target}") || strings.Contains(s, "{target} ")) {
			t.Errorf("%s: %q has a space beside the inserted name", key, s)
		}
	}
}
