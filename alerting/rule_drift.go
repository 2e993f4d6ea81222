package alerting

import (
	"fmt"
	"strings"
	"time"
)

// driftRule: people added to the zone by drift clamping over the drift window, a sign that a
// counter misses people going out.
func (m *Manager) driftRule(now time.Time, e *zoneEval) []candidate {
	a, zs := &m.set.cfg.Alerting, e.zs
	m.drift[e.z].add(driftSample{at: now, clamped: zs.Clamped}, a.DriftWindow)
	d := zs.Clamped - m.drift[e.z].samples[0].clamped
	if d < a.DriftThreshold && m.alerts["drift:"+zs.ID] == nil {
		return nil
	}
	devices := strings.Join(e.info.Devices, ", ")
	return []candidate{{alert: Alert{Kind: KindDrift, Zone: zs.ID, Severity: SeverityWarning, Value: float64(d),
		Summary:    fmt.Sprintf("%s: %d people added by drift clamping in the last %s; check the counters of %s", e.name, d, a.DriftWindow, devices),
		SummaryKey: "alert.drift", Params: e.params("people", d, "minutes", minutes(a.DriftWindow.Seconds()), "devices", devices)},
		active: d >= a.DriftThreshold, held: d >= a.DriftThreshold/2}}
}

// correctionRule: a large correction (manual, area sensor or daily reset) since the last
// evaluation; a one-off event, open for event_hold.
func (m *Manager) correctionRule(now time.Time, e *zoneEval) []candidate {
	a, zs := &m.set.cfg.Alerting, e.zs
	corr := zs.Corrected + zs.Anchored
	d := corr - m.lastCorr[e.z]
	m.lastCorr[e.z] = corr
	if d >= a.CorrectionThreshold || d <= -a.CorrectionThreshold {
		if d < 0 {
			d = -d
		}
		id := "correction:" + zs.ID
		al := Alert{Kind: KindCorrection, Zone: zs.ID, Severity: SeverityWarning, Value: float64(d),
			Summary:    fmt.Sprintf("%s corrected by %d people (manual correction, area sensor or daily reset)", e.name, d),
			SummaryKey: "alert.correction", Params: e.params("people", d)}
		m.conds[id] = &condTracker{}
		return []candidate{{alert: al, active: true, held: true}}
	}
	if open := m.alerts["correction:"+zs.ID]; open != nil {
		return []candidate{{alert: *open, active: false, held: now.Sub(open.StartsAt) < a.EventHold}}
	}
	return nil
}
