package promotion

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Assessment is the capacity assessment of every zone (docs/events.md, "Assess the
// capacities"): what its area and its exits allow, beside the capacity configured.
type Assessment struct {
	DensityPerM2 float64          `json:"density_per_m2"` // assessment.density_per_m2
	FlowPerMetre float64          `json:"flow_per_metre"` // level exits, persons per metre per minute
	StairsFlow   float64          `json:"stairs_flow_per_metre"`
	TargetS      float64          `json:"target_s"`        // alerting.evacuation.target
	PreMovementS float64          `json:"pre_movement_s"`  // alerting.evacuation.pre_movement
	Event        string           `json:"event,omitempty"` // the plan whose capacities are assessed too
	Zones        []ZoneAssessment `json:"zones"`
	Warnings     int              `json:"warnings"` // zones with at least one warning
}

// ZoneAssessment is one zone's limits. A limit is null when the zone lacks what it needs (an
// area, an exit with a width).
type ZoneAssessment struct {
	Zone     string  `json:"zone"`
	Name     string  `json:"name,omitempty"`
	Capacity int     `json:"capacity"`                 // zones[].capacity
	Event    *int    `json:"event_capacity,omitempty"` // the plan's, when it sets one
	AreaM2   float64 `json:"area_m2,omitempty"`
	Density  *int    `json:"density_limit"` // area x density_per_m2, rounded down
	// ExitsM is the width of the zone's exits; UsableM the width counted: without the widest
	// exit (one exit assumed blocked), or the only exit's when there is just one.
	Exits   []string `json:"exits"`
	ExitsM  float64  `json:"exits_m"`
	UsableM float64  `json:"usable_m"`
	Egress  *int     `json:"egress_limit"` // usable flow x (target - pre-movement), rounded down
	// Limit is the smaller of the two limits (null when neither is known).
	Limit    *int     `json:"limit"`
	Warnings []string `json:"warnings"` // in English, for the command and logs
	// Notes are the warnings as codes with their figures, for the pages to say in the
	// viewer's language (ev.warn.<code> in the catalogue).
	Notes []Note `json:"notes"`
}

// Note is one warning of the assessment: no_area, no_exit, one_exit (door), no_time,
// over_density and over_egress (event: the event capacity; capacity, limit).
type Note struct {
	Code     string `json:"code"`
	Event    bool   `json:"event,omitempty"`
	Capacity int    `json:"capacity,omitempty"`
	Limit    int    `json:"limit,omitempty"`
	Door     string `json:"door,omitempty"`
}

// exitOf is a door across a zone's boundary as a way out.
type exitOf struct {
	door   string
	widthM float64
	perMin float64 // persons per minute through it
}

// Assess works out the assessment of cfg's zones; plan, when given, adds its capacities.
func Assess(cfg *configs.Config, plan *configs.EventPlan) *Assessment {
	ev := cfg.Alerting.Evacuation
	a := &Assessment{DensityPerM2: cfg.Assessment.DensityPerM2, FlowPerMetre: ev.FlowPerMetre, StairsFlow: ev.StairsFlowPerMetre,
		TargetS: ev.Target.Seconds(), PreMovementS: ev.PreMovement.Seconds()}
	if plan != nil {
		a.Event = plan.ID
	}
	stairs := map[string]bool{}
	for _, d := range cfg.Doors {
		stairs[d.ID] = d.Stairs
	}
	m := zones.NewModel(cfg)
	exits := make([][]exitOf, len(m.Zones))
	for _, d := range m.Doors {
		if d.WidthM <= 0 {
			continue
		}
		f := ev.FlowPerMetre
		if stairs[d.ID] {
			f = ev.StairsFlowPerMetre
		}
		for _, z := range append(slices.Clone(d.Gain), d.Lose...) {
			exits[z] = append(exits[z], exitOf{door: d.ID, widthM: d.WidthM, perMin: d.WidthM * f})
		}
	}
	window := ev.Target - ev.PreMovement
	for i, z := range m.Zones {
		za := ZoneAssessment{Zone: z.ID, Name: z.Name, Capacity: z.Capacity, AreaM2: z.AreaM2, Exits: []string{}, Warnings: []string{}, Notes: []Note{}}
		note := func(n Note, text string) {
			za.Notes = append(za.Notes, n)
			za.Warnings = append(za.Warnings, text)
		}
		if plan != nil {
			if c, ok := plan.Capacities[z.ID]; ok {
				za.Event = &c
			}
		}
		if z.AreaM2 > 0 {
			za.Density = ptr(int(math.Floor(z.AreaM2*a.DensityPerM2 + 1e-9)))
		} else {
			note(Note{Code: "no_area"}, "no area_m2: no density limit")
		}
		za.Exits, za.ExitsM, za.UsableM, za.Egress = egress(exits[i], window)
		switch {
		case len(za.Exits) == 0:
			note(Note{Code: "no_exit"}, "no exit with a width_m: no egress limit")
		case len(za.Exits) == 1:
			note(Note{Code: "one_exit", Door: za.Exits[0]}, fmt.Sprintf("only one exit (%s): the egress limit assumes it is open", za.Exits[0]))
		}
		if window <= 0 {
			note(Note{Code: "no_time"}, "alerting.evacuation.target is not above pre_movement: nobody can leave in time")
		}
		za.Limit = minOf(za.Density, za.Egress)
		check := func(what string, c int) {
			isEvent := what != "capacity"
			if za.Density != nil && c > *za.Density {
				note(Note{Code: "over_density", Event: isEvent, Capacity: c, Limit: *za.Density}, fmt.Sprintf("%s %d exceeds the density limit %d (%.1f m² × %g persons/m²)", what, c, *za.Density, z.AreaM2, a.DensityPerM2))
			}
			if za.Egress != nil && c > *za.Egress {
				note(Note{Code: "over_egress", Event: isEvent, Capacity: c, Limit: *za.Egress}, fmt.Sprintf("%s %d exceeds the egress limit %d (%.2f m usable × %g/m/min × %s)", what, c, *za.Egress, za.UsableM, ev.FlowPerMetre, window))
			}
		}
		check("capacity", z.Capacity)
		if za.Event != nil {
			check("event capacity", *za.Event)
		}
		if len(za.Warnings) > 0 {
			a.Warnings++
		}
		a.Zones = append(a.Zones, za)
	}
	return a
}

// egress is what a zone's exits pass in window: their flow with the widest left out (or the
// only one), the rule of the evacuation-time estimate (alerting/estimates.go).
func egress(ex []exitOf, window time.Duration) (ids []string, total, usable float64, limit *int) {
	ids = []string{}
	if len(ex) == 0 {
		return ids, 0, 0, nil
	}
	flow, widest, widestW := 0.0, -1.0, 0.0
	for _, e := range ex {
		ids = append(ids, e.door)
		total += e.widthM
		flow += e.perMin
		if e.perMin > widest {
			widest, widestW = e.perMin, e.widthM
		}
	}
	usable = total
	if len(ex) > 1 {
		flow -= widest
		usable -= widestW
	}
	n := max(0, int(math.Floor(flow*window.Minutes()+1e-9)))
	return ids, total, usable, &n
}

func ptr[T any](v T) *T { return &v }

func minOf(a, b *int) *int {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case *a < *b:
		return a
	}
	return b
}
