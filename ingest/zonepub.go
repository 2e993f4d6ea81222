package ingest

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

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
}

// Snapshotter is the engine's read side.
type Snapshotter interface {
	Snapshot() *zones.Snapshot
	Subscribe() <-chan struct{}
}

// PublishZones publishes each zone's state, retained, whenever it changes, at most once per
// interval per zone, until ctx ends. A sign subscribing later gets the latest state at once.
func PublishZones(ctx context.Context, engine Snapshotter, pub Publisher, topics Topics, interval time.Duration, log *slog.Logger) {
	changed := engine.Subscribe()
	last := map[string]ZoneMessage{}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	dirty := true
	complain := rate.Sometimes{Interval: time.Minute}
	for {
		// While the broker is away the states wait; retained topics only need the latest.
		if dirty && pub.Connected() {
			dirty = false
			for _, z := range engine.Snapshot().Zones {
				msg := ZoneMessage{Zone: z.ID, Name: z.Name, Occupancy: z.Occupancy, Capacity: z.Capacity,
					Ratio: z.Ratio, Density: z.Density, Updated: z.Updated}
				if prev, ok := last[z.ID]; ok && prev.Occupancy == msg.Occupancy && prev.Capacity == msg.Capacity {
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
		select {
		case <-ctx.Done():
			return
		case <-changed:
			// Wait for the tick so a burst of commits becomes one message per zone.
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			dirty = true
		case <-tick.C:
		}
	}
}
