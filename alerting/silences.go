package alerting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Silence mutes notifications of matching alerts until End. Empty matchers match anything.
type Silence struct {
	ID      string    `json:"id"`
	Kind    Kind      `json:"kind,omitempty"`
	Zone    string    `json:"zone,omitempty"`
	Device  string    `json:"device,omitempty"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	By      string    `json:"by"`
	Comment string    `json:"comment"`
}

func (s *Silence) matches(a *Alert, now time.Time) bool {
	return !now.Before(s.Start) && now.Before(s.End) &&
		(s.Kind == "" || s.Kind == a.Kind) && (s.Zone == "" || s.Zone == a.Zone) && (s.Device == "" || s.Device == a.Device)
}

// muted says whether an evacuation of the alert's zone inhibits it and whether a silence
// matches it. Evacuations themselves are never muted.
func (m *Manager) muted(al *Alert, now time.Time) (inhibited, silenced bool) {
	if al.Kind == KindEvacuation {
		return false, false
	}
	if al.Zone != "" && slices.Contains([]Kind{KindLevel, KindSurge, KindTimeToFull, KindEvacTime}, al.Kind) {
		for _, ev := range m.evacs {
			if slices.Contains(ev.Affected, al.Zone) {
				inhibited = true
			}
		}
	}
	for _, s := range m.silences {
		if s.matches(al, now) {
			silenced = true
		}
	}
	return inhibited, silenced
}

// Silences lists the silences in force or still to come.
func (m *Manager) Silences(ctx context.Context) ([]Silence, error) {
	v, err := m.do(ctx, func(time.Time) (any, error) {
		var out []Silence
		for _, s := range m.silences {
			out = append(out, *s)
		}
		slices.SortFunc(out, func(a, b Silence) int { return a.End.Compare(b.End) })
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]Silence), nil
}

// AddSilence stores a silence; Start defaults to now, ID to a new random one (HA gives its
// own, the same on every instance). Evacuations cannot be silenced.
func (m *Manager) AddSilence(ctx context.Context, s Silence) (Silence, error) {
	switch {
	case s.By == "":
		return Silence{}, fmt.Errorf("%w: a silence needs its creator", ErrInvalid)
	case strings.TrimSpace(s.Comment) == "":
		return Silence{}, fmt.Errorf("%w: a silence needs a comment saying why", ErrInvalid)
	case s.End.IsZero():
		return Silence{}, fmt.Errorf("%w: a silence needs an end time", ErrInvalid)
	case s.Kind == KindEvacuation:
		return Silence{}, fmt.Errorf("%w: evacuations cannot be silenced", ErrInvalid)
	case s.Kind != "" && !slices.Contains(configs.AlertKinds, string(s.Kind)):
		return Silence{}, fmt.Errorf("%w: kind %q must be one of %v", ErrInvalid, s.Kind, configs.AlertKinds)
	}
	v, err := m.do(ctx, func(now time.Time) (any, error) {
		if s.Start.IsZero() {
			s.Start = now
		}
		if !s.End.After(now) || !s.End.After(s.Start) {
			return nil, fmt.Errorf("%w: the silence ends before it starts or in the past", ErrInvalid)
		}
		if s.Zone != "" {
			if _, err := m.affected(s.Zone); err != nil {
				return nil, err
			}
		}
		if s.ID == "" {
			var b [8]byte
			_, _ = rand.Read(b[:])
			s.ID = hex.EncodeToString(b[:])
		} else if old := m.silences[s.ID]; old != nil {
			// The HA action log names the silence for every instance, and may apply it twice
			// after a crash: one silence.
			return *old, nil
		}
		m.silences[s.ID] = &s
		m.pending.silences[s.ID] = &s
		m.pending.events = append(m.pending.events, &Event{At: now, Kind: s.Kind, Zone: s.Zone, Device: s.Device,
			What: "silenced", By: s.By, Note: fmt.Sprintf("until %s: %s", s.End.Format(time.RFC3339), s.Comment)})
		m.log.Info("silence added", "id", s.ID, "by", s.By, "kind", s.Kind, "zone", s.Zone, "device", s.Device, "end", s.End, "comment", s.Comment)
		return s, nil
	})
	if err != nil {
		return Silence{}, err
	}
	return v.(Silence), nil
}

// DeleteSilence ends a silence now.
func (m *Manager) DeleteSilence(ctx context.Context, id, by string) error {
	_, err := m.do(ctx, func(now time.Time) (any, error) {
		s := m.silences[id]
		if s == nil {
			return nil, fmt.Errorf("%w: no silence %q", ErrNotFound, id)
		}
		delete(m.silences, id)
		m.pending.silences[id] = nil
		m.pending.events = append(m.pending.events, &Event{At: now, Kind: s.Kind, Zone: s.Zone, Device: s.Device,
			What: "silence_removed", By: by})
		m.log.Info("silence removed", "id", id, "by", by)
		return nil, nil
	})
	return err
}
