// Package ingest connects the store's devices to the occupancy engine over MQTT: an embedded
// broker or an external one, the device protocol's topics and payloads (docs/protocol.md),
// and the retained zone-state topics the service publishes back.
package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/crowdwatch/crowdwatch/zones"
)

// Topic kinds under <prefix>/<site>/.
const (
	KindCounter   = "counter"
	KindOccupancy = "occupancy"
	KindStatus    = "status"
	KindZone      = "zone"
)

// Topics builds and parses the site's topic names.
type Topics struct {
	base string // "<prefix>/<site>/"
}

// NewTopics returns the topic scheme for a prefix and site id.
func NewTopics(prefix, site string) Topics { return Topics{base: prefix + "/" + site + "/"} }

// Base is "<prefix>/<site>/".
func (t Topics) Base() string { return t.base }

// Device is the topic a device publishes one kind of message on.
func (t Topics) Device(kind, device string) string { return t.base + kind + "/" + device }

// Zone is the retained zone-state topic.
func (t Topics) Zone(zone string) string { return t.base + KindZone + "/" + zone }

// Service is the retained topic on which the service says whether it is online.
func (t Topics) Service() string { return t.base + "service/status" }

// Subscriptions are the filters the service reads devices on.
func (t Topics) Subscriptions() []string {
	return []string{t.base + KindCounter + "/+", t.base + KindOccupancy + "/+", t.base + KindStatus + "/+"}
}

// Parse splits a device topic into its kind and device id; ok is false for any topic that is
// not a device topic of this site.
func (t Topics) Parse(topic string) (kind, device string, ok bool) {
	rest, found := strings.CutPrefix(topic, t.base)
	if !found {
		return "", "", false
	}
	kind, device, found = strings.Cut(rest, "/")
	if !found || device == "" || strings.Contains(device, "/") {
		return "", "", false
	}
	switch kind {
	case KindCounter, KindOccupancy, KindStatus:
		return kind, device, true
	}
	return "", "", false
}

// maxLines bounds the counting lines one report may carry.
const maxLines = 64

// Decode turns one device message into an engine message. A payload that breaks the protocol
// yields a message carrying the rejection, so that it is counted and acknowledged in order
// like any other.
func Decode(kind, device string, payload []byte, maxPayload int) *zones.Message {
	m := &zones.Message{Received: time.Now()}
	if len(payload) > maxPayload {
		m.Reject = zones.Reject("oversized", "device %q: payload of %d bytes is over the %d-byte limit", device, len(payload), maxPayload)
		return m
	}
	var err *zones.RejectError
	switch kind {
	case KindStatus:
		m.Status, err = decodeStatus(device, payload)
	case KindCounter:
		m.Report, err = decodeCounter(device, payload)
	case KindOccupancy:
		m.Report, err = decodeOccupancy(device, payload)
	default:
		err = zones.Reject("bad_topic", "unknown message kind %q", kind)
	}
	if err != nil {
		err.Err = fmt.Errorf("device %q %s: %w", device, kind, err.Err)
		m.Report, m.Status, m.Reject = nil, nil, err
	}
	return m
}

type wireLine struct {
	In        *json.Number `json:"in"`
	Out       *json.Number `json:"out"`
	PeriodIn  *json.Number `json:"period_in"`
	PeriodOut *json.Number `json:"period_out"`
}

type wireReport struct {
	Boot  json.RawMessage     `json:"boot"`
	Seq   *json.Number        `json:"seq"`
	TS    *string             `json:"ts"`
	Lines map[string]wireLine `json:"lines"`
	Count *json.Number        `json:"count"`
	wireLine
}

func unmarshal(payload []byte, v any) *zones.RejectError {
	if !utf8.Valid(payload) {
		return zones.Reject("malformed", "payload is not UTF-8 text")
	}
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			if te.Field == "" {
				return zones.Reject("malformed", "payload must be a JSON object, not %s", te.Value)
			}
			return zones.Reject("wrong_type", "field %q must be a %s, not %s", te.Field, kindName(te.Type.String()), te.Value)
		}
		if strings.Contains(err.Error(), "invalid number literal") {
			// encoding/json's only signal for a quoted non-number in a number field.
			return zones.Reject("wrong_type", "seq, counts and count must be JSON numbers: %v", err)
		}
		return zones.Reject("malformed", "payload is not a JSON object: %v", err)
	}
	if dec.More() {
		return zones.Reject("malformed", "payload has data after the JSON object")
	}
	return nil
}

// kindName says in JSON's words what a Go field type expects.
func kindName(goType string) string {
	switch {
	case goType == "json.Number":
		return "number"
	case goType == "string":
		return "string"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "ingest."):
		return "JSON object"
	}
	return "different JSON type"
}

func decodeHeader(w *wireReport) (boot string, seq uint64, ts time.Time, rej *zones.RejectError) {
	switch {
	case len(w.Boot) == 0 || string(w.Boot) == "null":
		return "", 0, ts, zones.Reject("missing_field", "boot is required")
	case w.Boot[0] == '"':
		if err := json.Unmarshal(w.Boot, &boot); err != nil || boot == "" || utf8.RuneCountInString(boot) > 64 {
			return "", 0, ts, zones.Reject("wrong_type", "boot must be a non-empty string of at most 64 characters")
		}
	default:
		// Many devices count boots with an integer; accept it as its decimal text.
		n, err := strconv.ParseUint(string(w.Boot), 10, 64)
		if err != nil {
			return "", 0, ts, zones.Reject("wrong_type", "boot must be a string or a non-negative integer")
		}
		boot = strconv.FormatUint(n, 10)
	}
	if w.Seq == nil {
		return "", 0, ts, zones.Reject("missing_field", "seq is required")
	}
	seq, rej = count("seq", *w.Seq, math.MaxUint64)
	if rej != nil {
		return "", 0, ts, rej
	}
	if w.TS == nil {
		return "", 0, ts, zones.Reject("missing_field", "ts is required")
	}
	ts, err := time.Parse(time.RFC3339Nano, *w.TS)
	if err != nil {
		return "", 0, ts, zones.Reject("wrong_type", "ts %q is not an RFC 3339 time with a zone (2026-11-11T10:00:00+08:00)", *w.TS)
	}
	return boot, seq, ts, nil
}

