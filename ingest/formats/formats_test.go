package formats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// describe writes a reading on one line, so that expectations read like the payloads.
func describe(r Reading) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Format, r.Semantics)
	for _, l := range r.Lines {
		fmt.Fprintf(&b, " %s:%d/%d", l.ID, l.In, l.Out)
	}
	if r.Semantics == Absolute {
		fmt.Fprintf(&b, " region=%q count=%d", r.Region, r.Count)
	}
	if !r.DeviceTime.IsZero() {
		fmt.Fprintf(&b, " t=%s", r.DeviceTime.UTC().Format(time.RFC3339Nano))
	}
	if !r.WindowStart.IsZero() || !r.WindowEnd.IsZero() {
		fmt.Fprintf(&b, " w=%s..%s", r.WindowStart.UTC().Format(time.RFC3339), r.WindowEnd.UTC().Format(time.RFC3339))
	}
	if r.Epoch != "" {
		fmt.Fprintf(&b, " epoch=%s", r.Epoch)
	}
	if r.HasSeq {
		fmt.Fprintf(&b, " seq=%d", r.Seq)
	}
	if r.Key != "" {
		fmt.Fprintf(&b, " key=%q", r.Key)
	}
	if r.Reset {
		b.WriteString(" reset")
	}
	return b.String()
}

