package formats

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json/jsontext"
)

// Xovis reads Xovis PC2 / PC3 sensors (firmware 5) as they push over HTTP:
//   - live data (push agent LIVE_DATA): each COUNT_INCREMENT event of a line's forward
//     counter (counter_id = logic id × 1000 + 1) is one crossing in, of its backward counter
//     (+ 2) one crossing out, an Increment keyed by package id, counter id and counter value,
//     so a package the sensor re-sends changes nothing; COUNT_RESET gives a Reset reading;
//   - logics (push agent LOGICS, or the live logics endpoint's shape): a line logic's fw and
//     bw counts are totals since the last reset (SinceReset), a zone occupancy logic's
//     balance is an area count (Absolute), both named by the logic id ("1008");
//   - the older count-data push: each measurement of an element is an Interval window.
//
// The format counts by increments (live data, per crossing) unless the store file says
// `counting: since_reset` (a logics push) or `counting: interval` (count data).
var Xovis Decoder = xovis{}

func init() { Register(Xovis) }

type xovis struct{}

func (xovis) Name() string        { return "xovis" }
func (xovis) Counting() Semantics { return Increment }
func (x xovis) Decode(in Input) ([]Reading, error) {
	rs, rej := x.decode(in.Body)
	if rej != nil {
		return nil, prefixed("xovis", in.Device, rej)
	}
	for i := range rs {
		rs[i].Device, rs[i].Format = in.Device, "xovis"
	}
	return rs, nil
}

// xtime is a Xovis time: RFC 3339 text or Unix milliseconds, as the push agent is set.
type xtime struct {
	t   time.Time
	set bool
}

func (x *xtime) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() == '0' {
		var c count
		if err := c.UnmarshalJSONFrom(dec); err != nil {
			return err
		}
		t, rej := unixMillis(c.v)
		if rej != nil {
			return rej
		}
		*x = xtime{t: t, set: true}
		return nil
	}
	var s stamp
	if err := s.UnmarshalJSONFrom(dec); err != nil {
		return err
	}
	*x = xtime{t: s.t, set: s.set}
	return nil
}

type xvEvent struct {
	Category   text `json:"category"`
	Type       text `json:"type"`
	Attributes struct {
		CounterID    count `json:"counter_id"`
		CounterValue count `json:"counter_value"`
	} `json:"attributes"`
}

type xvLiveData struct {
	PackageInfo struct {
		ID count `json:"id"`
	} `json:"package_info"`
	Frames []struct {
		FrameNumber count     `json:"framenumber"`
		Time        xtime     `json:"time"`
		Events      []xvEvent `json:"events"`
	} `json:"frames"`
}

type xvLogics struct {
	Time   xtime `json:"time"`
	Logics []struct {
		ID     ident `json:"id"`
		Info   text  `json:"info"`
		Counts []struct {
			Name  text           `json:"name"`
			Value jsontext.Value `json:"value"`
		} `json:"counts"`
	} `json:"logics"`
}

type xvCountData struct {
	SensorTime struct {
		Time stamp `json:"time"`
	} `json:"sensor-time"`
	Content struct {
		Element []struct {
			ID          ident `json:"element-id"`
			Measurement []struct {
				From  stamp `json:"from"`
				To    stamp `json:"to"`
				Value []struct {
					Value count `json:"value"`
					Label text  `json:"label"`
				} `json:"value"`
			} `json:"measurement"`
		} `json:"element"`
	} `json:"content"`
}

type xvMessage struct {
	LiveData   *xvLiveData     `json:"live_data"`
	LogicsData *xvLogics       `json:"logics_data"`
	Content    *jsontext.Value `json:"content"`
	xvLogics   `json:",inline"`
}

