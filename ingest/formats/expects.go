package formats

// expects says, per format, what a device of that format sends and how its lines are named:
// the words `check-config` shows beside each device.
var expects = map[string]string{
	"milesight": "Milesight JSON: VS125/VS13x line_total_data or line_trigger_data totals, line_periodic_data windows, " +
		"region_count_data; VS121-P region counting; or a LoRaWAN decoded object (line_N_total_in/out, line_N_period_in/out, " +
		"region_N_count, VS121 people_*). Lines and regions by number (\"1\"); counted by totals since the reset",
	"xovis": "Xovis v5 push: live data COUNT_INCREMENT events (counter_id = logic×1000 + 1 in, + 2 out), logics " +
		"(fw/bw totals, zone balance), or count data windows. Lines and zones by logic id (\"1008\"); counted by events",
	"axis": "Axis Retail Data v0.4 push (line \"1\"), Object Analytics events over MQTT (crossline totals since startTime, " +
		"occupancy in area; line or region = scenario, \"Device1Scenario1\"), or a VAPIX live-sum (line \"1\"); " +
		"counted by interval windows",
	"hikvision": "ISAPI EventNotificationAlert PeopleCounting XML over HTTP, bare or multipart beside a JPEG: realTime " +
		"totals or timeRange windows. Lines by channel (\"1\", or \"1:2\" for region 2); counted by realTime totals",
	"chirpstack": "a LoRaWAN network server's uplink (ChirpStack v4/v3, The Things Stack) around the decoded object of " +
		"the format in decoded:, keyed by the frame counter; counted as that format is",
}

// Expects says what a device of the format sends and how its lines are named, for people
// checking a store file; "" for a format that is not registered.
func Expects(format string) string {
	if _, ok := Lookup(format); !ok {
		return ""
	}
	return expects[format]
}
