package formats

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// Milesight reads the JSON of Milesight people counters, whichever way it comes:
//   - a LoRaWAN model's decoded object (the official decoders' names: line_N_total_in/out,
//     line_N_period_in/out, region_N_count; the VS121's people_total_in/out, people_in/out,
//     people_count_all, region_N), bare or inside a network server's envelope (Envelope);
//   - the PoE / Wi-Fi models' JSON over HTTP or MQTT (VS125 / VS13x): line_trigger_data and
//     line_total_data (totals since the reset schedule), line_periodic_data (the window
//     time_info.start_time to end_time), region_count_data (current_total);
//   - the VS121-P "Region People Counting" event (current_total, current_counted per region).
//
// Lines are named as the device numbers them ("1".."4"); regions likewise. The trigger
// message's total.{in,out} are read as totals since the reset (its published example reads
// 27 in and 27 out in one trigger), so trigger and total messages count alike and a trigger
// sent twice changes nothing; periodic messages are interval readings keyed by their window.
// The format counts by totals (SinceReset) unless the store file says `counting: interval`.
var Milesight Decoder = milesight{}

func init() { Register(Milesight) }

type milesight struct{}

func (milesight) Name() string        { return "milesight" }
func (milesight) Counting() Semantics { return SinceReset }
func (m milesight) Decode(in Input) ([]Reading, error) {
	rs, rej := m.decode(in.Body)
	if rej != nil {
		return nil, prefixed("milesight", in.Device, rej)
	}
	for i := range rs {
		rs[i].Device, rs[i].Format = in.Device, "milesight"
	}
	return rs, nil
}

type msTotal struct {
	In           count `json:"in"`
	Out          count `json:"out"`
	InCounted    count `json:"in_counted"`
	OutCounted   count `json:"out_counted"`
	CurrentTotal count `json:"current_total"`
}

type msLine struct {
	Line   ident   `json:"line"`
	Region ident   `json:"region"`
	Total  msTotal `json:"total"`
}

type msTimeInfo struct {
	Time      text `json:"time"`
	StartTime text `json:"start_time"`
	EndTime   text `json:"end_time"`
	TimeZone  text `json:"time_zone"`
}

type msMessage struct {
	// PoE / Wi-Fi models (VS125, VS13x).
	Trigger  []msLine   `json:"line_trigger_data"`
	Periodic []msLine   `json:"line_periodic_data"`
	Totals   []msLine   `json:"line_total_data"`
	Regions  []msLine   `json:"region_count_data"`
	TimeInfo msTimeInfo `json:"time_info"`
	// DeviceInfo marks a PoE / Wi-Fi model's message (a heartbeat carries only this).
	DeviceInfo jsontext.Value `json:"device_info"`
	// VS121-P's "Region People Counting" event; its document spells max_counted both ways.
	Event          text    `json:"event"`
	CurrentTotal   count   `json:"current_total"`
	MaxCounted     count   `json:"max_counted"`
	MaxCountedCap  count   `json:"Max_counted"`
	NumberingRegs  []ident `json:"numbering_regions"`
	CurrentCounted []count `json:"current_counted"`
	// LoRaWAN decoded objects: names with the line or region number in them.
	Timestamp count                     `json:"timestamp"`
	Rest      map[string]jsontext.Value `json:",unknown"`
}

var (
	msLineName   = regexp.MustCompile(`^line_([1-9])_(total|period)_(in|out)$`)
	msRegionName = regexp.MustCompile(`^region_([1-9][0-9]?)(_count)?$`)
)

