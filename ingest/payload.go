// Package ingest connects the store's devices to the occupancy engine over MQTT: an embedded
// broker or an external one, the device protocol's topics and payloads (docs/protocol.md),
// and the retained zone-state topics the service publishes back.
package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest/formats"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Topic kinds under <prefix>/<site>/.
const (
	KindCounter   = "counter"
	KindOccupancy = "occupancy"
	KindStatus    = "status"
	KindZone      = "zone"
)

// The service's own topic kinds, beside the devices' (KindCounter, KindOccupancy, KindStatus)
// and KindZone.
const (
	kindGuidance = "guidance"
	kindAlert    = "alert"
	kindService  = "service"
	kindAnnounce = "announce"
)

// Topics builds and parses the site's topic names: the one place where every MQTT topic the
// service reads (device topics) or writes (zone, guidance, alert, service status) is spelt.
// The prefix may itself contain "/": nothing should split a topic to find the site.
type Topics struct {
	base string // "<prefix>/<site>/"
}

// NewTopics returns the topic scheme for a prefix and site id.
func NewTopics(prefix, site string) Topics { return Topics{base: prefix + "/" + site + "/"} }

// TopicsFor is the topic scheme of a site's configuration (mqtt.topic_prefix and site.id).
func TopicsFor(cfg *configs.Config) Topics { return NewTopics(cfg.MQTT.TopicPrefix, cfg.Site.ID) }

// Base is "<prefix>/<site>/".
func (t Topics) Base() string { return t.base }

// Device is the topic a device publishes one kind of message on.
func (t Topics) Device(kind, device string) string { return t.base + kind + "/" + device }

// Zone is the retained zone-state topic.
func (t Topics) Zone(zone string) string { return t.base + KindZone + "/" + zone }

// Service is the retained topic on which the service says whether it is online.
func (t Topics) Service() string { return t.base + kindService + "/status" }

// Guidance is the retained topic of one guidance screen's state (web.LiveOptions.GuidanceTopic).
func (t Topics) Guidance(screen string) string { return t.base + kindGuidance + "/" + screen }

// Alert is the retained topic of one alert's current state (alerting.Topics).
func (t Topics) Alert(id string) string { return t.base + kindAlert + "/" + id }

// Announce is the topic of one zone's announcements for a PA gateway (package announce; not
// retained: an announcement is said once).
func (t Topics) Announce(zone string) string { return t.base + kindAnnounce + "/" + zone }

// Own tells whether a topic is one the service itself publishes on (zone, guidance, alert,
// service): nobody else may, even on an open broker, or a sign could be made to show anything.
func (t Topics) Own(topic string) bool {
	rest, ok := strings.CutPrefix(topic, t.base)
	if !ok {
		return false
	}
	for _, k := range []string{KindZone, kindGuidance, kindAlert, kindService, kindAnnounce} {
		if strings.HasPrefix(rest, k+"/") {
			return true
		}
	}
	return false
}

// ForSigns tells whether a subscription filter is one a device may hold: the site's zone and
// guidance topics and the service status (what signs and screens read).
func (t Topics) ForSigns(filter string) bool {
	return strings.HasPrefix(filter, t.Zone("")) || strings.HasPrefix(filter, t.Guidance("")) || filter == t.Service() ||
		strings.HasPrefix(filter, t.Announce("")) // PA gateways
}

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

// Device payloads are decoded strictly with go-json-experiment/json (the proposed
// encoding/json/v2), not encoding/json: its jsontext layer refuses an object that names a
// member twice (`"in":64,"in":1000` is ambiguous, and encoding/json took the last), names match
// exactly (encoding/json also took `"IN"` for `in`), and the number fields below read only JSON
// numbers, where encoding/json's json.Number also took `"900"` for 900 people.

// number is seq or a count: a JSON number that is a whole number, read exactly (no float in
// between). A JSON null reads as absent.
type number struct {
	v   uint64
	set bool
}

// UnmarshalJSONFrom reads one value with formats.ReadWhole, the reader the vendor formats
// share; anything but a non-negative whole number up to 2^64 − 1, or null, is refused with
// the rule it broke (the caller adds the field's name).
func (n *number) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, set, reason, err := formats.ReadWhole(dec)
	switch {
	case reason != "":
		return &zones.RejectError{Reason: reason, Err: err}
	case err != nil:
		return err
	}
	*n = number{v: v, set: set}
	return nil
}

