package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/storage"
)

// Reader answers queries and reports from a history file. Each call opens the file read-only
// (a shared lock, so many readers run together, and the recorder's writes wait at most one
// query) and closes it after; nothing is kept open between calls.
type Reader struct {
	path    string
	site    *Site // nil: take the site from the file
	timeout time.Duration
	// BandsOf gives a zone's level thresholds in persons; DefaultBands unless set.
	BandsOf func(ZoneInfo) []Band
	// Events gives alert history for reports; nil means reports say it is not available.
	Events Events
	// CapacityAt, when set, is the capacity in force for a zone at a time (a promotion's
	// event capacity while its plan runs): reports judge a zone's peak against the capacity
	// in force when it was reached. 0 means the zone's own.
	CapacityAt func(zone string, at time.Time) int
	// Now is the clock for "until now" defaults.
	Now func() time.Time
	// DamagedBlocks, when set, counts the stored blocks reads skipped because they did not
	// decode (crowdwatch_history_damaged_blocks_total).
	DamagedBlocks prometheus.Counter
}

// NewReader reads path; site may be nil when the file was written by this version (it
// describes its site).
func NewReader(path string, site *Site, timeout time.Duration) *Reader {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Reader{path: path, site: site, timeout: timeout,
		BandsOf: func(z ZoneInfo) []Band { return DefaultBands(z.Capacity, z.AreaM2) }, Now: time.Now}
}

// txq is one read transaction with what the reads need.
type txq struct {
	tx   *bolt.Tx
	tz   tz
	site Site
	// wm: every record of a window that ended by wm is in the file, and raw records up to it.
	wm int64
	// damaged counts the blocks this transaction skipped because they did not decode.
	damaged int
}

// skip handles a block that failed to decode: a damaged block is left out (and counted), so
// that one bad block costs its own hour, not the whole answer; any other error stands.
func (q *txq) skip(err error) error {
	if errors.Is(err, errCorrupt) {
		q.damaged++
		return nil
	}
	return err
}

// view runs fn in a read transaction, waiting while the recorder writes (it holds the file
// for one write at a time, well under a second) until ctx ends.
func (r *Reader) view(ctx context.Context, fn func(q *txq) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	g := gate(r.path)
	g.RLock()
	defer g.RUnlock()
	var db *bolt.DB
	for {
		var err error
		db, err = openFile(r.path, true, false, min(r.timeout, time.Second))
		if err == nil {
			break
		}
		if !errors.Is(err, ErrLocked) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		default:
		}
	}
	defer db.Close()
	return storage.View(db, func(tx *bolt.Tx) error {
		site := r.site
		if err := checkMeta(tx, r.path, ""); err != nil {
			return err
		}
		if site == nil {
			s, err := readLayout(tx)
			if err != nil {
				return err
			}
			site = &s
		} else if s := string(tx.Bucket(bucketMeta).Get(keySite)); s != site.ID {
			return fmt.Errorf("history: %s belongs to site %q, not %q", r.path, s, site.ID)
		}
		q := &txq{tx: tx, tz: tz{site.Loc}, site: *site}
		if b := tx.Bucket(bucketMeta).Get(keyState); b != nil {
			var st persisted
			if err := json.Unmarshal(b, &st); err != nil {
				return fmt.Errorf("history: the recorder state is damaged: %w", err)
			}
			q.wm = st.At
		}
		err := fn(q)
		if q.damaged > 0 && r.DamagedBlocks != nil {
			r.DamagedBlocks.Add(float64(q.damaged))
		}
		return err
	})
}

// Site returns the site the reader reports on.
func (r *Reader) Site(ctx context.Context) (Site, error) {
	if r.site != nil {
		return *r.site, nil
	}
	var s Site
	err := r.view(ctx, func(q *txq) error { s = q.site; return nil })
	return s, err
}

// blocks calls fn for each stored block of a series that may hold records in [a, b).
func (q *txq) blocks(kind byte, res Resolution, series string, a, b int64, fn func(start int64, v []byte) error) error {
	top := q.tx.Bucket(bucketName(kind, res))
	if top == nil {
		return nil
	}
	bk := top.Bucket([]byte(series))
	if bk == nil {
		return nil
	}
	c := bk.Cursor()
	for k, v := c.Seek(blockKey(q.tz.block(res, a))); k != nil && keyTime(k) < b; k, v = c.Next() {
		if err := fn(keyTime(k), v); err != nil {
			return err
		}
	}
	return nil
}

