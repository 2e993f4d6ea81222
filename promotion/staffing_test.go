package promotion

import (
	"testing"

	"github.com/crowdwatch/crowdwatch/configs"
)

// TestRosterRules: the staffing rules on a hand-made forecast of the test store (store >
// hall, upper; nook): hall's posts are main and side (entrances), the stair (an exit to the
// upper floor, not inside the hall) and, when main is metered, its queue.
func TestRosterRules(t *testing.T) {
	cfg := testStore(t)
	plan := configs.EventPlan{ID: "p", StartText: "2026-11-12 10:00", EndText: "2026-11-12 11:00"}
	if err := cfg.CheckEvent(&plan); err != nil {
		t.Fatal(err)
	}
	// Expected peaks at the high end: store 500, hall 250, upper 90 (the store's own part:
	// 500 - 250 - 90 = 160); the second half hour has no history.
	f := BuildForecast(cfg, plan, "weekday", nil)
	f.Basis = "weekday"
	high := map[string]float64{"store": 500, "hall": 250, "upper": 90, "nook": 5}
	for i := range f.Zones {
		f.Zones[i].Occupancy[0] = &Range{Expected: high[f.Zones[i].Zone] / 2, Low: 0, High: high[f.Zones[i].Zone]}
	}
	cases := []struct {
		name    string
		rules   configs.Staffing
		metered bool
		// staff in the first half hour: store, hall, upper, nook
		want [4]int
	}{
		{"defaults", configs.Staffing{EntrancePosts: 1, ExitPosts: 1, QueuePosts: 1, PeoplePerStaff: 100}, false, [4]int{1 + 2, 3 + 3, 1 + 1, 1 + 1}},
		{"metered main door adds a queue post", configs.Staffing{EntrancePosts: 1, ExitPosts: 1, QueuePosts: 1, PeoplePerStaff: 100}, true, [4]int{3, 7, 2, 2}},
		{"two per entrance, none per exit", configs.Staffing{EntrancePosts: 2, ExitPosts: 0, QueuePosts: 1, PeoplePerStaff: 100}, false, [4]int{2 + 2, 4 + 3, 0 + 1, 2 + 1}},
		{"one per 30", configs.Staffing{EntrancePosts: 1, ExitPosts: 1, QueuePosts: 1, PeoplePerStaff: 30}, false, [4]int{1 + 6, 3 + 9, 1 + 3, 1 + 1}},
		{"posts only (one per a million)", configs.Staffing{EntrancePosts: 1, ExitPosts: 1, QueuePosts: 1, PeoplePerStaff: 1000000}, false, [4]int{2, 4, 2, 2}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg.Staffing = c.rules
			p := plan
			if c.metered {
				p.Metered = []configs.MeteredDoor{{Door: "main"}}
			}
			r := BuildRoster(cfg, p, f)
			var got [4]int
			for i, z := range r.Zones {
				got[i] = z.Staff[0]
			}
			if got != c.want {
				t.Errorf("staff %v, want %v (posts: %+v)", got, c.want, r.Zones)
			}
			if r.Total[0] != got[0]+got[1]+got[2]+got[3] {
				t.Errorf("total %d", r.Total[0])
			}
			// Without history the half hour is staffed for the capacities in force.
			if !r.Zones[1].FromCapacity[1] || r.Zones[0].FromCapacity[0] {
				t.Errorf("from capacity %v %v", r.Zones[1].FromCapacity, r.Zones[0].FromCapacity)
			}
		})
	}
}