// get returns the number, refusing one above limit.
func (n *number) get(field string, limit uint64) (uint64, *zones.RejectError) {
	if n.v > limit {
		return 0, zones.Reject("out_of_range", "%s %d is more than %d", field, n.v, limit)
	}
	return n.v, nil
}

// bootID is a boot: a string, or a non-negative integer (a JSON number) taken as its decimal
// text.
type bootID struct {
	s   string
	set bool
}

func (b *bootID) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch k := dec.PeekKind(); k {
	case '"':
		tok, err := dec.ReadToken()
		if err != nil {
			return err
		}
		*b = bootID{s: tok.String(), set: true}
		if b.s == "" || utf8.RuneCountInString(b.s) > 64 {
			return zones.Reject("wrong_type", "must be a non-empty string of at most 64 characters")
		}
		return nil
	case 'n':
		*b = bootID{}
		_, err := dec.ReadToken()
		return err
	case '0':
		val, err := dec.ReadValue()
		if err != nil {
			return err
		}
		n, reason, err := formats.WholeLiteral(val)
		if reason != "" {
			return zones.Reject("wrong_type", "must be a string or a non-negative integer: %v", err)
		}
		*b = bootID{s: strconv.FormatUint(n, 10), set: true}
		return nil
	default:
		if _, err := dec.ReadValue(); err != nil {
			return err
		}
		return zones.Reject("wrong_type", "must be a string or a non-negative integer, not %s", formats.KindWord(k))
	}
}

type wireLine struct {
	In        number `json:"in"`
	Out       number `json:"out"`
	PeriodIn  number `json:"period_in"`
	PeriodOut number `json:"period_out"`
}

type namedLine struct {
	id string
	wireLine
}

// wireLines is the lines object, kept in the order given. It stops at more than maxLines
// members, so a huge object is not decoded for nothing.
type wireLines struct {
	lines []namedLine
	set   bool
}

func (ls *wireLines) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch k := dec.PeekKind(); k {
	case 'n':
		_, err := dec.ReadToken()
		return err
	case '{':
	default:
		if _, err := dec.ReadValue(); err != nil {
			return err
		}
		return zones.Reject("wrong_type", "must be a JSON object, not %s", formats.KindWord(k))
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	ls.set = true
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken() // a member name (jsontext refuses anything else, and repeats)
		if err != nil {
			return err
		}
		if len(ls.lines) == maxLines {
			return zones.Reject("out_of_range", "has more than %d lines", maxLines)
		}
		ls.lines = append(ls.lines, namedLine{id: name.String()})
		if err := json.UnmarshalDecode(dec, &ls.lines[len(ls.lines)-1].wireLine); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// text is a string field that was present.
type text struct {
	s   string
	set bool
}

func (t *text) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch k := dec.PeekKind(); k {
	case '"':
		tok, err := dec.ReadToken()
		*t = text{s: tok.String(), set: err == nil}
		return err
	case 'n':
		*t = text{}
		_, err := dec.ReadToken()
		return err
	default:
		if _, err := dec.ReadValue(); err != nil {
			return err
		}
		return zones.Reject("wrong_type", "must be a string, not %s", formats.KindWord(k))
	}
}

type wireReport struct {
	Boot  bootID    `json:"boot"`
	Seq   number    `json:"seq"`
	TS    text      `json:"ts"`
	Lines wireLines `json:"lines"`
	Count number    `json:"count"`
	wireLine
}

// unmarshal decodes one JSON object strictly and names the rule a payload broke.
func unmarshal(payload []byte, v any) *zones.RejectError {
	if !utf8.Valid(payload) {
		return zones.Reject("malformed", "payload is not UTF-8 text")
	}
	err := json.Unmarshal(payload, v)
	if err == nil {
		return nil
	}
	field := ""
	var se *json.SemanticError
	if errors.As(err, &se) {
		field = strings.TrimPrefix(string(se.JSONPointer), "/")
	}
	var rej *zones.RejectError
	switch {
	case errors.As(err, &rej):
		if field == "" {
			return rej
		}
		return &zones.RejectError{Reason: rej.Reason, Err: fmt.Errorf("%s %w", field, rej.Err)}
	case errors.Is(err, jsontext.ErrDuplicateName):
		var syn *jsontext.SyntacticError
		if errors.As(err, &syn) {
			name, where := syn.JSONPointer.LastToken(), strings.TrimPrefix(string(syn.JSONPointer.Parent()), "/")
			if where != "" {
				return zones.Reject("duplicate_key", "%q appears more than once in %s: ambiguous, so nothing is counted", name, where)
			}
			return zones.Reject("duplicate_key", "%q appears more than once: ambiguous, so nothing is counted", name)
		}
		return zones.Reject("duplicate_key", "a name appears more than once in one object: %v", err)
	case se != nil && field != "":
		return zones.Reject("wrong_type", "%s must be a %s, not %s", field, typeWord(se.GoType), formats.KindWord(se.JSONKind))
	case se != nil:
		return zones.Reject("malformed", "payload must be a JSON object, not %s", formats.KindWord(se.JSONKind))
	}
	return zones.Reject("malformed", "payload is not a JSON object: %v", err)
}