func (x xovis) decode(body []byte) ([]Reading, *Rejection) {
	var w xvMessage
	if rej := decodeJSON(body, &w); rej != nil {
		return nil, rej
	}
	var out []Reading
	switch {
	case w.LiveData != nil:
		rs, rej := xvLive(w.LiveData)
		if rej != nil {
			return nil, rej
		}
		out = rs
	case w.LogicsData != nil || w.Logics != nil:
		l := &w.xvLogics
		if w.LogicsData != nil {
			l = w.LogicsData
		}
		rs, rej := xvLogicReadings(l)
		if rej != nil {
			return nil, rej
		}
		out = rs
	case w.Content != nil:
		var cd xvCountData
		if rej := decodeJSON(body, &cd); rej != nil {
			return nil, rej
		}
		rs, rej := xvCounts(&cd)
		if rej != nil {
			return nil, rej
		}
		out = rs
	default:
		return nil, reject("unsupported", "neither live_data, logics nor count data content: not a Xovis push")
	}
	if len(out) > MaxReadings {
		return nil, reject("out_of_range", "message gives more than %d readings", MaxReadings)
	}
	return out, nil
}

func xvLive(ld *xvLiveData) ([]Reading, *Rejection) {
	if !ld.PackageInfo.ID.set {
		return nil, reject("missing_field", "live_data.package_info.id is required: it is what a re-sent package is known by")
	}
	pkg := ld.PackageInfo.ID.v
	var out []Reading
	for fi, f := range ld.Frames {
		for ei, e := range f.Events {
			if !e.Category.set || e.Category.s != "COUNT" {
				continue
			}
			a := e.Attributes
			switch e.Type.s {
			case "COUNT_INCREMENT", "COUNT_RESET":
			default:
				// COUNT_DECREMENT belongs to balances (zones), WRONG_WAY_DETECTED to nothing
				// counted here: a line's fw and bw counters only increase.
				continue
			}
			if !a.CounterID.set {
				return nil, reject("missing_field", "frames[%d].events[%d] has no counter_id", fi, ei)
			}
			id, rej := a.CounterID.get("counter_id", 1<<53)
			if rej != nil {
				return nil, rej
			}
			logic, dir := strconv.FormatUint(id/1000, 10), id%1000
			r := Reading{Semantics: Increment, DeviceTime: f.Time.t, Seq: pkg, HasSeq: true}
			if e.Type.s == "COUNT_RESET" {
				r.Reset = true
				r.Lines = []Line{{ID: logic}}
				r.Key = fmt.Sprintf("%d/%d/reset/%d", pkg, id, f.FrameNumber.v)
				out = append(out, r)
				continue
			}
			if dir != 1 && dir != 2 {
				continue // a balance or custom counter, not a direction of a line
			}
			if !a.CounterValue.set {
				return nil, reject("missing_field", "frames[%d].events[%d] has no counter_value", fi, ei)
			}
			v, rej := a.CounterValue.get("counter_value", MaxTotal)
			if rej != nil {
				return nil, rej
			}
			l := Line{ID: logic, In: 1}
			if dir == 2 {
				l = Line{ID: logic, Out: 1}
			}
			r.Lines = []Line{l}
			r.Key = fmt.Sprintf("%d/%d=%d", pkg, id, v)
			out = append(out, r)
			if len(out) > MaxReadings {
				return nil, reject("out_of_range", "package gives more than %d events", MaxReadings)
			}
		}
	}
	return out, nil
}

// xvZoneCounts are the names a zone occupancy logic's count may go by.
var xvZoneCounts = []string{"balance", "occupancy"}

