package promotion

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
)

// HistoryReader is what the forecast and the review read from history (history.Reader).
type HistoryReader interface {
	SeriesReader
	Report(ctx context.Context, from, to time.Time) (*history.Report, error)
}

// Review is the report after an event: its plan beside what happened, and the same figures
// for the previous event of its kind (docs/events.md, "Review the day").
type Review struct {
	EventReview
	Previous *EventReview `json:"previous"` // null when no earlier event of the kind
}

// EventReview is one event's figures.
type EventReview struct {
	Event    Plan                  `json:"event"`
	Basis    string                `json:"forecast_basis"` // events, weekday or none
	Days     []string              `json:"forecast_days"`
	Zones    []ZoneReview          `json:"zones"`
	Metering []DoorMetering        `json:"metering"`
	Alerts   *history.AlertSummary `json:"alerts"` // null when alert history is not available
	Drills   []DrillLine           `json:"drills"`
	// Notes say what could not be read (alert history, door records) and why.
	Notes []string `json:"notes"`
}

// ZoneReview puts a zone's forecast beside its actual peak.
type ZoneReview struct {
	Zone         string     `json:"zone"`
	Name         string     `json:"name,omitempty"`
	Capacity     int        `json:"capacity"` // in force during the event
	ForecastPeak *Range     `json:"forecast_peak"`
	Peak         *int64     `json:"peak"`
	PeakAt       *time.Time `json:"peak_at"`
	PeakRatio    *float64   `json:"peak_ratio"`
	// ErrorPct is (actual - expected) / expected x 100; null without both.
	ErrorPct *float64 `json:"error_pct"`
	// WithinRange says the actual peak fell within the forecast's range.
	WithinRange      *bool              `json:"within_range"`
	SecondsAtOrAbove map[string]float64 `json:"seconds_at_or_above"`
	Entries          int64              `json:"entries"`
}

// DoorMetering sums a metered door's episodes.
type DoorMetering struct {
	Door      string            `json:"door"`
	Episodes  []MeteringEpisode `json:"episodes"`
	HeldS     float64           `json:"held_s"` // total time the screen said wait
	Admitted  int               `json:"admitted"`
	QueueMax  int               `json:"queue_max"`
	WaitMaxS  float64           `json:"wait_max_s"`
	WaitMeanS float64           `json:"wait_mean_s"` // the episodes' means, weighted by their length
}

// DrillLine is a drill with its measured times against the estimate.
type DrillLine struct {
	DrillReport
	EstimateS float64            `json:"estimate_s"`
	ClearedS  map[string]float64 `json:"cleared_s"` // per zone, from the alarm until empty
	// SlowestS is the longest of ClearedS; NotCleared the zones not empty before the end.
	SlowestS   *float64 `json:"slowest_s"`
	NotCleared []string `json:"not_cleared"`
	OverBy     *float64 `json:"over_estimate_s"` // SlowestS - EstimateS when positive
}

// BuildReview reviews the plan id: its forecast (from the days before it, as it was made),
// its history report over [start, end), the door and drill records, and the same for the
// previous event of its kind. records may be nil (the review says so).
func BuildReview(ctx context.Context, cfg *configs.Config, sched *Schedule, h HistoryReader, records Records, id string) (*Review, error) {
	p, ok := sched.Plan(id)
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	cur, err := reviewOne(ctx, cfg, sched, h, records, p)
	if err != nil {
		return nil, err
	}
	rv := &Review{EventReview: *cur}
	if prev := sched.Previous(id); prev != nil {
		if rv.Previous, err = reviewOne(ctx, cfg, sched, h, records, *prev); err != nil {
			return nil, err
		}
	}
	return rv, nil
}

