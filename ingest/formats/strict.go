package formats

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// Bounds on what one reading may say. A figure beyond them is a device (or an attacker)
// saying something no entrance can do, and is refused as out_of_range rather than counted.
const (
	// MaxTotal bounds a total since a reset: 32-bit counters are what the vendors document.
	MaxTotal = 1<<32 - 1
	// MaxDelta bounds the crossings of one interval window or one event: far above what a
	// door passes in any window a device reports on (a 4 m door passes about 2 people a
	// second, 7,200 an hour).
	MaxDelta = 100_000
	// MaxArea bounds one area's head count.
	MaxArea = 100_000
	// MaxReadings bounds the readings one message may give (lines × windows, events).
	MaxReadings = 1024
	// maxID bounds a line, region or scenario name as the device spells it.
	maxID = 64
	// maxLines bounds the lines or regions of one message, as the native protocol does.
	maxLines = 64
)

func reject(reason, format string, args ...any) *Rejection {
	return &Rejection{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// prefixed adds the vendor's and the device's names to a rejection.
func prefixed(format, device string, err error) error {
	var rej *Rejection
	if errors.As(err, &rej) {
		return &Rejection{Reason: rej.Reason, Err: fmt.Errorf("%s device %q: %w", format, device, rej.Err)}
	}
	return &Rejection{Reason: "malformed", Err: fmt.Errorf("%s device %q: %w", format, device, err)}
}

// Vendor JSON is decoded as strictly as the native protocol (ingest/payload.go), with
// go-json-experiment/json: an object naming a member twice is refused (ambiguous), names
// match exactly, invalid UTF-8 is refused, and counts read only JSON numbers that are whole
// and non-negative. Unknown members are ignored: firmware adds fields between versions.

// decodeJSON unmarshals one JSON document strictly and names the rule a payload broke.
func decodeJSON(body []byte, v any) *Rejection {
	if !utf8.Valid(body) {
		return reject("malformed", "payload is not UTF-8 text")
	}
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	field := ""
	var se *json.SemanticError
	if errors.As(err, &se) {
		field = strings.TrimPrefix(string(se.JSONPointer), "/")
	}
	var rej *Rejection
	switch {
	case errors.As(err, &rej):
		if field == "" {
			return rej
		}
		return &Rejection{Reason: rej.Reason, Err: fmt.Errorf("%s %w", field, rej.Err)}
	case errors.Is(err, jsontext.ErrDuplicateName):
		var syn *jsontext.SyntacticError
		if errors.As(err, &syn) {
			return reject("duplicate_key", "%q appears more than once in /%s: ambiguous, so nothing is counted",
				syn.JSONPointer.LastToken(), strings.TrimPrefix(string(syn.JSONPointer.Parent()), "/"))
		}
		return reject("duplicate_key", "a name appears more than once in one object: %v", err)
	case se != nil && field != "":
		return reject("wrong_type", "%s must be %s, not %s", field, typeWord(se.GoType), KindWord(se.JSONKind))
	case se != nil:
		return reject("malformed", "payload must be a JSON object, not %s", KindWord(se.JSONKind))
	}
	return reject("malformed", "payload is not JSON: %v", err)
}

// KindWord says what a JSON value is, in JSON's words ("a string", "an object"): the one
// spelling of it for every decoder of outside input (the native protocol's too).
func KindWord(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "something else"
}

func typeWord(t reflect.Type) string {
	if t == nil {
		return "another JSON type"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a JSON object"
	case reflect.Slice, reflect.Array:
		return "a JSON array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int64, reflect.Uint64, reflect.Float64:
		return "a number"
	}
	return "another JSON type"
}

// truncate keeps a rejection readable whatever a device sends.
func truncate(v []byte) string {
	const limit = 40
	if len(v) > limit {
		return string(v[:limit]) + "…"
	}
	return string(v)
}

// ReadWhole reads the next JSON value as a figure: a JSON number, whole and non-negative, up
// to 2^64 − 1, read exactly (no float in between); null reads as absent (set is false). A
// quoted number is refused: the protocols document numbers, and a string there is a
// different device or a bridge that mangles values. This is the one reader of such figures
// for the native protocol and the vendor formats, so that both refuse the same values in the
// same words. A value refused comes back as reason, the code of the rule it broke
// ("wrong_type", "negative" or "out_of_range"), and err, what was wrong without the field's
// name (the caller's decoder adds it), for each decoder to wrap in its own rejection type.
// An error of the JSON text itself comes back as err with no reason.
func ReadWhole(dec *jsontext.Decoder) (v uint64, set bool, reason string, err error) {
	val, err := dec.ReadValue()
	if err != nil {
		return 0, false, "", err
	}
	switch val.Kind() {
	case 'n':
		return 0, false, "", nil
	case '0':
	case '"':
		return 0, false, "wrong_type", fmt.Errorf("must be a JSON number, not the string %s (quoted numbers are refused)", truncate(val))
	default:
		return 0, false, "wrong_type", fmt.Errorf("must be a JSON number, not %s", KindWord(val.Kind()))
	}
	v, reason, err = WholeLiteral(val)
	return v, err == nil, reason, err
}

// WholeLiteral reads a JSON number literal (its syntax already checked by jsontext) as a
// non-negative integer; a refusal comes back as for ReadWhole.
func WholeLiteral(val jsontext.Value) (v uint64, reason string, err error) {
	switch {
	case val[0] == '-':
		return 0, "negative", fmt.Errorf("is negative (%s)", truncate(val))
	case bytes.ContainsAny(val, ".eE"):
		return 0, "wrong_type", fmt.Errorf("must be a whole number, not %s", truncate(val))
	}
	// Only digits remain, so the one possible error is range.
	v, perr := strconv.ParseUint(string(val), 10, 64)
	if perr != nil {
		return 0, "out_of_range", fmt.Errorf("%s is more than 2^64 − 1", truncate(val))
	}
	return v, "", nil
}

// figure is a whole number read from a payload; set is false where it was null or absent.
type figure struct {
	v   uint64
	set bool
}

// get checks the figure against its bound.
func (f figure) get(field string, limit uint64) (uint64, *Rejection) {
	if f.v > limit {
		return 0, reject("out_of_range", "%s %d is more than %d", field, f.v, limit)
	}
	return f.v, nil
}

// count is a figure the vendor sends as a JSON number, read by ReadWhole.
type count struct{ figure }

func (n *count) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	v, set, reason, err := ReadWhole(dec)
	switch {
	case reason == "negative":
		// The vendor formats call a negative count out_of_range (docs/protocol.md), where
		// the native protocol has a code of its own for it.
		return &Rejection{Reason: "out_of_range", Err: err}
	case reason != "":
		return &Rejection{Reason: reason, Err: err}
	case err != nil:
		return err
	}
	*n = count{figure{v: v, set: set}}
	return nil
}

// digits is a count Axis sends as a JSON string: exactly ASCII digits, nothing else (no sign,
// no space, no exponent, no leading "+").
type digits struct{ figure }

func (d *digits) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	s, set, other, err := readString(dec)
	switch {
	case err != nil:
		return err
	case other != 0:
		return reject("wrong_type", "must be a string of digits, not %s", KindWord(other))
	case !set:
		*d = digits{}
		return nil
	}
	if s == "" || len(s) > 20 || strings.TrimLeft(s, "0123456789") != "" {
		return reject("wrong_type", "must be a string of digits, not %q", truncate([]byte(s)))
	}
	v, perr := strconv.ParseUint(s, 10, 64)
	if perr != nil {
		return reject("out_of_range", "%s is more than 2^64 − 1", s)
	}
	*d = digits{figure{v: v, set: true}}
	return nil
}

