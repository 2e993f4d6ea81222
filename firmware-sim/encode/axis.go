package encode

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// axis speaks an AXIS People Counter's Axis Retail Data v0.4 push over HTTP for a counter
// (one line, interval windows of in and out), and an AXIS Object Analytics occupancy-in-area
// event over MQTT on the camera's own topic for a sensor.
type axis struct {
	d           Device
	serial      string
	last        [2]uint64
	windowStart time.Time
}

// The one line of an Axis people counter, as ingest/formats names it (formats.AxisLine).
const axisLine = "1"

func newAxis(d Device) (*axis, error) {
	if !d.Sensor && (len(d.Lines) != 1 || d.Lines[0] != axisLine) {
		return nil, fmt.Errorf("device %s: an Axis people counter has one line, %q, not %v", d.ID, axisLine, d.Lines)
	}
	s := d.Serial
	if s == "" {
		s = serial(d.ID, 12)
	}
	return &axis{d: d, serial: s, windowStart: d.Start}, nil
}

func (a *axis) Transport() string {
	if a.d.Sensor {
		return MQTT
	}
	return HTTP
}
func (a *axis) Interval() bool                            { return !a.d.Sensor }
func (a *axis) Reset(time.Time)                           { a.last = [2]uint64{} }
func (a *axis) ResetDetectable(map[string][2]uint64) bool { return true } // intervals: a reset loses nothing

func (a *axis) scenario() string {
	if a.d.Region != "" {
		return a.d.Region
	}
	return "Device1Scenario1"
}

func (a *axis) Report(now time.Time, totals map[string][2]uint64, occupancy int64) []Message {
	t := now.Add(a.d.ClockSkew).UTC()
	if a.d.Sensor {
		n := strconv.FormatInt(max(occupancy, 0), 10)
		b, _ := json.Marshal(map[string]any{
			"topic": "axis:CameraApplicationPlatform/ObjectAnalytics/" + a.scenario(), "timestamp": t.UnixMilli(), "serial": a.serial,
			"message": map[string]any{"source": map[string]any{}, "key": map[string]any{},
				"data": map[string]any{"scenario": "Occupancy", "total": n, "human": n}}})
		return []Message{{Topic: "axis/" + a.serial + "/event/CameraApplicationPlatform/ObjectAnalytics/" + a.scenario(), Body: b, ContentType: "application/json"}}
	}
	if !now.After(a.windowStart) {
		return nil
	}
	from, to := a.windowStart.Add(a.d.ClockSkew).UTC().Format(time.RFC3339), t.Format(time.RFC3339)
	a.windowStart = now
	dl := delta(totals[axisLine], a.last)
	a.last = totals[axisLine]
	b, _ := json.Marshal(map[string]any{"apiName": "Axis Retail Data", "apiVersion": "0.4", "utcSent": to,
		"data": map[string]any{"utcFrom": from, "utcTo": to, "measurements": []any{map[string]any{
			"kind": "people-counts", "utcFrom": from, "utcTo": to, "items": []any{
				map[string]any{"direction": "in", "count": dl[0]}, map[string]any{"direction": "out", "count": dl[1]}}}}},
		"sensor": map[string]any{"application": "AXIS 3D People Counter", "serial": a.serial, "name": a.d.ID, "timeZone": "UTC"}})
	return []Message{{Body: b, ContentType: "application/json"}}
}

func (a *axis) Malformed() Message {
	m := Message{Body: cut([]byte(`{"apiName":"Axis Retail Data","apiVersion":"0.4","data":{"measurements":[]}}`)), ContentType: "application/json"}
	if a.d.Sensor {
		m.Topic = "axis/" + a.serial + "/event/CameraApplicationPlatform/ObjectAnalytics/" + a.scenario()
	}
	return m
}
