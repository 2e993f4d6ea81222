package alerting

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrInvalid wraps a request that cannot be carried out as asked.
var ErrInvalid = errors.New("invalid request")

// Filter selects alerts; empty fields match all. State "open" means firing or acknowledged.
type Filter struct {
	State string
	Zone  string
	Kind  string
}

func (f Filter) match(a *Alert) bool {
	switch f.State {
	case "":
	case "open":
		if !a.Open() {
			return false
		}
	default:
		if string(a.State) != f.State {
			return false
		}
	}
	if f.Kind == "" && a.Kind == KindSecurity {
		return false // listed only when asked for by kind (admins: GET /api/v1/security/alerts)
	}
	return (f.Zone == "" || a.Zone == f.Zone) && (f.Kind == "" || string(a.Kind) == f.Kind)
}

// Alerts lists the open alerts and the recently resolved ones that match, most severe and
// newest first.
func (m *Manager) Alerts(ctx context.Context, f Filter) ([]Alert, error) {
	if f.State != "" && !slices.Contains([]string{"open", "firing", "acknowledged", "resolved"}, f.State) {
		return nil, fmt.Errorf("%w: state %q must be open, firing, acknowledged or resolved", ErrInvalid, f.State)
	}
	v, err := m.do(ctx, func(time.Time) (any, error) {
		var out []Alert
		for _, a := range m.alerts {
			if f.match(a) {
				out = append(out, *a)
			}
		}
		sortAlerts(out)
		for i := len(m.resolved) - 1; i >= 0; i-- {
			if f.match(m.resolved[i]) {
				out = append(out, *m.resolved[i])
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Alert), nil
}

// Ack acknowledges a firing alert: escalation and repeats stop; it resolves on its own when
// the condition clears.
func (m *Manager) Ack(ctx context.Context, id, by, note string) (Alert, error) {
	if by == "" {
		return Alert{}, fmt.Errorf("%w: an acknowledgement needs the name of who acknowledges", ErrInvalid)
	}
	v, err := m.do(ctx, func(now time.Time) (any, error) {
		a := m.alerts[id]
		if a == nil {
			return nil, fmt.Errorf("%w: no open alert %q", ErrNotFound, id)
		}
		m.ack(now, a, by, note)
		return *a, nil
	})
	if err != nil {
		return Alert{}, err
	}
	return v.(Alert), nil
}

// ack acknowledges one open alert (nothing for one acknowledged already).
func (m *Manager) ack(now time.Time, a *Alert, by, note string) { m.ackAt(now, now, a, by, note) }

// ackAt acknowledges a as of at (with HA the action's time, the same on every instance).
func (m *Manager) ackAt(now, at time.Time, a *Alert, by, note string) {
	if a.State == StateAcknowledged {
		return
	}
	t := at
	a.State, a.AckBy, a.AckAt, a.AckNote, a.UpdatedAt = StateAcknowledged, by, &t, note, now
	m.escalationOf(a)
	m.metrics.ackSeconds.Observe(max(0, at.Sub(a.StartsAt).Seconds()))
	m.record(now, a, "acknowledged", by, note)
	m.log.Info("alert acknowledged", "id", a.ID, "by", by, "note", note)
	m.notify(a, "acknowledged")
}

// AckZone acknowledges every open alert of a zone at once (one card on the dashboard) and
// returns them, most severe first; those acknowledged before are returned unchanged. All are
// stored in one transaction before the call returns.
func (m *Manager) AckZone(ctx context.Context, zone, by, note string) ([]Alert, error) {
	if by == "" {
		return nil, fmt.Errorf("%w: an acknowledgement needs the name of who acknowledges", ErrInvalid)
	}
	if zone == "" {
		return nil, fmt.Errorf("%w: name the zone whose alerts to acknowledge", ErrInvalid)
	}
	v, err := m.do(ctx, func(now time.Time) (any, error) {
		if _, err := m.affected(zone); err != nil {
			return nil, err
		}
		out := []Alert{}
		for _, a := range m.alerts {
			if a.Zone != zone {
				continue
			}
			m.ack(now, a, by, note)
			out = append(out, *a)
		}
		sortAlerts(out)
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Alert), nil
}

// Declare puts an evacuation in force for a zone (and every zone inside it) or, with zone "",
// for the whole site. Screens of the affected zones switch to exit guidance and every channel
// is notified at emergency priority.
func (m *Manager) Declare(ctx context.Context, zone, by, reason string) (Evacuation, error) {
	return m.DeclareAt(ctx, zone, by, reason, time.Time{})
}

// DeclareAt is Declare as of at (with HA the action's time, so that the evacuation's at is
// the same on every instance; zero: now).
func (m *Manager) DeclareAt(ctx context.Context, zone, by, reason string, at time.Time) (Evacuation, error) {
	if by == "" || strings.TrimSpace(reason) == "" {
		return Evacuation{}, fmt.Errorf("%w: declaring an evacuation needs who declares it and a reason", ErrInvalid)
	}
	v, err := m.do(ctx, func(now time.Time) (any, error) {
		affected, err := m.affected(zone)
		if err != nil {
			return nil, err
		}
		if ev := m.evacs[zone]; ev != nil {
			return *ev, nil
		}
		if at.IsZero() {
			at = now
		}
		ev := &Evacuation{Zone: zone, Reason: reason, By: by, At: at, Affected: affected}
		m.endDrillsFor(now, affected) // a real evacuation overrides a drill at once
		m.evacs[zone] = ev
		m.pending.evacs[zone] = ev
		m.pending.events = append(m.pending.events, &Event{At: now, Kind: KindEvacuation, Zone: zone,
			What: "evacuation_declared", Severity: SeverityEmergency, By: by, Note: reason})
		m.log.Warn("EVACUATION declared", "zone", cmpOrSite(zone), "by", by, "reason", reason)
		return *ev, nil
	})
	if err != nil {
		return Evacuation{}, err
	}
	return v.(Evacuation), nil
}

// StandDown ends an evacuation.
func (m *Manager) StandDown(ctx context.Context, zone, by, reason string) error {
	if by == "" || strings.TrimSpace(reason) == "" {
		return fmt.Errorf("%w: standing down needs who does it and a reason", ErrInvalid)
	}
	_, err := m.do(ctx, func(now time.Time) (any, error) {
		if m.evacs[zone] == nil {
			return nil, fmt.Errorf("%w: no evacuation in force for %s", ErrNotFound, cmpOrSite(zone))
		}
		delete(m.evacs, zone)
		m.pending.evacs[zone] = nil
		m.pending.events = append(m.pending.events, &Event{At: now, Kind: KindEvacuation, Zone: zone,
			What: "evacuation_stood_down", Severity: SeverityEmergency, By: by, Note: reason})
		if a := m.alerts[alertID(&Alert{Kind: KindEvacuation, Zone: zone})]; a != nil {
			a.Detail = fmt.Sprintf("stood down by %s: %s", by, reason)
		}
		m.log.Warn("evacuation stood down", "zone", cmpOrSite(zone), "by", by, "reason", reason)
		return nil, nil
	})
	return err
}

func cmpOrSite(zone string) string {
	if zone == "" {
		return "the whole site"
	}
	return zone
}

func (m *Manager) affected(zone string) ([]string, error) {
	if zone == "" {
		var all []string
		for _, z := range m.set.topo.zones {
			all = append(all, z.ID)
		}
		return all, nil
	}
	for i, z := range m.set.topo.zones {
		if z.ID == zone {
			return slices.Clone(m.set.topo.descendants[i]), nil
		}
	}
	return nil, fmt.Errorf("%w: unknown zone %q", ErrNotFound, zone)
}

// Events returns the stored transitions between from and to, for history and reports.
func (m *Manager) Events(from, to time.Time) ([]Event, error) { return m.store.events(from, to) }

// Reload swaps in new thresholds, escalation and routes; the zones and doors must be the
// same (they need a restart).
func (m *Manager) Reload(ctx context.Context, cfg *Config) error {
	set, err := newSettings(cfg, m.opts.Model, m.opts.Messages)
	if err != nil {
		return err
	}
	_, err = m.do(ctx, func(time.Time) (any, error) {
		m.set = set
		return nil, nil
	})
	return err
}
