package alerting

import (
	"slices"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// exit is a door as a way out of some zone, with its flow capacity in persons per minute.
type exit struct {
	door   string
	perMin float64
}

// topology is what the estimates need from the store model, precomputed per zone.
type topology struct {
	zones []zones.ZoneInfo
	// doorsIn[z] are the doors that move people into zone z on an "in" crossing (z in Gain);
	// doorsOut[z] those that move people out of it on an "in" crossing (z in Lose).
	doorsIn, doorsOut [][]int
	// exits[z] are the doors across z's boundary with a known width; siteExits lead outside.
	exits     [][]exit
	siteExits []exit
	// doorZones[d] are the zones a door's crossings change; deviceDoors maps a counter to
	// the doors it counts.
	doorZones   [][]string
	doors       []zones.DoorInfo
	deviceDoors map[string][]int
	descendants [][]string // each zone and every zone inside it
	roots       []int
}

func newTopology(m *zones.Model, cfg *Config) *topology {
	t := &topology{zones: m.Zones, doors: m.Doors, deviceDoors: map[string][]int{}}
	n := len(m.Zones)
	t.doorsIn, t.doorsOut, t.exits = make([][]int, n), make([][]int, n), make([][]exit, n)
	t.descendants = make([][]string, n)
	t.doorZones = make([][]string, len(m.Doors))
	stairs := map[string]bool{}
	for _, d := range cfg.Doors {
		stairs[d.ID] = d.Stairs
	}
	flow := func(d zones.DoorInfo) exit {
		f := cfg.Alerting.Evacuation.FlowPerMetre
		if stairs[d.ID] {
			f = cfg.Alerting.Evacuation.StairsFlowPerMetre
		}
		return exit{door: d.ID, perMin: d.WidthM * f}
	}
	for i, d := range m.Doors {
		for _, z := range d.Gain {
			t.doorsIn[z] = append(t.doorsIn[z], i)
		}
		for _, z := range d.Lose {
			t.doorsOut[z] = append(t.doorsOut[z], i)
		}
		for _, z := range append(slices.Clone(d.Gain), d.Lose...) {
			t.doorZones[i] = append(t.doorZones[i], m.Zones[z].ID)
			if d.WidthM > 0 {
				t.exits[z] = append(t.exits[z], flow(d))
			}
		}
		if d.Device != "" {
			t.deviceDoors[d.Device] = append(t.deviceDoors[d.Device], i)
		}
		if (d.From == configs.Outside || d.To == configs.Outside) && d.WidthM > 0 {
			t.siteExits = append(t.siteExits, flow(d))
		}
	}
	for i, z := range m.Zones {
		if z.Parent == "" {
			t.roots = append(t.roots, i)
		}
		for _, a := range z.Ancestors {
			t.descendants[a] = append(t.descendants[a], z.ID)
		}
	}
	return t
}

// singleRoot: the store has one top zone, so the site is that zone.
func (t *topology) singleRoot() bool { return len(t.roots) == 1 }

// evacSeconds is T = N / (W x F) + pre-movement, where W x F is the flow of every exit but
// the largest (assume one exit is blocked). The flows and the rule come from the published guidance that
// docs/alerting.md, "Trends and estimates", cites. A zone with a single exit is estimated
// through that exit, since leaving it out would say nothing useful about how crowded the
// zone is; the same section notes it.
func evacSeconds(occupancy int64, exits []exit, pre time.Duration) (float64, bool) {
	if len(exits) == 0 {
		return 0, false
	}
	total, widest := 0.0, 0.0
	for _, e := range exits {
		total += e.perMin
		widest = max(widest, e.perMin)
	}
	if len(exits) > 1 {
		total -= widest
	}
	if total <= 0 {
		return 0, false
	}
	return float64(occupancy)/total*60 + pre.Seconds(), true
}

// flowSample is a zone's cumulative crossings at one moment.
type flowSample struct {
	at      time.Time
	in, out uint64
}

func (s flowSample) when() time.Time { return s.at }

// seriesPoints is about how many samples a series keeps per window. Alerts are evaluated
// after every commit, hundreds of times a second in a busy store; keeping each evaluation
// would grow memory with the traffic (the soak found 1 h drift windows of them growing
// ~25 MB a day), while cumulative figures need only the window's ends.
const seriesPoints = 64

// series keeps samples of cumulative figures over a sliding window: the newest sample at or
// before the window's start, then samples at least window/seriesPoints apart, then the
// latest (which a new sample replaces while it is closer than that to the one before).
type series[S interface{ when() time.Time }] struct {
	samples []S
}

// add records a sample and forgets those no longer needed for a window ending now.
func (t *series[S]) add(s S, window time.Duration) {
	n := len(t.samples)
	if n >= 2 && s.when().Sub(t.samples[n-2].when()) < window/seriesPoints {
		t.samples[n-1] = s
	} else {
		t.samples = append(t.samples, s)
	}
	cut := s.when().Add(-window)
	// Keep the newest sample at or before the cut: it is the window's start.
	i := 0
	for i+1 < len(t.samples) && !t.samples[i+1].when().After(cut) {
		i++
	}
	if i > 0 {
		t.samples = slices.Delete(t.samples, 0, i)
	}
}

// trend keeps a zone's recent flow samples to measure persons per minute over a window.
type trend struct {
	series[flowSample]
}

// rates returns inflow and net inflow in persons per minute over the window, and whether
// the samples cover at least half of it (before that the figure would be noise).
func (t *trend) rates(window time.Duration) (inflow, net float64, ok bool) {
	if len(t.samples) < 2 {
		return 0, 0, false
	}
	first, last := t.samples[0], t.samples[len(t.samples)-1]
	span := last.at.Sub(first.at)
	if span < window/2 || span <= 0 {
		return 0, 0, false
	}
	mins := span.Minutes()
	in := float64(last.in - first.in)
	out := float64(last.out - first.out)
	return in / mins, (in - out) / mins, true
}

// zoneFlows sums a zone's crossings from the snapshot's cumulative door totals.
func (t *topology) zoneFlows(z int, doors []zones.DoorState) (in, out uint64) {
	for _, d := range t.doorsIn[z] {
		in += doors[d].In
		out += doors[d].Out
	}
	for _, d := range t.doorsOut[z] {
		in += doors[d].Out
		out += doors[d].In
	}
	return in, out
}
