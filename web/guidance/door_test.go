package guidance

import (
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

func TestApplyAdmissionNeverReassuresMore(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	enter := Admission{Door: "main", State: Enter, Allowance: 2, At: now}
	wait := Admission{Door: "main", State: Wait, Reason: "paced", At: now}
	cases := []struct {
		name   string
		state  State
		a      Admission
		want   State
		reason string
		admits bool // an admission is attached
	}{
		{"welcome and a release: enter", Welcome, enter, Enter, "", true},
		{"busy and a release: enter", Busy, enter, Enter, "", true},
		{"welcome between releases: wait", Welcome, wait, Wait, "paced", true},
		{"full whatever the meter says: wait", Full, enter, Wait, "limit", true},
		{"neutral (figures not trusted): wait", Neutral, enter, Wait, "stale", true},
		{"an admission older than stale_after: wait", Welcome, Admission{State: Enter, Allowance: 1, At: now.Add(-11 * time.Second)}, Wait, "stale", true},
		{"evacuation: untouched, no admission", Evacuate, enter, Evacuate, "", false},
		{"drill: untouched, no admission", Drill, enter, Drill, "", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := Guidance{State: c.state, Arrow: "right", Target: "hall"}
			ApplyAdmission(&g, c.a, now, 10*time.Second)
			if g.State != c.want || (g.Admission != nil) != c.admits {
				t.Fatalf("state %s admission %+v, want %s", g.State, g.Admission, c.want)
			}
			if !c.admits {
				return
			}
			if g.Admission.Reason != c.reason || (g.State != Enter && g.Admission.Allowance != 0) {
				t.Fatalf("admission %+v, want reason %q and no allowance unless enter", g.Admission, c.reason)
			}
			if g.State == Enter && g.Arrow != "" {
				t.Fatalf("enter points elsewhere: %q", g.Arrow)
			}
			if u := Unmetered(g); u.State != c.state || u.Admission != nil {
				t.Fatalf("unmetered %s %+v, want %s", u.State, u.Admission, c.state)
			}
		})
	}
}

func TestApplyDrill(t *testing.T) {
	s := configs.Screen{Exit: configs.Pointer{Zone: "street", Arrow: "left"}}
	drilling := map[string]bool{"store": true}
	for _, c := range []struct {
		name   string
		state  State
		guards []string
		want   State
	}{
		{"a guarded zone drilled", Full, []string{"entrance", "store"}, Drill},
		{"nothing guarded drilled", Welcome, []string{"floor2"}, Welcome},
		{"a real evacuation wins", Evacuate, []string{"store"}, Evacuate},
	} {
		g := Guidance{State: c.state, Guards: c.guards}
		ApplyDrill(&g, s, drilling)
		if g.State != c.want || (c.want == Drill && g.Arrow != "left") {
			t.Errorf("%s: %s pointing %q", c.name, g.State, g.Arrow)
		}
	}
}
