package history

import (
	"context"
	"fmt"
	"slices"
	"time"
)

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
		f, err := q.frame(qu, len(doors), "doors")
		if err != nil {
			return err
		}
		edges, b, res := f.edges, f.b, f.res
		out = &DoorSeries{Site: q.site.ID, TimeZone: q.site.Loc.String(), From: f.from, To: f.to, Step: qu.Step.String(),
			Resolution: res, RecordedTo: f.recordedTo}
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
