package alerting

import (
	"slices"
	"time"
)

// inhibitSilenceEscalate applies evacuations and silences, then pages the next group for
// what nobody acknowledged and repeats what is still firing.
func (m *Manager) inhibitSilenceEscalate(now time.Time) {
	for id, s := range m.silences {
		if !now.Before(s.End) {
			delete(m.silences, id)
			m.pending.silences[id] = nil
		}
	}
	a := &m.set.cfg.Alerting
	for _, al := range m.alerts {
		inhibited, silenced := m.muted(al, now)
		if inhibited != al.Inhibited || silenced != al.Silenced {
			al.Inhibited, al.Silenced = inhibited, silenced
			m.pending.alerts[al.ID] = al
		}
		m.escalationOf(al)
		if al.State != StateFiring || inhibited || silenced || al.Kind == KindSecurity || noEscalation(al.Kind) {
			continue // security alerts are told once, to their own route (security.go)
		}
		if al.Escalation+1 < len(a.Escalation.Groups) && now.Sub(al.EscalatedAt) >= a.Escalation.After {
			al.Escalation++
			al.EscalatedAt, al.Notified = now, now
			m.escalationOf(al)
			m.record(now, al, "escalated", "", a.Escalation.Groups[al.Escalation])
			m.log.Warn("alert escalated", "id", al.ID, "group", a.Escalation.Groups[al.Escalation])
			m.notify(al, "escalated")
			continue
		}
		if now.Sub(al.Notified) >= a.RepeatInterval {
			al.Notified = now
			m.pending.alerts[al.ID] = al
			m.notify(al, "repeat")
		}
	}
}

// escalationOf sets who the alert has paged (the group at its escalation step) and when the
// next group is paged if nobody acknowledges (none once acknowledged, muted or at the last).
func (m *Manager) escalationOf(al *Alert) {
	e := &m.set.cfg.Alerting.Escalation
	al.EscalationTo, al.NextEscalationAt = "", nil
	if al.Kind == KindSecurity || noEscalation(al.Kind) {
		return // told once, to its own route, never escalated (security.go)
	}
	if al.Escalation < len(e.Groups) {
		al.EscalationTo = e.Groups[al.Escalation]
	}
	if al.State == StateFiring && !al.Inhibited && !al.Silenced && al.Escalation+1 < len(e.Groups) {
		next := al.EscalatedAt.Add(e.After)
		al.NextEscalationAt = &next
	}
}

// notify routes a notification: the routes whose filters match and whose escalation group
// has been reached; an evacuation goes to every route.
func (m *Manager) notify(a *Alert, what string) {
	if (a.Silenced || a.Inhibited) && what != "resolved" {
		return
	}
	cfg := &m.set.cfg.Alerting
	groupIdx := func(g string) int { return slices.Index(cfg.Escalation.Groups, g) }
	var chans []string
	for _, r := range cfg.Routes {
		if a.Kind == KindSecurity && !slices.Contains(r.Kinds, string(KindSecurity)) {
			continue // security alerts go only to the routes made for them
		}
		if a.Severity != SeverityEmergency && !everyRoute(a.Kind) {
			if r.MinSeverity != "" && a.Severity.Rank() < Severity(r.MinSeverity).Rank() {
				continue
			}
			if len(r.Zones) > 0 && !slices.Contains(r.Zones, a.Zone) {
				continue
			}
			if len(r.Kinds) > 0 && !slices.Contains(r.Kinds, string(a.Kind)) {
				continue
			}
			if r.Group != "" {
				g := groupIdx(r.Group)
				if g > a.Escalation || (what == "escalated" && g != a.Escalation) {
					continue
				}
			}
		}
		if !slices.Contains(chans, r.Channel) {
			chans = append(chans, r.Channel)
		}
	}
	group := ""
	if a.Escalation < len(cfg.Escalation.Groups) {
		group = cfg.Escalation.Groups[a.Escalation]
	}
	m.outbox = append(m.outbox, outgoing{n: Notification{What: what, Site: m.set.cfg.Site.ID, SiteName: m.set.cfg.Site.Name,
		Group: group, Alert: *a}, routes: chans})
}