func xvLogicReadings(l *xvLogics) ([]Reading, *Rejection) {
	if len(l.Logics) > maxLines {
		return nil, reject("out_of_range", "more than %d logics", maxLines)
	}
	var lines []Line
	var zones []Reading
	seen := map[string]bool{}
	for i, lg := range l.Logics {
		if !lg.ID.set {
			return nil, reject("missing_field", "logics[%d] has no id", i)
		}
		if seen[lg.ID.s] {
			return nil, reject("duplicate_key", "logic %s appears twice: ambiguous, so nothing is counted", lg.ID.s)
		}
		seen[lg.ID.s] = true
		byName := map[string]jsontext.Value{}
		for _, c := range lg.Counts {
			if c.Name.set {
				if _, dup := byName[c.Name.s]; dup {
					return nil, reject("duplicate_key", "logic %s names count %q twice", lg.ID.s, c.Name.s)
				}
				byName[c.Name.s] = c.Value
			}
		}
		if lg.Info.s == "XLT_ZONE_OCCUPANCY_COUNT" {
			for _, name := range xvZoneCounts {
				v, ok := byName[name]
				if !ok {
					continue
				}
				n, rej := signed(v, "logic "+lg.ID.s+" "+name)
				if rej != nil {
					return nil, rej
				}
				// A balance below zero (more out than in since the reset) means nobody there.
				zones = append(zones, Reading{Semantics: Absolute, Region: lg.ID.s, Count: max(n, 0), DeviceTime: l.Time.t})
				break
			}
			continue
		}
		fw, okF := byName["fw"]
		bw, okB := byName["bw"]
		if !okF || !okB {
			continue // not a line logic with both directions
		}
		var in, out count
		if rej := decodeJSON(fw, &in); rej != nil {
			return nil, rej
		}
		if rej := decodeJSON(bw, &out); rej != nil {
			return nil, rej
		}
		a, rej := in.get("logic "+lg.ID.s+" fw", MaxTotal)
		if rej != nil {
			return nil, rej
		}
		b, rej := out.get("logic "+lg.ID.s+" bw", MaxTotal)
		if rej != nil {
			return nil, rej
		}
		lines = append(lines, Line{ID: lg.ID.s, In: a, Out: b})
	}
	var rs []Reading
	if len(lines) > 0 {
		slices.SortFunc(lines, func(a, b Line) int { return strings.Compare(a.ID, b.ID) })
		rs = append(rs, Reading{Semantics: SinceReset, Lines: lines, DeviceTime: l.Time.t})
	}
	return append(rs, zones...), nil
}

// signed reads a whole JSON number that may be negative, within ±MaxArea.
func signed(v jsontext.Value, field string) (int64, *Rejection) {
	if v.Kind() != '0' {
		return 0, reject("wrong_type", "%s must be a JSON number, not %s", field, KindWord(v.Kind()))
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil {
		return 0, reject("wrong_type", "%s must be a whole number, not %s", field, truncate(v))
	}
	if n > MaxArea || n < -MaxArea {
		return 0, reject("out_of_range", "%s %d is beyond ±%d", field, n, MaxArea)
	}
	return n, nil
}

func xvCounts(cd *xvCountData) ([]Reading, *Rejection) {
	var out []Reading
	for i, el := range cd.Content.Element {
		if !el.ID.set {
			return nil, reject("missing_field", "content.element[%d] has no element-id", i)
		}
		for j, m := range el.Measurement {
			if !m.From.set || !m.To.set {
				return nil, reject("missing_field", "element %s measurement[%d] needs from and to", el.ID.s, j)
			}
			key, rej := window(m.From.t, m.To.t)
			if rej != nil {
				return nil, rej
			}
			var l Line
			var got [2]bool
			for _, v := range m.Value {
				n, rej := v.Value.get("element "+el.ID.s+" value", MaxDelta)
				if rej != nil {
					return nil, rej
				}
				switch v.Label.s {
				case "fw":
					l.In, got[0] = n, true
				case "bw":
					l.Out, got[1] = n, true
				}
			}
			if !got[0] || !got[1] {
				return nil, reject("missing_field", "element %s measurement[%d] needs values labelled fw and bw", el.ID.s, j)
			}
			l.ID = el.ID.s
			out = append(out, Reading{Semantics: Interval, Lines: []Line{l}, WindowStart: m.From.t, WindowEnd: m.To.t,
				DeviceTime: cd.SensorTime.Time.t, Key: el.ID.s + " " + key})
			if len(out) > MaxReadings {
				return nil, reject("out_of_range", "count data gives more than %d windows", MaxReadings)
			}
		}
	}
	return out, nil
}
