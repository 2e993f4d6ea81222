package ingest

import (
	"fmt"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest/formats"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Transports named in formats.Input.
const (
	TransportMQTT = "mqtt"
	TransportHTTP = "http"
)

// axisTopicRoot is the first level of the topics AXIS Object Analytics publishes on
// (axis/<serial>/event/...), which a store cannot move under its own prefix.
const axisTopicRoot = "axis/"

// AxisSubscription is the filter of the Axis cameras' event topics.
const AxisSubscription = axisTopicRoot + "+/event/#"

// vendors knows each device's format: the one place that decides whether a device's message
// is decoded by the native protocol or by a vendor format, and whose an Axis serial is.
type vendors struct {
	specs   map[string]configs.DeviceSpec // vendor-format devices only
	decs    map[string]formats.Decoder    // their decoders (formats.ForDevice)
	serials map[string]string             // upper-case Axis serial → device id
	kinds   map[string]string             // every declared device → KindCounter or KindOccupancy
}

// newVendors reads each device's kind from the store's model and its format from the store
// file's devices[].
func newVendors(model *zones.Model, list []configs.DeviceSpec) *vendors {
	v := &vendors{specs: map[string]configs.DeviceSpec{}, decs: map[string]formats.Decoder{}, serials: map[string]string{}, kinds: map[string]string{}}
	if model != nil {
		for _, d := range model.Devices {
			if d.Kind == zones.KindCounter {
				v.kinds[d.ID] = KindCounter
			} else {
				v.kinds[d.ID] = KindOccupancy
			}
		}
	}
	for _, d := range list {
		if d.Native() {
			continue
		}
		v.specs[d.ID] = d
		if dec, err := formats.ForDevice(d.Format, d.Decoded); err == nil {
			v.decs[d.ID] = dec // else validation refused the file already; decode says why
		}
		if d.Serial != "" {
			v.serials[strings.ToUpper(d.Serial)] = d.ID
		}
	}
	return v
}

// vendor returns a device's declaration when it speaks a vendor format.
func (v *vendors) vendor(device string) (configs.DeviceSpec, bool) {
	d, ok := v.specs[device]
	return d, ok
}

// axisDevice returns the device of an axis/<serial>/event/... topic; ok is false for any
// other topic, and device is "" for a serial no device declares.
func (v *vendors) axisDevice(topic string) (device, serial string, ok bool) {
	rest, found := strings.CutPrefix(topic, axisTopicRoot)
	if !found {
		return "", "", false
	}
	serial, rest, found = strings.Cut(rest, "/")
	if !found || serial == "" || !(rest == "event" || strings.HasPrefix(rest, "event/")) {
		return "", "", false
	}
	return v.serials[strings.ToUpper(serial)], serial, true
}

// hasAxis tells whether any device is mapped to an Axis serial (then the service subscribes
// to AxisSubscription on an external broker).
func (v *vendors) hasAxis() bool { return len(v.serials) > 0 }

// mayPublishAxis tells whether a device account may publish on an Axis event topic: only on
// its own serial's.
func (v *vendors) mayPublishAxis(username, topic string) (allowed, isAxis bool) {
	device, _, ok := v.axisDevice(topic)
	if !ok {
		return false, false
	}
	return device != "" && device == username, true
}

// decode turns one vendor message into an engine message: its readings, or the rejection its
// decoder gave. It never panics on what a device sends (the decoders are fuzzed; a panic is
// still caught and refused as malformed, so one bad payload cannot stop ingest).
func (v *vendors) decode(spec configs.DeviceSpec, transport, topic, contentType string, body []byte, maxPayload int) (m *zones.Message) {
	received := time.Now()
	m = &zones.Message{Received: received}
	if len(body) > maxPayload {
		m.Reject = zones.Reject("oversized", "device %q: payload of %d bytes is over the %d-byte limit", spec.ID, len(body), maxPayload)
		return m
	}
	dec, ok := v.decs[spec.ID]
	if !ok {
		m.Reject = zones.Reject("unsupported", "device %q: format %q is not built into this service", spec.ID, spec.Format)
		return m
	}
	defer func() {
		if p := recover(); p != nil {
			m.Vendor = nil
			m.Reject = zones.Reject("malformed", "device %q %s: the decoder failed on this payload: %v", spec.ID, spec.Format, p)
		}
	}()
	readings, err := dec.Decode(formats.Input{Device: spec.ID, Transport: transport, Topic: topic, ContentType: contentType,
		Body: body, ReceivedAt: received})
	if err != nil {
		reason := "malformed"
		if rej, ok := err.(*formats.Rejection); ok && rej.Reason != "" {
			reason = rej.Reason
		}
		m.Reject = &zones.RejectError{Reason: reason, Err: fmt.Errorf("device %q %s: %w", spec.ID, spec.Format, err)}
		return m
	}
	for i := range readings {
		readings[i].Device = spec.ID // the topic, URL or serial says whose it is, not the payload
	}
	m.Vendor = &zones.VendorReport{Device: spec.ID, Readings: readings}
	return m
}

// route decodes one MQTT message: a device topic of a native device by the native protocol,
// of a vendor device by its format, and an Axis event topic by the device of its serial. ok
// is false for a topic that is no device's.
func (v *vendors) route(t Topics, topic string, payload []byte, maxPayload int) (m *zones.Message, device string, ok bool) {
	if kind, dev, found := t.Parse(topic); found {
		if spec, vendor := v.vendor(dev); vendor && kind != KindStatus {
			return v.decode(spec, TransportMQTT, topic, "", payload, maxPayload), dev, true
		}
		return Decode(kind, dev, payload, maxPayload), dev, true
	}
	if dev, serial, found := v.axisDevice(topic); found {
		if dev == "" {
			return &zones.Message{Received: time.Now(),
				Reject: zones.Reject("unknown_device", "axis camera %q is no device's serial (devices[].serial)", serial)}, "axis:" + serial, true
		}
		return v.decode(v.specs[dev], TransportMQTT, topic, "", payload, maxPayload), dev, true
	}
	return nil, "", false
}