func (m milesight) decode(body []byte) ([]Reading, *Rejection) {
	var w msMessage
	if rej := decodeJSON(body, &w); rej != nil {
		return nil, rej
	}
	deviceTime, rej := msClock(w.TimeInfo.Time, w.TimeInfo.TimeZone, "time_info.time")
	if rej != nil {
		return nil, rej
	}
	var out []Reading
	add := func(r Reading) {
		if len(r.Lines) > 0 || r.Semantics == Absolute {
			slices.SortFunc(r.Lines, func(a, b Line) int { return strings.Compare(a.ID, b.ID) })
			out = append(out, r)
		}
	}
	// PoE / Wi-Fi models.
	if lines, rej := msLines("line_trigger_data", w.Trigger, false); rej != nil {
		return nil, rej
	} else {
		add(Reading{Semantics: SinceReset, Lines: lines, DeviceTime: deviceTime})
	}
	if lines, rej := msLines("line_total_data", w.Totals, true); rej != nil {
		return nil, rej
	} else {
		add(Reading{Semantics: SinceReset, Lines: lines, DeviceTime: deviceTime})
	}
	if len(w.Periodic) > 0 {
		lines, rej := msLines("line_periodic_data", w.Periodic, false)
		if rej != nil {
			return nil, rej
		}
		for _, l := range lines {
			if l.In > MaxDelta || l.Out > MaxDelta {
				return nil, reject("out_of_range", "line_periodic_data line %s: %d in, %d out is more than %d in one window", l.ID, l.In, l.Out, MaxDelta)
			}
		}
		r := Reading{Semantics: Interval, Lines: lines, DeviceTime: deviceTime}
		from, rej := msClock(w.TimeInfo.StartTime, w.TimeInfo.TimeZone, "time_info.start_time")
		if rej != nil {
			return nil, rej
		}
		to, rej := msClock(w.TimeInfo.EndTime, w.TimeInfo.TimeZone, "time_info.end_time")
		if rej != nil {
			return nil, rej
		}
		switch {
		case !from.IsZero() && !to.IsZero():
			key, rej := window(from, to)
			if rej != nil {
				return nil, rej
			}
			r.WindowStart, r.WindowEnd, r.Key = from, to, "periodic "+key
			if r.DeviceTime.IsZero() {
				r.DeviceTime = to // the device made the report when its window closed
			}
		case w.TimeInfo.StartTime.set && w.TimeInfo.EndTime.set:
			// A local time without a zone: the window is still its own key.
			r.Key = "periodic " + w.TimeInfo.StartTime.s + "/" + w.TimeInfo.EndTime.s
		default:
			return nil, reject("missing_field", "line_periodic_data needs time_info.start_time and end_time")
		}
		add(r)
	}
	if len(w.Regions) > maxLines {
		return nil, reject("out_of_range", "region_count_data has more than %d regions", maxLines)
	}
	for i, reg := range w.Regions {
		if !reg.Region.set {
			return nil, reject("missing_field", "region_count_data[%d] has no region", i)
		}
		n, rej := reg.Total.CurrentTotal.get("region_count_data current_total", MaxArea)
		if rej != nil {
			return nil, rej
		}
		if !reg.Total.CurrentTotal.set {
			return nil, reject("missing_field", "region_count_data[%d] has no total.current_total", i)
		}
		add(Reading{Semantics: Absolute, Region: reg.Region.s, Count: int64(n), DeviceTime: deviceTime})
	}
	// VS121-P.
	if w.Event.set && w.Event.s == "Region People Counting" {
		for _, c := range []count{w.MaxCounted, w.MaxCountedCap} {
			if _, rej := c.get("max_counted", MaxArea); rej != nil {
				return nil, rej
			}
		}
		t, rej := msClock(w.TimeInfo.StartTime, w.TimeInfo.TimeZone, "time_info.start_time")
		if rej != nil {
			return nil, rej
		}
		if len(w.NumberingRegs) != len(w.CurrentCounted) || len(w.NumberingRegs) > maxLines {
			return nil, reject("malformed", "numbering_regions (%d) and current_counted (%d) must pair up, at most %d", len(w.NumberingRegs), len(w.CurrentCounted), maxLines)
		}
		if w.CurrentTotal.set {
			n, rej := w.CurrentTotal.get("current_total", MaxArea)
			if rej != nil {
				return nil, rej
			}
			add(Reading{Semantics: Absolute, Count: int64(n), DeviceTime: t})
		}
		seen := map[string]bool{}
		for i, id := range w.NumberingRegs {
			if !id.set || seen[id.s] {
				return nil, reject("malformed", "numbering_regions[%d] is missing or repeated", i)
			}
			seen[id.s] = true
			n, rej := w.CurrentCounted[i].get("current_counted", MaxArea)
			if rej != nil {
				return nil, rej
			}
			add(Reading{Semantics: Absolute, Region: id.s, Count: int64(n), DeviceTime: t})
		}
	}
	lora, rej := msLoRa(w.Rest, w.Timestamp)
	if rej != nil {
		return nil, rej
	}
	out = append(out, lora...)
	if len(out) == 0 && w.DeviceInfo == nil && !w.Event.set && len(w.Rest) > 0 && !msLoRaNames(w.Rest) {
		// Not a heartbeat either: another vendor's payload, or a bridge's, sent to a device
		// the store file calls Milesight. Refused, so that the mistake shows.
		return nil, reject("unsupported", "no Milesight field (device_info, line_*_data, line_N_total_in, region_N_count, people_*): not a Milesight message")
	}
	if len(out) > MaxReadings {
		return nil, reject("out_of_range", "message gives more than %d readings", MaxReadings)
	}
	return out, nil
}