// raw returns a zone's samples in [a, b) and those before a in a's block (the value in force).
func (q *txq) raw(zone string, a, b int64) ([]Sample, error) {
	var out []Sample
	err := q.blocks(kindZone, Raw, zone, a, b, func(start int64, v []byte) error {
		n := len(out)
		var err error
		if out, err = decodeSamples(start, v, out); errors.Is(err, errCorrupt) {
			// Nothing is known for the damaged hour: the value before it must not run on
			// through it. The next block opens with the value in force at its start.
			out = append(out[:n], Sample{At: start, End: true})
		}
		return q.skip(err)
	})
	i := len(out)
	for i > 0 && out[i-1].At >= b {
		i--
	}
	return out[:i], err
}

func (q *txq) records(zone string, res Resolution, a, b int64) ([]Rollup, error) {
	var all []Rollup
	err := q.blocks(kindZone, res, zone, a, b, func(start int64, v []byte) error {
		n := len(all)
		var err error
		if all, err = decodeRollups(res, start, v, all); errors.Is(err, errCorrupt) {
			all = all[:n] // a window left out reads as not recorded
		}
		return q.skip(err)
	})
	out := all[:0]
	for _, x := range all {
		if x.Start >= a && x.Start < b {
			out = append(out, x)
		}
	}
	return out, err
}

// ceil and floor align to a resolution's windows (local hours, minutes).
func (q *txq) floor(res Resolution, t int64) int64 {
	if res == Hour {
		return q.tz.hour(t)
	}
	return q.tz.minute(t)
}

func (q *txq) ceil(res Resolution, t int64) int64 {
	f := q.floor(res, t)
	if f < t {
		return f + res.span()
	}
	return f
}

// windows gives a zone's roll-ups over [a, b) at res, from the stored windows where the
// recorder has closed them and from finer data at the edges and after the last closed
// window. Windows without any data are left out.
func (q *txq) windows(zone string, a, b int64, res Resolution) ([]Rollup, error) {
	if a >= b {
		return nil, nil
	}
	if res == Raw {
		return q.fromRaw(zone, a, b, nil)
	}
	finer := Raw
	if res == Hour {
		finer = Minute
	}
	lo, hi := q.ceil(res, a), min(q.floor(res, b), q.floor(res, q.wm))
	if lo >= hi {
		return q.windows(zone, a, b, finer)
	}
	head, err := q.windows(zone, a, lo, finer)
	if err != nil {
		return nil, err
	}
	mid, err := q.records(zone, res, lo, hi)
	if err != nil {
		return nil, err
	}
	tail, err := q.windows(zone, hi, b, finer)
	if err != nil {
		return nil, err
	}
	return slices.Concat(head, mid, tail), nil
}

// fromRaw aggregates raw samples into windows over [a, min(b, watermark)): at the given
// edges, or at minute boundaries when edges is nil.
func (q *txq) fromRaw(zone string, a, b int64, edges []int64) ([]Rollup, error) {
	b = min(b, q.wm)
	if a >= b {
		return nil, nil
	}
	ss, err := q.raw(zone, a, b)
	if err != nil {
		return nil, err
	}
	if edges != nil {
		// Nothing is known after the watermark: the last value must not run on to `to`.
		clipped := make([]int64, 0, len(edges))
		for _, e := range edges {
			clipped = append(clipped, max(min(e, b), a))
		}
		edges = clipped
	} else {
		edges = []int64{a}
		for t := q.ceil(Minute, a+1); t < b; t += minuteMs {
			if t > a {
				edges = append(edges, t)
			}
		}
		edges = append(edges, b)
	}
	var out []Rollup
	for _, w := range Aggregate(ss, edges) {
		if w.Covered > 0 || w.Entries != 0 || w.Exits != 0 || w.Clamped != 0 || w.Corrected != 0 {
			out = append(out, w)
		}
	}
	return out, nil
}

