package history

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
)

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
	// Capacity is the capacity in force in the bucket: a plan's while it runs (Reader.
	// CapacityAt), else the zone's configured one (the series' capacity). A bucket a plan
	// starts or ends in has the lower of the two at its start and end: a line never more
	// reassuring than what was in force.
	Capacity int `json:"capacity"`
}

// capacityIn is a bucket's capacity in force (Point.Capacity).
func (r *Reader) capacityIn(zone string, configured int, start, end time.Time) int {
	if r.CapacityAt == nil {
		return configured
	}
	at := func(t time.Time) int {
		if c := r.CapacityAt(zone, t); c > 0 {
			return c
		}
		return configured
	}
	return min(at(start), at(end.Add(-time.Millisecond)))
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
		f, err := q.frame(qu, len(ids), "zones")
		if err != nil {
			return err
		}
		edges, b, res := f.edges, f.b, f.res
		out = &Series{Site: q.site.ID, TimeZone: q.site.Loc.String(), From: f.from, To: f.to, Step: qu.Step.String(),
			Resolution: res, RecordedTo: f.recordedTo}
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
				p := pointOf(w, q.site.Loc)
				p.Capacity = r.capacityIn(id, z.Capacity, p.Start, p.End)
				zs.Points = append(zs.Points, p)
			}
			out.Zones = append(out.Zones, zs)
		}
		out.DamagedBlocks = q.damaged
		return nil
	})
	return out, err
}

// frame is what a query over n series (zones or doors) has in common: its size checked
// against MaxPoints, its bucket edges, and the span its answer reports.
type frame struct {
	edges                []int64
	b                    int64 // the query's end, ms
	res                  Resolution
	from, to, recordedTo time.Time
}

func (q *txq) frame(qu Query, n int, what string) (frame, error) {
	if err := CheckQuery(qu, n); err != nil {
		return frame{}, err
	}
	a, b := qu.From.UnixMilli(), qu.To.UnixMilli()
	edges := q.edges(a, b, qu.Step)
	if (len(edges)-1)*n > MaxPoints {
		return frame{}, &QueryError{fmt.Sprintf("%d %s × %d steps is more than %d points; use a larger step or a shorter range", n, what, len(edges)-1, MaxPoints)}
	}
	loc := q.site.Loc
	return frame{edges: edges, b: b, res: qu.Step.Resolution(), from: time.UnixMilli(edges[0]).In(loc), to: qu.To.In(loc),
		recordedTo: time.UnixMilli(q.wm).In(loc)}, nil
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
