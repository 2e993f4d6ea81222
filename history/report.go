package history

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
)

// Report is the after-event review of a period, per zone and for the site.
type Report struct {
	Site       string    `json:"site"`
	TimeZone   string    `json:"timezone"`
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	RecordedTo time.Time `json:"recorded_to"`
	// DamagedBlocks is how many stored blocks could not be read and were left out; the
	// figures then miss the hours they held (Markdown and CSV say so too).
	DamagedBlocks int `json:"damaged_blocks"`
	// Visitors are crossings in through doors from outside; Departures out through them.
	Visitors    int64         `json:"visitors"`
	Departures  int64         `json:"departures"`
	BusiestHour *HourFigure   `json:"busiest_hour"` // by visitors
	Zones       []ZoneReport  `json:"zones"`
	Doors       []DoorTotal   `json:"doors"`
	Alerts      *AlertSummary `json:"alerts"` // null when alert history is not available
	AlertsNote  string        `json:"alerts_note,omitempty"`
	Evacuations []EvacEvent   `json:"evacuations"`
	Unusual     []UnusualSlot `json:"unusual"`
}

type ZoneReport struct {
	Zone     string  `json:"zone"`
	Name     string  `json:"name,omitempty"`
	Capacity int     `json:"capacity"`
	CoveredS float64 `json:"covered_s"` // how much of the period was recorded
	// Peak is the highest occupancy and PeakAt when it was first reached.
	Peak      *int64     `json:"peak"`
	PeakAt    *time.Time `json:"peak_at"`
	PeakRatio *float64   `json:"peak_ratio"`
	Mean      *float64   `json:"mean"`
	// SecondsAtOrAbove: time at each level or a higher one (busy, warning, critical, evacuate).
	SecondsAtOrAbove map[string]float64 `json:"seconds_at_or_above"`
	Entries          int64              `json:"entries"`
	Exits            int64              `json:"exits"`
	// AvgVisitS is Little's law: the occupancy integral over the entries.
	AvgVisitS   *float64     `json:"avg_visit_s"`
	BusiestHour *HourFigure  `json:"busiest_hour"` // by entries
	Clamped     int64        `json:"clamped"`      // drift: people added when a deficit was clamped
	Corrected   int64        `json:"corrected"`    // sizes of manual corrections and daily resets
	total       Rollup       // for comparisons
	hours       []HourFigure // for comparisons
}

type HourFigure struct {
	Start   time.Time `json:"start"`
	Entries int64     `json:"entries"`
	Peak    *int64    `json:"peak,omitempty"`
}

type DoorTotal struct {
	Door string `json:"door"`
	From string `json:"from"`
	To   string `json:"to"`
	In   int64  `json:"in"`
	Out  int64  `json:"out"`
}

// AlertSummary is what happened to alerts that fired in the period.
type AlertSummary struct {
	Fired          int         `json:"fired"`
	Acknowledged   int         `json:"acknowledged"`
	Resolved       int         `json:"resolved"`
	MedianAckS     *float64    `json:"median_ack_s"`
	MaxAckS        *float64    `json:"max_ack_s"`
	MedianResolveS *float64    `json:"median_resolve_s"`
	MaxResolveS    *float64    `json:"max_resolve_s"`
	Alerts         []AlertLine `json:"list"`
}

type AlertLine struct {
	ID         string       `json:"id"`
	Kind       string       `json:"kind"`
	Zone       string       `json:"zone,omitempty"`
	Severity   string       `json:"severity,omitempty"`
	Level      levels.Level `json:"level,omitzero"`
	FiredAt    time.Time    `json:"fired_at"`
	AckAt      *time.Time   `json:"ack_at,omitempty"`
	AckBy      string       `json:"ack_by,omitempty"`
	ResolvedAt *time.Time   `json:"resolved_at,omitempty"`
	AckS       *float64     `json:"ack_s,omitempty"`
	ResolveS   *float64     `json:"resolve_s,omitempty"`
}