// doors gives a door's crossings over [a, b) at res, composed like windows.
func (q *txq) doors(door string, a, b int64, res Resolution) ([]DoorCount, error) {
	if a >= b {
		return nil, nil
	}
	if res == Raw {
		b = min(b, q.wm+1)
		var out []DoorCount
		err := q.blocks(kindDoor, Raw, door, a, b, func(start int64, v []byte) error {
			n := len(out)
			var err error
			if out, err = decodeDoors(Raw, start, v, out); errors.Is(err, errCorrupt) {
				out = out[:n]
			}
			return q.skip(err)
		})
		return slices.DeleteFunc(out, func(c DoorCount) bool { return c.Start < a || c.Start >= b }), err
	}
	finer := Raw
	if res == Hour {
		finer = Minute
	}
	lo, hi := q.ceil(res, a), min(q.floor(res, b), q.floor(res, q.wm))
	if lo >= hi {
		return q.doors(door, a, b, finer)
	}
	head, err := q.doors(door, a, lo, finer)
	if err != nil {
		return nil, err
	}
	var mid []DoorCount
	err = q.blocks(kindDoor, res, door, lo, hi, func(start int64, v []byte) error {
		n := len(mid)
		var err error
		if mid, err = decodeDoors(res, start, v, mid); errors.Is(err, errCorrupt) {
			mid = mid[:n]
		}
		return q.skip(err)
	})
	if err != nil {
		return nil, err
	}
	mid = slices.DeleteFunc(mid, func(c DoorCount) bool { return c.Start < lo || c.Start >= hi })
	tail, err := q.doors(door, hi, b, finer)
	if err != nil {
		return nil, err
	}
	return slices.Concat(head, mid, tail), nil
}

// Step is a query's bucket length: a duration, or whole local days (23 to 25 hours).
type Step struct {
	D    time.Duration
	Days int
}

func (s Step) String() string {
	if s.Days > 0 {
		return fmt.Sprintf("%dd", s.Days)
	}
	return s.D.String()
}

// Resolution is the stored series a step reads: raw below a minute, minutes below an hour.
func (s Step) Resolution() Resolution {
	switch {
	case s.Days > 0 || s.D >= time.Hour:
		return Hour
	case s.D >= time.Minute:
		return Minute
	}
	return Raw
}

// edges lists bucket boundaries from a to b; the first is a rounded down to the step's
// resolution (local hour, minute), so buckets hold whole stored windows.
func (q *txq) edges(a, b int64, s Step) []int64 {
	if s.Days > 0 {
		a = q.tz.day(a)
	} else if r := s.Resolution(); r != Raw {
		a = q.floor(r, a)
	}
	out := []int64{a}
	for t := a; t < b; {
		if s.Days > 0 {
			for range s.Days {
				t = q.tz.nextDay(t)
			}
		} else {
			t += s.D.Milliseconds()
		}
		out = append(out, min(t, b))
	}
	return out
}

// bucketize merges windows into buckets by their start.
func bucketize(ws []Rollup, edges []int64) []Rollup {
	return bucket(ws, edges, func(w Rollup) int64 { return w.Start },
		func(start, end int64) Rollup { return Rollup{Start: start, End: end} },
		func(b *Rollup, w Rollup) {
			start, end := b.Start, b.End
			b.Merge(w)
			b.Start, b.End = start, end
		})
}

func bucketDoors(cs []DoorCount, edges []int64) []DoorCount {
	return bucket(cs, edges, func(c DoorCount) int64 { return c.Start },
		func(start, end int64) DoorCount { return DoorCount{Start: start, End: end} },
		func(b *DoorCount, c DoorCount) { b.In += c.In; b.Out += c.Out })
}

// bucket adds items (sorted by start) into the buckets between consecutive edges, each into
// the bucket its start falls in; items before the first edge or after the last are left out.
func bucket[T any](items []T, edges []int64, start func(T) int64, empty func(start, end int64) T, add func(*T, T)) []T {
	out := make([]T, len(edges)-1)
	for i := range out {
		out[i] = empty(edges[i], edges[i+1])
	}
	k := 0
	for _, it := range items {
		at := start(it)
		for k < len(out) && at >= edges[k+1] {
			k++
		}
		if k == len(out) {
			break
		}
		if at >= edges[k] {
			add(&out[k], it)
		}
	}
	return out
}

// Query asks for zones' series (all zones when Zones is empty) over [From, To).
type Query struct {
	Zones    []string
	From, To time.Time
	Step     Step
}

// MaxPoints bounds one answer (zones times buckets).
const MaxPoints = 200_000

// minBuckets is the fewest buckets a step can cut [from, to) into, worked out without
// listing them (days are at most 25 hours), so that a query far beyond MaxPoints is refused
// before its bucket edges are allocated.
func (s Step) minBuckets(from, to time.Time) int64 {
	span := to.Sub(from)
	if span <= 0 {
		return 0
	}
	if s.Days > 0 {
		return int64(span / (time.Duration(s.Days) * 25 * time.Hour))
	}
	if s.D <= 0 {
		return math.MaxInt64
	}
	return int64(span / s.D)
}

