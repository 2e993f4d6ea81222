package formats

import (
	"fmt"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Axis reads Axis cameras and people counters:
//   - AXIS Object Analytics events over MQTT (topic
//     axis/<serial>/event/CameraApplicationPlatform/ObjectAnalytics/<scenario>): a crossline
//     counting scenario's total since its startTime (SinceReset, counts sent as strings of
//     digits, Epoch = startTime, one direction: the scenario's count is Line.In), and an
//     occupancy-in-area scenario's current count (Absolute). The scenario is named by the
//     event's own topic ("Device1Scenario1"); its type by data.scenario, spelt
//     "Crossline"/"Occupancy" or "passageCounts"/"numberOfOccupants" (both seen in public
//     code), or, where absent, by the fields present (startTime or total<Class>: crossline).
//   - Axis Retail Data v0.4 HTTP push from AXIS People Counter / 3D People Counter: each
//     people-counts measurement is an Interval of in and out on line "1", keyed by utcFrom
//     and utcTo.
//   - the VAPIX people counter live-sum (`{"serial","timestamp","in","out"}`): totals since
//     the counter's reset on line "1" (SinceReset); its local time stamp has no zone, so the
//     receive time is the clock.
//
// The format counts by Retail Data intervals (the in/out people counters' push) unless the
// store file says `counting: since_reset` (Object Analytics crossline, live-sum).
var Axis Decoder = axis{}

func init() { Register(Axis) }

type axis struct{}

func (axis) Name() string        { return "axis" }
func (axis) Counting() Semantics { return Interval }
func (a axis) Decode(in Input) ([]Reading, error) {
	rs, rej := a.decode(in)
	if rej != nil {
		return nil, prefixed("axis", in.Device, rej)
	}
	for i := range rs {
		rs[i].Device, rs[i].Format = in.Device, "axis"
	}
	return rs, nil
}

// AxisLine is the line id of an Axis people counter's one counting line.
const AxisLine = "1"

type axOAData struct {
	Scenario   text                      `json:"scenario"`
	StartTime  text                      `json:"startTime"`
	Total      digits                    `json:"total"`
	TotalHuman digits                    `json:"totalHuman"`
	Human      digits                    `json:"human"`
	Active     jsontext.Value            `json:"active"`
	Rest       map[string]jsontext.Value `json:",unknown"`
}

type axMessage struct {
	// Object Analytics.
	Topic text `json:"topic"`
	// Timestamp is epoch milliseconds in an Object Analytics event, local "20170503112756"
	// text in a live-sum: read by each according to its shape.
	Timestamp jsontext.Value `json:"timestamp"`
	Message   *struct {
		Data *axOAData `json:"data"`
	} `json:"message"`
	// Retail Data.
	APIName    text `json:"apiName"`
	APIVersion text `json:"apiVersion"`
	Data       *struct {
		Measurements []struct {
			Kind    text  `json:"kind"`
			UTCFrom stamp `json:"utcFrom"`
			UTCTo   stamp `json:"utcTo"`
			Items   []struct {
				Direction text  `json:"direction"`
				Count     count `json:"count"`
			} `json:"items"`
		} `json:"measurements"`
	} `json:"data"`
	UTCSent stamp `json:"utcSent"`
	// VAPIX live-sum.
	In  count `json:"in"`
	Out count `json:"out"`
}

func (a axis) decode(in Input) ([]Reading, *Rejection) {
	var w axMessage
	if rej := decodeJSON(in.Body, &w); rej != nil {
		return nil, rej
	}
	switch {
	case w.Message != nil:
		return axObjectAnalytics(&w, in.Topic)
	case w.APIName.set:
		return axRetail(&w)
	case w.In.set || w.Out.set:
		if !w.In.set || !w.Out.set {
			return nil, reject("missing_field", "live-sum needs both in and out")
		}
		i, rej := w.In.get("in", MaxTotal)
		if rej != nil {
			return nil, rej
		}
		o, rej := w.Out.get("out", MaxTotal)
		if rej != nil {
			return nil, rej
		}
		return []Reading{{Semantics: SinceReset, Lines: []Line{{ID: AxisLine, In: i, Out: o}}}}, nil
	}
	return nil, reject("unsupported", "neither an Object Analytics event, Axis Retail Data nor a live-sum")
}

func axObjectAnalytics(w *axMessage, mqttTopic string) ([]Reading, *Rejection) {
	if w.Message.Data == nil {
		return nil, reject("missing_field", "message.data is required")
	}
	d := w.Message.Data
	// The scenario is the last element of the event's topic ("axis:.../Device1Scenario1"),
	// or of the MQTT topic the event came on.
	topic := w.Topic.s
	if topic == "" {
		topic = mqttTopic
	}
	scenario := topic[strings.LastIndexByte(topic, '/')+1:]
	if rej := checkID(scenario); rej != nil {
		return nil, reject("missing_field", "no scenario name in topic %q", truncate([]byte(topic)))
	}
	var r Reading
	if w.Timestamp != nil {
		var ms count
		if rej := decodeJSON(w.Timestamp, &ms); rej != nil {
			return nil, &Rejection{Reason: rej.Reason, Err: fmt.Errorf("timestamp %w", rej.Err)}
		}
		if ms.set {
			t, rej := unixMillis(ms.v)
			if rej != nil {
				return nil, rej
			}
			r.DeviceTime = t
		}
	}
	kind := ""
	switch d.Scenario.s {
	case "Crossline", "passageCounts":
		kind = "crossline"
	case "Occupancy", "numberOfOccupants":
		kind = "occupancy"
	case "":
		_, hasClassTotals := d.Rest["totalCar"]
		switch {
		case d.StartTime.set || d.TotalHuman.set || hasClassTotals:
			kind = "crossline"
		case d.Human.set:
			kind = "occupancy"
		case d.Active != nil:
			return nil, nil // a motion scenario's state: nothing to count
		}
	}
	pick := func(human, all digits, field string, limit uint64) (uint64, *Rejection) {
		if human.set {
			return human.get(field+" (humans)", limit)
		}
		if !all.set {
			return 0, reject("missing_field", "data.total is required")
		}
		return all.get(field, limit)
	}
	switch kind {
	case "crossline":
		// totalHuman where the scenario counts several classes: a store counts people.
		n, rej := pick(d.TotalHuman, d.Total, "data.total", MaxTotal)
		if rej != nil {
			return nil, rej
		}
		r.Semantics, r.Lines, r.Epoch = SinceReset, []Line{{ID: scenario, In: n}}, d.StartTime.s
	case "occupancy":
		n, rej := pick(d.Human, d.Total, "data.total", MaxArea)
		if rej != nil {
			return nil, rej
		}
		r.Semantics, r.Region, r.Count = Absolute, scenario, int64(n)
	default:
		return nil, reject("unsupported", "scenario type %q is neither crossline counting nor occupancy in area", truncate([]byte(d.Scenario.s)))
	}
	return []Reading{r}, nil
}

func axRetail(w *axMessage) ([]Reading, *Rejection) {
	if w.APIName.s != "Axis Retail Data" {
		return nil, reject("unsupported", "apiName %q is not Axis Retail Data", truncate([]byte(w.APIName.s)))
	}
	if w.Data == nil {
		return nil, reject("missing_field", "data is required")
	}
	if len(w.Data.Measurements) > MaxReadings {
		return nil, reject("out_of_range", "more than %d measurements", MaxReadings)
	}
	var out []Reading
	for i, m := range w.Data.Measurements {
		if m.Kind.s != "people-counts" {
			continue
		}
		if !m.UTCFrom.set || !m.UTCTo.set {
			return nil, reject("missing_field", "measurements[%d] needs utcFrom and utcTo", i)
		}
		key, rej := window(m.UTCFrom.t, m.UTCTo.t)
		if rej != nil {
			return nil, rej
		}
		l := Line{ID: AxisLine}
		var got [2]bool
		for _, it := range m.Items {
			n, rej := it.Count.get("measurements count", MaxDelta)
			if rej != nil {
				return nil, rej
			}
			switch it.Direction.s {
			case "in":
				if got[0] {
					return nil, reject("duplicate_key", "measurements[%d] has two items for direction in", i)
				}
				l.In, got[0] = n, true
			case "out":
				if got[1] {
					return nil, reject("duplicate_key", "measurements[%d] has two items for direction out", i)
				}
				l.Out, got[1] = n, true
			}
		}
		if !got[0] || !got[1] {
			return nil, reject("missing_field", "measurements[%d] needs items for in and out", i)
		}
		out = append(out, Reading{Semantics: Interval, Lines: []Line{l}, WindowStart: m.UTCFrom.t, WindowEnd: m.UTCTo.t,
			DeviceTime: w.UTCSent.t, Key: key})
	}
	return out, nil
}