type EvacEvent struct {
	At   time.Time `json:"at"`
	Zone string    `json:"zone"` // "" for the whole site
	What string    `json:"what"`
	By   string    `json:"by,omitempty"`
	Note string    `json:"note,omitempty"`
}

// MaxReportSpan is the longest period one report covers: a year, leap or not, with a day
// to spare. A report holds every hour of every zone, so a longer one is refused before
// anything is read or allocated.
const MaxReportSpan = 367 * 24 * time.Hour

// checkPeriod refuses a report period that is empty or too long.
func checkPeriod(from, to time.Time) error {
	if !to.After(from) {
		return &QueryError{"the end of the period must be after its start"}
	}
	if to.Sub(from) > MaxReportSpan {
		return &QueryError{fmt.Sprintf("the period from %s to %s is longer than a report covers (%d days); report on a year or less",
			from.Format(time.DateOnly), to.Format(time.DateOnly), MaxReportSpan/(24*time.Hour))}
	}
	return nil
}

// Report builds the report of [from, to).
func (r *Reader) Report(ctx context.Context, from, to time.Time) (*Report, error) {
	if err := checkPeriod(from, to); err != nil {
		return nil, err
	}
	var rep *Report
	err := r.view(ctx, func(q *txq) error {
		var err error
		rep, err = q.report(from.UnixMilli(), to.UnixMilli())
		if err != nil {
			return err
		}
		rep.Unusual, err = q.unusual(from.UnixMilli(), to.UnixMilli(), DefaultUnusual)
		rep.DamagedBlocks = q.damaged
		return err
	})
	if err == nil {
		r.inForce(rep)
	}
	if err != nil {
		return nil, err
	}
	r.addAlerts(rep, from, to)
	return rep, nil
}

// inForce puts the capacity in force at each zone's peak beside it (Reader.CapacityAt).
func (r *Reader) inForce(rep *Report) {
	if r.CapacityAt == nil {
		return
	}
	for i := range rep.Zones {
		z := &rep.Zones[i]
		if z.Peak == nil || z.PeakAt == nil {
			continue
		}
		if c := r.CapacityAt(z.Zone, *z.PeakAt); c > 0 && c != z.Capacity {
			ratio := float64(*z.Peak) / float64(c)
			z.Capacity, z.PeakRatio = c, &ratio
		}
	}
}

// Daily is the report of one local day (23, 24 or 25 hours).
func (r *Reader) Daily(ctx context.Context, date time.Time) (*Report, error) {
	site, err := r.Site(ctx)
	if err != nil {
		return nil, err
	}
	d := time.Date(date.Year(), date.Month(), date.Day(), 0, 0, 0, 0, site.Loc)
	return r.Report(ctx, d, time.Date(date.Year(), date.Month(), date.Day()+1, 0, 0, 0, 0, site.Loc))
}

