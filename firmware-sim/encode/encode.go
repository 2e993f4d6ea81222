// Package encode makes a simulated device's reports in a vendor's own format (Milesight,
// Xovis, Axis, Hikvision, a ChirpStack uplink around Milesight's LoRaWAN object), from what
// the device counted: totals since its last reset per line, or an area's head count. Each
// Encoder keeps what the real firmware keeps (the last window's end, the counter values, the
// frame or post counter), so the reports are exactly what such a device would send, and
// ingest/formats reads them back (encode_test.go checks the round trip).
//
// An Encoder belongs to one device's goroutine; it is not safe for concurrent use.
package encode

import (
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"time"
)

// Device is what an encoder needs to know of the simulated device.
type Device struct {
	ID     string
	Sensor bool
	// Lines are the counting lines as the store file binds them (door counter.line).
	Lines []string
	// Region is a sensor's region, logic or scenario id ("" = the format's default).
	Region string
	// Interval asks for interval reports where the format has both kinds.
	Interval bool
	// Serial is an Axis camera's serial in its topic (default: made from the id).
	Serial string
	// TopicBase is "<prefix>/<site>/": devices that publish over MQTT do so on
	// TopicBase+"counter/"+ID (the topic installers set on the device).
	TopicBase string
	// Start is when the device started counting: the first interval window begins there.
	Start time.Time
	// ClockSkew is added to every time the device's own clock stamps.
	ClockSkew time.Duration
}

// Message is one report on the wire.
type Message struct {
	Topic       string // MQTT topic; "" over HTTP
	Body        []byte
	ContentType string // HTTP
}

// Transports.
const (
	MQTT = "mqtt"
	HTTP = "http"
)

// Encoder makes one device's reports.
type Encoder interface {
	// Transport is MQTT or HTTP (POST <base>/ingest/v1/<device>).
	Transport() string
	// Interval says the reports are interval windows: a device keeps them through an
	// outage and sends them on its return.
	Interval() bool
	// Report is what the device sends at now, given its totals since the last reset per line
	// (counters) or its head count (sensors). It may be nothing (no new window yet).
	Report(now time.Time, totals map[string][2]uint64, occupancy int64) []Message
	// Reset says the device's count was reset to zero at now (a reset schedule, a button),
	// which the device's totals already show.
	Reset(now time.Time)
	// ResetDetectable says whether a reset at these totals can be told from the next report
	// by a format without a reset marker: some line's total must be well above what one
	// report can carry after the reset, so that the next total is a decrease.
	ResetDetectable(totals map[string][2]uint64) bool
	// Malformed is a broken report, as a firmware bug or a cut connection makes one.
	Malformed() Message
}

// Formats lists the formats New knows.
func Formats() []string { return []string{"axis", "chirpstack", "hikvision", "milesight", "xovis"} }

// New returns the encoder of a format for a device, or why the device cannot speak it.
func New(format string, d Device) (Encoder, error) {
	if !d.Sensor && len(d.Lines) == 0 {
		return nil, fmt.Errorf("device %s: a counter with no lines", d.ID)
	}
	d.Lines = slices.Sorted(slices.Values(d.Lines))
	switch format {
	case "milesight":
		return newMilesight(d), nil
	case "chirpstack":
		return newChirpstack(d)
	case "xovis":
		return newXovis(d)
	case "axis":
		return newAxis(d)
	case "hikvision":
		return newHikvision(d)
	}
	return nil, fmt.Errorf("device %s: format %q is not one of %v", d.ID, format, Formats())
}

// resetThreshold: a total past it on some line makes a reset visible as a decrease, since no
// simulated door passes that many people between two reports.
const resetThreshold = 1000

func detectable(totals map[string][2]uint64) bool {
	for _, t := range totals {
		if t[0] >= resetThreshold || t[1] >= resetThreshold {
			return true
		}
	}
	return false
}

// serial makes a device's hardware-looking id (Axis serial, LoRa DevEUI) from its id.
func serial(id string, hexDigits int) string {
	h := fnv.New64a()
	h.Write([]byte(id))
	s := fmt.Sprintf("%016X", h.Sum64())
	return s[:hexDigits]
}

func numeric(id string) bool {
	_, err := strconv.ParseUint(id, 10, 32)
	return err == nil
}

// cut is a report broken off mid-way.
func cut(b []byte) []byte { return b[:len(b)/2] }

// delta is what a line counted since the last report (totals since a reset only grow).
func delta(now, last [2]uint64) [2]uint64 { return [2]uint64{now[0] - last[0], now[1] - last[1]} }
