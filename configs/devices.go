package configs

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/spf13/viper"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// FormatNative is the service's own protocol (docs/protocol.md), every device's default.
const FormatNative = "native"

// FormatChirpStack is the LoRaWAN network server's envelope; `decoded` names the format of the
// object inside it.
const FormatChirpStack = "chirpstack"

// FormatAxis is the format whose devices may also publish on axis/<serial>/event/#.
const FormatAxis = "axis"

// DeviceSpec declares how one device speaks (`devices.list`, or `devices:` written as a list).
// A device that is bound to a door or a zone but not declared speaks the native protocol.
type DeviceSpec struct {
	ID string `mapstructure:"id"`
	// Format is "native" (the default) or a vendor format (formats.Names).
	Format string `mapstructure:"format"`
	// Decoded is, for a network server's envelope (chirpstack), the format of the decoded
	// object it carries.
	Decoded string `mapstructure:"decoded"`
	// Serial is an Axis camera's serial number: its messages on axis/<serial>/event/... are
	// this device's.
	Serial string `mapstructure:"serial"`
	// Counting chooses which readings count crossings: since_reset, interval or increment
	// (default: the format's own choice, formats.Decoder.Counting). Readings of the other
	// kinds are ignored, so a device sending trigger and periodic messages is counted once.
	Counting string `mapstructure:"counting"`
	// OfflineAfter is how long this device may be silent before it is shown offline, in
	// place of devices.offline_after (nil: that one). For a vendor device that sends no
	// heartbeat and reports less often than the store's allowance (docs/devices.md).
	OfflineAfter *time.Duration `mapstructure:"offline_after"`
}

// OfflineAfter is how long device id may be silent before it is shown offline: its own
// offline_after, else devices.offline_after.
func (c *Config) OfflineAfter(id string) time.Duration { return c.Devices.OfflineAfterFor(id) }

// OfflineAfterFor is Config.OfflineAfter for the devices section alone.
func (ds Devices) OfflineAfterFor(id string) time.Duration {
	for _, d := range ds.List {
		if d.ID == id && d.OfflineAfter != nil {
			return *d.OfflineAfter
		}
	}
	return ds.OfflineAfter
}

// Native reports whether the device speaks the service's own protocol.
func (d DeviceSpec) Native() bool { return d.Format == "" || d.Format == FormatNative }

// Semantics is the semantics the device is counted by: Counting, else the format's default
// (for an envelope, the decoded format's). Zero for a native device.
func (d DeviceSpec) Semantics() formats.Semantics {
	if d.Native() {
		return 0
	}
	if s, ok := ParseSemantics(d.Counting); ok {
		return s
	}
	name := d.Format
	if d.Decoded != "" {
		name = d.Decoded
	}
	if dec, ok := formats.Lookup(name); ok {
		return dec.Counting()
	}
	if dec, ok := formats.Lookup(d.Format); ok {
		return dec.Counting()
	}
	return 0
}

// ParseSemantics reads a `counting` value.
func ParseSemantics(s string) (formats.Semantics, bool) {
	for _, v := range []formats.Semantics{formats.SinceReset, formats.Interval, formats.Increment, formats.Absolute} {
		if v.String() == s {
			return v, true
		}
	}
	return 0, false
}

// Device returns a device's declaration; a device not declared is native.
func (c *Config) Device(id string) DeviceSpec {
	for _, d := range c.Devices.List {
		if d.ID == id {
			return d
		}
	}
	return DeviceSpec{ID: id, Format: FormatNative}
}

// KnownFormats lists the formats a device may declare.
func KnownFormats() []string { return append([]string{FormatNative}, formats.Names()...) }

// devicesAsList lets `devices:` be written as the list of device declarations the issue
// shows (`devices: [{id: ms-1, format: milesight}]`) as well as the older map
// (`devices: {offline_after: 30s, list: [...]}`): a list becomes the map's `list`, and
// offline_after keeps its default or its environment override.
func devicesAsList(v *viper.Viper) {
	list, ok := v.Get("devices").([]any)
	if !ok {
		return
	}
	// viper finds no key under a list, so the default and the environment are read here.
	offline := defaults["devices.offline_after"]
	if env, ok := os.LookupEnv(EnvPrefix + "_DEVICES_OFFLINE_AFTER"); ok {
		offline = env
	}
	v.Set("devices", map[string]any{"list": list, "offline_after": offline})
}

