package history

import (
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// core is the recorder's state: the zones' open windows and what waits to be written. Only
// the recorder goroutine touches it; it reads no clock, so tests drive it with any times.
type core struct {
	tz         tz
	site       Site
	zones      []*zoneRec
	doors      []*doorRec
	zoneIdx    map[string]int
	doorIdx    map[string]int
	gain, lose [][]int
	pending    *batch
	at         int64 // windows are closed up to here
	started    bool
	limit      int        // bytes of raw records that may wait; beyond, raw records are dropped
	held       func() int // bytes the writer holds but could not write yet
	suppress   bool       // replaying what the file already has: emit nothing
	dropped    int64
	samples    int64
	levelOf    LevelFunc
}

type flatRun struct {
	on           bool
	block, start int64
	n            int
	v            int64
	l            levels.Level
}

type zoneRec struct {
	id        string
	minute    window
	hour      Rollup
	hourFlat  bool // every minute of the hour so far was flat
	runs      [3]flatRun
	last      Sample // last recorded
	recorded  bool   // last is set and not an End
	cumClamp  int64
	cumCorr   int64
	baseKnown bool
	pendIn    int64
	pendOut   int64
	// rawBlock and rawAt: the last sample in the file or the batch, which the next one in
	// the same block is encoded against.
	rawBlock, rawAt int64
}

type doorRec struct {
	id             string
	totIn, totOut  uint64
	baseKnown      bool
	minute, hour   DoorCount
	minOpen, hOpen bool
}

func newCore(site Site, limit int, held func() int) *core {
	c := &core{tz: tz{site.Loc}, site: site, zoneIdx: map[string]int{}, doorIdx: map[string]int{},
		pending: newBatch(), limit: limit, held: held, levelOf: DefaultLevel}
	for i, z := range site.Zones {
		c.zones = append(c.zones, &zoneRec{id: z.ID})
		c.zoneIdx[z.ID] = i
	}
	for i, d := range site.Doors {
		c.doors = append(c.doors, &doorRec{id: d.ID})
		c.doorIdx[d.ID] = i
	}
	c.gain, c.lose = site.flows()
	return c
}

// start opens the first windows at t.
func (c *core) start(t int64) {
	if c.started {
		return
	}
	c.started, c.at = true, t
	for _, z := range c.zones {
		m := c.tz.minute(t)
		z.minute = newWindow(m, m+minuteMs, false, 0, 0)
		h := c.tz.hour(t)
		z.hour = Rollup{Start: h, End: h + hourMs}
		z.hourFlat = true
	}
}

func (c *core) emit(kind byte, res Resolution, series string, block int64, rec []byte) {
	if c.suppress {
		return
	}
	if res == Raw && c.limit > 0 && c.pending.size+c.held() > c.limit {
		// Raw records go first: the roll-ups, built from every sample in memory, stay exact.
		c.dropped++
		return
	}
	c.pending.add(blockRef{kind: kind, res: res, series: series, start: block}, rec)
}

func (c *core) emitSample(z *zoneRec, s Sample) {
	block := c.tz.block(Raw, s.At)
	prev := block
	if z.rawBlock == block {
		prev = z.rawAt
	}
	if c.suppress {
		// Replaying what the file holds: it is there, so the next sample follows it.
		z.rawBlock, z.rawAt = block, s.At
		return
	}
	c.samples++
	before := c.dropped
	c.emit(kindZone, Raw, z.id, block, appendSample(nil, prev, s))
	if c.dropped == before {
		z.rawBlock, z.rawAt = block, s.At
	}
}

func (c *core) flushRun(z *zoneRec, res Resolution) {
	r := &z.runs[res]
	if r.on {
		c.emit(kindZone, res, z.id, r.block, appendFlat(nil, res, r.block, r.start, r.n, r.v, r.l))
		r.on = false
	}
}

// emitRollup writes a closed window: a flat one extends the zone's run of flat windows.
func (c *core) emitRollup(z *zoneRec, res Resolution, x Rollup, flat bool) {
	block := c.tz.block(res, x.Start)
	r := &z.runs[res]
	if flat {
		if r.on && r.block == block && r.start+int64(r.n)*res.span() == x.Start && r.v == x.Last && r.l == x.LastLevel {
			r.n++
			return
		}
		c.flushRun(z, res)
		*r = flatRun{on: true, block: block, start: x.Start, n: 1, v: x.Last, l: x.LastLevel}
		return
	}
	c.flushRun(z, res)
	if x.Covered == 0 && !x.hasValue() && x.Entries == 0 && x.Exits == 0 && x.Clamped == 0 && x.Corrected == 0 {
		return // nothing known: a gap
	}
	c.emit(kindZone, res, z.id, block, appendRollup(nil, res, block, x))
}

// advance closes every window that ends by t.
func (c *core) advance(t int64) {
	if !c.started || t <= c.at {
		return
	}
	for _, z := range c.zones {
		for z.minute.r.End <= t {
			flat := z.minute.flat()
			m := z.minute.close()
			c.emitRollup(z, Minute, m, flat)
			z.hour.Merge(m)
			z.hourFlat = z.hourFlat && flat
			has, cur, lvl := z.minute.has, z.minute.cur, z.minute.lvl
			if m.End >= z.hour.End {
				c.emitRollup(z, Hour, z.hour, z.hourFlat)
				z.hour = Rollup{Start: m.End, End: c.tz.hour(m.End) + hourMs}
				z.hourFlat = true
				if has {
					// Each raw block opens with the value in force, so a block read alone
					// gives the whole hour.
					c.emitSample(z, Sample{At: m.End, Occupancy: cur, Deficit: z.last.Deficit, Level: lvl})
				}
			}
			z.minute = newWindow(m.End, m.End+minuteMs, has, cur, lvl)
		}
	}
	for _, d := range c.doors {
		if d.minOpen && d.minute.End <= t {
			c.emit(kindDoor, Minute, d.id, c.tz.block(Minute, d.minute.Start), appendDoor(nil, Minute, c.tz.block(Minute, d.minute.Start), d.minute))
			d.minOpen = false
		}
		if d.hOpen && d.hour.End <= t {
			c.emit(kindDoor, Hour, d.id, c.tz.block(Hour, d.hour.Start), appendDoor(nil, Hour, c.tz.block(Hour, d.hour.Start), d.hour))
			d.hOpen = false
		}
	}
	c.at = t
}

// addSample records a sample of zone z at s.At (not before c.at).
func (c *core) addSample(z *zoneRec, s Sample) {
	z.minute.add(s)
	z.last, z.recorded = s, !s.End
	c.emitSample(z, s)
}

// doorDelta records crossings seen at t through door d.
func (c *core) doorDelta(i int, t int64, in, out int64) {
	d := c.doors[i]
	block := c.tz.block(Raw, t)
	c.emit(kindDoor, Raw, d.id, block, appendDoor(nil, Raw, block, DoorCount{Start: t, In: in, Out: out}))
	if !d.minOpen {
		m := c.tz.minute(t)
		d.minute, d.minOpen = DoorCount{Start: m, End: m + minuteMs}, true
	}
	if !d.hOpen {
		h := c.tz.hour(t)
		d.hour, d.hOpen = DoorCount{Start: h, End: h + hourMs}, true
	}
	d.minute.In += in
	d.minute.Out += out
	d.hour.In += in
	d.hour.Out += out
	for _, z := range c.gain[i] {
		c.zones[z].pendIn += in
		c.zones[z].pendOut += out
	}
	for _, z := range c.lose[i] {
		c.zones[z].pendIn += out
		c.zones[z].pendOut += in
	}
}

func (c *core) level(zs zones.ZoneState, st LevelView) levels.Level {
	if st != nil {
		if lv, ok := st.AlertLevel(zs.ID); ok {
			return lv
		}
	}
	return c.levelOf(zs)
}

// observe takes a snapshot at t. With full set (the sample tick) it records door crossings
// and every zone whose figures changed; otherwise (a commit signal) only zones whose level
// changed, so that level changes are recorded when they happen.
func (c *core) observe(t int64, snap *zones.Snapshot, st LevelView, full bool) {
	if snap == nil {
		return
	}
	c.start(t)
	t = max(t, c.at) // a clock stepping back must not reorder the series
	c.advance(t)
	if full {
		for _, ds := range snap.Doors {
			i, ok := c.doorIdx[ds.ID]
			if !ok {
				continue
			}
			d := c.doors[i]
			if !d.baseKnown || ds.In < d.totIn || ds.Out < d.totOut {
				// First sight of this door, or a new main database: nothing to attribute.
				d.totIn, d.totOut, d.baseKnown = ds.In, ds.Out, true
				continue
			}
			in, out := int64(ds.In-d.totIn), int64(ds.Out-d.totOut)
			d.totIn, d.totOut = ds.In, ds.Out
			if in != 0 || out != 0 {
				c.doorDelta(i, t, in, out)
			}
		}
	}
	for _, zs := range snap.Zones {
		i, ok := c.zoneIdx[zs.ID]
		if !ok {
			continue
		}
		z := c.zones[i]
		lvl := c.level(zs, st)
		levelChanged := !z.recorded || lvl != z.last.Level
		if !full && !levelChanged {
			continue
		}
		s := Sample{At: t, Occupancy: zs.Occupancy, Deficit: zs.Deficit, Level: lvl}
		if z.baseKnown && zs.Clamped >= z.cumClamp && zs.Corrected >= z.cumCorr {
			s.Clamped, s.Corrected = zs.Clamped-z.cumClamp, zs.Corrected-z.cumCorr
		}
		z.cumClamp, z.cumCorr, z.baseKnown = zs.Clamped, zs.Corrected, true
		if full {
			s.Entries, s.Exits = z.pendIn, z.pendOut
		}
		changed := levelChanged || s.Occupancy != z.last.Occupancy || s.Deficit != z.last.Deficit ||
			s.Entries != 0 || s.Exits != 0 || s.Clamped != 0 || s.Corrected != 0
		if !changed {
			continue
		}
		if full {
			z.pendIn, z.pendOut = 0, 0
		}
		c.addSample(z, s)
	}
}

// stop closes the series at t: no value is known after it until the next start.
func (c *core) stop(t int64) {
	if !c.started {
		return
	}
	t = max(t, c.at)
	c.advance(t)
	for _, z := range c.zones {
		if z.minute.has {
			c.addSample(z, Sample{At: t, End: true})
		}
	}
}

// takeBatch hands what waits to the writer, with the state to resume from.
func (c *core) takeBatch() *batch {
	for _, z := range c.zones {
		c.flushRun(z, Minute)
		c.flushRun(z, Hour)
	}
	b := c.pending
	st := &persisted{At: c.at, Doors: map[string][2]uint64{}, Zones: map[string][2]int64{}}
	for _, d := range c.doors {
		if d.baseKnown {
			st.Doors[d.id] = [2]uint64{d.totIn, d.totOut}
		}
	}
	for _, z := range c.zones {
		if z.baseKnown {
			st.Zones[z.id] = [2]int64{z.cumClamp, z.cumCorr}
		}
	}
	b.state = st
	c.pending = newBatch()
	return b
}

// restore continues from a file's state: it replays the stored raw records of the hour the
// state was written in, so the open minute and hour windows hold what they held, then marks
// the series as unknown from then until now.
func (c *core) restore(st *persisted, raw map[string][]Sample, doors map[string][]DoorCount) {
	if st == nil || st.At == 0 {
		return
	}
	w := st.At
	c.suppress = true
	h := c.tz.hour(w)
	c.started, c.at = true, h
	for _, z := range c.zones {
		m := c.tz.minute(h)
		z.minute = newWindow(m, m+minuteMs, false, 0, 0)
		z.hour = Rollup{Start: h, End: h + hourMs}
		z.hourFlat = true
	}
	// Replay in time order across zones and doors, as it happened.
	type ev struct {
		t    int64
		zone *zoneRec
		s    Sample
		door int
		dc   DoorCount
	}
	var evs []ev
	for id, ss := range raw {
		if i, ok := c.zoneIdx[id]; ok {
			for _, s := range ss {
				if s.At >= h && s.At <= w {
					evs = append(evs, ev{t: s.At, zone: c.zones[i], s: s, door: -1})
				}
			}
		}
	}
	for id, ds := range doors {
		if i, ok := c.doorIdx[id]; ok {
			for _, d := range ds {
				if d.Start >= h && d.Start <= w {
					evs = append(evs, ev{t: d.Start, door: i, dc: d})
				}
			}
		}
	}
	sortEvents(evs, func(e ev) int64 { return e.t })
	for _, e := range evs {
		c.advance(e.t)
		if e.zone != nil {
			c.addSample(e.zone, e.s)
		} else {
			c.doorDelta(e.door, e.t, e.dc.In, e.dc.Out)
		}
	}
	c.advance(w)
	for _, z := range c.zones {
		z.pendIn, z.pendOut = 0, 0 // already counted in the replayed samples
	}
	c.suppress = false
	for _, z := range c.zones {
		if z.minute.has {
			c.addSample(z, Sample{At: w, End: true})
		}
		if v, ok := st.Zones[z.id]; ok {
			z.cumClamp, z.cumCorr, z.baseKnown = v[0], v[1], true
		}
	}
	for _, d := range c.doors {
		if v, ok := st.Doors[d.id]; ok {
			d.totIn, d.totOut, d.baseKnown = v[0], v[1], true
		}
	}
}