func reviewOne(ctx context.Context, cfg *configs.Config, sched *Schedule, h HistoryReader, records Records, p Plan) (*EventReview, error) {
	rv := &EventReview{Event: p, Metering: []DoorMetering{}, Drills: []DrillLine{}, Notes: []string{}}
	basis, days, err := ComparableDays(ctx, cfg, sched, h, p.EventPlan)
	if err != nil {
		return nil, err
	}
	f := BuildForecast(cfg, p.EventPlan, basis, days)
	rv.Basis, rv.Days = f.Basis, f.Days
	rep, err := h.Report(ctx, p.Start, p.End)
	if err != nil {
		return nil, fmt.Errorf("review %s: %w", p.ID, err)
	}
	rv.Alerts = rep.Alerts
	if rep.AlertsNote != "" {
		rv.Notes = append(rv.Notes, rep.AlertsNote)
	}
	byZone := map[string]history.ZoneReport{}
	for _, z := range rep.Zones {
		byZone[z.Zone] = z
	}
	for _, zf := range f.Zones {
		zr := ZoneReview{Zone: zf.Zone, Name: zf.Name, Capacity: zf.Capacity, ForecastPeak: zf.Peak, SecondsAtOrAbove: map[string]float64{}}
		if hz, ok := byZone[zf.Zone]; ok {
			zr.Peak, zr.PeakAt, zr.SecondsAtOrAbove, zr.Entries = hz.Peak, hz.PeakAt, hz.SecondsAtOrAbove, hz.Entries
			if hz.Peak != nil && zf.Capacity > 0 {
				r := float64(*hz.Peak) / float64(zf.Capacity)
				zr.PeakRatio = &r
			}
		}
		if zr.Peak != nil && zf.Peak != nil {
			if zf.Peak.Expected > 0 {
				e := round1((float64(*zr.Peak) - zf.Peak.Expected) / zf.Peak.Expected * 100)
				zr.ErrorPct = &e
			}
			in := float64(*zr.Peak) >= zf.Peak.Low && float64(*zr.Peak) <= zf.Peak.High
			zr.WithinRange = &in
		}
		rv.Zones = append(rv.Zones, zr)
	}
	if records == nil {
		rv.Notes = append(rv.Notes, "door metering and drill records are not available to this review")
		return rv, nil
	}
	eps, err := records.MeteringEpisodes(p.Start, p.End)
	if err != nil {
		rv.Notes = append(rv.Notes, "metering episodes could not be read: "+err.Error())
	}
	rv.Metering = meteringByDoor(eps)
	drills, err := records.Drills(p.Start, p.End)
	if err != nil {
		rv.Notes = append(rv.Notes, "drill reports could not be read: "+err.Error())
	}
	for _, d := range drills {
		rv.Drills = append(rv.Drills, drillLine(d))
	}
	return rv, nil
}

func meteringByDoor(eps []MeteringEpisode) []DoorMetering {
	out := []DoorMetering{}
	idx := map[string]int{}
	weights := map[string]float64{}
	for _, e := range eps {
		i, ok := idx[e.Door]
		if !ok {
			i = len(out)
			idx[e.Door] = i
			out = append(out, DoorMetering{Door: e.Door})
		}
		d := &out[i]
		d.Episodes = append(d.Episodes, e)
		d.HeldS += e.HeldFor.Seconds()
		d.Admitted += e.Admitted
		d.QueueMax = max(d.QueueMax, e.QueueMax)
		d.WaitMaxS = max(d.WaitMaxS, e.WaitMax.Seconds())
		w := max(e.To.Sub(e.From).Seconds(), 1)
		d.WaitMeanS += e.WaitMean.Seconds() * w
		weights[e.Door] += w
	}
	for i := range out {
		d := &out[i]
		d.WaitMeanS = round1(d.WaitMeanS / weights[d.Door])
		d.HeldS = round1(d.HeldS)
	}
	return out
}

func drillLine(d DrillReport) DrillLine {
	l := DrillLine{DrillReport: d, EstimateS: d.Estimate.Seconds(), ClearedS: map[string]float64{}, NotCleared: []string{}}
	for _, z := range d.Zones {
		c, ok := d.Cleared[z]
		if !ok {
			l.NotCleared = append(l.NotCleared, z)
			continue
		}
		s := c.Seconds()
		l.ClearedS[z] = s
		if l.SlowestS == nil || s > *l.SlowestS {
			l.SlowestS = &s
		}
	}
	slices.Sort(l.NotCleared)
	if l.SlowestS != nil && *l.SlowestS > l.EstimateS {
		o := *l.SlowestS - l.EstimateS
		l.OverBy = &o
	}
	return l
}