// serialPattern is an Axis serial: it becomes one level of an MQTT topic.
var serialPattern = regexp.MustCompile(`^[A-Za-z0-9]{1,32}$`)

// validateDevices checks the device declarations against the devices bound to doors and zones.
func (c *Config) validateDevices(bad func(key, format string, args ...any), sensorDevices map[string]int, counterDevices map[string]bool) {
	known := KnownFormats()
	ids := map[string]int{}
	serials := map[string]string{}
	for i := range c.Devices.List {
		d := &c.Devices.List[i]
		key := fmt.Sprintf("devices[%d]", i)
		_, sensor := sensorDevices[d.ID]
		switch {
		case d.ID == "":
			bad(key+".id", "is required")
		case !idPattern.MatchString(d.ID):
			bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", d.ID)
		case !sensor && !counterDevices[d.ID]:
			bad(key+".id", "device %q is not bound to any door (doors[].counter.device) or zone (sensors[].device)", d.ID)
		}
		if j, dup := ids[d.ID]; dup && d.ID != "" {
			bad(key+".id", "device %q is declared twice (also devices[%d])", d.ID, j)
		}
		ids[d.ID] = i
		if d.OfflineAfter != nil && *d.OfflineAfter < time.Second {
			bad(key+".offline_after", "%v must be at least 1s (write a unit, e.g. 15m; leave it out to use devices.offline_after)", *d.OfflineAfter)
		}
		if d.Format == "" {
			d.Format = FormatNative
		}
		if !slices.Contains(known, d.Format) {
			bad(key+".format", "unknown format %q (known: %s)", d.Format, strings.Join(known, ", "))
			continue
		}
		if d.Native() {
			if d.Decoded != "" || d.Serial != "" || d.Counting != "" {
				bad(key, "device %q speaks the native protocol: decoded, serial and counting are for vendor formats", d.ID)
			}
			continue
		}
		switch {
		case d.Format == FormatChirpStack && d.Decoded == "":
			bad(key+".decoded", "a %s device needs the format of its decoded object (one of %s)", d.Format, strings.Join(formats.Names(), ", "))
		case d.Format == FormatChirpStack && (d.Decoded == FormatChirpStack || !slices.Contains(formats.Names(), d.Decoded)):
			bad(key+".decoded", "unknown decoded format %q (known: %s)", d.Decoded, strings.Join(slices.DeleteFunc(formats.Names(), func(n string) bool { return n == FormatChirpStack }), ", "))
		case d.Format != FormatChirpStack && d.Decoded != "":
			bad(key+".decoded", "only a %s device names a decoded format", FormatChirpStack)
		}
		if d.Serial != "" {
			if d.Format != FormatAxis {
				bad(key+".serial", "only an %s device has a serial mapped to axis/<serial>/event topics", FormatAxis)
			} else if !serialPattern.MatchString(d.Serial) {
				bad(key+".serial", "%q must be 1 to 32 letters and digits", d.Serial)
			} else if other, dup := serials[strings.ToUpper(d.Serial)]; dup {
				bad(key+".serial", "serial %q is already device %q's", d.Serial, other)
			} else {
				serials[strings.ToUpper(d.Serial)] = d.ID
			}
		}
		if d.Counting != "" {
			s, ok := ParseSemantics(d.Counting)
			switch {
			case !ok:
				bad(key+".counting", "%q must be since_reset, interval or increment for a counter, absolute for a sensor", d.Counting)
			case sensor && s != formats.Absolute:
				bad(key+".counting", "device %q measures a zone (sensors[]): it is counted by absolute readings, not %s", d.ID, d.Counting)
			case !sensor && s == formats.Absolute:
				bad(key+".counting", "device %q counts doors: counting must be since_reset, interval or increment, not absolute", d.ID)
			}
		}
	}
	for i, s := range c.Sensors {
		if s.Region != "" && c.Device(s.Device).Native() {
			bad(fmt.Sprintf("sensors[%d].region", i), "device %q speaks the native protocol, which has no regions; declare its format under devices", s.Device)
		}
	}
}
