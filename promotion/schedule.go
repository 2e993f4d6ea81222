package promotion

import (
	"encoding/json"
	"slices"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Plan is an event plan as the service keeps it: from the store file (read-only through the
// API) or made through the API (kept in the events file).
type Plan struct {
	configs.EventPlan
	// Origin is "file" (the store file's events:) or "api".
	Origin    string    `json:"origin"`
	UpdatedBy string    `json:"updated_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Schedule is an immutable set of plans, sorted by start, none overlapping: what says the
// capacity in force for a zone at a time.
type Schedule struct {
	plans    []Plan
	everyday map[string]int
}

// NewSchedule orders plans by start; everyday are the zones' configured capacities.
func NewSchedule(everyday map[string]int, plans []Plan) *Schedule {
	ps := slices.Clone(plans)
	slices.SortFunc(ps, func(a, b Plan) int { return a.Start.Compare(b.Start) })
	return &Schedule{plans: ps, everyday: everyday}
}

// ScheduleFromConfig is the schedule of the store file's plans alone (the commands that read
// the file, and a service before its events file is open).
func ScheduleFromConfig(cfg *configs.Config) *Schedule {
	ps := make([]Plan, len(cfg.Events))
	for i, e := range cfg.Events {
		ps[i] = Plan{EventPlan: e, Origin: "file"}
	}
	return NewSchedule(Everyday(cfg), ps)
}

// Everyday is each zone's configured capacity.
func Everyday(cfg *configs.Config) map[string]int {
	m := make(map[string]int, len(cfg.Zones))
	for _, z := range cfg.Zones {
		m[z.ID] = z.Capacity
	}
	return m
}

// Plans lists the plans by start.
func (s *Schedule) Plans() []Plan { return slices.Clone(s.plans) }

// Plan finds a plan by id.
func (s *Schedule) Plan(id string) (Plan, bool) {
	for _, p := range s.plans {
		if p.ID == id {
			return p, true
		}
	}
	return Plan{}, false
}

// Running is the plan in force at t (Start <= t < End), or nil.
func (s *Schedule) Running(t time.Time) *Plan {
	for i := range s.plans {
		p := &s.plans[i]
		if !t.Before(p.Start) && t.Before(p.End) {
			return p
		}
	}
	return nil
}

// Capacity is the capacity in force for zone at t and the plan that sets it ("" for the
// everyday capacity); 0 for an unknown zone.
func (s *Schedule) Capacity(zone string, t time.Time) (int, string) {
	if p := s.Running(t); p != nil {
		if c, ok := p.Capacities[zone]; ok {
			return c, p.ID
		}
	}
	return s.everyday[zone], ""
}

// NextChange is the first plan start or end after t (zero when none): when the capacities in
// force change next.
func (s *Schedule) NextChange(t time.Time) time.Time {
	var next time.Time
	for _, p := range s.plans {
		for _, b := range []time.Time{p.Start, p.End} {
			if b.After(t) && (next.IsZero() || b.Before(next)) {
				next = b
			}
		}
	}
	return next
}

// Previous is the latest plan of kind that ended before the plan id started (nil when none).
func (s *Schedule) Previous(id string) *Plan {
	cur, ok := s.Plan(id)
	if !ok || cur.Kind == "" {
		return nil
	}
	var prev *Plan
	for i := range s.plans {
		p := &s.plans[i]
		if p.ID != id && p.Kind == cur.Kind && !p.End.After(cur.Start) && (prev == nil || p.Start.After(prev.Start)) {
			prev = p
		}
	}
	return prev
}

// Earlier are the plans of kind that ended before t, latest first.
func (s *Schedule) Earlier(kind string, t time.Time) []Plan {
	var out []Plan
	for i := len(s.plans) - 1; i >= 0; i-- {
		if p := s.plans[i]; kind != "" && p.Kind == kind && !p.End.After(t) {
			out = append(out, p)
		}
	}
	return out
}

// MarshalJSON writes a plan in the API's shape (PlanInput's fields, the default name and
// the name per language, where it comes from).
func (p Plan) MarshalJSON() ([]byte, error) {
	v := struct {
		PlanInput
		Name      string            `json:"name"`
		Names     map[string]string `json:"names,omitempty"`
		Origin    string            `json:"origin"`
		UpdatedBy string            `json:"updated_by,omitempty"`
		UpdatedAt *time.Time        `json:"updated_at,omitempty"`
	}{PlanInput: InputOf(p.EventPlan), Name: p.EventPlan.Name, Names: p.Names.ByLanguage(p.EventPlan.Name), Origin: p.Origin, UpdatedBy: p.UpdatedBy}
	if !p.UpdatedAt.IsZero() {
		t := p.UpdatedAt
		v.UpdatedAt = &t
	}
	return json.Marshal(v)
}
