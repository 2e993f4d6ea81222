package formats

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
)

// Envelope reads a LoRaWAN network server's MQTT uplink event and hands its decoded object
// (the codec's output, "object" / "decoded_payload") to inner, the format named by the
// device's `decoded:` in the store file:
//   - ChirpStack v4 (`application/<id>/device/<devEui>/event/up`): deviceInfo.devEui,
//     fCnt, time, object;
//   - ChirpStack v3: devEUI, fCnt, object (rxInfo[0].time when present);
//   - The Things Stack v3: end_device_ids.dev_eui, uplink_message.f_cnt,
//     uplink_message.decoded_payload, received_at.
//
// The frame counter orders the uplinks (Seq) and keys the inner format's interval and
// increment readings ("fcnt 57"), so an uplink that arrives twice (two gateways behind two
// network servers, an MQTT redelivery) changes nothing; totals and area counts need no key.
// The network server's receive time is the reading's time (LoRa devices keep none). Events
// other than uplinks (join, ack, status, on a topic ending in /event/<type> or
// /<type> for The Things Stack) carry nothing to count.
func Envelope(inner Decoder) Decoder { return envelope{inner: inner} }

// ForDevice builds the decoder of a device from its store-file settings: the format, and for
// an envelope format the format of the decoded object inside (`decoded:`).
func ForDevice(format, decoded string) (Decoder, error) {
	if format == "chirpstack" {
		if decoded == "" {
			return nil, fmt.Errorf("format chirpstack needs decoded: the format of the network server's decoded object (%s)", strings.Join(innerNames(), ", "))
		}
		inner, ok := Lookup(decoded)
		if !ok || inner.Name() == "chirpstack" {
			return nil, fmt.Errorf("decoded: %q is not a format a decoded object can be in (%s)", decoded, strings.Join(innerNames(), ", "))
		}
		return Envelope(inner), nil
	}
	if decoded != "" {
		return nil, fmt.Errorf("decoded: is only for format chirpstack, not %q", format)
	}
	d, ok := Lookup(format)
	if !ok {
		return nil, fmt.Errorf("format %q is not one of %s", format, strings.Join(Names(), ", "))
	}
	return d, nil
}

func innerNames() []string {
	var out []string
	for _, n := range Names() {
		if n != "chirpstack" {
			out = append(out, n)
		}
	}
	return out
}

// The registry's "chirpstack" has no inner format: it refuses everything with the reason.
// Devices are built with ForDevice (or Envelope), which supplies the inner one.
func init() { Register(envelope{}) }

type envelope struct{ inner Decoder }

func (e envelope) Name() string { return "chirpstack" }

func (e envelope) Counting() Semantics {
	if e.inner == nil {
		return SinceReset
	}
	return e.inner.Counting()
}

type lnsEnvelope struct {
	// ChirpStack v4.
	DeviceInfo *struct {
		DevEUI text `json:"devEui"`
	} `json:"deviceInfo"`
	FCnt   count           `json:"fCnt"`
	Time   stamp           `json:"time"`
	Object *jsontext.Value `json:"object"`
	// ChirpStack v3.
	DevEUI text `json:"devEUI"`
	RxInfo []struct {
		Time stamp `json:"time"`
	} `json:"rxInfo"`
	// The Things Stack.
	EndDeviceIDs *struct {
		DevEUI text `json:"dev_eui"`
	} `json:"end_device_ids"`
	ReceivedAt stamp `json:"received_at"`
	Uplink     *struct {
		FCnt       count           `json:"f_cnt"`
		Decoded    *jsontext.Value `json:"decoded_payload"`
		ReceivedAt stamp           `json:"received_at"`
	} `json:"uplink_message"`
}

func (e envelope) Decode(in Input) ([]Reading, error) {
	if e.inner == nil {
		return nil, &Rejection{Reason: "unsupported", Err: fmt.Errorf("chirpstack device %q: no decoded format set (decoded: in the store file)", in.Device)}
	}
	rs, rej := e.decode(in)
	if rej != nil {
		return nil, prefixed("chirpstack", in.Device, rej)
	}
	return rs, nil
}

func (e envelope) decode(in Input) ([]Reading, error) {
	if event := lnsEvent(in.Topic); event != "" && event != "up" {
		return nil, nil
	}
	var w lnsEnvelope
	if rej := decodeJSON(in.Body, &w); rej != nil {
		return nil, rej
	}
	var fcnt count
	var object *jsontext.Value
	when := w.Time
	switch {
	case w.Uplink != nil:
		fcnt, object = w.Uplink.FCnt, w.Uplink.Decoded
		if when = w.Uplink.ReceivedAt; !when.set {
			when = w.ReceivedAt
		}
	case w.DeviceInfo != nil || w.DevEUI.set:
		fcnt, object = w.FCnt, w.Object
		if !when.set && len(w.RxInfo) > 0 {
			when = w.RxInfo[0].Time
		}
	default:
		return nil, reject("unsupported", "neither a ChirpStack (deviceInfo, devEUI) nor a The Things Stack (uplink_message) uplink")
	}
	if !fcnt.set && object == nil {
		// A join, status, ack or log event on a topic that does not say which (a network
		// server's event topic set to one topic per device): nothing to count.
		return nil, nil
	}
	if !fcnt.set {
		return nil, reject("missing_field", "the uplink's frame counter (fCnt, f_cnt) is required: it is what a repeated uplink is known by")
	}
	seq, rej := fcnt.get("fCnt", 1<<32-1)
	if rej != nil {
		return nil, rej
	}
	if object == nil || object.Kind() != '{' {
		return nil, reject("missing_field", "the uplink has no decoded object: set the device's codec on the network server")
	}
	inner := in
	inner.Body = *object
	rs, err := e.inner.Decode(inner)
	if err != nil {
		var r *Rejection
		if errors.As(err, &r) {
			return nil, &Rejection{Reason: r.Reason, Err: fmt.Errorf("decoded object: %w", r.Err)}
		}
		return nil, err
	}
	for i := range rs {
		r := &rs[i]
		r.Format = "chirpstack+" + e.inner.Name()
		r.Seq, r.HasSeq = seq, true
		if r.DeviceTime.IsZero() {
			r.DeviceTime = when.t
		}
		if r.Semantics == Interval || r.Semantics == Increment {
			k := fmt.Sprintf("fcnt %d", seq)
			if r.Key != "" {
				k += " " + r.Key
			}
			r.Key = k
		}
	}
	return rs, nil
}

// lnsEvent is the event type an uplink topic names: ChirpStack v4 ".../event/up", v3
// ".../rx" (an uplink) or ".../join", The Things Stack ".../up". "" when the topic says
// nothing (HTTP, or a topic set on the device or its bridge).
func lnsEvent(topic string) string {
	// Only the network servers' own topic trees: a device of this site named "join" on
	// <prefix>/<site>/counter/join must not be taken for a join event.
	if !strings.HasPrefix(topic, "application/") && !strings.HasPrefix(topic, "v3/") {
		return ""
	}
	parts := strings.Split(topic, "/")
	last := parts[len(parts)-1]
	if len(parts) >= 2 && parts[len(parts)-2] == "event" {
		return last // ChirpStack v4
	}
	switch last {
	case "rx", "up":
		return "up"
	case "join", "ack", "status", "error", "txack", "location", "integration",
		"down", "queued", "sent", "failed", "nack":
		return last
	}
	return ""
}
