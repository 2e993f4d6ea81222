package web

import (
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Messages of the feed (docs/api.md, "Live feed").
type (
	zoneView struct {
		ID        string            `json:"id"`
		Name      string            `json:"name"`
		Names     map[string]string `json:"names,omitempty"`
		Parent    string            `json:"parent,omitempty"`
		Occupancy int64             `json:"occupancy"`
		Capacity  int               `json:"capacity"`
		Ratio     float64           `json:"ratio"`
		Density   *float64          `json:"density,omitempty"`
		// Level is the shown level (alerting.Status.Show): the same as GET /api/v1/zones and the
		// retained zone topic; Pending the level of an alert waiting out its hold-down.
		Level        levels.Level  `json:"level"`
		Pending      *levels.Level `json:"pending,omitempty"`
		PendingSince *time.Time    `json:"pending_since,omitempty"`
		Uncertain    bool          `json:"uncertain,omitempty"`
		Updated      time.Time     `json:"updated,omitzero"`
	}
	floorView struct {
		ID     string            `json:"id"`
		Name   string            `json:"name"`
		Names  map[string]string `json:"names,omitempty"`
		Plan   string            `json:"plan,omitempty"`
		Width  float64           `json:"width"`
		Height float64           `json:"height"`
		Zones  []floorZone       `json:"zones"`
	}
	floorZone struct {
		Zone    string       `json:"zone"`
		Polygon [][2]float64 `json:"polygon"`
	}
	siteView struct {
		ID       string            `json:"id"`
		Name     string            `json:"name"`
		Names    map[string]string `json:"names,omitempty"`
		Timezone string            `json:"timezone,omitempty"` // IANA: the pages show the store's time
	}
	feedMessage struct {
		Type         string                 `json:"type"` // snapshot, update, heartbeat, guidance
		Seq          uint64                 `json:"seq"`
		At           time.Time              `json:"at"`
		DataAt       time.Time              `json:"data_at,omitzero"` // when the newest report was applied
		Site         *siteView              `json:"site,omitempty"`
		Alerting     *bool                  `json:"alerting,omitempty"`
		StaleAfterMS int64                  `json:"stale_after_ms,omitempty"`
		Floors       []floorView            `json:"floors,omitempty"`
		Zones        []zoneView             `json:"zones,omitempty"`
		Devices      []zones.DeviceStatus   `json:"devices,omitempty"`
		Alerts       *[]alerting.Alert      `json:"alerts,omitempty"`
		Evacuations  *[]alerting.Evacuation `json:"evacuations,omitempty"`
		Drills       *[]alerting.Drill      `json:"drills,omitempty"` // drills in progress (web/live_door.go)
		Plan         *countdownView         `json:"plan,omitempty"`   // the running or next event plan
		Screens      []guidance.Guidance    `json:"screens,omitempty"`
		Guidance     *guidance.Guidance     `json:"guidance,omitempty"`
	}
)
