package configs

import (
	"strings"
	"testing"
	"time"
)

// TestValidateEvents: each bad plan is refused with its key, a good one is parsed.
func TestValidateEvents(t *testing.T) {
	good := `{id: d11, kind: double11, name: {en: Double 11, zh: 双十一}, start: "2026-11-11 07:00", end: "2026-11-11 22:00",
    doors_open: "2026-11-11 08:00", capacities: {hall: 8}, metered: [{door: d1, queue: hall}], forecast_scale: 1.5}`
	cases := []struct {
		name   string
		events string
		extra  string
		want   []string // substrings of the error; none: valid
	}{
		{"good plan", "[" + good + "]", "", nil},
		{"local and RFC 3339 times", `[{id: a, start: "2026-11-11T07:00:00+08:00", end: "2026-11-11 09:00"}]`, "", nil},
		{"bad id", `[{id: "a b", start: "2026-11-11 07:00", end: "2026-11-11 09:00"}]`, "", []string{`events[0].id: "a b" must be`}},
		{"duplicate id", `[{id: a, start: "2026-11-11 07:00", end: "2026-11-11 09:00"}, {id: a, start: "2026-11-12 07:00", end: "2026-11-12 09:00"}]`, "",
			[]string{`events[1].id: duplicate event "a" (also events[0])`}},
		{"not a time", `[{id: a, start: "tomorrow", end: "2026-11-11 09:00"}]`, "", []string{`events[0].start: "tomorrow" is not a time`}},
		{"end before start", `[{id: a, start: "2026-11-11 09:00", end: "2026-11-11 07:00"}]`, "", []string{`events[0].end: 2026-11-11 07:00 must be after start`}},
		{"too long", `[{id: a, start: "2026-11-01 09:00", end: "2026-11-11 07:00"}]`, "", []string{`events[0].end: the event lasts`}},
		{"doors open outside the event", `[{id: a, start: "2026-11-11 07:00", end: "2026-11-11 09:00", doors_open: "2026-11-11 06:00"}]`, "",
			[]string{`events[0].doors_open: 2026-11-11 06:00 must be within the event`}},
		{"unknown zone and zero capacity", `[{id: a, start: "2026-11-11 07:00", end: "2026-11-11 09:00", capacities: {ghost: 5, hall: 0}}]`, "",
			[]string{`events[0].capacities.ghost: unknown zone "ghost"`, `events[0].capacities.hall: capacity must be between 1 and`}},
		{"metered door twice, unknown door and queue", `[{id: a, start: "2026-11-11 07:00", end: "2026-11-11 09:00",
    metered: [{door: d1}, {door: d1, queue: ghost}, {door: nope, rate_per_min: -1}]}]`, "",
			[]string{`events[0].metered[1].door: door "d1" is metered twice`, `events[0].metered[1].queue: unknown zone "ghost"`,
				`events[0].metered[2].door: unknown door "nope"`, `events[0].metered[2].rate_per_min: -1 must be between`}},
		{"scale out of range", `[{id: a, start: "2026-11-11 07:00", end: "2026-11-11 09:00", forecast_scale: 101}]`, "",
			[]string{`events[0].forecast_scale: 101 must be between 0`}},
		{"unknown language", `[{id: a, name: {fr: Fête}, start: "2026-11-11 07:00", end: "2026-11-11 09:00"}]`, "", []string{`events[0].name`}},
		{"overlap", `[{id: a, start: "2026-11-11 07:00", end: "2026-11-11 09:00"}, {id: b, start: "2026-11-11 08:59", end: "2026-11-11 10:00"}]`, "",
			[]string{`events: plans "a" and "b" overlap`}},
		{"back to back is not an overlap", `[{id: a, start: "2026-11-11 07:00", end: "2026-11-11 09:00"}, {id: b, start: "2026-11-11 09:00", end: "2026-11-11 10:00"}]`, "", nil},
		{"assessment and staffing figures", "[]", "assessment: {density_per_m2: 0}\nstaffing: {entrance_posts: -1, people_per_staff: 0, weeks: 60}\n",
			[]string{`assessment.density_per_m2: 0 must be above 0`, `staffing.entrance_posts: -1`, `staffing.people_per_staff: 0`, `staffing.weeks: 60`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse([]byte(minimal+c.extra+"events: "+c.events+"\n"), nil)
			if len(c.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted %+v", cfg.Events)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestEventParsedInSiteTime(t *testing.T) {
	cfg, err := Parse([]byte(minimal+`events: [{id: d11, name: {en: Double 11}, start: "2026-11-11 07:00", end: "2026-11-11 22:00", doors_open: "2026-11-11 08:00"}]`), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Events[0]
	if want := time.Date(2026, 11, 10, 23, 0, 0, 0, time.UTC); !e.Start.Equal(want) {
		t.Errorf("start %v, want %v (07:00 in Asia/Shanghai)", e.Start, want)
	}
	if e.DoorsOpen.Sub(e.Start) != time.Hour || e.Name != "Double 11" || e.Scale() != 1 {
		t.Errorf("parsed %+v", e)
	}
	if cfg.Assessment.DensityPerM2 != 3.5 || cfg.Staffing.PeoplePerStaff != 100 || cfg.Staffing.EntrancePosts != 1 {
		t.Errorf("defaults %+v %+v", cfg.Assessment, cfg.Staffing)
	}
}

func TestCheckEvent(t *testing.T) {
	cfg, err := Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := EventPlan{ID: "x", StartText: "2026-11-11 07:00", EndText: "2026-11-11 08:00", Capacities: map[string]int{"nope": 3}}
	if err := cfg.CheckEvent(&e); err == nil || !strings.Contains(err.Error(), `event.capacities.nope: unknown zone "nope"`) {
		t.Fatalf("got %v", err)
	}
	e.Capacities = map[string]int{"hall": 3}
	if err := cfg.CheckEvent(&e); err != nil || e.Start.IsZero() || e.Name != "x" {
		t.Fatalf("got %v %+v", err, e)
	}
}
