package alerting

import (
	"fmt"
	"slices"
	"strings"

	"github.com/crowdwatch/crowdwatch/zones"
)

// uncertainDoors are zone z's doors without a live counter, sorted.
func (t *topology) uncertainDoors(z int, live map[string]bool) []string {
	var out []string
	for _, d := range append(slices.Clone(t.doorsIn[z]), t.doorsOut[z]...) {
		door := t.doors[d]
		if door.Device == "" || !live[door.Device] {
			out = append(out, door.ID)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// uncertainRule: a door of the zone has no live counter, so its count may be off.
func (m *Manager) uncertainRule(e *zoneEval) []candidate {
	if len(e.weak) == 0 {
		return nil
	}
	return []candidate{{alert: Alert{Kind: KindUncertain, Zone: e.zs.ID, Severity: SeverityInfo, Doors: e.weak,
		Summary:    fmt.Sprintf("%s count uncertain: no live counter on %s", e.name, strings.Join(e.weak, ", ")),
		SummaryKey: "alert.uncertain", Params: e.params("doors", strings.Join(e.weak, ", "))}, active: true, held: true}}
}

// deviceSilentRule: a device that is not live, one candidate each, in the snapshot's order.
func (m *Manager) deviceSilentRule(snap *zones.Snapshot, live map[string]bool) []candidate {
	set := m.set
	var cands []candidate
	for _, d := range snap.Devices {
		if d.Online {
			continue
		}
		if live[d.ID] {
			continue
		}
		var doors, zonesHit []string
		for _, di := range set.topo.deviceDoors[d.ID] {
			doors = append(doors, set.topo.doors[di].ID)
			zonesHit = append(zonesHit, set.topo.doorZones[di]...)
		}
		if d.Zone != "" {
			zonesHit = append(zonesHit, d.Zone)
		}
		slices.Sort(zonesHit)
		zonesHit = slices.Compact(zonesHit)
		since := "never reported"
		key, params := "alert.device_silent.never", map[string]any{"device": d.ID, "doors": strings.Join(doors, ", "), "zones": strings.Join(zonesHit, ", ")}
		if d.LastSeen != nil {
			since = "silent since " + d.LastSeen.In(set.cfg.Location).Format("15:04:05")
			key, params["since"] = "alert.device_silent", d.LastSeen.In(set.cfg.Location).Format("15:04:05")
		}
		what := "door " + strings.Join(doors, ", ")
		if d.Kind == zones.KindSensor {
			what = "the head count"
		}
		cands = append(cands, candidate{alert: Alert{Kind: KindDeviceSilent, Device: d.ID, Doors: doors, Severity: SeverityWarning,
			Summary:    fmt.Sprintf("%s %s %s; %s of %s is not counted", d.Kind, d.ID, since, what, strings.Join(zonesHit, ", ")),
			SummaryKey: key, Params: params},
			active: true, held: true})
	}
	return cands
}