// msLines reads one array of line data; counted says the figures are in_counted/out_counted.
func msLines(field string, ls []msLine, counted bool) ([]Line, *Rejection) {
	if len(ls) > maxLines {
		return nil, reject("out_of_range", "%s has more than %d lines", field, maxLines)
	}
	var out []Line
	seen := map[string]bool{}
	for i, l := range ls {
		if !l.Line.set {
			return nil, reject("missing_field", "%s[%d] has no line", field, i)
		}
		if seen[l.Line.s] {
			return nil, reject("duplicate_key", "%s names line %s twice: ambiguous, so nothing is counted", field, l.Line.s)
		}
		seen[l.Line.s] = true
		in, o := l.Total.In, l.Total.Out
		if counted {
			in, o = l.Total.InCounted, l.Total.OutCounted
		}
		if !in.set || !o.set {
			return nil, reject("missing_field", "%s line %s needs both directions", field, l.Line.s)
		}
		a, rej := in.get(field+" in", MaxTotal)
		if rej != nil {
			return nil, rej
		}
		b, rej := o.get(field+" out", MaxTotal)
		if rej != nil {
			return nil, rej
		}
		out = append(out, Line{ID: l.Line.s, In: a, Out: b})
	}
	return out, nil
}

// msLoRaNames tells whether a decoded object has any name the Milesight LoRa decoders give
// (dwell times, flows, region_count: things not counted here).
func msLoRaNames(rest map[string]jsontext.Value) bool {
	for name := range rest {
		for _, p := range []string{"line_", "region_", "people_", "a_to_", "b_to_", "c_to_", "d_to_",
			// The device information uplink after a join, and status fields.
			"ipso_", "hardware_", "firmware_", "tsl_", "sn", "lorawan_", "reset_", "device_", "battery", "report_"} {
			if strings.HasPrefix(name, p) {
				return true
			}
		}
	}
	return false
}

// msLoRa reads the decoded object's numbered names.
func msLoRa(rest map[string]jsontext.Value, ts count) ([]Reading, *Rejection) {
	totals, periods := map[string]*[2]count{}, map[string]*[2]count{}
	var regions []Reading
	var deviceTime time.Time
	if ts.set {
		// VS121 "timestamp": Unix seconds.
		if ts.v > 7258118400 || ts.v < 946684800 {
			return nil, reject("out_of_range", "timestamp %d is not between the years 2000 and 2200", ts.v)
		}
		deviceTime = time.Unix(int64(ts.v), 0).UTC()
	}
	read := func(name string, v jsontext.Value) (count, *Rejection) {
		var c count
		if rej := decodeJSON(v, &c); rej != nil {
			return c, &Rejection{Reason: rej.Reason, Err: fmt.Errorf("%s %w", name, rej.Err)}
		}
		return c, nil
	}
	pair := func(m map[string]*[2]count, line, dir string, c count) {
		p := m[line]
		if p == nil {
			p = &[2]count{}
			m[line] = p
		}
		if dir == "in" {
			p[0] = c
		} else {
			p[1] = c
		}
	}
	for _, name := range slices.Sorted(maps.Keys(rest)) {
		v := rest[name]
		switch {
		case msLineName.MatchString(name):
			sm := msLineName.FindStringSubmatch(name)
			c, rej := read(name, v)
			if rej != nil {
				return nil, rej
			}
			if sm[2] == "total" {
				pair(totals, sm[1], sm[3], c)
			} else {
				pair(periods, sm[1], sm[3], c)
			}
		case msRegionName.MatchString(name):
			sm := msRegionName.FindStringSubmatch(name)
			c, rej := read(name, v)
			if rej != nil {
				return nil, rej
			}
			if !c.set {
				continue
			}
			n, rej := c.get(name, MaxArea)
			if rej != nil {
				return nil, rej
			}
			regions = append(regions, Reading{Semantics: Absolute, Region: sm[1], Count: int64(n), DeviceTime: deviceTime})
		case name == "people_total_in" || name == "people_total_out" || name == "people_in" || name == "people_out":
			c, rej := read(name, v)
			if rej != nil {
				return nil, rej
			}
			dir := strings.TrimPrefix(name[strings.LastIndexByte(name, '_')+1:], "_")
			if strings.HasPrefix(name, "people_total_") {
				pair(totals, "1", dir, c)
			} else {
				pair(periods, "1", dir, c)
			}
		case name == "people_count_all":
			c, rej := read(name, v)
			if rej != nil {
				return nil, rej
			}
			if !c.set {
				continue
			}
			n, rej := c.get(name, MaxArea)
			if rej != nil {
				return nil, rej
			}
			regions = append(regions, Reading{Semantics: Absolute, Count: int64(n), DeviceTime: deviceTime})
		}
	}
	lines := func(m map[string]*[2]count, limit uint64, what string) ([]Line, *Rejection) {
		var out []Line
		for _, id := range slices.Sorted(maps.Keys(m)) {
			p := m[id]
			if !p[0].set || !p[1].set {
				return nil, reject("missing_field", "line %s %s needs both in and out", id, what)
			}
			a, rej := p[0].get("line "+id+" "+what+" in", limit)
			if rej != nil {
				return nil, rej
			}
			b, rej := p[1].get("line "+id+" "+what+" out", limit)
			if rej != nil {
				return nil, rej
			}
			out = append(out, Line{ID: id, In: a, Out: b})
		}
		return out, nil
	}
	var out []Reading
	if tl, rej := lines(totals, MaxTotal, "total"); rej != nil {
		return nil, rej
	} else if len(tl) > 0 {
		out = append(out, Reading{Semantics: SinceReset, Lines: tl, DeviceTime: deviceTime})
	}
	if pl, rej := lines(periods, MaxDelta, "period"); rej != nil {
		return nil, rej
	} else if len(pl) > 0 {
		// A LoRa uplink has no window: the network server's frame counter keys it (Envelope).
		out = append(out, Reading{Semantics: Interval, Lines: pl, DeviceTime: deviceTime})
	}
	slices.SortFunc(regions, func(a, b Reading) int { return strings.Compare(a.Region, b.Region) })
	return append(out, regions...), nil
}

