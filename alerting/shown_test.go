package alerting

import (
	"encoding/json"
	"testing"

	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// TestShownLevel steps the entrance (capacity 100) through figures and checks the level every
// view shows against the paged one: the shown level rises the moment a figure crosses a
// trigger and falls only below the clear line (0.9 x the trigger), while paging waits out
// the hold-downs; a zone waiting out a hold-down shows the pending level.
func TestShownLevel(t *testing.T) {
	type step struct {
		at      int
		occ     int64
		shown   levels.Level
		paged   levels.Level
		pending string // "" none
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"instant escalation while paging waits", []step{
			{0, 70, levels.Busy, levels.Busy, ""},
			{1, 86, levels.Warning, levels.Busy, "warning"},
			{2, 157, levels.Critical, levels.Busy, "critical"},
			{17, 157, levels.Critical, levels.Critical, ""},
		}},
		{"relaxing through the clear band", []step{
			{0, 120, levels.Critical, levels.Busy, "critical"},
			{15, 120, levels.Critical, levels.Critical, ""},
			{16, 95, levels.Critical, levels.Critical, ""}, // above 90: still critical
			{17, 89, levels.Warning, levels.Critical, ""},  // below 90: warning at once; paging clears after 30 s
			{18, 80, levels.Warning, levels.Critical, ""},  // above 76.5, the warning clear line
			{19, 76, levels.Busy, levels.Critical, ""},     // 76 % is not drawn critical while the alert is held
			{20, 55, levels.Busy, levels.Critical, ""},     // above 54, the busy clear line
			{21, 53, levels.Normal, levels.Critical, ""},
			{22, 60, levels.Busy, levels.Critical, ""},
		}},
		{"no flicker at a threshold", []step{
			{0, 86, levels.Warning, levels.Busy, "warning"},
			{1, 84, levels.Warning, levels.Busy, ""},
			{2, 86, levels.Warning, levels.Busy, "warning"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testStore)
			for _, s := range c.steps {
				h.occ["entrance"], h.occ["store"] = s.occ, s.occ
				h.at(s.at)
				st := h.m.Status()
				zs, _ := st.Zone("entrance")
				z, _ := h.src.Snapshot().Zone("entrance")
				got := st.Show(z)
				pend := ""
				if got.Pending != nil {
					pend = got.Pending.String()
				}
				if got.Level != s.shown || zs.Level != s.paged || pend != s.pending {
					t.Errorf("+%ds at %d%%: shown %s paged %s pending %q, want %s %s %q", s.at, s.occ, got.Level, zs.Level, pend,
						s.shown, s.paged, s.pending)
				}
				if s.pending != "" && (got.PendingSince == nil || got.PendingSince.After(h.now)) {
					t.Errorf("+%ds: pending_since %v", s.at, got.PendingSince)
				}
			}
		})
	}
}

// TestShowNewerFigures: a snapshot newer than the last evaluation escalates at once by the
// zone's own thresholds, and without a status the built-in thresholds decide.
func TestShowNewerFigures(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"] = 10
	h.at(0)
	over := zones.ZoneState{ID: "entrance", Occupancy: 151, Capacity: 100, Ratio: 1.51}
	if got := h.m.Status().Show(over).Level; got != levels.Critical {
		t.Errorf("151/100 before the next evaluation shown %s, want critical", got)
	}
	var none *Status
	if got := none.Show(over).Level; got != levels.Critical {
		t.Errorf("without alerting 151/100 shown %s, want critical", got)
	}
	// The status's JSON says the shown level as "level" and the paged one as "alert_level".
	h.occ["entrance"] = 90
	h.at(1)
	b, _ := json.Marshal(h.m.Status().Zones)
	var zs []map[string]any
	_ = json.Unmarshal(b, &zs)
	for _, z := range zs {
		if z["zone"] == "entrance" && (z["level"] != "warning" || z["alert_level"] != "busy" || z["pending"] != "warning") {
			t.Errorf("status zone JSON %v", z)
		}
	}
}
