package encode

import (
	"encoding/json"
	"time"
)

// milesight speaks the VS125 / VS13x PoE JSON over MQTT: line_total_data (totals since the
// reset), or for an interval device line_periodic_data windows beside line_trigger_data
// totals (the device sends both; the service counts one kind); a sensor region_count_data.
type milesight struct {
	d           Device
	last        map[string][2]uint64
	windowStart time.Time
}

func newMilesight(d Device) *milesight {
	return &milesight{d: d, last: map[string][2]uint64{}, windowStart: d.Start}
}

func (m *milesight) Transport() string { return MQTT }
func (m *milesight) Interval() bool    { return m.d.Interval && !m.d.Sensor }
func (m *milesight) Reset(time.Time)   { m.last = map[string][2]uint64{} }
func (m *milesight) ResetDetectable(t map[string][2]uint64) bool {
	return detectable(t)
}

// jsonID writes a line or region id as the device does: a number where it is one.
func jsonID(id string) any {
	if numeric(id) {
		return json.Number(id)
	}
	return id
}

func (m *milesight) topic() string {
	if m.d.Sensor {
		return m.d.TopicBase + "occupancy/" + m.d.ID
	}
	return m.d.TopicBase + "counter/" + m.d.ID
}

func (m *milesight) msg(body map[string]any) Message {
	body["device_info"] = map[string]any{"device_sn": serial(m.d.ID, 16), "cus_device_id": m.d.ID, "running_time": 0}
	b, _ := json.Marshal(body)
	return Message{Topic: m.topic(), Body: b, ContentType: "application/json"}
}

func (m *milesight) Report(now time.Time, totals map[string][2]uint64, occupancy int64) []Message {
	t := now.Add(m.d.ClockSkew).UTC()
	info := map[string]any{"time": t.Format(time.RFC3339), "time_zone": "UTC+0:00", "enable_dst": false, "dst_status": false}
	if m.d.Sensor {
		region := m.d.Region
		if region == "" {
			region = "1"
		}
		return []Message{m.msg(map[string]any{"time_info": info, "region_count_data": []any{map[string]any{
			"region": jsonID(region), "region_name": "Region" + region, "total": map[string]any{"current_total": max(occupancy, 0)}}}})}
	}
	var totalLines, periodLines []any
	for _, l := range m.d.Lines {
		tot := totals[l]
		totalLines = append(totalLines, map[string]any{"line": jsonID(l), "line_name": "Line" + l,
			"total": map[string]any{"in": tot[0], "out": tot[1]}, "group": map[string]any{"in": 0, "out": 0}})
		dl := delta(tot, m.last[l])
		periodLines = append(periodLines, map[string]any{"line": jsonID(l), "line_name": "Line" + l,
			"total": map[string]any{"in": dl[0], "out": dl[1]}})
	}
	if !m.Interval() {
		var lines []any
		for _, l := range m.d.Lines {
			tot := totals[l]
			lines = append(lines, map[string]any{"line": jsonID(l), "line_name": "Line" + l,
				"total": map[string]any{"in_counted": tot[0], "out_counted": tot[1], "capacity_counted": max(int64(tot[0])-int64(tot[1]), 0)}})
		}
		return []Message{m.msg(map[string]any{"time_info": info, "line_total_data": lines})}
	}
	if !now.After(m.windowStart) {
		return nil
	}
	start := m.windowStart
	m.windowStart = now
	for _, l := range m.d.Lines {
		m.last[l] = totals[l]
	}
	periodInfo := map[string]any{"start_time": start.Add(m.d.ClockSkew).UTC().Format(time.RFC3339), "end_time": t.Format(time.RFC3339),
		"time_zone": "UTC+0:00", "enable_dst": false, "dst_status": false}
	return []Message{
		m.msg(map[string]any{"time_info": info, "line_trigger_data": totalLines}),
		m.msg(map[string]any{"time_info": periodInfo, "line_periodic_data": periodLines}),
	}
}

func (m *milesight) Malformed() Message {
	b, _ := json.Marshal(map[string]any{"line_total_data": []any{map[string]any{"line": 1, "total": map[string]any{"in_counted": 1, "out_counted": 1}}}})
	return Message{Topic: m.topic(), Body: cut(b), ContentType: "application/json"}
}
