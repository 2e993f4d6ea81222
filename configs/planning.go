package configs

import (
	"fmt"
	"path/filepath"
)

// Assessment holds the figures of the capacity assessment (docs/events.md, "Assess the
// capacities"): a zone's density limit is its area times DensityPerM2; its egress limit is
// what its exits (the widest left out) pass at alerting.evacuation.flow_per_metre within
// alerting.evacuation.target less alerting.evacuation.pre_movement.
type Assessment struct {
	// DensityPerM2 is the most persons per square metre a zone is planned for. The default,
	// 3.5, is the congestion density of the IMO evacuation analysis and the level at which a
	// zone with an area turns critical anyway (levels.CriticalDensity): a capacity above it
	// can never be reached without the density alarm.
	DensityPerM2 float64 `mapstructure:"density_per_m2"`
}

// Staffing holds the rules of the staffing plan: fixed posts counted task by task, plus one
// person per PeoplePerStaff expected. Every default is design judgement (docs/events.md): the
// published guidance asks for a risk assessment and counting posts, not for a ratio.
type Staffing struct {
	EntrancePosts  int `mapstructure:"entrance_posts"`   // per door from outside into the zone
	ExitPosts      int `mapstructure:"exit_posts"`       // per other door out of the zone
	QueuePosts     int `mapstructure:"queue_posts"`      // per metered door's queue
	PeoplePerStaff int `mapstructure:"people_per_staff"` // one more person per this many expected
	// Weeks is how many earlier same weekdays the forecast compares with when no earlier
	// event of the plan's kind was recorded.
	Weeks int `mapstructure:"weeks"`
}

func init() {
	for k, v := range map[string]any{
		"assessment.density_per_m2": 3.5,
		"staffing.entrance_posts":   1,
		"staffing.exit_posts":       1,
		"staffing.queue_posts":      1,
		"staffing.people_per_staff": 100,
		"staffing.weeks":            4,
		"events_path":               "",
	} {
		defaults[k] = v
	}
}

// EventsPath is the file the plans made through the API are kept in.
func (c *Config) EventsPath() string {
	if c.EventsFile != "" {
		return c.EventsFile
	}
	return filepath.Join(filepath.Dir(c.Storage.Path), "events.db")
}

// validatePlanning checks the assessment and staffing figures.
func (c *Config) validatePlanning(bad func(key, format string, args ...any)) {
	if d := c.Assessment.DensityPerM2; !(d > 0 && d <= 10) {
		bad("assessment.density_per_m2", "%v must be above 0 and at most 10 persons per m²", d)
	}
	s := c.Staffing
	for key, n := range map[string]int{"entrance_posts": s.EntrancePosts, "exit_posts": s.ExitPosts, "queue_posts": s.QueuePosts} {
		if n < 0 || n > 100 {
			bad("staffing."+key, "%d must be between 0 and 100", n)
		}
	}
	if s.PeoplePerStaff < 1 || s.PeoplePerStaff > 100000 {
		bad("staffing.people_per_staff", "%d must be between 1 and 100000", s.PeoplePerStaff)
	}
	if s.Weeks < 1 || s.Weeks > 52 {
		bad("staffing.weeks", "%d must be between 1 and 52", s.Weeks)
	}
	if p := c.EventsPath(); p == c.Storage.Path || p == c.AlertsPath() || p == c.HistoryPath() || p == c.AuthPath() {
		bad("events_path", "%q is already another file of the service", p)
	}
}

// Overlapping reports the plans of ps whose times overlap another's, as the pairs' ids: two
// plans running at once would leave the capacity in force undecided.
func Overlapping(ps []EventPlan) []string {
	var out []string
	for i := range ps {
		for j := i + 1; j < len(ps); j++ {
			a, b := ps[i], ps[j]
			if a.Start.Before(b.End) && b.Start.Before(a.End) {
				out = append(out, fmt.Sprintf("%q and %q", a.ID, b.ID))
			}
		}
	}
	return out
}
