// Package alerting turns zone and device state into alerts for people: per-zone crowd levels
// with hysteresis, inflow surges, time-to-full and evacuation-time estimates, device and data
// faults, and evacuations declared by security staff. It keeps each alert's lifecycle (firing,
// acknowledged, resolved) in bbolt, escalates what nobody acknowledges, and hands notifications
// to channels (MQTT, webhooks, Alertmanager) that cannot block each other or the ingest.
package alerting

import (
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Severity orders notifications and routes them.
type Severity string

const (
	SeverityInfo      Severity = "info"
	SeverityWarning   Severity = "warning"
	SeverityCritical  Severity = "critical"
	SeverityEmergency Severity = "emergency" // evacuation: every channel, highest priority
)

// Rank orders severities: info 0 … emergency 3.
func (s Severity) Rank() int {
	switch s {
	case SeverityWarning:
		return 1
	case SeverityCritical:
		return 2
	case SeverityEmergency:
		return 3
	}
	return 0
}

// Kind is what an alert is about.
type Kind string

const (
	KindLevel        Kind = "level"         // a zone at warning, critical or evacuate
	KindSurge        Kind = "surge"         // inflow into a zone above its limit
	KindTimeToFull   Kind = "time_to_full"  // at the current net inflow the zone fills soon
	KindEvacTime     Kind = "evac_time"     // estimated evacuation time above the target
	KindDeviceSilent Kind = "device_silent" // a counter or sensor stopped reporting
	KindUncertain    Kind = "uncertain"     // a zone whose occupancy has a door without a live counter
	KindDrift        Kind = "drift"         // unusual clamping of a zone's deficit
	KindCorrection   Kind = "correction"    // a large manual or sensor correction
	KindEvacuation   Kind = "evacuation"    // declared (or recommended) evacuation
)

// State is where an alert is in its lifecycle.
type State string

const (
	StateFiring       State = "firing"
	StateAcknowledged State = "acknowledged"
	StateResolved     State = "resolved"
)

// Alert is one alert, identified by its kind and subject (zone, device or site).
type Alert struct {
	ID       string       `json:"id"` // kind:subject, e.g. "level:entrance", "device_silent:dc-01"
	Kind     Kind         `json:"kind"`
	Zone     string       `json:"zone,omitempty"`
	Device   string       `json:"device,omitempty"`
	Doors    []string     `json:"doors,omitempty"`
	Level    levels.Level `json:"level,omitzero"` // for level alerts: the level reached
	Severity Severity     `json:"severity"`
	State    State        `json:"state"`
	// Summary is the English text, for channels and logs. SummaryKey and ActionKey are keys
	// of the message catalogue (web/assets/static/i18n.json) and Params the values their
	// {placeholders} take, so that each viewer reads the alert in their own language.
	Summary    string         `json:"summary"`
	SummaryKey string         `json:"summary_key,omitempty"`
	Params     map[string]any `json:"params,omitempty"`
	// ActionKey is what the playbook (alerting.playbook) suggests doing; Action is its text in
	// the playbook's language; ActionText, instead of ActionKey, a store's own action per
	// language.
	ActionKey  string            `json:"action_key,omitempty"`
	Action     string            `json:"action,omitempty"`
	ActionText map[string]string `json:"action_text,omitempty"`
	Detail     string            `json:"detail,omitempty"`
	// Value is the figure that triggered it: occupancy ratio, density, persons/min, seconds.
	Value float64 `json:"value"`
	// Uncertain marks an occupancy alert whose figure depends on a counter that is down.
	Uncertain bool `json:"uncertain,omitempty"`
	// Security alerts: the event kind (package security) and the address it came from.
	SecurityKind string `json:"security_kind,omitempty"`
	Source       string `json:"source,omitempty"`
	// Silenced is set while a silence matches; the alert is kept but nobody is notified.
	Silenced  bool       `json:"silenced,omitempty"`
	Inhibited bool       `json:"inhibited,omitempty"` // covered by an evacuation of its zone
	StartsAt  time.Time  `json:"starts_at"`
	UpdatedAt time.Time  `json:"updated_at"`
	EndsAt    *time.Time `json:"ends_at,omitempty"`
	AckBy     string     `json:"ack_by,omitempty"`
	AckAt     *time.Time `json:"ack_at,omitempty"`
	AckNote   string     `json:"ack_note,omitempty"`
	// Escalation is how many steps of the escalation chain have been paged (0 = first group).
	Escalation  int       `json:"escalation"`
	EscalatedAt time.Time `json:"escalated_at,omitzero"`
	// EscalationTo is the group paged at the current step (alerting.escalation.groups);
	// NextEscalationAt is when the next group is paged unless someone acknowledges (nil when
	// acknowledged, muted or at the last group).
	EscalationTo     string     `json:"escalation_to,omitempty"`
	NextEscalationAt *time.Time `json:"next_escalation_at,omitempty"`
	Notified         time.Time  `json:"notified,omitzero"`
}

// Open reports whether the alert is still firing or acknowledged.
func (a *Alert) Open() bool { return a.State != StateResolved }

// Evacuation is an evacuation in force for a zone or, with Zone "", for the whole site.
type Evacuation struct {
	Zone     string    `json:"zone"` // "" = the whole site
	Reason   string    `json:"reason"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Affected []string  `json:"affected"` // the zone and every zone inside it
}

// ZoneStatus is one zone's alerting view: its levels and the estimates behind it.
type ZoneStatus struct {
	Zone string `json:"zone"`
	// Shown is the level every view shows (map, screens, API, zone topic): it rises the moment
	// the figures cross a trigger and falls only through the clear band. Level is the paged
	// level (after hold-downs and ClearAfter), the one level alerts are about.
	Shown levels.Level `json:"level"`
	Level levels.Level `json:"alert_level"`
	// Pending is the level of an alert waiting out its hold-down, since PendingSince.
	Pending      *levels.Level `json:"pending,omitempty"`
	PendingSince *time.Time    `json:"pending_since,omitempty"`
	// Uncertain: a door of this zone has no live counter, so the figure may be off.
	Uncertain bool `json:"uncertain,omitempty"`
	// InflowPerMin is people per minute in through the zone's doors over the surge window;
	// NetPerMin is in minus out.
	InflowPerMin float64 `json:"inflow_per_min"`
	NetPerMin    float64 `json:"net_per_min"`
	// SecondsToFull at the current net inflow; nil when the zone is not filling.
	SecondsToFull *float64 `json:"seconds_to_full,omitempty"`
	// EvacSeconds is the estimated evacuation time; nil when the zone has no exit widths.
	EvacSeconds *float64 `json:"evac_seconds,omitempty"`
	Evacuating  bool     `json:"evacuating,omitempty"`
	// limits are the zone's thresholds, so that Show escalates on figures newer than this
	// status. Never modified after publication (a reload makes new ones).
	limits *Limits
}

// ZoneLevel is how a zone is shown: the same on the map, the screens, GET /api/v1/zones, the
// live feed and the retained zone topic.
type ZoneLevel struct {
	Level        levels.Level  `json:"level"`
	Pending      *levels.Level `json:"pending,omitempty"`
	PendingSince *time.Time    `json:"pending_since,omitempty"`
	// Uncertain: a door of the zone has no live counter, so the figure may be off.
	Uncertain bool `json:"uncertain,omitempty"`
}

// Show is how the zone z (figures from the latest snapshot) is shown. With a status that has
// evaluated the zone, it is the zone's shown level, raised at once to what z's figures reach
// by the zone's own thresholds (the snapshot may be newer than the evaluation); without one
// (s nil, alerting not wired, or not evaluated yet), the level by the built-in thresholds.
// This is the one place every view takes a zone's level from.
func (s *Status) Show(z zones.ZoneState) ZoneLevel {
	if s != nil {
		if zs, ok := s.Zone(z.ID); ok {
			now := levels.Instant(z.Ratio, z.Density)
			if zs.limits != nil {
				now = zs.limits.Reached(z.Ratio, z.Density, 1)
			}
			return ZoneLevel{Level: max(zs.Shown, now), Pending: zs.Pending, PendingSince: zs.PendingSince, Uncertain: zs.Uncertain}
		}
	}
	return ZoneLevel{Level: levels.Instant(z.Ratio, z.Density)}
}

// Status is everything screens and reports need at one moment, replaced as a whole on each
// change and never modified after publication.
type Status struct {
	Version uint64       `json:"version"`
	At      time.Time    `json:"at"`
	Zones   []ZoneStatus `json:"zones"`
	Alerts  []Alert      `json:"alerts"` // open alerts, most severe first
	// Security holds the open security alerts, kept apart from the crowd view that screens
	// and guards read; admins list them through GET /api/v1/security/alerts.
	Security    []Alert      `json:"-"`
	Evacuations []Evacuation `json:"evacuations"`
	// Drills are the evacuation drills in progress (never an evacuation: screens mark them DRILL).
	Drills []Drill `json:"drills"`
	// SiteEvacSeconds estimates evacuating the whole site through its outside doors.
	SiteEvacSeconds *float64 `json:"site_evac_seconds,omitempty"`
	// index maps a zone id to its place in Zones (set by the manager before publication).
	index map[string]int
}

// Zone returns a zone's status by id.
func (s *Status) Zone(id string) (ZoneStatus, bool) {
	if s.index != nil {
		if i, ok := s.index[id]; ok && i < len(s.Zones) {
			return s.Zones[i], true
		}
		return ZoneStatus{}, false
	}
	for _, z := range s.Zones {
		if z.Zone == id {
			return z, true
		}
	}
	return ZoneStatus{}, false
}

// AlertLevel is a zone's paged level (what history records; history.LevelView).
func (s *Status) AlertLevel(zone string) (levels.Level, bool) {
	z, ok := s.Zone(zone)
	return z.Level, ok
}

// Event is one stored transition of an alert or an evacuation, for history and reports.
type Event struct {
	Seq     uint64    `json:"seq"`
	At      time.Time `json:"at"`
	AlertID string    `json:"alert_id,omitempty"`
	Kind    Kind      `json:"kind"`
	Zone    string    `json:"zone,omitempty"`
	Device  string    `json:"device,omitempty"`
	// What happened: fired, escalated, acknowledged, resolved, renotified, silenced,
	// evacuation_declared, evacuation_recommended, evacuation_stood_down.
	What     string       `json:"what"`
	Severity Severity     `json:"severity,omitempty"`
	Level    levels.Level `json:"level,omitzero"`
	By       string       `json:"by,omitempty"`
	Note     string       `json:"note,omitempty"`
}
