package encode

import (
	"encoding/json"
	"fmt"
	"time"
)

// chirpstack speaks a ChirpStack v4 uplink event around a Milesight VS133 (lines) or VS121
// (regions) decoded object, over MQTT: line_N_total_in/out in every uplink, and for an
// interval device line_N_period_in/out beside them; the frame counter counts uplinks.
type chirpstack struct {
	d    Device
	eui  string
	fcnt uint64
	last map[string][2]uint64
}

func newChirpstack(d Device) (*chirpstack, error) {
	for _, l := range d.Lines {
		if len(l) != 1 || l < "1" || l > "9" {
			return nil, fmt.Errorf("device %s: a LoRaWAN Milesight counter numbers its lines 1 to 9, not %q", d.ID, l)
		}
	}
	if d.Sensor && d.Region != "" && !numeric(d.Region) {
		return nil, fmt.Errorf("device %s: a LoRaWAN Milesight sensor numbers its regions, not %q", d.ID, d.Region)
	}
	return &chirpstack{d: d, eui: serial(d.ID, 16), last: map[string][2]uint64{}}, nil
}

func (c *chirpstack) Transport() string { return MQTT }
func (c *chirpstack) Interval() bool    { return false } // a LoRa device keeps nothing through an outage
func (c *chirpstack) Reset(time.Time)   { c.last = map[string][2]uint64{} }
func (c *chirpstack) ResetDetectable(t map[string][2]uint64) bool {
	return detectable(t)
}

func (c *chirpstack) topic() string {
	if c.d.Sensor {
		return c.d.TopicBase + "occupancy/" + c.d.ID
	}
	return c.d.TopicBase + "counter/" + c.d.ID
}

func (c *chirpstack) uplink(now time.Time, object map[string]any) []byte {
	c.fcnt++
	b, _ := json.Marshal(map[string]any{
		"deduplicationId": fmt.Sprintf("%s-%08d", c.eui, c.fcnt),
		// The network server's clock, not the device's: a LoRa counter keeps none.
		"time":       now.UTC().Format(time.RFC3339Nano),
		"deviceInfo": map[string]any{"deviceName": c.d.ID, "devEui": c.eui, "applicationName": "crowdwatch-sim", "deviceProfileName": "VS133"},
		"fCnt":       c.fcnt, "fPort": 85, "confirmed": false, "object": object,
	})
	return b
}

func (c *chirpstack) Report(now time.Time, totals map[string][2]uint64, occupancy int64) []Message {
	obj := map[string]any{}
	if c.d.Sensor {
		region := c.d.Region
		if region == "" {
			region = "1"
		}
		obj["region_"+region+"_count"] = max(occupancy, 0)
	}
	for _, l := range c.d.Lines {
		t := totals[l]
		obj["line_"+l+"_total_in"], obj["line_"+l+"_total_out"] = t[0], t[1]
		if c.d.Interval {
			dl := delta(t, c.last[l])
			obj["line_"+l+"_period_in"], obj["line_"+l+"_period_out"] = dl[0], dl[1]
		}
		c.last[l] = t
	}
	return []Message{{Topic: c.topic(), Body: c.uplink(now, obj), ContentType: "application/json"}}
}

func (c *chirpstack) Malformed() Message {
	b, _ := json.Marshal(map[string]any{"deviceInfo": map[string]any{"devEui": c.eui}, "fCnt": c.fcnt + 1, "object": map[string]any{"line_1_total_in": 1}})
	return Message{Topic: c.topic(), Body: cut(b), ContentType: "application/json"}
}
