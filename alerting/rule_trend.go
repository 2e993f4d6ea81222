package alerting

import (
	"fmt"
	"math"

	"github.com/crowdwatch/crowdwatch/levels"
)

// surgeRule: people coming into the zone faster than its surge limit over the surge window.
func (m *Manager) surgeRule(e *zoneEval) []candidate {
	l, inflow, trendOK := e.l, e.inflow, e.trendOK
	if l.SurgePerMin <= 0 {
		return nil
	}
	return []candidate{{alert: Alert{Kind: KindSurge, Zone: e.zs.ID, Severity: SeverityWarning, Value: round1(inflow),
		Summary: fmt.Sprintf("%s: %.0f people/min coming in (limit %.0f)", e.name, inflow, l.SurgePerMin), Uncertain: e.st.Uncertain,
		SummaryKey: "alert.surge", Params: e.params("per_min", math.Round(inflow), "limit", l.SurgePerMin)},
		active: trendOK && inflow >= l.SurgePerMin, held: trendOK && inflow >= l.SurgePerMin*l.ClearFactor,
		clear: l.ClearAfter, unknown: !trendOK}}
}

// timeToFullRule: the zone reaches capacity within its horizon at the current net rate.
func (m *Manager) timeToFullRule(e *zoneEval) []candidate {
	l, net, toFull, trendOK := e.l, e.net, e.toFull, e.trendOK
	// Time to full says nothing about a zone that is full already (at capacity, or shown
	// critical while paging waits out the hold-down): the level alert is the one to act on.
	full := e.zs.Occupancy >= int64(e.zs.Capacity) || e.shown >= levels.Critical
	if l.FullHorizon <= 0 || full {
		return nil
	}
	near := trendOK && net > 0 && toFull <= l.FullHorizon.Seconds() && e.level < levels.Critical
	return []candidate{{alert: Alert{Kind: KindTimeToFull, Zone: e.zs.ID, Severity: SeverityWarning, Value: round1(toFull),
		Summary: fmt.Sprintf("%s full in about %s at %.0f people/min net", e.name, humanDuration(toFull), net), Uncertain: e.st.Uncertain,
		SummaryKey: "alert.time_to_full", Params: e.params("minutes", minutes(toFull), "net_per_min", math.Round(net))},
		active: near, held: near || (trendOK && net > 0 && toFull <= l.FullHorizon.Seconds()/l.ClearFactor),
		hold: l.FullFor, clear: l.ClearAfter, unknown: !trendOK}}
}
