package alerting

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// With HA, each instance opens an alert from its own evaluation, a few milliseconds apart:
// an acknowledgement taken on one instance can reach another through the action log before
// that one has the alert open. It is kept there as a pending acknowledgement and applied the
// moment the same alert (same id, same occurrence) opens, with the action's own by, note and
// time, so every instance ends acknowledged alike (docs/ha.md, "Early acknowledgement").

const (
	// pendingAckFor is how long a pending acknowledgement waits for its alert: the
	// instances evaluate the same occupancy within the ingest lag (milliseconds), so a
	// minute is far more than they ever differ by, and short enough that an ack never
	// lands on an alert that opened for another reason.
	pendingAckFor = time.Minute
	// maxPendingAcks bounds them (a zone's acknowledgement keeps one per alert).
	maxPendingAcks = 256
)

// PendingAck is an acknowledgement kept until its alert opens here.
type PendingAck struct {
	ID string `json:"id"`
	// Occurrence is the start of the alert on the instance that took the action; the alert
	// that opens here matches it within sameOccurrence (each instance starts it itself).
	Occurrence time.Time `json:"occurrence"`
	By         string    `json:"by"`
	Note       string    `json:"note,omitempty"`
	At         time.Time `json:"at"`      // the action's time: the acknowledgement's time everywhere
	Expires    time.Time `json:"expires"` // this instance's clock: kept until then
}

func (p *PendingAck) matches(start time.Time) bool {
	d := start.Sub(p.Occurrence)
	return d <= sameOccurrence && d >= -sameOccurrence
}

// AckAction is an acknowledgement as it reaches an instance through the action log.
type AckAction struct {
	ID   string // one alert, or
	Zone string // every open alert of a zone
	By   string
	Note string
	At   time.Time // the action's time; zero: now
	// Occurrences are the open alerts the instance that took the action acknowledged, by id
	// with their start: those not open here are kept pending when Keep is set.
	Occurrences map[string]time.Time
	// Keep: this instance did not take the action. The taking instance's answer decides (it
	// refused an alert it did not have open before appending), so the others keep what they
	// lack yet rather than refuse it.
	Keep bool
}

// OpenOccurrences are the open alerts an acknowledgement of id (or of zone) would take, by
// id with their start, for the action the log carries; an id that is not open is
// ErrNotFound and an unknown zone too, as Ack and AckZone answer.
func (m *Manager) OpenOccurrences(ctx context.Context, id, zone string) (map[string]time.Time, error) {
	v, err := m.do(ctx, func(time.Time) (any, error) {
		out := map[string]time.Time{}
		if id != "" {
			a := m.alerts[id]
			if a == nil {
				return nil, fmt.Errorf("%w: no open alert %q", ErrNotFound, id)
			}
			out[id] = a.StartsAt
			return out, nil
		}
		if _, err := m.affected(zone); err != nil {
			return nil, err
		}
		for _, a := range m.alerts {
			if a.Zone == zone {
				out[a.ID] = a.StartsAt
			}
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(map[string]time.Time), nil
}

// ApplyAck acknowledges as the action log says: the alert id (or every open alert of Zone)
// at the action's time; with Keep, an alert in Occurrences that is not open here yet is
// kept pending and acknowledged when it opens. It returns the alerts acknowledged now (an
// id: one, or none when it is only pending here).
func (m *Manager) ApplyAck(ctx context.Context, x AckAction) ([]Alert, error) {
	if x.By == "" {
		return nil, fmt.Errorf("%w: an acknowledgement needs the name of who acknowledges", ErrInvalid)
	}
	if x.ID == "" && x.Zone == "" {
		return nil, fmt.Errorf("%w: name the alert or the zone to acknowledge", ErrInvalid)
	}
	v, err := m.do(ctx, func(now time.Time) (any, error) {
		at := x.At
		if at.IsZero() {
			at = now
		}
		out := []Alert{}
		if x.ID != "" {
			if a := m.alerts[x.ID]; a != nil {
				m.ackAt(now, at, a, x.By, x.Note)
				return append(out, *a), nil
			}
			if occ, ok := x.Occurrences[x.ID]; ok && x.Keep {
				m.keepAck(now, &PendingAck{ID: x.ID, Occurrence: occ, By: x.By, Note: x.Note, At: at})
				return out, nil
			}
			return nil, fmt.Errorf("%w: no open alert %q", ErrNotFound, x.ID)
		}
		if _, err := m.affected(x.Zone); err != nil {
			return nil, err
		}
		for _, a := range m.alerts {
			if a.Zone == x.Zone {
				m.ackAt(now, at, a, x.By, x.Note)
				out = append(out, *a)
			}
		}
		if x.Keep {
			for _, id := range slices.Sorted(mapKeys(x.Occurrences)) {
				if m.alerts[id] == nil {
					m.keepAck(now, &PendingAck{ID: id, Occurrence: x.Occurrences[id], By: x.By, Note: x.Note, At: at})
				}
			}
		}
		sortAlerts(out)
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Alert), nil
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// PendingAcks are the acknowledgements kept for alerts not open here yet, oldest first.
func (m *Manager) PendingAcks(ctx context.Context) ([]PendingAck, error) {
	v, err := m.do(ctx, func(now time.Time) (any, error) {
		m.prunePendingAcks(now)
		out := []PendingAck{}
		for _, p := range m.pendingAcks {
			out = append(out, *p)
		}
		slices.SortFunc(out, func(a, b PendingAck) int { return a.Expires.Compare(b.Expires) })
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]PendingAck), nil
}

// keepAck keeps p until its alert opens or it expires, dropping the oldest beyond the bound.
func (m *Manager) keepAck(now time.Time, p *PendingAck) {
	m.prunePendingAcks(now)
	p.Expires = now.Add(pendingAckFor)
	if m.pendingAcks == nil {
		m.pendingAcks = map[string]*PendingAck{}
	}
	for len(m.pendingAcks) >= maxPendingAcks && m.pendingAcks[p.ID] == nil {
		var oldest *PendingAck
		for _, q := range m.pendingAcks {
			if oldest == nil || q.Expires.Before(oldest.Expires) {
				oldest = q
			}
		}
		m.dropPendingAck(oldest.ID)
	}
	m.pendingAcks[p.ID] = p
	m.pending.acks[p.ID] = p
	m.log.Info("acknowledgement kept until its alert opens here", "id", p.ID, "by", p.By, "expires", p.Expires)
}

func (m *Manager) dropPendingAck(id string) {
	delete(m.pendingAcks, id)
	m.pending.acks[id] = nil
}

func (m *Manager) prunePendingAcks(now time.Time) {
	for id, p := range m.pendingAcks {
		if !now.Before(p.Expires) {
			m.log.Info("a pending acknowledgement expired: its alert did not open here", "id", id, "by", p.By)
			m.dropPendingAck(id)
		}
	}
}

// takePendingAck acknowledges a, just opened, when an acknowledgement waits for it.
func (m *Manager) takePendingAck(now time.Time, a *Alert) {
	p := m.pendingAcks[a.ID]
	if p == nil {
		return
	}
	m.dropPendingAck(a.ID)
	if !now.Before(p.Expires) || !p.matches(a.StartsAt) {
		return
	}
	m.ackAt(now, p.At, a, p.By, p.Note)
}
