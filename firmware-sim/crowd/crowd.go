// Package crowd simulates people, not counts: they arrive, queue outside before an opening,
// walk through the store's doors from zone to zone, stay a while and leave, or evacuate by
// the nearest way out. It is deterministic for a seed and knows the truth the service is
// measured against.
package crowd

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
)

// Sim is the crowd. It is not safe for concurrent use.
type Sim struct {
	sc    *scenario.Scenario
	rng   *rand.Rand
	zones []configs.Zone
	doors []configs.Door
	zidx  map[string]int
	// here[z] is people standing in zone z itself, not in one of its children.
	here  []int
	queue int // outside, waiting for the doors to open
	// Crossings are the true cumulative crossings per door, "in" = from -> to.
	Crossings [][2]uint64
	// adjacent[z] lists, for zone z (len(zones) = outside), the doors and their direction.
	adjacent [][]way
	// exitHop[z] is the door (and direction) that starts the shortest way out of zone z.
	exitHop  []way
	children [][]int
	start    time.Time
	now      time.Time
	carry    []float64 // fractional door capacity carried between steps
	arrivalF float64   // fractional arrivals carried between steps
	gates    map[way]Gate
}

// Gate holds a door in one direction: Allow says how many more may pass now (0: wait), and
// Passed is told how many did. A metered entrance's gate follows its screen's admission; an
// exit-only door's inward gate never allows anyone.
type Gate interface {
	Allow() int
	Passed(n int)
}

// Closed is a gate that lets nobody through.
type Closed struct{}

func (Closed) Allow() int { return 0 }
func (Closed) Passed(int) {}

// SetGate puts g on door in the direction in (from -> to) or out (to -> from); nil removes it.
// People held by a gate stay where they are and try again.
func (s *Sim) SetGate(door string, in bool, g Gate) {
	for i, d := range s.doors {
		if d.ID != door {
			continue
		}
		if s.gates == nil {
			s.gates = map[way]Gate{}
		}
		if g == nil {
			delete(s.gates, way{i, in})
		} else {
			s.gates[way{i, in}] = g
		}
	}
}

// way is a door taken in a direction: forward is from -> to.
type way struct {
	door    int
	forward bool
}

const outside = -1

// New builds a crowd for a store and scenario; the simulated day starts at the scenario's
// start on day (a date in the site's time zone).
func New(cfg *configs.Config, sc *scenario.Scenario, day time.Time, seed uint64) *Sim {
	s := &Sim{sc: sc, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		zones: cfg.Zones, doors: cfg.Doors, zidx: map[string]int{}}
	for i, z := range cfg.Zones {
		s.zidx[z.ID] = i
	}
	n := len(cfg.Zones)
	s.here = make([]int, n)
	s.Crossings = make([][2]uint64, len(cfg.Doors))
	s.carry = make([]float64, len(cfg.Doors))
	s.adjacent = make([][]way, n+1)
	s.children = make([][]int, n)
	for i, z := range cfg.Zones {
		if z.Parent != "" {
			p := s.zidx[z.Parent]
			s.children[p] = append(s.children[p], i)
		}
	}
	for i, d := range cfg.Doors {
		from, to := s.index(d.From), s.index(d.To)
		s.adjacent[slot(from, n)] = append(s.adjacent[slot(from, n)], way{i, true})
		s.adjacent[slot(to, n)] = append(s.adjacent[slot(to, n)], way{i, false})
	}
	s.exitHop = s.shortestWaysOut()
	loc := cfg.Location
	if loc == nil {
		loc = time.UTC
	}
	y, m, dd := day.In(loc).Date()
	s.start = time.Date(y, m, dd, int(sc.Start)/60, int(sc.Start)%60, 0, 0, loc)
	s.now = s.start
	return s
}

func (s *Sim) index(zone string) int {
	if zone == configs.Outside {
		return outside
	}
	return s.zidx[zone]
}

func slot(z, n int) int {
	if z == outside {
		return n
	}
	return z
}

// shortestWaysOut finds, by breadth-first search from outside, the first door of the
// shortest way out of every zone.
func (s *Sim) shortestWaysOut() []way {
	n := len(s.zones)
	hop := make([]way, n)
	seen := make([]bool, n)
	frontier := []int{outside}
	for len(frontier) > 0 {
		var next []int
		for _, z := range frontier {
			for _, w := range s.adjacent[slot(z, n)] {
				other := s.other(w)
				if other == outside || seen[other] {
					continue
				}
				seen[other] = true
				// The person in `other` walks back through this door toward z.
				hop[other] = way{w.door, !w.forward}
				next = append(next, other)
			}
		}
		frontier = next
	}
	for z := range hop {
		if !seen[z] {
			hop[z] = way{door: -1} // no way out: an inner zone with no counted door
		}
	}
	return hop
}

// other is the zone a way leads to.
func (s *Sim) other(w way) int {
	d := s.doors[w.door]
	if w.forward {
		return s.index(d.To)
	}
	return s.index(d.From)
}

// Now is the simulated clock.
func (s *Sim) Now() time.Time { return s.now }

// Start is when the simulated day began.
func (s *Sim) Start() time.Time { return s.start }

// End is when the scenario ends.
func (s *Sim) End() time.Time {
	return s.start.Add(time.Duration(s.sc.End-s.sc.Start) * time.Minute)
}

// Occupancy is the true number of people in every zone, children included.
func (s *Sim) Occupancy() map[string]int64 {
	out := make(map[string]int64, len(s.zones))
	var total func(z int) int64
	total = func(z int) int64 {
		n := int64(s.here[z])
		for _, c := range s.children[z] {
			n += total(c)
		}
		return n
	}
	for i, z := range s.zones {
		out[z.ID] = total(i)
	}
	return out
}

