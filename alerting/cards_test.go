package alerting

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
)

// Time to full never fires for a zone that is already full, even while its critical level
// waits out a hold-down longer than time-to-full's.
func TestTimeToFullNotForFullZone(t *testing.T) {
	h := newHarness(t, strings.Replace(testStore, "alerts: {surge_per_min: 60}", "alerts: {critical_for: 60s}", 1))
	var in uint64
	for s := 0; s <= 90; s++ {
		in += 2
		h.doors["main"] = [2]uint64{in, 0}
		occ := min(int64(in), 117) // fills, then stays at 104-117 % of capacity
		h.occ["entrance"], h.occ["store"] = occ, occ
		h.at(s)
		if a := h.alert("time_to_full:entrance"); a != nil && occ >= 100 {
			t.Fatalf("+%ds at %d/100: %q", s, occ, a.Summary)
		}
	}
	z, _ := h.m.Status().Zone("entrance")
	if z.Shown != levels.Critical {
		t.Fatalf("entrance at 117 %% shown %s", z.Shown)
	}
}

// The site and its only top zone are the same people through the same doors: one alert.
func TestSiteEvacTimeNotTwice(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["store"] = 990 // 990 / (2 m x 80) min + 60 s = 431 s, over the 150 s target
	for s := 0; s <= 61; s++ {
		h.at(s)
	}
	if h.alert("evac_time:store") == nil {
		t.Fatal("no evacuation-time alert for the store")
	}
	if a := h.alert("evac_time:site"); a != nil {
		t.Fatalf("the site reported beside its only top zone: %q", a.Summary)
	}
	if st := h.m.Status(); st.SiteEvacSeconds == nil {
		t.Fatal("the site estimate is still in the status")
	}
}

// The alert says whom it has paged and when the next group is paged.
func TestEscalationOnAlert(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"], h.occ["store"] = 104, 104
	h.at(0)
	h.at(15)
	t0 := h.now
	check := func(when, to string, next time.Duration) {
		t.Helper()
		a := h.alert("level:entrance")
		switch {
		case a == nil:
			t.Fatalf("%s: no alert", when)
		case a.EscalationTo != to:
			t.Errorf("%s: escalation_to %q, want %q", when, a.EscalationTo, to)
		case next < 0 && a.NextEscalationAt != nil:
			t.Errorf("%s: next escalation %v, want none", when, a.NextEscalationAt)
		case next >= 0 && (a.NextEscalationAt == nil || !a.NextEscalationAt.Equal(t0.Add(next))):
			t.Errorf("%s: next escalation %v, want +%v", when, a.NextEscalationAt, next)
		}
	}
	check("fired", "security", 2*time.Minute)
	h.at(135)
	check("escalated once", "duty_manager", 4*time.Minute)
	h.at(255)
	check("at the last group", "all_staff", -1)
	h.occ["entrance"], h.occ["store"] = 110, 110
	h.run(func() {
		if _, err := h.m.Ack(context.Background(), "level:entrance", "li", ""); err != nil {
			t.Error(err)
		}
	})
	check("acknowledged", "all_staff", -1)

	// Resolved without anyone acknowledging: nobody will be paged any more.
	h2 := newHarness(t, testStore)
	h2.occ["entrance"], h2.occ["store"] = 104, 104
	h2.at(0)
	h2.at(15)
	h2.occ["entrance"], h2.occ["store"] = 10, 10
	h2.at(20)
	h2.at(51)
	var got []Alert
	h2.run(func() { got, _ = h2.m.Alerts(context.Background(), Filter{State: "resolved", Kind: "level"}) })
	if len(got) != 1 || got[0].NextEscalationAt != nil {
		t.Errorf("resolved: %+v", got)
	}
}

// Acknowledging a zone acknowledges every open alert of that zone and nothing else.
func TestAckZone(t *testing.T) {
	h := newHarness(t, testStore)
	var in uint64
	for s := 0; s <= 60; s++ {
		in += 2
		h.doors["main"] = [2]uint64{in, 0}
		h.occ["entrance"], h.occ["store"] = 104, 990
		h.at(s)
	}
	if h.alert("level:entrance") == nil || h.alert("surge:entrance") == nil || h.alert("evac_time:store") == nil {
		t.Fatalf("setup: alerts %v", h.m.Status().Alerts)
	}
	var got []Alert
	h.run(func() {
		var err error
		if got, err = h.m.AckZone(context.Background(), "entrance", "li", "two guards sent"); err != nil {
			t.Error(err)
		}
	})
	if len(got) < 2 {
		t.Fatalf("acknowledged %d alerts, want the level and the surge at least", len(got))
	}
	for _, a := range h.m.Status().Alerts {
		want := StateFiring
		if a.Zone == "entrance" {
			want = StateAcknowledged
		}
		if a.State != want || (want == StateAcknowledged && (a.AckBy != "li" || a.AckNote != "two guards sent")) {
			t.Errorf("%s: %s by %q, want %s", a.ID, a.State, a.AckBy, want)
		}
	}
	h.run(func() {
		if _, err := h.m.AckZone(context.Background(), "nope", "li", ""); err == nil {
			t.Error("unknown zone accepted")
		}
	})
}
