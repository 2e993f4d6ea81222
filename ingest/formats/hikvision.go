package formats

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"strconv"
	"strings"
	"time"
)

// Hikvision reads the ISAPI EventNotificationAlert of eventType PeopleCounting that cameras
// push over HTTP, as a bare XML body or as the XML part of a multipart body (beside a JPEG):
//   - statisticalMethods timeRange: enter and exit are the crossings of TimeRange startTime
//     to endTime, an Interval keyed by line and window;
//   - statisticalMethods realTime: enter and exit are the counts since the camera's reset
//     (SinceReset), timed by RealTime/time.
//
// The line is named by channelID ("1"), or "<channelID>:<regionsID>" for a region other than
// 1. activePostCount is the message's sequence number. Other event types (video loss,
// heartbeats) carry nothing to count. A DOCTYPE, entity declarations or any directive are
// refused: a pushed body is outside input and XML's entities are its classic attack.
// The format counts by realTime totals unless the store file says `counting: interval`.
var Hikvision Decoder = hikvision{}

func init() { Register(Hikvision) }

type hikvision struct{}

func (hikvision) Name() string        { return "hikvision" }
func (hikvision) Counting() Semantics { return SinceReset }
func (h hikvision) Decode(in Input) ([]Reading, error) {
	rs, rej := h.decode(in)
	if rej != nil {
		return nil, prefixed("hikvision", in.Device, rej)
	}
	for i := range rs {
		rs[i].Device, rs[i].Format = in.Device, "hikvision"
	}
	return rs, nil
}

const (
	// maxXML bounds the XML of one alert: real ones are about 1 KiB.
	maxXML = 64 << 10
	// maxParts bounds the parts of a multipart body read to find the XML.
	maxParts = 8
)

type hkTimeRange struct {
	StartTime []string `xml:"startTime"`
	EndTime   []string `xml:"endTime"`
}

type hkPeopleCounting struct {
	StatisticalMethods []string      `xml:"statisticalMethods"`
	TimeRange          []hkTimeRange `xml:"TimeRange"`
	RealTime           []struct {
		Time []string `xml:"time"`
	} `xml:"RealTime"`
	Enter     []string `xml:"enter"`
	Exit      []string `xml:"exit"`
	RegionsID []string `xml:"regionsID"`
}

type hkAlert struct {
	XMLName         xml.Name
	ChannelID       []string           `xml:"channelID"`
	DateTime        []string           `xml:"dateTime"`
	ActivePostCount []string           `xml:"activePostCount"`
	EventType       []string           `xml:"eventType"`
	PeopleCounting  []hkPeopleCounting `xml:"peopleCounting"`
}

func (h hikvision) decode(in Input) ([]Reading, *Rejection) {
	doc, rej := hkDocument(in.ContentType, in.Body)
	if rej != nil {
		return nil, rej
	}
	if rej := hkSafe(doc); rej != nil {
		return nil, rej
	}
	var a hkAlert
	if err := xml.Unmarshal(doc, &a); err != nil {
		return nil, reject("malformed", "XML: %v", err)
	}
	if a.XMLName.Local != "EventNotificationAlert" {
		return nil, reject("unsupported", "root element <%s> is not EventNotificationAlert", truncate([]byte(a.XMLName.Local)))
	}
	eventType, _, rej := one(a.EventType, "eventType")
	if rej != nil {
		return nil, rej
	}
	if eventType != "PeopleCounting" {
		return nil, nil
	}
	pc, rej := oneOf(a.PeopleCounting, "peopleCounting")
	if rej != nil {
		return nil, rej
	}
	channel, ok, rej := one(a.ChannelID, "channelID")
	if rej != nil {
		return nil, rej
	}
	if !ok {
		channel = "1"
	}
	if _, err := strconv.ParseUint(channel, 10, 16); err != nil {
		return nil, reject("wrong_type", "channelID %q is not a channel number", truncate([]byte(channel)))
	}
	line := channel
	region, ok, rej := one(pc.RegionsID, "regionsID")
	if rej != nil {
		return nil, rej
	}
	if ok && region != "1" {
		if _, err := strconv.ParseUint(region, 10, 16); err != nil {
			return nil, reject("wrong_type", "regionsID %q is not a region number", truncate([]byte(region)))
		}
		line = channel + ":" + region
	}
	r := Reading{}
	if s, ok, rej := one(a.ActivePostCount, "activePostCount"); rej != nil {
		return nil, rej
	} else if ok {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || strings.TrimLeft(s, "0123456789") != "" {
			return nil, reject("wrong_type", "activePostCount %q is not a whole number", truncate([]byte(s)))
		}
		r.Seq, r.HasSeq = n, true
	}
	if s, ok, rej := one(a.DateTime, "dateTime"); rej != nil {
		return nil, rej
	} else if ok {
		t, rej := parseRFC3339(s)
		if rej != nil {
			return nil, &Rejection{Reason: rej.Reason, Err: errors.New("dateTime " + rej.Err.Error())}
		}
		r.DeviceTime = t
	}
	method, _, rej := one(pc.StatisticalMethods, "statisticalMethods")
	if rej != nil {
		return nil, rej
	}
	enter, rej := hkCount(pc.Enter, "enter")
	if rej != nil {
		return nil, rej
	}
	exit, rej := hkCount(pc.Exit, "exit")
	if rej != nil {
		return nil, rej
	}
	r.Lines = []Line{{ID: line, In: enter, Out: exit}}
	switch method {
	case "timeRange":
		tr, rej := oneOf(pc.TimeRange, "TimeRange")
		if rej != nil {
			return nil, rej
		}
		from, rej := hkTime(tr.StartTime, "TimeRange/startTime")
		if rej != nil {
			return nil, rej
		}
		to, rej := hkTime(tr.EndTime, "TimeRange/endTime")
		if rej != nil {
			return nil, rej
		}
		key, rej := window(from, to)
		if rej != nil {
			return nil, rej
		}
		if enter > MaxDelta || exit > MaxDelta {
			return nil, reject("out_of_range", "%d entries and %d exits in one window is more than %d", enter, exit, MaxDelta)
		}
		r.Semantics, r.WindowStart, r.WindowEnd, r.Key = Interval, from, to, line+" "+key
	case "realTime":
		r.Semantics = SinceReset
		if len(pc.RealTime) > 0 {
			rt, rej := oneOf(pc.RealTime, "RealTime")
			if rej != nil {
				return nil, rej
			}
			if len(rt.Time) > 0 {
				t, rej := hkTime(rt.Time, "RealTime/time")
				if rej != nil {
					return nil, rej
				}
				r.DeviceTime = t
			}
		}
	default:
		return nil, reject("unsupported", "statisticalMethods %q is neither timeRange nor realTime", truncate([]byte(method)))
	}
	return []Reading{r}, nil
}

