package history

import (
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/zones"
)

// testSite is a small store: an entrance and a floor inside it, one way in, one way out.
func testSite(loc *time.Location) Site {
	return Site{ID: "teststore", Loc: loc,
		Zones: []ZoneInfo{
			{ID: "store", Capacity: 60, AreaM2: 100},
			{ID: "entrance", Parent: "store", Capacity: 10, AreaM2: 8},
			{ID: "floor", Parent: "store", Capacity: 50},
		},
		Doors: []DoorInfo{
			{ID: "main", From: "outside", To: "entrance"},
			{ID: "arch", From: "entrance", To: "floor"},
			{ID: "exit", From: "floor", To: "outside"},
		}}
}

// crowd is a deterministic random crowd moving through testSite, producing the snapshots an
// engine would publish.
type crowd struct {
	rng                 *rand.Rand
	site                Site
	entrance, floor     int64
	main, arch, exit    uint64
	clamped, corrected  int64
	resetDay            int
	loc                 *time.Location
	resetDaily, drifted bool
}

func newCrowd(site Site, seed uint64) *crowd {
	return &crowd{rng: rand.New(rand.NewPCG(seed, 1)), site: site, loc: site.Loc, resetDay: -1}
}

// step moves people for one tick; busy sets how many may move.
func (c *crowd) step(t time.Time, busy int) {
	for range c.rng.IntN(busy + 1) {
		switch c.rng.IntN(3) {
		case 0:
			c.main++
			c.entrance++
		case 1:
			if c.entrance > 0 {
				c.arch++
				c.entrance--
				c.floor++
			}
		case 2:
			if c.floor > 0 {
				c.exit++
				c.floor--
			}
		}
	}
	if c.drifted && c.rng.IntN(500) == 0 {
		c.clamped++
	}
	if lt := t.In(c.loc); c.resetDaily && lt.Hour() == 4 && lt.YearDay() != c.resetDay {
		c.resetDay = lt.YearDay()
		c.corrected += c.entrance + c.floor + c.entrance + c.floor
		c.entrance, c.floor = 0, 0
	}
}

func (c *crowd) snapshot(t time.Time) *zones.Snapshot {
	occ := map[string]int64{"store": c.entrance + c.floor, "entrance": c.entrance, "floor": c.floor}
	s := &zones.Snapshot{Taken: t}
	for _, z := range c.site.Zones {
		o := occ[z.ID]
		zs := zones.ZoneState{ID: z.ID, Occupancy: o, Capacity: z.Capacity, Ratio: float64(o) / float64(z.Capacity)}
		if z.AreaM2 > 0 {
			d := float64(o) / z.AreaM2
			zs.Density = &d
		}
		if z.ID == "floor" {
			zs.Clamped = c.clamped
		}
		zs.Corrected = c.corrected
		s.Zones = append(s.Zones, zs)
	}
	s.Doors = []zones.DoorState{{ID: "main", In: c.main}, {ID: "arch", In: c.arch}, {ID: "exit", In: c.exit}}
	return s
}

// harness drives a recorder core with a fake clock and writes its batches synchronously.
type harness struct {
	t    testing.TB
	site Site
	f    *file
	c    *core
	// flushEvery is the simulated time between writes.
	flushEvery time.Duration
}

func newHarness(t testing.TB, site Site) *harness {
	path := filepath.Join(t.TempDir(), "history.db")
	h := &harness{t: t, site: site, f: &file{path: path, site: site.ID, zone: site.Loc.String(), timeout: time.Second, loc: tz{site.Loc}, layout: &site},
		flushEvery: 2 * time.Minute}
	h.restart()
	return h
}

// restart begins a new core from what the file holds, as a restarted service does.
func (h *harness) restart() {
	h.t.Helper()
	st, err := h.f.init()
	if err != nil {
		h.t.Fatal(err)
	}
	r := &Recorder{o: Options{Path: h.f.path, Site: h.site, LockTimeout: time.Second}, file: h.f}
	var raw map[string][]Sample
	var doors map[string][]DoorCount
	if st != nil {
		raw, doors, err = r.resumeBlocks(st.At)
		if err != nil {
			h.t.Fatal(err)
		}
	}
	h.c = newCore(h.site, 0, func() int { return 0 })
	h.c.restore(st, raw, doors)
}

func (h *harness) flush(now time.Time) {
	h.t.Helper()
	h.c.advance(now.UnixMilli())
	if err := h.f.write(h.c.takeBatch()); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) stop(now time.Time) {
	h.c.stop(now.UnixMilli())
	h.flush(now)
}

func (h *harness) reader() *Reader { return NewReader(h.f.path, nil, time.Second) }

// run plays the crowd from a to b: a sample every 5 s, commit signals in between, a flush
// every flushEvery; busy(t) says how many people may move per tick.
func (h *harness) run(c *crowd, a, b time.Time, busy func(time.Time) int) {
	flushAt := a.Add(h.flushEvery)
	for t := a; t.Before(b); t = t.Add(5 * time.Second) {
		c.step(t, busy(t))
		// A commit between ticks, at an odd millisecond: levels are sampled when they change.
		mid := t.Add(time.Duration(c.rng.IntN(5000)) * time.Millisecond)
		h.c.observe(mid.UnixMilli(), c.snapshot(mid), nil, false)
		tick := t.Add(5 * time.Second)
		h.c.observe(tick.UnixMilli(), c.snapshot(tick), nil, true)
		if !tick.Before(flushAt) {
			h.flush(tick)
			flushAt = flushAt.Add(h.flushEvery)
		}
	}
}
