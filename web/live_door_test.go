package web

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web/assets"
	"github.com/crowdwatch/crowdwatch/web/guidance"
)

type fakeAdmissions struct{ a map[string]guidance.Admission }

func (f *fakeAdmissions) Admission(door string) (guidance.Admission, bool) {
	a, ok := f.a[door]
	return a, ok
}
func (f *fakeAdmissions) Subscribe() (<-chan struct{}, func()) { return nil, func() {} }

func doorLive(t *testing.T, alerts AlertSource, adm AdmissionSource, now *time.Time) (*Live, *liveEngine) {
	t.Helper()
	cat, err := assets.Messages()
	if err != nil {
		t.Fatal(err)
	}
	cfg := liveConfig()
	cfg.Doors = []configs.Door{{ID: "main", From: configs.Outside, To: "entrance", WidthM: 1}}
	cfg.Screens[0].Door = "main"
	cfg.Screens[0].Exit = configs.Pointer{Zone: "hall", Arrow: "left"}
	e := newLiveEngine(2)
	l := NewLive(LiveOptions{Layout: LayoutOf(cfg, nil), Engine: e, Alerts: alerts, Admissions: adm, Catalogue: cat,
		Now: func() time.Time { return *now }, Log: slog.New(slog.DiscardHandler)})
	return l, e
}

func TestScreenDrillIsMarkedAndARealEvacuationOverridesIt(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	fa := &fakeAlerts{ch: make(chan struct{}, 1)}
	l, _ := doorLive(t, fa, nil, &now)
	fa.set(&alerting.Status{Drills: []alerting.Drill{{ID: "d1", Zone: "", Affected: []string{"entrance", "hall"}}}})
	v := l.build(nil)
	g := v.screens["door"]
	if g.State != guidance.Drill || !strings.Contains(g.Text["en"].Title, "DRILL") || !strings.Contains(g.Text["en"].Detail, "not an emergency") {
		t.Fatalf("drill screen %s %+v", g.State, g.Text)
	}
	if len(v.drills) != 1 {
		t.Fatalf("drills on the feed: %+v", v.drills)
	}
	fa.set(&alerting.Status{Drills: []alerting.Drill{{ID: "d1", Affected: []string{"entrance", "hall"}}},
		Evacuations: []alerting.Evacuation{{Zone: "entrance", Affected: []string{"entrance"}}}})
	now = now.Add(time.Second)
	g = l.build(v.screens).screens["door"]
	if g.State != guidance.Evacuate || strings.Contains(g.Text["en"].Title, "DRILL") {
		t.Fatalf("a real evacuation during a drill: %s %+v", g.State, g.Text)
	}
}

func TestMeteredScreenAlternatesAndNeverReassuresMore(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	adm := &fakeAdmissions{a: map[string]guidance.Admission{}}
	l, e := doorLive(t, nil, adm, &now)
	wait := 240.0
	var prev map[string]guidance.Guidance
	step := func(a guidance.Admission) guidance.Guidance {
		a.Door, a.At = "main", now
		adm.a["main"] = a
		v := l.build(prev)
		prev = v.screens
		now = now.Add(750 * time.Millisecond)
		return v.screens["door"]
	}
	// Enter and wait follow the meter at once, whatever the screens' hold time.
	for i := range 6 {
		g := step(guidance.Admission{State: guidance.Enter, Mode: "rate", Granted: uint64(i + 1), Allowance: 1})
		if g.State != guidance.Enter || g.Text["en"].Title != "Please enter" {
			t.Fatalf("step %d: %s %+v", i, g.State, g.Text)
		}
		g = step(guidance.Admission{State: guidance.Wait, Mode: "rate", Reason: "paced", Granted: uint64(i + 1), WaitSeconds: &wait})
		if g.State != guidance.Wait || g.Text["en"].Detail != "Expected wait about 4 min" {
			t.Fatalf("step %d: %s %+v", i, g.State, g.Text)
		}
		b, _ := json.Marshal(g)
		if !strings.Contains(string(b), `"admission":{"door":"main","state":"wait"`) {
			t.Fatalf("the retained guidance lacks the admission: %s", b)
		}
	}
	// A stale admission never says enter.
	adm.a["main"] = guidance.Admission{Door: "main", State: guidance.Enter, Allowance: 1, At: now.Add(-time.Minute)}
	if g := l.build(prev).screens["door"]; g.State != guidance.Wait || g.Admission.Reason != "stale" {
		t.Fatalf("stale admission: %s %+v", g.State, g.Admission)
	}
	// A full zone (by its shown level) never says enter, whatever the meter says.
	e.set(10)
	if g := step(guidance.Admission{State: guidance.Enter, Allowance: 1}); g.State != guidance.Wait || g.Admission.Allowance != 0 {
		t.Fatalf("full zone: %s %+v", g.State, g.Admission)
	}
}