// readString reads a JSON string; null reads as absent (set is false). Any other kind of
// value comes back as other, for the caller to refuse in its own words. Only the value's
// first token is read, so an object there is the wrong type whatever it holds.
func readString(dec *jsontext.Decoder) (s string, set bool, other jsontext.Kind, err error) {
	tok, err := dec.ReadToken()
	switch {
	case err != nil:
		return "", false, 0, err
	case tok.Kind() == 'n':
		return "", false, 0, nil
	case tok.Kind() == '"':
		return tok.String(), true, 0, nil
	}
	return "", false, tok.Kind(), nil
}

// text is a JSON string (null reads as absent); a number or object there is refused.
type text struct {
	s   string
	set bool
}

func (t *text) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	s, set, other, err := readString(dec)
	switch {
	case err != nil:
		return err
	case other != 0:
		return reject("wrong_type", "must be a string, not %s", KindWord(other))
	}
	*t = text{s: s, set: set}
	return nil
}

// ident is a line, region or scenario id as the device names it: a JSON string or a whole
// number, kept as its decimal text ("1", "1008", "Device1Scenario1").
type ident text

func (id *ident) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	switch k := dec.PeekKind(); k {
	case 'n', '"':
		var t text
		if err := t.UnmarshalJSONFrom(dec); err != nil {
			return err
		}
		if t.set {
			if rej := checkID(t.s); rej != nil {
				return rej
			}
		}
		*id = ident(t)
		return nil
	case '0':
		val, err := dec.ReadValue()
		if err != nil {
			return err
		}
		if val[0] == '-' || bytes.ContainsAny(val, ".eE") || len(val) > 19 {
			return reject("wrong_type", "id must be a non-negative whole number or a string, not %s", truncate(val))
		}
		*id = ident{s: string(val), set: true}
		return nil
	default:
		if _, err := dec.ReadValue(); err != nil {
			return err
		}
		return reject("wrong_type", "id must be a number or a string, not %s", KindWord(k))
	}
}