// count parses a non-negative integer no larger than limit.
func count(field string, n json.Number, limit uint64) (uint64, *zones.RejectError) {
	s := n.String()
	if strings.HasPrefix(s, "-") {
		return 0, zones.Reject("negative", "%s is negative (%s)", field, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		var ne *strconv.NumError
		if errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) {
			return 0, zones.Reject("out_of_range", "%s %s is too large", field, s)
		}
		return 0, zones.Reject("wrong_type", "%s must be a whole number, not %s", field, s)
	}
	if v > limit {
		return 0, zones.Reject("out_of_range", "%s %s is too large", field, s)
	}
	return v, nil
}

// decodeReport reads the JSON and the boot/seq/ts header common to every report.
func decodeReport(device string, kind zones.DeviceKind, payload []byte) (*wireReport, *zones.Report, *zones.RejectError) {
	var w wireReport
	if rej := unmarshal(payload, &w); rej != nil {
		return nil, nil, rej
	}
	boot, seq, ts, rej := decodeHeader(&w)
	if rej != nil {
		return nil, nil, rej
	}
	return &w, &zones.Report{Device: device, Kind: kind, Boot: boot, Seq: seq, TS: ts}, nil
}

func decodeCounter(device string, payload []byte) (*zones.Report, *zones.RejectError) {
	w, r, rej := decodeReport(device, zones.KindCounter, payload)
	if rej != nil {
		return nil, rej
	}
	top := w.In != nil || w.Out != nil || w.PeriodIn != nil || w.PeriodOut != nil
	switch {
	case w.Lines != nil && top:
		return nil, zones.Reject("malformed", "give either lines or top-level counts, not both")
	case w.Lines == nil && !top:
		return nil, zones.Reject("missing_field", "in/out, period_in/period_out or lines is required")
	case w.Lines == nil:
		w.Lines = map[string]wireLine{"1": w.wireLine}
	case len(w.Lines) == 0:
		return nil, zones.Reject("missing_field", "lines is empty")
	case len(w.Lines) > maxLines:
		return nil, zones.Reject("out_of_range", "%d lines is more than %d", len(w.Lines), maxLines)
	}
	interval := -1 // unknown until the first line says
	for id, l := range w.Lines {
		if id == "" || utf8.RuneCountInString(id) > 32 {
			return nil, zones.Reject("wrong_type", "line id %q must be 1 to 32 characters", id)
		}
		totals, periods := l.In != nil || l.Out != nil, l.PeriodIn != nil || l.PeriodOut != nil
		if totals == periods {
			return nil, zones.Reject("malformed", "line %q must carry either in/out or period_in/period_out", id)
		}
		isInterval := 0
		in, out := l.In, l.Out
		if periods {
			isInterval, in, out = 1, l.PeriodIn, l.PeriodOut
		}
		if interval >= 0 && interval != isInterval {
			return nil, zones.Reject("malformed", "a report mixes totals and period counts")
		}
		interval = isInterval
		lc := zones.LineCount{Line: id}
		var rej *zones.RejectError
		if in == nil || out == nil {
			return nil, zones.Reject("missing_field", "line %q needs both directions", id)
		}
		if lc.In, rej = count("in", *in, math.MaxUint64); rej != nil {
			return nil, rej
		}
		if lc.Out, rej = count("out", *out, math.MaxUint64); rej != nil {
			return nil, rej
		}
		r.Lines = append(r.Lines, lc)
	}
	r.Interval = interval == 1
	slices.SortFunc(r.Lines, func(a, b zones.LineCount) int { return strings.Compare(a.Line, b.Line) })
	return r, nil
}

func decodeOccupancy(device string, payload []byte) (*zones.Report, *zones.RejectError) {
	w, r, rej := decodeReport(device, zones.KindSensor, payload)
	if rej != nil {
		return nil, rej
	}
	if w.Count == nil {
		return nil, zones.Reject("missing_field", "count is required")
	}
	n, rej := count("count", *w.Count, math.MaxInt32)
	if rej != nil {
		return nil, rej
	}
	r.Count = int64(n)
	return r, nil
}

// decodeStatus accepts the will/birth words online and offline, or a heartbeat JSON object.
func decodeStatus(device string, payload []byte) (*zones.Status, *zones.RejectError) {
	word := strings.TrimSpace(string(payload))
	word = strings.Trim(word, `"`)
	switch word {
	case "online":
		return &zones.Status{Device: device, Online: true}, nil
	case "offline":
		return &zones.Status{Device: device, Online: false}, nil
	}
	var hb map[string]any
	if rej := unmarshal(payload, &hb); rej != nil || hb == nil {
		return nil, zones.Reject("malformed", "status must be online, offline or a heartbeat JSON object")
	}
	if s, _ := hb["status"].(string); s == "offline" {
		return &zones.Status{Device: device, Online: false}, nil
	}
	return &zones.Status{Device: device, Online: true}, nil
}
