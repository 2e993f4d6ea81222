package encode

import (
	"bytes"
	"fmt"
	"mime/multipart"
	"net/textproto"
	"strconv"
	"time"
)

// hikvision speaks an ISAPI EventNotificationAlert PeopleCounting push over HTTP, in a
// multipart body with a snapshot JPEG as cameras send it: realTime totals since the reset
// per channel, or for an interval device timeRange windows.
type hikvision struct {
	d           Device
	posts       uint64
	last        map[string][2]uint64
	windowStart time.Time
}

const hkBoundary = "MIME_boundary"

// jpeg is the smallest JPEG a snapshot part needs to look like one.
var jpeg = []byte{0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9}

func newHikvision(d Device) (*hikvision, error) {
	if d.Sensor {
		return nil, fmt.Errorf("device %s: Hikvision PeopleCounting has no area counts", d.ID)
	}
	for _, l := range d.Lines {
		if _, err := strconv.ParseUint(l, 10, 16); err != nil {
			return nil, fmt.Errorf("device %s: a Hikvision line is a channel number, not %q", d.ID, l)
		}
	}
	return &hikvision{d: d, last: map[string][2]uint64{}, windowStart: d.Start}, nil
}

func (h *hikvision) Transport() string { return HTTP }
func (h *hikvision) Interval() bool    { return h.d.Interval }
func (h *hikvision) Reset(time.Time)   { h.last = map[string][2]uint64{} }
func (h *hikvision) ResetDetectable(t map[string][2]uint64) bool {
	return h.d.Interval || detectable(t)
}

func (h *hikvision) alert(channel string, t time.Time, stats string) Message {
	h.posts++
	xml := fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<EventNotificationAlert version="2.0" xmlns="http://www.hikvision.com/ver20/XMLSchema">
<ipAddress>192.0.2.10</ipAddress><portNo>80</portNo><protocol>HTTP</protocol><macAddress>44:19:b6:00:00:01</macAddress>
<channelID>%s</channelID><dateTime>%s</dateTime><activePostCount>%d</activePostCount><eventType>PeopleCounting</eventType>
<eventState>active</eventState><eventDescription>peopleCounting alarm</eventDescription>
<peopleCounting>%s<regionsID>1</regionsID></peopleCounting>
</EventNotificationAlert>
`, channel, t.Format(time.RFC3339), h.posts, stats)
	return h.multipart([]byte(xml))
}

func (h *hikvision) multipart(xml []byte) Message {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	_ = w.SetBoundary(hkBoundary)
	part, _ := w.CreatePart(textproto.MIMEHeader{
		"Content-Disposition": {`form-data; name="PeopleCounting"; filename="PeopleCounting.xml"`},
		"Content-Type":        {"application/xml"}})
	part.Write(xml)
	img, _ := w.CreatePart(textproto.MIMEHeader{
		"Content-Disposition": {`form-data; name="PeopleCountingImage"; filename="PeopleCountingImage.jpg"`},
		"Content-Type":        {"image/jpeg"}})
	img.Write(jpeg)
	w.Close()
	return Message{Body: buf.Bytes(), ContentType: "multipart/form-data; boundary=" + hkBoundary}
}

func (h *hikvision) Report(now time.Time, totals map[string][2]uint64, _ int64) []Message {
	t := now.Add(h.d.ClockSkew).UTC()
	var out []Message
	if !h.d.Interval {
		for _, l := range h.d.Lines {
			tot := totals[l]
			out = append(out, h.alert(l, t, fmt.Sprintf(`<statisticalMethods>realTime</statisticalMethods><RealTime><time>%s</time></RealTime><enter>%d</enter><exit>%d</exit><pass>0</pass>`,
				t.Format(time.RFC3339), tot[0], tot[1])))
		}
		return out
	}
	if !now.After(h.windowStart) {
		return nil
	}
	from := h.windowStart.Add(h.d.ClockSkew).UTC()
	h.windowStart = now
	for _, l := range h.d.Lines {
		dl := delta(totals[l], h.last[l])
		h.last[l] = totals[l]
		out = append(out, h.alert(l, t, fmt.Sprintf(`<statisticalMethods>timeRange</statisticalMethods><TimeRange><startTime>%s</startTime><endTime>%s</endTime></TimeRange><enter>%d</enter><exit>%d</exit><pass>0</pass>`,
			from.Format(time.RFC3339), t.Format(time.RFC3339), dl[0], dl[1])))
	}
	return out
}

func (h *hikvision) Malformed() Message {
	return h.multipart([]byte(`<?xml version="1.0"?><EventNotificationAlert><eventType>PeopleCounting</eventType><peopleCounting><enter>1`))
}