func (q *txq) report(a, b int64) (*Report, error) {
	loc := q.site.Loc
	rep := &Report{Site: q.site.ID, TimeZone: loc.String(), From: time.UnixMilli(a).In(loc), To: time.UnixMilli(b).In(loc),
		RecordedTo: time.UnixMilli(q.wm).In(loc), Evacuations: []EvacEvent{}, Unusual: []UnusualSlot{}}
	hourEdges := q.edges(a, b, Step{D: time.Hour})
	hourEdges[0] = a
	for _, z := range q.site.Zones {
		ws, err := q.windows(z.ID, a, b, Hour)
		if err != nil {
			return nil, err
		}
		var tot Rollup
		for _, w := range ws {
			tot.Merge(w)
		}
		zr := ZoneReport{Zone: z.ID, Name: z.Name, Capacity: z.Capacity, CoveredS: float64(tot.Covered) / 1000,
			SecondsAtOrAbove: map[string]float64{}, Entries: tot.Entries, Exits: tot.Exits,
			Clamped: tot.Clamped, Corrected: tot.Corrected, total: tot}
		if tot.hasValue() {
			p, at := tot.Max, time.UnixMilli(tot.MaxAt).In(loc)
			zr.Peak, zr.PeakAt = &p, &at
			if z.Capacity > 0 {
				ratio := float64(p) / float64(z.Capacity)
				zr.PeakRatio = &ratio
			}
		}
		if tot.Covered > 0 {
			m := tot.Mean()
			zr.Mean = &m
		}
		for l := levels.Busy; l <= levels.Evacuate; l++ {
			var ms int64
			for k := int(l); k < NumLevels; k++ {
				ms += tot.AtLevel[k]
			}
			zr.SecondsAtOrAbove[l.String()] = float64(ms) / 1000
		}
		if tot.Entries > 0 {
			v := float64(tot.Integral) / float64(tot.Entries) / 1000
			zr.AvgVisitS = &v
		}
		for _, h := range bucketize(ws, hourEdges) {
			hf := HourFigure{Start: time.UnixMilli(h.Start).In(loc), Entries: h.Entries}
			if h.hasValue() {
				p := h.Max
				hf.Peak = &p
			}
			zr.hours = append(zr.hours, hf)
			if h.Entries > 0 && (zr.BusiestHour == nil || h.Entries > zr.BusiestHour.Entries) {
				c := hf
				zr.BusiestHour = &c
			}
		}
		rep.Zones = append(rep.Zones, zr)
	}
	siteHours := make([]int64, len(hourEdges)-1)
	for _, d := range q.site.Doors {
		cs, err := q.doors(d.ID, a, b, Hour)
		if err != nil {
			return nil, err
		}
		dt := DoorTotal{Door: d.ID, From: d.From, To: d.To}
		for _, c := range cs {
			dt.In += c.In
			dt.Out += c.Out
		}
		in, out := q.site.visitorFlow(d, DoorCount{In: dt.In, Out: dt.Out})
		rep.Visitors += in
		rep.Departures += out
		for i, c := range bucketDoors(cs, hourEdges) {
			v, _ := q.site.visitorFlow(d, c)
			siteHours[i] += v
		}
		rep.Doors = append(rep.Doors, dt)
	}
	for i, v := range siteHours {
		if v > 0 && (rep.BusiestHour == nil || v > rep.BusiestHour.Entries) {
			rep.BusiestHour = &HourFigure{Start: time.UnixMilli(hourEdges[i]).In(loc), Entries: v}
		}
	}
	return rep, nil
}

// addAlerts fills the alert and evacuation sections from the alert history.
func (r *Reader) addAlerts(rep *Report, from, to time.Time) {
	if r.Events == nil {
		rep.AlertsNote = "alert history is not available to this report (alerting is not wired in)"
		return
	}
	evs, err := r.Events.AlertEvents(from, to)
	if err != nil {
		rep.AlertsNote = "alert history could not be read: " + err.Error()
		return
	}
	loc := from.Location()
	if site := rep.TimeZone; site != "" {
		if l, err := time.LoadLocation(site); err == nil {
			loc = l
		}
	}
	sum := &AlertSummary{Alerts: []AlertLine{}}
	open := map[string]*AlertLine{}
	var lines []*AlertLine
	for _, e := range evs {
		switch e.What {
		case "evacuation_declared", "evacuation_recommended", "evacuation_stood_down":
			rep.Evacuations = append(rep.Evacuations, EvacEvent{At: e.At.In(loc), Zone: e.Zone, What: e.What, By: e.By, Note: e.Note})
			continue
		}
		if e.AlertID == "" {
			continue
		}
		a := open[e.AlertID]
		switch e.What {
		case "fired":
			if a == nil {
				a = &AlertLine{ID: e.AlertID, Kind: e.Kind, Zone: e.Zone, Severity: e.Severity, Level: e.Level, FiredAt: e.At.In(loc)}
				open[e.AlertID] = a
				lines = append(lines, a)
			}
		case "acknowledged":
			if a != nil && a.AckAt == nil {
				t := e.At.In(loc)
				s := t.Sub(a.FiredAt).Seconds()
				a.AckAt, a.AckBy, a.AckS = &t, e.By, &s
			}
		case "resolved":
			if a != nil {
				t := e.At.In(loc)
				s := t.Sub(a.FiredAt).Seconds()
				a.ResolvedAt, a.ResolveS = &t, &s
				delete(open, e.AlertID) // a later "fired" is a new alert
			}
		}
	}
	var acks, res []float64
	for _, a := range lines {
		sum.Alerts = append(sum.Alerts, *a)
		sum.Fired++
		if a.AckS != nil {
			sum.Acknowledged++
			acks = append(acks, *a.AckS)
		}
		if a.ResolveS != nil {
			sum.Resolved++
			res = append(res, *a.ResolveS)
		}
	}
	sum.MedianAckS, sum.MaxAckS = medianMax(acks)
	sum.MedianResolveS, sum.MaxResolveS = medianMax(res)
	rep.Alerts = sum
}