// CheckQuery refuses a query that gives more than MaxPoints points for series zones or doors
// (at least one). It is arithmetic only; History and DoorFlows call it before they allocate
// anything, and an HTTP handler can call it before opening the file.
func CheckQuery(qu Query, series int) error {
	series = max(series, 1)
	if n := qu.Step.minBuckets(qu.From, qu.To); n > MaxPoints/int64(series) {
		return &QueryError{fmt.Sprintf("%d series × at least %d steps of %s is more than %d points; use a larger step or a shorter range", series, n, qu.Step, MaxPoints)}
	}
	return nil
}

// Series is a query's answer.
type Series struct {
	Site       string     `json:"site"`
	TimeZone   string     `json:"timezone"`
	From       time.Time  `json:"from"`
	To         time.Time  `json:"to"`
	Step       string     `json:"step"`
	Resolution Resolution `json:"resolution"`
	RecordedTo time.Time  `json:"recorded_to"` // history is written up to here
	// DamagedBlocks is how many stored blocks (a zone's or door's hour, or day of hours)
	// could not be read and were left out: their time shows as not recorded.
	DamagedBlocks int          `json:"damaged_blocks"`
	Zones         []ZoneSeries `json:"zones"`
}

type ZoneSeries struct {
	Zone     string  `json:"zone"`
	Name     string  `json:"name,omitempty"`
	Capacity int     `json:"capacity"`
	AreaM2   float64 `json:"area_m2,omitempty"`
	Bands    []Band  `json:"bands"`
	Points   []Point `json:"points"`
}

// Point is one bucket. Figures are null where nothing was recorded.
type Point struct {
	Start     time.Time          `json:"start"`
	End       time.Time          `json:"end"`
	CoveredS  float64            `json:"covered_s"`
	Min       *int64             `json:"min"`
	Max       *int64             `json:"max"`
	PeakAt    *time.Time         `json:"peak_at"`
	Mean      *float64           `json:"mean"`
	Last      *int64             `json:"last"`
	Level     *levels.Level      `json:"level"` // highest level held in the bucket
	Entries   int64              `json:"entries"`
	Exits     int64              `json:"exits"`
	Clamped   int64              `json:"clamped"`
	Corrected int64              `json:"corrected"`
	SecondsAt map[string]float64 `json:"seconds_at"`
}

func (r *Reader) loc(q *txq) *time.Location { return q.site.Loc }

func pointOf(w Rollup, loc *time.Location) Point {
	p := Point{Start: time.UnixMilli(w.Start).In(loc), End: time.UnixMilli(w.End).In(loc),
		CoveredS: float64(w.Covered) / 1000, Entries: w.Entries, Exits: w.Exits, Clamped: w.Clamped, Corrected: w.Corrected,
		SecondsAt: map[string]float64{}}
	for l, ms := range w.AtLevel {
		p.SecondsAt[levels.Level(l).String()] = float64(ms) / 1000
	}
	if w.hasValue() {
		mn, mx, last := w.Min, w.Max, w.Last
		at := time.UnixMilli(w.MaxAt).In(loc)
		p.Min, p.Max, p.Last, p.PeakAt = &mn, &mx, &last, &at
	}
	if w.Covered > 0 {
		m, l := w.Mean(), w.HighestLevel()
		p.Mean, p.Level = &m, &l
	}
	return p
}

// History answers a Query.
func (r *Reader) History(ctx context.Context, qu Query) (*Series, error) {
	if err := CheckQuery(qu, len(qu.Zones)); err != nil {
		return nil, err
	}
	var out *Series
	err := r.view(ctx, func(q *txq) error {
		ids, err := q.zoneIDs(qu.Zones)
		if err != nil {
			return err
		}
		if err := CheckQuery(qu, len(ids)); err != nil {
			return err
		}
		a, b := qu.From.UnixMilli(), qu.To.UnixMilli()
		edges := q.edges(a, b, qu.Step)
		if (len(edges)-1)*len(ids) > MaxPoints {
			return &QueryError{fmt.Sprintf("%d zones × %d steps is more than %d points; use a larger step or a shorter range", len(ids), len(edges)-1, MaxPoints)}
		}
		res := qu.Step.Resolution()
		out = &Series{Site: q.site.ID, TimeZone: q.site.Loc.String(), From: time.UnixMilli(edges[0]).In(q.site.Loc),
			To: qu.To.In(q.site.Loc), Step: qu.Step.String(), Resolution: res, RecordedTo: time.UnixMilli(q.wm).In(q.site.Loc)}
		for _, id := range ids {
			z, _ := q.site.zone(id)
			var ws []Rollup
			if res == Raw {
				ws, err = q.fromRaw(id, edges[0], b, edges)
			} else {
				ws, err = q.windows(id, edges[0], b, res)
			}
			if err != nil {
				return err
			}
			zs := ZoneSeries{Zone: id, Name: z.Name, Capacity: z.Capacity, AreaM2: z.AreaM2, Bands: r.BandsOf(z)}
			for _, w := range bucketize(ws, edges) {
				zs.Points = append(zs.Points, pointOf(w, q.site.Loc))
			}
			out.Zones = append(out.Zones, zs)
		}
		out.DamagedBlocks = q.damaged
		return nil
	})
	return out, err
}

