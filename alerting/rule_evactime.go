package alerting

import (
	"fmt"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// evacTimeRule: the zone's estimated evacuation time exceeds the target (estimates.go).
func (m *Manager) evacTimeRule(e *zoneEval) []candidate {
	if e.st.EvacSeconds == nil {
		return nil
	}
	a, l, t := &m.set.cfg.Alerting, e.l, *e.st.EvacSeconds
	target := a.Evacuation.Target.Seconds()
	return []candidate{{alert: Alert{Kind: KindEvacTime, Zone: e.zs.ID, Severity: SeverityWarning, Value: t,
		Summary:    fmt.Sprintf("%s would take about %s to evacuate (target %s)", e.name, humanDuration(t), humanDuration(target)),
		SummaryKey: "alert.evac_time", Params: e.params("minutes", minutes(t), "target_minutes", minutes(target))},
		active: t > target, held: t > target*l.ClearFactor, hold: l.For[levels.Warning], clear: l.ClearAfter}}
}

// siteEvacTimeRule works out the whole site's evacuation estimate (nil without one) and its
// candidate when the site's top zones are more than one.
func (m *Manager) siteEvacTimeRule(snap *zones.Snapshot) (*float64, []candidate) {
	set := m.set
	a := &set.cfg.Alerting
	var siteEvac *float64
	var siteN int64
	for _, r := range set.topo.roots {
		siteN += snap.Zones[r].Occupancy
	}
	if t, ok := evacSeconds(siteN, set.topo.siteExits, a.Evacuation.PreMovement); ok {
		siteEvac = ptr(round1(t))
	}
	// With a single top zone (the whole store) the site's estimate is that zone's (the same
	// people through the same outside doors): its zone alert says it, once.
	if siteEvac == nil || set.topo.singleRoot() {
		return siteEvac, nil
	}
	t := *siteEvac
	target := a.Evacuation.Target.Seconds()
	return siteEvac, []candidate{{alert: Alert{Kind: KindEvacTime, Severity: SeverityWarning, Value: t,
		Summary:    fmt.Sprintf("The whole site would take about %s to evacuate (target %s)", humanDuration(t), humanDuration(target)),
		SummaryKey: "alert.evac_time.site", Params: map[string]any{"minutes": minutes(t), "target_minutes": minutes(target)}},
		active: t > target, held: t > target*0.9, hold: time.Minute, clear: 30 * time.Second}}
}
