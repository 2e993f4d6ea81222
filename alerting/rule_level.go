package alerting

import (
	"fmt"
	"math"
	"strings"

	"github.com/crowdwatch/crowdwatch/levels"
)

// levelRule: the zone's occupancy (or density) level, from warning up. The level tracker has
// already applied the hold-down and clearing, so the candidate is active while it stands.
func (m *Manager) levelRule(e *zoneEval) []candidate {
	level, zs, name := e.level, e.zs, e.name // zs.Capacity is the capacity in force (promotion.InForce)
	if level < levels.Warning {
		return nil
	}
	al := Alert{Kind: KindLevel, Zone: zs.ID, Level: level, Severity: severityOf(level), Value: zs.Ratio,
		Uncertain: e.st.Uncertain, Doors: e.weak, SummaryKey: "alert.level." + level.String(),
		Params: e.params("occupancy", zs.Occupancy, "capacity", zs.Capacity, "percent", int64(math.Round(zs.Ratio*100)))}
	if zs.Density != nil {
		al.SummaryKey = "alert.level_density." + level.String()
		al.Params["density"] = round1(*zs.Density)
	}
	al.Summary = fmt.Sprintf("%s %s: %d people, %.0f%% of capacity %d", name, level, zs.Occupancy, zs.Ratio*100, zs.Capacity)
	if zs.Density != nil {
		al.Summary += fmt.Sprintf(", %.1f persons/m²", *zs.Density)
	}
	if level == levels.Evacuate {
		al.Summary = "Evacuation recommended: " + al.Summary
	}
	if e.st.Uncertain {
		al.Detail = "uncertain: no live counter on " + strings.Join(e.weak, ", ")
	}
	return []candidate{{alert: al, active: true, held: true}}
}