// hkDocument finds the XML: the body itself, or the XML part of a multipart body.
func hkDocument(contentType string, body []byte) ([]byte, *Rejection) {
	media, params, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.HasPrefix(media, "multipart/") {
		if len(body) > maxXML {
			return nil, reject("oversized", "XML of %d bytes is over the %d-byte limit", len(body), maxXML)
		}
		return body, nil
	}
	boundary := params["boundary"]
	if boundary == "" {
		return nil, reject("malformed", "multipart body without a boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(body), boundary)
	for range maxParts {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, reject("malformed", "multipart body: %v", err)
		}
		pt, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if strings.HasPrefix(pt, "image/") {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p, maxXML+1))
		if err != nil {
			return nil, reject("malformed", "multipart part: %v", err)
		}
		if len(b) > maxXML {
			return nil, reject("oversized", "XML part is over the %d-byte limit", maxXML)
		}
		if pt == "application/xml" || pt == "text/xml" || bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")) {
			return b, nil
		}
	}
	return nil, reject("missing_field", "multipart body has no XML part among its first %d parts", maxParts)
}

// hkSafe walks the document once, refusing what Hikvision never sends and XML attacks use.
func hkSafe(doc []byte) *Rejection {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	depth := 0
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return reject("malformed", "XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return reject("unsupported", "XML with a DOCTYPE or other declaration is refused")
		case xml.ProcInst:
			if t.Target != "xml" {
				return reject("unsupported", "XML processing instruction <?%s?> is refused", truncate([]byte(t.Target)))
			}
		case xml.StartElement:
			if depth++; depth > 16 {
				return reject("malformed", "XML nested deeper than 16 elements")
			}
		case xml.EndElement:
			depth--
		}
	}
}

// one reads an element that may appear at most once.
func one(v []string, name string) (string, bool, *Rejection) {
	switch len(v) {
	case 0:
		return "", false, nil
	case 1:
		return strings.TrimSpace(v[0]), true, nil
	}
	return "", false, reject("duplicate_key", "<%s> appears more than once: ambiguous, so nothing is counted", name)
}

func oneOf[T any](v []T, name string) (T, *Rejection) {
	var zero T
	switch len(v) {
	case 0:
		return zero, reject("missing_field", "<%s> is required", name)
	case 1:
		return v[0], nil
	}
	return zero, reject("duplicate_key", "<%s> appears more than once: ambiguous, so nothing is counted", name)
}

func hkCount(v []string, name string) (uint64, *Rejection) {
	s, ok, rej := one(v, name)
	if rej != nil {
		return 0, rej
	}
	if !ok {
		return 0, reject("missing_field", "<%s> is required", name)
	}
	if s == "" || len(s) > 20 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, reject("wrong_type", "<%s> %q is not a whole number", name, truncate([]byte(s)))
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > MaxTotal {
		return 0, reject("out_of_range", "<%s> %s is more than %d", name, truncate([]byte(s)), uint64(MaxTotal))
	}
	return n, nil
}

func hkTime(v []string, name string) (time.Time, *Rejection) {
	s, ok, rej := one(v, name)
	if rej != nil {
		return time.Time{}, rej
	}
	if !ok {
		return time.Time{}, reject("missing_field", "<%s> is required", name)
	}
	t, rej := parseRFC3339(s)
	if rej != nil {
		return time.Time{}, &Rejection{Reason: rej.Reason, Err: errors.New(name + " " + rej.Err.Error())}
	}
	return t, nil
}
