package promotion

import (
	"math"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Roster is the staffing plan: people needed per zone and half hour, from the rules of
// staffing: (docs/events.md, "Staff the day"): fixed posts at each entrance, exit and metered
// queue of the zone, plus one person per people_per_staff expected at the high end of the
// forecast (or, with no history, at the capacity in force: staffed for a full zone).
//
// Zones nest, so nobody is counted twice: a door's post belongs to the innermost zone it
// opens (the zone its from or to names), and a zone's people are its own part, its figure
// less its direct children's.
type Roster struct {
	Rules configs.Staffing `json:"rules"`
	Slots int              `json:"slots"`
	Zones []ZoneRoster     `json:"zones"`
	Total []int            `json:"total"` // per half hour
}

// ZoneRoster is one zone's posts and people per half hour.
type ZoneRoster struct {
	Zone      string   `json:"zone"`
	Name      string   `json:"name,omitempty"`
	Entrances []string `json:"entrances"` // doors from outside into the zone
	Exits     []string `json:"exits"`     // other doors out of the zone, to a zone not inside it
	Queues    []string `json:"queues"`    // metered doors of the zone (a queue post each)
	Fixed     int      `json:"fixed"`
	Staff     []int    `json:"staff"`
	// FromCapacity marks half hours staffed for the capacity in force, without a forecast.
	FromCapacity []bool `json:"from_capacity"`
}

// BuildRoster applies cfg's staffing rules to the forecast f of plan.
func BuildRoster(cfg *configs.Config, plan configs.EventPlan, f *Forecast) *Roster {
	rules := cfg.Staffing
	r := &Roster{Rules: rules, Slots: len(f.Slots), Total: make([]int, len(f.Slots))}
	m := zones.NewModel(cfg)
	idx := map[string]int{}
	for i, z := range m.Zones {
		idx[z.ID] = i
	}
	metered := map[string]bool{}
	for _, md := range plan.Metered {
		metered[md.Door] = true
	}
	for zi, zf := range f.Zones {
		zr := ZoneRoster{Zone: zf.Zone, Name: zf.Name, Entrances: []string{}, Exits: []string{}, Queues: []string{},
			Staff: make([]int, len(f.Slots)), FromCapacity: make([]bool, len(f.Slots))}
		z := idx[zf.Zone]
		for _, d := range m.Doors {
			if !touches(d, z) || (d.From != zf.Zone && d.To != zf.Zone) {
				continue
			}
			switch other := otherSide(m, d, z); {
			case other == configs.Outside && doorInto(m, d, z):
				zr.Entrances = append(zr.Entrances, d.ID)
			case other == configs.Outside || !inside(m, other, zf.Zone):
				zr.Exits = append(zr.Exits, d.ID)
			}
			if metered[d.ID] && doorInto(m, d, z) {
				zr.Queues = append(zr.Queues, d.ID)
			}
		}
		zr.Fixed = rules.EntrancePosts*len(zr.Entrances) + rules.ExitPosts*len(zr.Exits) + rules.QueuePosts*len(zr.Queues)
		for i := range f.Slots {
			people := float64(zf.Capacity)
			if o := f.Zones[zi].Occupancy[i]; o != nil {
				people = o.High
			} else {
				zr.FromCapacity[i] = true
			}
			for ci, c := range f.Zones {
				if m.Zones[idx[c.Zone]].Parent != zf.Zone {
					continue
				}
				if o := f.Zones[ci].Occupancy[i]; o != nil && !zr.FromCapacity[i] {
					people -= o.High
				} else if zr.FromCapacity[i] {
					people -= float64(c.Capacity)
				}
			}
			people = max(0, people)
			zr.Staff[i] = zr.Fixed + int(math.Ceil(people/float64(rules.PeoplePerStaff)))
			r.Total[i] += zr.Staff[i]
		}
		r.Zones = append(r.Zones, zr)
	}
	return r
}

func touches(d zones.DoorInfo, z int) bool {
	for _, g := range append(append([]int{}, d.Gain...), d.Lose...) {
		if g == z {
			return true
		}
	}
	return false
}

// otherSide is the side of door d that is not zone z or inside it.
func otherSide(m *zones.Model, d zones.DoorInfo, z int) string {
	if inside(m, d.To, m.Zones[z].ID) {
		return d.From
	}
	return d.To
}

// doorInto: d's "to" side is z or inside it (the door is an entrance of z by its direction,
// or any door from outside: counters count both ways).
func doorInto(m *zones.Model, d zones.DoorInfo, z int) bool {
	return inside(m, d.To, m.Zones[z].ID) || d.To == configs.Outside
}

// inside: zone id is anc or one of its descendants.
func inside(m *zones.Model, id, anc string) bool {
	for i, z := range m.Zones {
		if z.ID != id {
			continue
		}
		for _, a := range m.Zones[i].Ancestors {
			if m.Zones[a].ID == anc {
				return true
			}
		}
	}
	return false
}