// checkID refuses ids that no device uses and that would be unreadable in logs and metrics.
func checkID(s string) *Rejection {
	if s == "" || len(s) > maxID {
		return reject("wrong_type", "id must be 1 to %d characters", maxID)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:", r)) {
			return reject("wrong_type", "id %q may hold only letters, digits and - _ . :", truncate([]byte(s)))
		}
	}
	return nil
}

// stamp is an RFC 3339 time stamp in a JSON string.
type stamp struct {
	t   time.Time
	set bool
}

func (st *stamp) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	var t text
	if err := t.UnmarshalJSONFrom(dec); err != nil {
		return err
	}
	if !t.set {
		*st = stamp{}
		return nil
	}
	v, err := parseRFC3339(t.s)
	if err != nil {
		return err
	}
	*st = stamp{t: v, set: true}
	return nil
}

func parseRFC3339(s string) (time.Time, *Rejection) {
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, reject("wrong_type", "must be an RFC 3339 time, not %q", truncate([]byte(s)))
	}
	if v.Year() < 2000 || v.Year() > 2200 {
		return time.Time{}, reject("out_of_range", "time %q is not between the years 2000 and 2200", s)
	}
	return v, nil
}

// unixMillis checks an epoch-millisecond time stamp.
func unixMillis(ms uint64) (time.Time, *Rejection) {
	const lo, hi = 946684800000, 7258118400000 // 2000-01-01, 2200-01-01
	if ms < lo || ms > hi {
		return time.Time{}, reject("out_of_range", "time %d ms is not between the years 2000 and 2200", ms)
	}
	return time.UnixMilli(int64(ms)).UTC(), nil
}

// window checks an interval's bounds and makes its de-duplication key.
func window(from, to time.Time) (string, *Rejection) {
	if !to.After(from) {
		return "", reject("out_of_range", "interval ends (%s) before it starts (%s)", to.Format(time.RFC3339), from.Format(time.RFC3339))
	}
	if to.Sub(from) > 31*24*time.Hour {
		return "", reject("out_of_range", "interval of %s is longer than a month", to.Sub(from))
	}
	return from.UTC().Format(time.RFC3339Nano) + "/" + to.UTC().Format(time.RFC3339Nano), nil
}