// typeWord says what a Go field type expects, in JSON's words.
func typeWord(t reflect.Type) string {
	if t != nil && (t.Kind() == reflect.Struct || t.Kind() == reflect.Map) {
		return "JSON object"
	}
	return "different JSON type"
}

func decodeHeader(w *wireReport) (boot string, seq uint64, ts time.Time, rej *zones.RejectError) {
	if !w.Boot.set {
		return "", 0, ts, zones.Reject("missing_field", "boot is required")
	}
	if !w.Seq.set {
		return "", 0, ts, zones.Reject("missing_field", "seq is required")
	}
	if seq, rej = w.Seq.get("seq", math.MaxUint64); rej != nil {
		return "", 0, ts, rej
	}
	if !w.TS.set {
		return "", 0, ts, zones.Reject("missing_field", "ts is required")
	}
	ts, err := time.Parse(time.RFC3339Nano, w.TS.s)
	if err != nil {
		return "", 0, ts, zones.Reject("wrong_type", "ts %q is not an RFC 3339 time with a zone (2026-11-11T10:00:00+08:00)", w.TS.s)
	}
	return w.Boot.s, seq, ts, nil
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
	top := w.In.set || w.Out.set || w.PeriodIn.set || w.PeriodOut.set
	switch {
	case w.Lines.set && top:
		return nil, zones.Reject("malformed", "give either lines or top-level counts, not both")
	case !w.Lines.set && !top:
		return nil, zones.Reject("missing_field", "in/out, period_in/period_out or lines is required")
	case !w.Lines.set:
		w.Lines.lines = append(w.Lines.lines, namedLine{id: "1", wireLine: w.wireLine})
	case len(w.Lines.lines) == 0:
		return nil, zones.Reject("missing_field", "lines is empty")
	}
	interval := -1 // unknown until the first line says
	r.Lines = make([]zones.LineCount, 0, len(w.Lines.lines))
	for i := range w.Lines.lines {
		l := &w.Lines.lines[i]
		id := l.id
		if id == "" || utf8.RuneCountInString(id) > 32 {
			return nil, zones.Reject("wrong_type", "line id %q must be 1 to 32 characters", id)
		}
		totals, periods := l.In.set || l.Out.set, l.PeriodIn.set || l.PeriodOut.set
		if totals == periods {
			return nil, zones.Reject("malformed", "line %q must carry either in/out or period_in/period_out", id)
		}
		isInterval := 0
		in, out := &l.In, &l.Out
		if periods {
			isInterval, in, out = 1, &l.PeriodIn, &l.PeriodOut
		}
		if interval >= 0 && interval != isInterval {
			return nil, zones.Reject("malformed", "a report mixes totals and period counts")
		}
		interval = isInterval
		lc := zones.LineCount{Line: id}
		if !in.set || !out.set {
			return nil, zones.Reject("missing_field", "line %q needs both directions", id)
		}
		lc.In, lc.Out = in.v, out.v
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
	if !w.Count.set {
		return nil, zones.Reject("missing_field", "count is required")
	}
	n, rej := w.Count.get("count", math.MaxInt32)
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
	var hb struct {
		Status jsontext.Value `json:"status"`
	}
	if t := bytes.TrimSpace(payload); len(t) == 0 || t[0] != '{' {
		return nil, zones.Reject("malformed", "status must be online, offline or a heartbeat JSON object")
	}
	if rej := unmarshal(payload, &hb); rej != nil {
		if rej.Reason == "duplicate_key" {
			return nil, rej
		}
		return nil, zones.Reject("malformed", "status must be online, offline or a heartbeat JSON object: %v", rej.Err)
	}
	if string(hb.Status) == `"offline"` {
		return &zones.Status{Device: device, Online: false}, nil
	}
	return &zones.Status{Device: device, Online: true}, nil
}
