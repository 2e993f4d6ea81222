package alerting

import (
	"cmp"
	"fmt"
)

// evacuationRule: an evacuation declared by a person, of one zone or the whole site; open
// until it is ended.
func (m *Manager) evacuationRule() []candidate {
	set := m.set
	var cands []candidate
	for zone, ev := range m.evacs {
		where := "the whole site"
		key, params := "alert.evacuation.site", map[string]any{"by": ev.By, "reason": ev.Reason}
		if zone != "" {
			where = zone
			key, params["zone"], params["zone_name"] = "alert.evacuation", zone, zone
			if zi, ok := m.opts.Model.Zone(zone); ok {
				params["zone_name"] = cmp.Or(set.topo.zones[zi].Name, zone)
			}
		}
		cands = append(cands, candidate{alert: Alert{Kind: KindEvacuation, Zone: zone, Severity: SeverityEmergency,
			Summary: fmt.Sprintf("EVACUATION of %s declared by %s: %s", where, ev.By, ev.Reason), SummaryKey: key, Params: params},
			active: true, held: true})
	}
	return cands
}