// Queue is how many people wait outside for the doors to open.
func (s *Sim) Queue() int { return s.queue }

func (s *Sim) minuteOfDay() float64 {
	h, m, sec := s.now.Clock()
	return float64(h*60+m) + float64(sec)/60
}

// Step advances the crowd by dt and returns the crossings per door made in it, "in" meaning
// from -> to. Every crossing is also added to Crossings.
func (s *Sim) Step(dt time.Duration) [][2]uint64 {
	moved := make([][2]uint64, len(s.doors))
	minute := s.minuteOfDay()
	open := minute >= float64(s.sc.Open)
	evacuating := s.sc.EvacuateAt >= 0 && minute >= float64(s.sc.EvacuateAt)

	// Door capacity for this step, persons; fractions carry over so slow steps are fair.
	capacity := make([]int, len(s.doors))
	for i, d := range s.doors {
		width := d.WidthM
		if width <= 0 {
			width = 1
		}
		s.carry[i] += width * s.sc.FlowPerMetre * dt.Minutes()
		capacity[i] = int(s.carry[i])
		s.carry[i] -= float64(capacity[i])
	}
	pass := func(w way, want int) int {
		n := min(want, capacity[w.door])
		g := s.gates[w]
		if g != nil && !evacuating {
			n = min(n, g.Allow())
		}
		if n <= 0 {
			return 0
		}
		if g != nil && !evacuating {
			g.Passed(n)
		}
		capacity[w.door] -= n
		if w.forward {
			moved[w.door][0] += uint64(n)
			s.Crossings[w.door][0] += uint64(n)
		} else {
			moved[w.door][1] += uint64(n)
			s.Crossings[w.door][1] += uint64(n)
		}
		return n
	}

	// Arrivals: a Poisson number, queueing until the doors open (and during an evacuation).
	if !evacuating {
		s.queue += poisson(s.rng, s.sc.ArrivalRate(minute)*dt.Minutes())
	}

	if evacuating {
		for z := range s.zones {
			if s.here[z] == 0 || s.exitHop[z].door < 0 {
				continue
			}
			w := s.exitHop[z]
			n := pass(w, s.here[z])
			s.here[z] -= n
			if to := s.other(w); to != outside {
				s.here[to] += n
			}
		}
		s.now = s.now.Add(dt)
		return moved
	}

	// People inside move on after their dwell: each chooses among the zone's ways by the
	// attraction of where it leads (the way out by LeaveWeight).
	n := len(s.zones)
	for z := range s.zones {
		if s.here[z] == 0 {
			continue
		}
		p := 1 - math.Exp(-dt.Seconds()/s.sc.DwellIn(s.zones[z].ID).Seconds())
		movers := binomial(s.rng, s.here[z], p)
		ways := s.adjacent[z]
		if movers == 0 || len(ways) == 0 {
			continue
		}
		weights := make([]float64, len(ways))
		for i, w := range ways {
			weights[i] = s.weight(s.other(w))
		}
		for i, k := range multinomial(s.rng, movers, weights) {
			if k == 0 {
				continue
			}
			w := ways[i]
			got := pass(w, k)
			s.here[z] -= got
			if to := s.other(w); to != outside {
				s.here[to] += got
			}
		}
	}

	// Entry: the queue (after opening) goes in through the outside doors, split by attraction.
	if open && s.queue > 0 {
		ways := s.adjacent[n]
		weights := make([]float64, len(ways))
		for i, w := range ways {
			weights[i] = s.weight(s.other(w))
			if s.other(w) == outside {
				weights[i] = 0
			}
		}
		for i, k := range multinomial(s.rng, s.queue, weights) {
			got := pass(ways[i], k)
			s.queue -= got
			s.here[s.other(ways[i])] += got
		}
	}
	s.now = s.now.Add(dt)
	return moved
}

// weight is how strongly people head for zone z (or the way out).
func (s *Sim) weight(z int) float64 {
	if z == outside {
		return s.sc.LeaveWeight
	}
	w := s.sc.AttractionOf(s.zones[z].ID)
	if s.sc.FollowGuidance {
		occ := s.Occupancy()[s.zones[z].ID]
		ratio := float64(occ) / float64(s.zones[z].Capacity)
		w *= math.Max(0.05, 1-ratio)
	}
	return w
}

func poisson(rng *rand.Rand, mean float64) int {
	if mean <= 0 {
		return 0
	}
	if mean > 50 {
		return max(0, int(math.Round(mean+math.Sqrt(mean)*rng.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func binomial(rng *rand.Rand, n int, p float64) int {
	if n <= 0 || p <= 0 {
		return 0
	}
	if p >= 1 {
		return n
	}
	if n > 200 {
		mean, sd := float64(n)*p, math.Sqrt(float64(n)*p*(1-p))
		return min(n, max(0, int(math.Round(mean+sd*rng.NormFloat64()))))
	}
	k := 0
	for range n {
		if rng.Float64() < p {
			k++
		}
	}
	return k
}

// multinomial splits n among the weights; zero weights get nobody.
func multinomial(rng *rand.Rand, n int, weights []float64) []int {
	out := make([]int, len(weights))
	last := -1
	total := 0.0
	for i, w := range weights {
		if w > 0 {
			total += w
			last = i
		}
	}
	for i, w := range weights {
		if n == 0 || w <= 0 {
			continue
		}
		k := n
		if i != last {
			k = binomial(rng, n, w/total)
		}
		out[i] = k
		n -= k
		total -= w
	}
	return out
}