// msClock reads a Milesight time: RFC 3339 (VS125), or a local "2006/01/02 15:04:05"
// (VS121-P) placed by time_info.time_zone ("UTC+8:00"). A local time without a zone gives
// the zero time: the receive time is then the clock.
func msClock(t, zone text, field string) (time.Time, *Rejection) {
	if !t.set || t.s == "" {
		return time.Time{}, nil
	}
	if v, err := time.Parse(time.RFC3339, t.s); err == nil {
		if _, rej := parseRFC3339(t.s); rej != nil {
			return time.Time{}, rej
		}
		return v, nil
	}
	var local time.Time
	var err error
	for _, layout := range []string{"2006/01/02 15:04:05", "2006-01-02 15:04:05"} {
		if local, err = time.Parse(layout, t.s); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, reject("wrong_type", "%s %q is neither RFC 3339 nor YYYY/MM/DD hh:mm:ss", field, truncate([]byte(t.s)))
	}
	if local.Year() < 2000 || local.Year() > 2200 {
		return time.Time{}, reject("out_of_range", "%s %q is not between the years 2000 and 2200", field, t.s)
	}
	if !zone.set {
		return time.Time{}, nil
	}
	off, ok := msZone(zone.s)
	if !ok {
		return time.Time{}, reject("wrong_type", "time_info.time_zone %q is not like UTC+8:00", truncate([]byte(zone.s)))
	}
	return time.Date(local.Year(), local.Month(), local.Day(), local.Hour(), local.Minute(), local.Second(), 0,
		time.FixedZone(zone.s, off)), nil
}

// msZone reads "UTC+8:00", "UTC-05:30", "UTC+8", "UTC" as seconds east of UTC.
func msZone(s string) (int, bool) {
	rest, ok := strings.CutPrefix(s, "UTC")
	if !ok {
		return 0, false
	}
	if rest == "" {
		return 0, true
	}
	sign := 1
	switch rest[0] {
	case '+':
	case '-':
		sign = -1
	default:
		return 0, false
	}
	hs, ms, _ := strings.Cut(rest[1:], ":")
	h, err := strconv.Atoi(hs)
	if err != nil || h > 14 || len(hs) > 2 {
		return 0, false
	}
	m := 0
	if ms != "" {
		if m, err = strconv.Atoi(ms); err != nil || m > 59 || len(ms) != 2 {
			return 0, false
		}
	}
	return sign * (h*3600 + m*60), true
}