func fixture(t testing.TB, vendor, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "formats", vendor, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustDecoder(t testing.TB, format, decoded string) Decoder {
	t.Helper()
	d, err := ForDevice(format, decoded)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const multipartType = "multipart/form-data; boundary=MIME_boundary"

// Every fixture from the public record decodes to exactly the readings its shape means.
func TestFixturesDecode(t *testing.T) {
	cases := []struct {
		format, decoded, file string
		topic, contentType    string
		want                  []string
	}{
		// Milesight LoRaWAN decoded objects: no clock, totals and periods by line number.
		{format: "milesight", file: "vs133-lora-totals.json", want: []string{"milesight since_reset 1:72/200"}},
		{format: "milesight", file: "vs133-lora-period.json", want: []string{"milesight interval 4:5/7"}},
		{format: "milesight", file: "vs135-lora-lines-regions.json", want: []string{
			"milesight since_reset 1:1520/1498 2:310/305",
			"milesight interval 1:12/9 2:3/4",
			`milesight absolute region="1" count=7`,
			`milesight absolute region="2" count=0`,
		}},
		{format: "milesight", file: "vs121-lora.json", want: []string{
			"milesight since_reset 1:120/115 t=2024-05-30T12:11:32Z",
			"milesight interval 1:4/1 t=2024-05-30T12:11:32Z",
			`milesight absolute region="" count=5 t=2024-05-30T12:11:32Z`,
			`milesight absolute region="1" count=3 t=2024-05-30T12:11:32Z`,
			`milesight absolute region="2" count=2 t=2024-05-30T12:11:32Z`,
		}},
		// Milesight PoE / Wi-Fi JSON.
		{format: "milesight", file: "vs125-trigger.json", want: []string{"milesight since_reset 1:27/27 t=2024-05-30T12:11:32Z"}},
		{format: "milesight", file: "vs125-periodic.json", want: []string{
			`milesight interval 1:14/9 2:3/5 t=2024-05-30T12:05:00Z w=2024-05-30T12:00:00Z..2024-05-30T12:05:00Z key="periodic 2024-05-30T12:00:00Z/2024-05-30T12:05:00Z"`,
		}},
		{format: "milesight", file: "vs125-total.json", want: []string{"milesight since_reset 1:812/790 t=2024-05-30T12:12:00Z"}},
		{format: "milesight", file: "vs125-region.json", want: []string{
			`milesight absolute region="1" count=6 t=2024-05-30T12:12:01Z`,
			`milesight absolute region="2" count=0 t=2024-05-30T12:12:01Z`,
		}},
		{format: "milesight", file: "vs125-heartbeat.json", want: nil},
		{format: "milesight", file: "vs133-lora-device-info.json", want: nil},
		{format: "milesight", file: "vs121p-region.json", want: []string{
			`milesight absolute region="" count=10 t=2022-12-20T10:15:52Z`,
			`milesight absolute region="1" count=5 t=2022-12-20T10:15:52Z`,
			`milesight absolute region="2" count=5 t=2022-12-20T10:15:52Z`,
		}},
		{format: "milesight", file: "vs121p-region-capital.json", want: []string{
			`milesight absolute region="" count=4`,
			`milesight absolute region="1" count=3`,
			`milesight absolute region="2" count=1`,
		}},
		// Xovis.
		{format: "xovis", file: "live-data-increment.json", want: []string{
			`xovis increment 1008:1/0 t=2024-05-30T12:11:32.25Z seq=4711 key="4711/1008001=153"`,
			`xovis increment 1008:0/1 t=2024-05-30T12:11:32.97Z seq=4711 key="4711/1008002=140"`,
		}},
		{format: "xovis", file: "live-data-resent.json", want: []string{
			`xovis increment 1008:1/0 t=2024-05-30T12:11:32.25Z seq=4711 key="4711/1008001=153"`,
			`xovis increment 1008:0/1 t=2024-05-30T12:11:32.97Z seq=4711 key="4711/1008002=140"`,
		}},
		{format: "xovis", file: "live-data-reset.json", want: []string{
			`xovis increment 1008:0/0 t=2024-05-30T12:11:33.1Z seq=4712 key="4712/1008001/reset/908201" reset`,
		}},
		{format: "xovis", file: "logics.json", want: []string{
			"xovis since_reset 1008:153/140 t=2024-05-30T12:11:32.25Z",
			`xovis absolute region="1010" count=13 t=2024-05-30T12:11:32.25Z`,
		}},
		{format: "xovis", file: "count-data.json", want: []string{
			`xovis interval 0:7/4 t=2019-03-20T09:15:03Z w=2019-03-20T09:00:00Z..2019-03-20T09:05:00Z key="0 2019-03-20T09:00:00Z/2019-03-20T09:05:00Z"`,
			`xovis interval 0:2/6 t=2019-03-20T09:15:03Z w=2019-03-20T09:05:00Z..2019-03-20T09:10:00Z key="0 2019-03-20T09:05:00Z/2019-03-20T09:10:00Z"`,
		}},
		// Axis.
		{format: "axis", file: "oa-crossline.json", want: []string{
			"axis since_reset Device1Scenario1:0/0 t=2022-12-08T16:52:26.712Z epoch=2022-12-06T22:01:25Z",
		}},
		{format: "axis", file: "oa-crossline-passagecounts.json", want: []string{
			"axis since_reset Device1Scenario2:3/0 t=2024-05-30T12:11:32.25Z",
		}},
		{format: "axis", file: "oa-crossline-named.json", want: []string{
			"axis since_reset Device1Scenario2:3/0 t=2024-05-30T12:11:32.25Z",
		}},
		{format: "axis", file: "oa-occupancy-numberofoccupants.json", want: []string{
			`axis absolute region="Device1Scenario1" count=7 t=2024-05-30T12:11:32.25Z`,
		}},
		{format: "axis", file: "oa-occupancy-named.json", want: []string{
			`axis absolute region="Device1Scenario3" count=4 t=2024-05-30T12:11:32.25Z`,
		}},
		{format: "axis", file: "oa-motion.json", want: nil},
		{format: "axis", file: "retail-data.json", want: []string{
			`axis interval 1:1/2 t=2025-05-22T08:15:38Z w=2025-05-22T08:14:00Z..2025-05-22T08:15:00Z key="2025-05-22T08:14:00Z/2025-05-22T08:15:00Z"`,
		}},
		{format: "axis", file: "live-sum.json", want: []string{"axis since_reset 1:12/318"}},
		// Hikvision.
		{format: "hikvision", file: "timerange.xml", contentType: "application/xml", want: []string{
			`hikvision interval 1:3/1 t=2020-04-19T17:35:00Z w=2020-04-19T17:34:00Z..2020-04-19T17:35:00Z seq=1560 key="1 2020-04-19T17:34:00Z/2020-04-19T17:35:00Z"`,
		}},
		{format: "hikvision", file: "realtime.xml", want: []string{
			"hikvision since_reset 1:2:412/398 t=2020-04-19T17:35:07Z seq=1561",
		}},
		{format: "hikvision", file: "heartbeat.xml", want: nil},
		{format: "hikvision", file: "timerange.multipart", contentType: multipartType, want: []string{
			`hikvision interval 1:3/1 t=2020-04-19T17:35:00Z w=2020-04-19T17:34:00Z..2020-04-19T17:35:00Z seq=1560 key="1 2020-04-19T17:34:00Z/2020-04-19T17:35:00Z"`,
		}},
		{format: "hikvision", file: "realtime-image-first.multipart", contentType: multipartType, want: []string{
			"hikvision since_reset 1:2:412/398 t=2020-04-19T17:35:07Z seq=1561",
		}},
		// A LoRaWAN network server's envelope around Milesight.
		{format: "chirpstack", decoded: "milesight", file: "v4-milesight-vs133.json", topic: "application/17c82e96/device/24e124795d123456/event/up", want: []string{
			"chirpstack+milesight since_reset 1:72/200 t=2024-05-30T12:11:32.541Z seq=57",
			`chirpstack+milesight interval 1:5/7 t=2024-05-30T12:11:32.541Z seq=57 key="fcnt 57"`,
		}},
		{format: "chirpstack", decoded: "milesight", file: "v3-milesight-vs133.json", want: []string{
			"chirpstack+milesight since_reset 1:75/201 t=2024-05-30T12:11:32.541Z seq=58",
		}},
		{format: "chirpstack", decoded: "milesight", file: "tts-milesight-vs121.json", want: []string{
			`chirpstack+milesight absolute region="" count=9 t=2024-05-30T12:11:32.95Z seq=912`,
			`chirpstack+milesight absolute region="1" count=9 t=2024-05-30T12:11:32.95Z seq=912`,
		}},
		{format: "chirpstack", decoded: "milesight", file: "v4-join.json", topic: "application/17c82e96/device/24e124795d123456/event/join", want: nil},
		{format: "chirpstack", decoded: "milesight", file: "v4-join.json", topic: "crowdwatch/store/counter/24e124795d123456", want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.format+"/"+tc.file, func(t *testing.T) {
			vendor := tc.format
			d := mustDecoder(t, tc.format, tc.decoded)
			rs, err := d.Decode(Input{Device: "dev-1", Transport: "http", Topic: tc.topic, ContentType: tc.contentType,
				Body: fixture(t, vendor, tc.file), ReceivedAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)})
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			var got []string
			for _, r := range rs {
				if r.Device != "dev-1" {
					t.Errorf("reading for device %q, want dev-1", r.Device)
				}
				got = append(got, describe(r))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("readings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// Payloads that break a format are refused with the reason, whatever else they carry.
func TestRefusals(t *testing.T) {
	ms := `{"device_info":{"device_sn":"x"},"time_info":{"time":"2024-05-30T20:11:32+08:00"},"line_trigger_data":[%s]}`
	hk := func(inner string) string {
		return `<?xml version="1.0"?><EventNotificationAlert version="2.0"><channelID>1</channelID><activePostCount>3</activePostCount>` +
			`<eventType>PeopleCounting</eventType><peopleCounting><statisticalMethods>realTime</statisticalMethods>` + inner + `</peopleCounting></EventNotificationAlert>`
	}
	oa := func(data string) string {
		return `{"topic":"axis:CameraApplicationPlatform/ObjectAnalytics/Device1Scenario1","timestamp":1717071092250,"message":{"data":{"scenario":"Crossline",` + data + `}}}`
	}
	xv := func(ev string) string {
		return `{"live_data":{"package_info":{"id":9},"frames":[{"framenumber":1,"time":1717071092250,"events":[` + ev + `]}]}}`
	}
	cases := []struct {
		name, format, decoded, body, contentType, reason string
	}{
		{"milesight duplicate key", "milesight", "", `{"line_1_total_in":72,"line_1_total_in":9000,"line_1_total_out":200}`, "", "duplicate_key"},
		{"milesight nested duplicate key", "milesight", "", fmt.Sprintf(ms, `{"line":1,"total":{"in":1,"in":900,"out":2}}`), "", "duplicate_key"},
		{"milesight quoted number", "milesight", "", `{"line_1_total_in":"72","line_1_total_out":200}`, "", "wrong_type"},
		{"milesight fraction", "milesight", "", `{"line_1_total_in":7.5,"line_1_total_out":200}`, "", "wrong_type"},
		{"milesight negative", "milesight", "", `{"line_1_total_in":-1,"line_1_total_out":200}`, "", "out_of_range"},
		{"milesight beyond 32 bits", "milesight", "", `{"line_1_total_in":4294967296,"line_1_total_out":0}`, "", "out_of_range"},
		{"milesight beyond 64 bits", "milesight", "", `{"line_1_total_in":18446744073709551616,"line_1_total_out":0}`, "", "out_of_range"},
		{"milesight half a line", "milesight", "", `{"line_1_total_in":72}`, "", "missing_field"},
		{"milesight absurd period", "milesight", "", `{"line_1_period_in":100001,"line_1_period_out":0}`, "", "out_of_range"},
		{"milesight absurd region", "milesight", "", `{"region_1_count":1000000}`, "", "out_of_range"},
		{"milesight line twice", "milesight", "", fmt.Sprintf(ms, `{"line":1,"total":{"in":1,"out":2}},{"line":1,"total":{"in":5,"out":2}}`), "", "duplicate_key"},
		{"milesight periodic without window", "milesight", "", `{"line_periodic_data":[{"line":1,"total":{"in":1,"out":2}}]}`, "", "missing_field"},
		{"milesight window backwards", "milesight", "", `{"line_periodic_data":[{"line":1,"total":{"in":1,"out":2}}],"time_info":{"start_time":"2024-05-30T20:05:00+08:00","end_time":"2024-05-30T20:00:00+08:00"}}`, "", "out_of_range"},
		{"milesight VS121-P regions unpaired", "milesight", "", `{"event":"Region People Counting","current_total":3,"numbering_regions":[1,2],"current_counted":[3]}`, "", "malformed"},
		{"milesight another vendor's payload", "milesight", "", `{"live_data":{"package_info":{"id":1},"frames":[]}}`, "", "unsupported"},
		{"milesight not JSON", "milesight", "", `{"line_1_total_in":`, "", "malformed"},
		{"milesight not UTF-8", "milesight", "", "{\"line_1_total_in\":1,\"x\":\"\xff\"}", "", "malformed"},
		{"xovis duplicate key", "xovis", "", xv(`{"category":"COUNT","type":"COUNT_INCREMENT","attributes":{"counter_id":1008001,"counter_value":1,"counter_value":2}}`), "", "duplicate_key"},
		{"xovis no package id", "xovis", "", `{"live_data":{"package_info":{},"frames":[]}}`, "", "missing_field"},
		{"xovis quoted counter", "xovis", "", xv(`{"category":"COUNT","type":"COUNT_INCREMENT","attributes":{"counter_id":"1008001","counter_value":1}}`), "", "wrong_type"},
		{"xovis absurd counter value", "xovis", "", xv(`{"category":"COUNT","type":"COUNT_INCREMENT","attributes":{"counter_id":1008001,"counter_value":4294967296}}`), "", "out_of_range"},
		{"xovis time before 2000", "xovis", "", `{"live_data":{"package_info":{"id":9},"frames":[{"framenumber":1,"time":5,"events":[]}]}}`, "", "out_of_range"},
		{"xovis logic twice", "xovis", "", `{"time":"2024-05-30T12:11:32Z","logics":[{"id":1,"counts":[{"name":"fw","value":1},{"name":"bw","value":1}]},{"id":1,"counts":[]}]}`, "", "duplicate_key"},
		{"xovis not a push", "xovis", "", `{"hello":1}`, "", "unsupported"},
		{"axis number where a string is sent", "axis", "", oa(`"total":20`), "", "wrong_type"},
		{"axis signed string", "axis", "", oa(`"total":"+20"`), "", "wrong_type"},
		{"axis spaced string", "axis", "", oa(`"total":" 20"`), "", "wrong_type"},
		{"axis absurd total", "axis", "", oa(`"total":"99999999999"`), "", "out_of_range"},
		{"axis duplicate key", "axis", "", oa(`"total":"2","total":"900"`), "", "duplicate_key"},
		{"axis unknown scenario type", "axis", "", `{"topic":"axis:x/Device1Scenario1","message":{"data":{"scenario":"Loitering","total":"1"}}}`, "", "unsupported"},
		{"axis retail two in items", "axis", "", `{"apiName":"Axis Retail Data","data":{"measurements":[{"kind":"people-counts","utcFrom":"2025-05-22T08:14:00Z","utcTo":"2025-05-22T08:15:00Z","items":[{"direction":"in","count":1},{"direction":"in","count":5},{"direction":"out","count":0}]}]}}`, "", "duplicate_key"},
		{"hikvision doctype", "hikvision", "", `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><EventNotificationAlert><eventType>PeopleCounting</eventType></EventNotificationAlert>`, "", "unsupported"},
		{"hikvision undeclared entity", "hikvision", "", hk(`<enter>&a;</enter><exit>1</exit>`), "", "malformed"},
		{"hikvision enter twice", "hikvision", "", hk(`<enter>1</enter><enter>900</enter><exit>1</exit>`), "", "duplicate_key"},
		{"hikvision negative", "hikvision", "", hk(`<enter>-1</enter><exit>1</exit>`), "", "wrong_type"},
		{"hikvision absurd", "hikvision", "", hk(`<enter>99999999999</enter><exit>1</exit>`), "", "out_of_range"},
		{"hikvision no exit", "hikvision", "", hk(`<enter>1</enter>`), "", "missing_field"},
		{"hikvision other root", "hikvision", "", `<Other/>`, "", "unsupported"},
		{"hikvision multipart without XML", "hikvision", "", "--MIME_boundary\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8\xff\xd9\r\n--MIME_boundary--\r\n", multipartType, "missing_field"},
		{"hikvision oversized", "hikvision", "", hk(strings.Repeat(" ", maxXML)), "", "oversized"},
		{"chirpstack no frame counter", "chirpstack", "milesight", `{"deviceInfo":{"devEui":"24e1"},"object":{"line_1_total_in":1,"line_1_total_out":1}}`, "", "missing_field"},
		{"chirpstack no decoded object", "chirpstack", "milesight", `{"deviceInfo":{"devEui":"24e1"},"fCnt":3,"data":"AQI="}`, "", "missing_field"},
		{"chirpstack inner refusal", "chirpstack", "milesight", `{"deviceInfo":{"devEui":"24e1"},"fCnt":3,"object":{"line_1_total_in":"1","line_1_total_out":1}}`, "", "wrong_type"},
		{"chirpstack duplicate key inside", "chirpstack", "milesight", `{"deviceInfo":{"devEui":"24e1"},"fCnt":3,"object":{"line_1_total_in":1,"line_1_total_in":1,"line_1_total_out":1}}`, "", "duplicate_key"},
		{"chirpstack without inner format", "chirpstack", "", `{}`, "", "unsupported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var d Decoder
			if tc.format == "chirpstack" && tc.decoded == "" {
				d, _ = Lookup("chirpstack")
			} else {
				d = mustDecoder(t, tc.format, tc.decoded)
			}
			rs, err := d.Decode(Input{Device: "dev-1", ContentType: tc.contentType, Body: []byte(tc.body)})
			var rej *Rejection
			if !errors.As(err, &rej) {
				t.Fatalf("decoded %d readings (%v), want a %s refusal", len(rs), err, tc.reason)
			}
			if rej.Reason != tc.reason {
				t.Fatalf("refused as %s (%v), want %s", rej.Reason, rej, tc.reason)
			}
			if rs != nil {
				t.Fatalf("a refusal came with readings %v", rs)
			}
			if !strings.Contains(rej.Error(), `device "dev-1"`) {
				t.Errorf("refusal %q does not name the device", rej.Error())
			}
		})
	}
}

func TestForDevice(t *testing.T) {
	for _, tc := range []struct {
		format, decoded string
		ok              bool
	}{
		{"milesight", "", true}, {"xovis", "", true}, {"axis", "", true}, {"hikvision", "", true},
		{"chirpstack", "milesight", true}, {"chirpstack", "", false}, {"chirpstack", "chirpstack", false},
		{"milesight", "milesight", false}, {"vivotek", "", false},
	} {
		d, err := ForDevice(tc.format, tc.decoded)
		if (err == nil) != tc.ok {
			t.Errorf("ForDevice(%q, %q) = %v, %v", tc.format, tc.decoded, d, err)
		}
	}
	if got := strings.Join(Names(), ","); got != "axis,chirpstack,hikvision,milesight,xovis" {
		t.Errorf("Names() = %s", got)
	}
	for _, n := range Names() {
		if Expects(n) == "" {
			t.Errorf("format %s has no description for check-config", n)
		}
	}
	if Expects("vivotek") != "" {
		t.Error("an unknown format has a description")
	}
}
