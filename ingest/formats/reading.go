// Package formats decodes the payloads of vendors' people counters and area sensors
// (Milesight, Xovis, Axis, Hikvision, and a LoRaWAN network server's envelope around any of
// them) into Readings: what one device message says, in the vendor-neutral terms the
// occupancy engine counts by. Each format's counting rules and de-duplication key are in
// docs/protocol.md; what to set on each device is in docs/devices.md.
//
// Decoders are pure functions of their Input: no clock, no state, no I/O. Whether a reading
// was counted before, and how many people a total since a reset stands for, is the engine's
// business (zones), because only the engine's committed state can answer it exactly once.
package formats

import (
	"maps"
	"slices"
	"time"
)

// Semantics says how a reading's figures relate to crossings.
type Semantics uint8

const (
	// SinceReset: Lines carry totals since the device's last reset (Milesight line_N_total_*,
	// line_trigger_data and line_total_data, Axis Object Analytics "total", Xovis logics
	// counts, Axis live-sum, Hikvision realTime). A new Epoch, or a
	// decrease with a later device time, is a reset; a reset never counts negative people.
	SinceReset Semantics = iota + 1
	// Interval: Lines carry the crossings in [WindowStart, WindowEnd) (Milesight periodic,
	// Axis Retail Data, Hikvision timeRange). Key identifies the window.
	Interval
	// Increment: one crossing event (or a few), Lines carry the crossings of this event
	// (Xovis COUNT_INCREMENT). Key identifies the event. (Milesight's line trigger message
	// carries totals since the reset, so it is SinceReset: docs/protocol.md.)
	Increment
	// Absolute: Count is the number of people in Region now (Milesight region counts,
	// Axis occupancy-in-area, Xovis zone occupancy).
	Absolute
)

func (s Semantics) String() string {
	switch s {
	case SinceReset:
		return "since_reset"
	case Interval:
		return "interval"
	case Increment:
		return "increment"
	case Absolute:
		return "absolute"
	}
	return "unknown"
}

// Input is one message as it arrived.
type Input struct {
	Device      string    // the configured device id the message is for
	Transport   string    // "mqtt" or "http"
	Topic       string    // MQTT topic (empty over HTTP)
	ContentType string    // HTTP Content-Type (multipart bodies carry XML beside a JPEG)
	Body        []byte    // at most the configured payload limit; the caller checks size first
	ReceivedAt  time.Time // the service's clock when the message arrived
}

// Line is one counting line's (logic's, scenario's, channel's) figures, named as the device
// names it: the `counter.line` of a door in the store file binds to Line.ID. In and Out are
// the device's own directions; the store file's swap/reversed setting is applied later.
type Line struct {
	ID      string
	In, Out uint64
}

// Reading is one de-duplicable unit of a device message. One message may give several
// readings (a Milesight message with lines and regions, a Xovis package with several frames).
type Reading struct {
	Device    string
	Format    string // "milesight", "xovis", "axis", "hikvision"; "chirpstack+milesight" etc.
	Semantics Semantics

	Lines  []Line // SinceReset, Interval, Increment; sorted by ID
	Region string // Absolute: the device's region/area/scenario id; "" when it has one
	Count  int64  // Absolute

	// DeviceTime is the device's own clock for this reading, zero when the payload has none
	// (LoRa uplinks): then the engine times it by Input.ReceivedAt. The engine, not the
	// decoder, decides whether to trust it (occupancy.max_clock_skew).
	DeviceTime time.Time
	// WindowStart and WindowEnd bound an Interval reading's crossings.
	WindowStart, WindowEnd time.Time
	// Epoch identifies the count's reset where the device says it (Axis "startTime"), "" when
	// it does not. A different Epoch on the same line means the device was reset.
	Epoch string
	// Seq orders readings where the device numbers its messages (LoRaWAN fCnt, Hikvision
	// activePostCount, Xovis package id) and HasSeq says it does.
	Seq    uint64
	HasSeq bool
	// Key is the de-duplication key within the device: the same Key from the same device is
	// the same reading delivered twice (Interval: window; Increment: event id or counter value;
	// LoRa: fCnt). Empty for SinceReset and Absolute, which are idempotent by their nature.
	Key string
	// Reset is true when the message itself says the count was reset (Xovis COUNT_RESET).
	Reset bool
}

// Rejection is a refused payload: Reason is a short metric label like those of the native
// protocol ("malformed", "wrong_type", "duplicate_key", "out_of_range", "unsupported").
type Rejection struct {
	Reason string
	Err    error
}

func (r *Rejection) Error() string { return r.Reason + ": " + r.Err.Error() }
func (r *Rejection) Unwrap() error { return r.Err }

// Decoder reads one vendor's payloads.
type Decoder interface {
	// Name is the format's name in the store file (`devices[].format`).
	Name() string
	// Decode returns the readings of one message, or a *Rejection. A message that carries
	// nothing to count (a heartbeat, a trigger message on a device counted by its periodic
	// ones) returns no readings and no error.
	Decode(in Input) ([]Reading, error)
	// Counting is the semantics this format counts crossings by unless the store file says
	// otherwise (`devices[].counting`): a device that sends both trigger and periodic messages
	// for one line is counted by one kind only, and readings of the other kinds are ignored.
	Counting() Semantics
}

var registry = map[string]Decoder{}

// Register adds a format; each format's file calls it from init.
func Register(d Decoder) {
	if _, dup := registry[d.Name()]; dup {
		panic("formats: " + d.Name() + " registered twice")
	}
	registry[d.Name()] = d
}

// Lookup returns the decoder of a format named in the store file.
func Lookup(name string) (Decoder, bool) {
	d, ok := registry[name]
	return d, ok
}

// Names lists the registered formats, sorted.
func Names() []string { return slices.Sorted(maps.Keys(registry)) }
