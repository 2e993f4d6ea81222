package encode

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// xovis speaks a Xovis PC2 / PC3 push over HTTP: live data packages with one COUNT_INCREMENT
// event per crossing (counter_id = logic id × 1000 + 1 forward, + 2 backward, counter_value
// its count since the reset), COUNT_RESET after a reset; for an interval device the count
// data push of one window per line; a sensor's zone occupancy logic in a logics push.
type xovis struct {
	d           Device
	pkg, frame  uint64
	values      map[string][2]uint64 // counter values, per logic
	last        map[string][2]uint64 // totals at the last report
	reset       bool
	windowStart time.Time
}

// eventsPerPackage bounds a package, as a push agent's package size does.
const eventsPerPackage = 200

func newXovis(d Device) (*xovis, error) {
	for _, l := range d.Lines {
		if !numeric(l) {
			return nil, fmt.Errorf("device %s: a Xovis line is a logic id (a number), not %q", d.ID, l)
		}
	}
	if d.Sensor && d.Region != "" && !numeric(d.Region) {
		return nil, fmt.Errorf("device %s: a Xovis zone is a logic id (a number), not %q", d.ID, d.Region)
	}
	return &xovis{d: d, pkg: 1000, values: map[string][2]uint64{}, last: map[string][2]uint64{}, windowStart: d.Start}, nil
}

func (x *xovis) Transport() string { return HTTP }
func (x *xovis) Interval() bool    { return x.d.Interval && !x.d.Sensor }
func (x *xovis) Reset(time.Time) {
	x.values, x.last, x.reset = map[string][2]uint64{}, map[string][2]uint64{}, true
}

// A reset says so in the live data (COUNT_RESET), and live data is counted by events.
func (x *xovis) ResetDetectable(map[string][2]uint64) bool { return true }

func (x *xovis) body(v any) Message {
	b, _ := json.Marshal(v)
	return Message{Body: b, ContentType: "application/json"}
}

func (x *xovis) Report(now time.Time, totals map[string][2]uint64, occupancy int64) []Message {
	t := now.Add(x.d.ClockSkew).UTC()
	if x.d.Sensor {
		logic := x.d.Region
		if logic == "" {
			logic = "1"
		}
		id, _ := strconv.ParseUint(logic, 10, 32)
		return []Message{x.body(map[string]any{"time": t.Format(time.RFC3339Nano), "logics": []any{map[string]any{
			"id": id, "name": "Zone " + logic, "info": "XLT_ZONE_OCCUPANCY_COUNT",
			"geometries": []any{map[string]any{"id": 1, "name": "Zone", "type": "ZONE"}},
			"counts":     []any{map[string]any{"id": 0, "name": "balance", "value": occupancy}}}}})}
	}
	if x.Interval() {
		return x.countData(now, t, totals)
	}
	var events []any
	for _, l := range x.d.Lines {
		logic, _ := strconv.ParseUint(l, 10, 32)
		if x.reset {
			for dir := uint64(1); dir <= 2; dir++ {
				events = append(events, map[string]any{"category": "COUNT", "type": "COUNT_RESET",
					"attributes": map[string]any{"counter_id": logic*1000 + dir}})
			}
		}
		dl := delta(totals[l], x.last[l])
		x.last[l] = totals[l]
		v := x.values[l]
		for dir := range 2 {
			for range dl[dir] {
				v[dir]++
				events = append(events, map[string]any{"category": "COUNT", "type": "COUNT_INCREMENT",
					"attributes": map[string]any{"counter_id": logic*1000 + uint64(dir) + 1, "counter_value": v[dir]}})
			}
		}
		x.values[l] = v
	}
	x.reset = false
	var out []Message
	for len(events) > 0 {
		n := min(len(events), eventsPerPackage)
		x.pkg++
		x.frame += 25
		out = append(out, x.body(map[string]any{"live_data": map[string]any{
			"package_info": map[string]any{"version": "5.0", "id": x.pkg, "agent_id": 1},
			"sensor_info":  map[string]any{"serial_number": serial(x.d.ID, 12), "type": "PC2S"},
			"frames": []any{map[string]any{"framenumber": x.frame, "time": t.UnixMilli(), "tracked_objects": []any{},
				"events": events[:n]}}}}))
		events = events[n:]
	}
	return out
}

func (x *xovis) countData(now, t time.Time, totals map[string][2]uint64) []Message {
	if !now.After(x.windowStart) {
		return nil
	}
	from := x.windowStart.Add(x.d.ClockSkew).UTC().Format(time.RFC3339)
	to := t.Format(time.RFC3339)
	x.windowStart = now
	var elements []any
	for _, l := range x.d.Lines {
		id, _ := strconv.ParseUint(l, 10, 32)
		dl := delta(totals[l], x.last[l])
		x.last[l] = totals[l]
		elements = append(elements, map[string]any{"element-id": id, "element-name": "Line " + l, "sensor-type": "SINGLE_SENSOR",
			"data-type": "LINE", "from": from, "to": to, "resolution": "ONE_MINUTE",
			"measurement": []any{map[string]any{"from": from, "to": to, "value": []any{
				map[string]any{"value": dl[0], "label": "fw"}, map[string]any{"value": dl[1], "label": "bw"}}}}})
	}
	return []Message{x.body(map[string]any{"sensor-time": map[string]any{"timezone": "UTC", "time": to},
		"status": map[string]any{"code": "OK"}, "content": map[string]any{"element": elements},
		"sensor-info": map[string]any{"serial-number": serial(x.d.ID, 12), "name": x.d.ID, "group": "sim"}})}
}

func (x *xovis) Malformed() Message {
	m := x.body(map[string]any{"live_data": map[string]any{"package_info": map[string]any{"id": x.pkg + 1}, "frames": []any{}}})
	m.Body = cut(m.Body)
	return m
}