// QueryError is a request the reader cannot answer as asked (HTTP 400).
type QueryError struct{ Msg string }

func (e *QueryError) Error() string { return e.Msg }

func (q *txq) zoneIDs(want []string) ([]string, error) {
	if len(want) == 0 {
		var ids []string
		for _, z := range q.site.Zones {
			ids = append(ids, z.ID)
		}
		return ids, nil
	}
	for _, id := range want {
		if _, ok := q.site.zone(id); !ok {
			return nil, &QueryError{fmt.Sprintf("no zone %q", id)}
		}
	}
	return want, nil
}

// DoorSeries is the door-flow answer.
type DoorSeries struct {
	Site          string       `json:"site"`
	TimeZone      string       `json:"timezone"`
	From          time.Time    `json:"from"`
	To            time.Time    `json:"to"`
	Step          string       `json:"step"`
	Resolution    Resolution   `json:"resolution"`
	RecordedTo    time.Time    `json:"recorded_to"`
	DamagedBlocks int          `json:"damaged_blocks"` // as in Series
	Doors         []DoorPoints `json:"doors"`
}

type DoorPoints struct {
	Door   string      `json:"door"`
	From   string      `json:"from"`
	To     string      `json:"to"`
	Points []DoorPoint `json:"points"`
}

type DoorPoint struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	In    int64     `json:"in"`
	Out   int64     `json:"out"`
}

// DoorFlows answers a door query; Zones in the query are door ids here (all when empty).
func (r *Reader) DoorFlows(ctx context.Context, qu Query) (*DoorSeries, error) {
	if err := CheckQuery(qu, len(qu.Zones)); err != nil {
		return nil, err
	}
	var out *DoorSeries
	err := r.view(ctx, func(q *txq) error {
		doors := q.site.Doors
		if len(qu.Zones) > 0 {
			doors = nil
			for _, id := range qu.Zones {
				i := slices.IndexFunc(q.site.Doors, func(d DoorInfo) bool { return d.ID == id })
				if i < 0 {
					return &QueryError{fmt.Sprintf("no door %q", id)}
				}
				doors = append(doors, q.site.Doors[i])
			}
		}
		if err := CheckQuery(qu, len(doors)); err != nil {
			return err
		}
		a, b := qu.From.UnixMilli(), qu.To.UnixMilli()
		edges := q.edges(a, b, qu.Step)
		if (len(edges)-1)*len(doors) > MaxPoints {
			return &QueryError{fmt.Sprintf("%d doors × %d steps is more than %d points; use a larger step or a shorter range", len(doors), len(edges)-1, MaxPoints)}
		}
		res := qu.Step.Resolution()
		out = &DoorSeries{Site: q.site.ID, TimeZone: q.site.Loc.String(), From: time.UnixMilli(edges[0]).In(q.site.Loc),
			To: qu.To.In(q.site.Loc), Step: qu.Step.String(), Resolution: res, RecordedTo: time.UnixMilli(q.wm).In(q.site.Loc)}
		for _, d := range doors {
			cs, err := q.doors(d.ID, edges[0], b, res)
			if err != nil {
				return err
			}
			dp := DoorPoints{Door: d.ID, From: d.From, To: d.To}
			for _, c := range bucketDoors(cs, edges) {
				dp.Points = append(dp.Points, DoorPoint{Start: time.UnixMilli(c.Start).In(q.site.Loc), End: time.UnixMilli(c.End).In(q.site.Loc), In: c.In, Out: c.Out})
			}
			out.Doors = append(out.Doors, dp)
		}
		out.DamagedBlocks = q.damaged
		return nil
	})
	return out, err
}
