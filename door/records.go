package door

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/promotion"
)

// RecordStore is where the records live: the alert file, through its one writer (the alert
// manager, *alerting.Manager). Drills are the manager's own state already (they mark alerts
// and screens, and a real evacuation ends them in the same step), and metering episodes are
// a few transitions a day, like alerts: keeping both beside the alerts puts everything the
// review reads about the day in one file, written by one goroutine, and keeps them out of
// the occupancy file's group commit on the ingest path.
type RecordStore interface {
	KeepMetering(ctx context.Context, from time.Time, door string, episode []byte) error
	MeteringRecords(from, to time.Time) ([][]byte, error)
	DrillReports(from, to time.Time) ([]alerting.Drill, error)
}

// Records is promotion.Records (what the review reads) and the meter's EpisodeKeeper.
type Records struct {
	Store RecordStore
	// Open, when set, gives the episodes still under way (Meter.OpenEpisodes), which the
	// review shows beside the kept ones.
	Open func() []promotion.MeteringEpisode
}

var (
	_ promotion.Records = Records{}
	_ EpisodeKeeper     = Records{}
	_ RecordStore       = (*alerting.Manager)(nil)
)

// KeepEpisode stores a finished episode.
func (r Records) KeepEpisode(ctx context.Context, ep promotion.MeteringEpisode) error {
	b, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	return r.Store.KeepMetering(ctx, ep.From, ep.Door, b)
}

// MeteringEpisodes are the episodes that began in [from, to) (to zero: no end).
func (r Records) MeteringEpisodes(from, to time.Time) ([]promotion.MeteringEpisode, error) {
	raw, err := r.Store.MeteringRecords(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]promotion.MeteringEpisode, 0, len(raw))
	for _, b := range raw {
		var ep promotion.MeteringEpisode
		if err := json.Unmarshal(b, &ep); err != nil {
			return nil, fmt.Errorf("door: a stored metering episode: %w", err)
		}
		out = append(out, ep)
	}
	if r.Open != nil {
		for _, ep := range r.Open() {
			if !ep.From.Before(from) && (to.IsZero() || ep.From.Before(to)) {
				out = append(out, ep)
			}
		}
	}
	return out, nil
}

// Drills are the drills that began in [from, to), as measured.
func (r Records) Drills(from, to time.Time) ([]promotion.DrillReport, error) {
	ds, err := r.Store.DrillReports(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]promotion.DrillReport, 0, len(ds))
	for _, d := range ds {
		out = append(out, DrillReport(d))
	}
	return out, nil
}

// DrillReport is a drill in the review's shape.
func DrillReport(d alerting.Drill) promotion.DrillReport {
	r := promotion.DrillReport{ID: d.ID, Zones: d.Affected, By: d.By, StartedAt: d.At, StartCount: d.StartCount,
		Cleared: map[string]time.Duration{}}
	if d.EndedAt != nil {
		r.EndedAt = *d.EndedAt
	}
	if d.EstimateSeconds != nil {
		r.Estimate = time.Duration(*d.EstimateSeconds * float64(time.Second))
	}
	for z, s := range d.ClearedSeconds {
		r.Cleared[z] = time.Duration(s * float64(time.Second))
	}
	return r
}