func medianMax(v []float64) (*float64, *float64) {
	if len(v) == 0 {
		return nil, nil
	}
	sort.Float64s(v)
	m := v[len(v)/2]
	if len(v)%2 == 0 {
		m = (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	mx := v[len(v)-1]
	return &m, &mx
}

// Comparison sets two periods side by side, zone by zone.
type Comparison struct {
	A        *Report     `json:"a"`
	B        *Report     `json:"b"`
	Visitors Delta       `json:"visitors"`
	Zones    []ZoneDelta `json:"zones"`
}

type ZoneDelta struct {
	Zone     string `json:"zone"`
	Entries  Delta  `json:"entries"`
	Peak     Delta  `json:"peak"`
	Mean     Delta  `json:"mean"`
	WarningS Delta  `json:"seconds_at_or_above_warning"`
	AvgVisit Delta  `json:"avg_visit_s"`
}

// Delta is a figure in both periods: B minus A, and as a percentage of A.
type Delta struct {
	A    float64  `json:"a"`
	B    float64  `json:"b"`
	Diff float64  `json:"diff"`
	Pct  *float64 `json:"pct"`
}

func delta(a, b float64) Delta {
	d := Delta{A: a, B: b, Diff: b - a}
	if a != 0 {
		p := math.Round((b-a)/a*1000) / 10
		d.Pct = &p
	}
	return d
}

func deref[T int64 | float64](p *T) float64 {
	if p == nil {
		return 0
	}
	return float64(*p)
}

// Compare reports both periods and their differences.
func (r *Reader) Compare(ctx context.Context, aFrom, aTo, bFrom, bTo time.Time) (*Comparison, error) {
	for _, p := range [][2]time.Time{{aFrom, aTo}, {bFrom, bTo}} {
		if err := checkPeriod(p[0], p[1]); err != nil {
			return nil, err
		}
	}
	a, err := r.Report(ctx, aFrom, aTo)
	if err != nil {
		return nil, err
	}
	b, err := r.Report(ctx, bFrom, bTo)
	if err != nil {
		return nil, err
	}
	c := &Comparison{A: a, B: b, Visitors: delta(float64(a.Visitors), float64(b.Visitors))}
	for _, za := range a.Zones {
		i := slices.IndexFunc(b.Zones, func(z ZoneReport) bool { return z.Zone == za.Zone })
		if i < 0 {
			continue
		}
		zb := b.Zones[i]
		c.Zones = append(c.Zones, ZoneDelta{Zone: za.Zone,
			Entries:  delta(float64(za.Entries), float64(zb.Entries)),
			Peak:     delta(deref(za.Peak), deref(zb.Peak)),
			Mean:     delta(deref(za.Mean), deref(zb.Mean)),
			WarningS: delta(za.SecondsAtOrAbove["warning"], zb.SecondsAtOrAbove["warning"]),
			AvgVisit: delta(deref(za.AvgVisitS), deref(zb.AvgVisitS)),
		})
	}
	return c, nil
}
