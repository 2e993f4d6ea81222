package history

import (
	"slices"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Site is the store as history needs it: ids and nesting of zones, the doors between them.
type Site struct {
	ID    string
	Loc   *time.Location
	Zones []ZoneInfo
	Doors []DoorInfo
}

type ZoneInfo struct {
	ID       string  `json:"id"`
	Name     string  `json:"name,omitempty"`
	Parent   string  `json:"parent,omitempty"`
	Capacity int     `json:"capacity"`
	AreaM2   float64 `json:"area_m2,omitempty"`
}

type DoorInfo struct {
	ID   string `json:"id"`
	From string `json:"from"`
	To   string `json:"to"`
}

// SiteFromConfig takes a validated store file.
func SiteFromConfig(cfg *configs.Config) Site {
	s := Site{ID: cfg.Site.ID, Loc: cfg.Location}
	if s.Loc == nil {
		s.Loc = time.UTC
	}
	for _, z := range cfg.Zones {
		s.Zones = append(s.Zones, ZoneInfo{ID: z.ID, Name: z.Name, Parent: z.Parent, Capacity: z.Capacity, AreaM2: z.AreaM2})
	}
	for _, d := range cfg.Doors {
		s.Doors = append(s.Doors, DoorInfo{ID: d.ID, From: d.From, To: d.To})
	}
	return s
}

func (s *Site) zone(id string) (ZoneInfo, bool) {
	for _, z := range s.Zones {
		if z.ID == id {
			return z, true
		}
	}
	return ZoneInfo{}, false
}

// enclosing lists a zone and every zone around it; none for outside.
func (s *Site) enclosing(id string) []string {
	var out []string
	for id != "" && id != configs.Outside && !slices.Contains(out, id) {
		z, ok := s.zone(id)
		if !ok {
			break
		}
		out = append(out, id)
		id = z.Parent
	}
	return out
}

// flows gives, for each door, the zones an "in" crossing enters (around To, not around From)
// and those it leaves; an "out" crossing does the opposite. It is the engine's own rule, so
// a zone's entries minus exits follow its occupancy.
func (s *Site) flows() (gain, lose [][]int) {
	idx := map[string]int{}
	for i, z := range s.Zones {
		idx[z.ID] = i
	}
	for _, d := range s.Doors {
		from, to := s.enclosing(d.From), s.enclosing(d.To)
		var g, l []int
		for _, z := range to {
			if !slices.Contains(from, z) {
				g = append(g, idx[z])
			}
		}
		for _, z := range from {
			if !slices.Contains(to, z) {
				l = append(l, idx[z])
			}
		}
		gain, lose = append(gain, g), append(lose, l)
	}
	return gain, lose
}

// outsideDoors tells, for each door, whether it leads to or from outside: its crossings in
// from outside are the site's visitors.
func (s *Site) visitorFlow(d DoorInfo, c DoorCount) (in, out int64) {
	switch {
	case d.From == configs.Outside:
		return c.In, c.Out
	case d.To == configs.Outside:
		return c.Out, c.In
	}
	return 0, 0
}
