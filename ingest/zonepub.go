package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Publisher sends the service's own messages on the broker.
type Publisher interface {
	Publish(topic string, payload []byte, retain bool) error
	Connected() bool
}

// ZoneMessage is the retained payload on <prefix>/<site>/zone/<zone>.
type ZoneMessage struct {
	Zone      string    `json:"zone"`
	Name      string    `json:"name,omitempty"`
	Occupancy int64     `json:"occupancy"`
	Capacity  int       `json:"capacity"`
	Ratio     float64   `json:"ratio"`
	Density   *float64  `json:"density,omitempty"`
	Updated   time.Time `json:"updated,omitzero"`
	// Level, Pending, PendingSince and Uncertain: the shown level, the same as the map's and
	// GET /api/v1/zones' (alerting.Status.Show).
	alerting.ZoneLevel
}

// StatusSource gives the alert manager's latest status (nil before alerting runs).
type StatusSource interface {
	Status() *alerting.Status
}

// PublishZones publishes each zone's state, retained, whenever it changes, at most once per
// interval per zone, until ctx ends. A sign subscribing later gets the latest state at once.
// levels (nil: the built-in thresholds) gives each zone's shown level; a change of level or
// pending alert is published too, within an interval.
func PublishZones(ctx context.Context, engine zones.Source, pub Publisher, topics Topics, interval time.Duration, levels StatusSource, log *slog.Logger) {
	changed, unsubscribe := engine.Subscribe()
	defer unsubscribe()
	last := map[string]ZoneMessage{}
	// Trailing: a change waits for the next tick, so a burst of commits becomes one message
	// per zone; publishing happens only on a tick (and once at the start).
	pace := owner.NewPacer(interval, owner.Trailing)
	defer pace.Stop()
	dirty := true
	complain := rate.Sometimes{Interval: time.Minute}
	for {
		// While the broker is away the states wait; retained topics only need the latest.
		if dirty && pub.Connected() {
			dirty = false
			var status *alerting.Status
			if levels != nil {
				status = levels.Status()
			}
			for _, z := range engine.Snapshot().Zones {
				msg := ZoneMessage{Zone: z.ID, Name: z.Name, Occupancy: z.Occupancy, Capacity: z.Capacity,
					Ratio: z.Ratio, Density: z.Density, Updated: z.Updated, ZoneLevel: status.Show(z)}
				if prev, ok := last[z.ID]; ok && prev.Occupancy == msg.Occupancy && prev.Capacity == msg.Capacity && sameLevel(prev.ZoneLevel, msg.ZoneLevel) {
					continue
				}
				payload, _ := json.Marshal(msg)
				if err := pub.Publish(topics.Zone(z.ID), payload, true); err != nil {
					complain.Do(func() { log.Warn("mqtt: zone state not published; will retry", "zone", z.ID, "error", err) })
					dirty = true
					continue
				}
				last[z.ID] = msg
			}
		}
		for ticked := false; !ticked; {
			select {
			case <-ctx.Done():
				return
			case <-changed:
				pace.Ready()
			case <-pace.C():
				ticked = true
				// A level can change without a new count (a hold-down ends, a pending alert fires).
				changes := pace.Fired()
				dirty = dirty || changes || levels != nil
			}
		}
	}
}

func sameLevel(a, b alerting.ZoneLevel) bool {
	return a.Level == b.Level && a.Uncertain == b.Uncertain && (a.Pending == nil) == (b.Pending == nil) &&
		(a.Pending == nil || *a.Pending == *b.Pending)
}
