package configs

import (
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// testFormat is a decoder registered under a name only tests use, so these tests do not
// depend on the real vendor decoders.
type testFormat struct {
	name     string
	counting formats.Semantics
}

func (f testFormat) Name() string                                    { return f.name }
func (f testFormat) Decode(formats.Input) ([]formats.Reading, error) { return nil, nil }
func (f testFormat) Counting() formats.Semantics                     { return f.counting }

func init() {
	if _, ok := formats.Lookup("cfgtest"); !ok {
		formats.Register(testFormat{"cfgtest", formats.SinceReset})
	}
	if _, ok := formats.Lookup(FormatAxis); !ok {
		formats.Register(testFormat{FormatAxis, formats.SinceReset})
	}
	if _, ok := formats.Lookup(FormatChirpStack); !ok {
		formats.Register(testFormat{FormatChirpStack, formats.SinceReset})
	}
}

const vendorStore = `
site: {id: s1, timezone: UTC}
zones: [{id: store, capacity: 100}, {id: upper, parent: store, capacity: 10}]
doors:
  - {id: north, from: outside, to: store, counter: {device: ms-1, line: "1"}}
  - {id: side, from: outside, to: store, counter: {device: ax-1, line: "Device1Scenario1"}, swap: true}
  - {id: stair, from: store, to: upper, counter: {device: lw-1, line: "2", swap: true}}
sensors:
  - {device: ms-2, zone: upper, region: "1"}
`

func TestDevicesAsListOrMap(t *testing.T) {
	list := vendorStore + `
devices:
  - {id: ms-1, format: cfgtest, counting: interval}
  - {id: ax-1, format: axis, serial: ACCC8E012345}
  - {id: lw-1, format: chirpstack, decoded: cfgtest}
  - {id: ms-2, format: cfgtest}
`
	asMap := vendorStore + `
devices:
  offline_after: 45s
  list:
    - {id: ms-1, format: cfgtest, counting: interval}
    - {id: ax-1, format: axis, serial: ACCC8E012345}
    - {id: lw-1, format: chirpstack, decoded: cfgtest}
    - {id: ms-2, format: cfgtest}
`
	for name, src := range map[string]string{"list": list, "map": asMap} {
		t.Run(name, func(t *testing.T) {
			cfg, err := Parse([]byte(src), nil)
			if err != nil {
				t.Fatal(err)
			}
			want := 30 * time.Second
			if name == "map" {
				want = 45 * time.Second
			}
			if cfg.Devices.OfflineAfter != want {
				t.Errorf("offline_after = %v, want %v", cfg.Devices.OfflineAfter, want)
			}
			if got := cfg.Device("ms-1"); got.Format != "cfgtest" || got.Semantics() != formats.Interval {
				t.Errorf("ms-1 = %+v (%v)", got, got.Semantics())
			}
			if got := cfg.Device("lw-1"); got.Semantics() != formats.SinceReset {
				t.Errorf("lw-1 counted by %v", got.Semantics())
			}
			if got := cfg.Device("undeclared"); !got.Native() {
				t.Errorf("an undeclared device is native, got %+v", got)
			}
			if !cfg.Doors[1].Counter.Reversed || !cfg.Doors[2].Counter.Reversed || cfg.Doors[0].Counter.Reversed {
				t.Errorf("swap not folded into reversed: %+v", cfg.Doors)
			}
			if cfg.Sensors[0].Region != "1" {
				t.Errorf("region %q", cfg.Sensors[0].Region)
			}
		})
	}
}

func TestListFormKeepsTheEnvironmentOverride(t *testing.T) {
	t.Setenv("CROWDWATCH_DEVICES_OFFLINE_AFTER", "12s")
	cfg, err := Parse([]byte(vendorStore+"devices: [{id: ms-1, format: cfgtest}, {id: ms-2, format: cfgtest}]\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Devices.OfflineAfter != 12*time.Second {
		t.Errorf("offline_after = %v", cfg.Devices.OfflineAfter)
	}
}

func TestDeviceDeclarationsAreValidated(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct{ name, yaml, want string }{
		{"unknown format lists the known ones", `devices: [{id: ms-1, format: acme}]`, `devices[0].format: unknown format "acme" (known: native, axis, cfgtest, chirpstack`},
		{"not bound", `devices: [{id: ghost, format: cfgtest}]`, `devices[0].id: device "ghost" is not bound`},
		{"declared twice", `devices: [{id: ms-1, format: cfgtest}, {id: ms-1, format: cfgtest}]`, `devices[1].id: device "ms-1" is declared twice`},
		{"envelope without decoded", `devices: [{id: lw-1, format: chirpstack}]`, `devices[0].decoded: a chirpstack device needs the format`},
		{"decoded unknown", `devices: [{id: lw-1, format: chirpstack, decoded: nope}]`, `devices[0].decoded: unknown decoded format "nope"`},
		{"decoded on another format", `devices: [{id: ms-1, format: cfgtest, decoded: cfgtest}]`, `devices[0].decoded: only a chirpstack device`},
		{"serial on another format", `devices: [{id: ms-1, format: cfgtest, serial: ABC}]`, `devices[0].serial: only an axis device`},
		{"bad serial", `devices: [{id: ax-1, format: axis, serial: "a/b"}]`, `devices[0].serial: "a/b" must be`},
		{"duplicate serial", `devices: [{id: ax-1, format: axis, serial: ABC}, {id: ms-1, format: axis, serial: abc}]`, `devices[1].serial: serial "abc" is already device "ax-1"'s`},
		{"counting unknown", `devices: [{id: ms-1, format: cfgtest, counting: sometimes}]`, `devices[0].counting: "sometimes" must be`},
		{"counter counted absolute", `devices: [{id: ms-1, format: cfgtest, counting: absolute}]`, `devices[0].counting: device "ms-1" counts doors`},
		{"sensor counted by crossings", `devices: [{id: ms-2, format: cfgtest, counting: interval}]`, `devices[0].counting: device "ms-2" measures a zone`},
		{"native with vendor settings", `devices: [{id: ms-1, counting: interval}]`, `devices[0]: device "ms-1" speaks the native protocol`},
		{"region on a native sensor", ``, `sensors[0].region: device "ms-2" speaks the native protocol`},
		{"swap against reversed", `doors: [{id: x, from: outside, to: store, counter: {device: ms-1, reversed: true, swap: false}}]`, `doors[0].counter.swap: swap: false and reversed: true`},
		{"door swap against counter swap", `doors: [{id: x, from: outside, to: store, swap: true, counter: {device: ms-1, swap: false}}]`, `doors[0].swap: swap and counter.swap say different things`},
		{"device token without device", `auth: {tokens: [{name: t, sha256: ` + tok + `, role: device}]}`, `auth.tokens[0].device: device token needs the id of a configured device, not ""`},
		{"device on another token", `auth: {tokens: [{name: t, sha256: ` + tok + `, role: manager, device: ms-1}]}`, `auth.tokens[0].device: only device tokens name a device`},
		{"ingest body limit", `http: {ingest: {max_body: 10}}`, `http.ingest.max_body: 10 must be between 64`},
		{"device offline_after under a second", `devices: [{id: ms-1, format: cfgtest, offline_after: 500ms}]`, `devices[0].offline_after: 500ms must be at least 1s`},
		{"device offline_after without a unit", `devices: [{id: ms-1, format: cfgtest, offline_after: 900}]`, `devices[0].offline_after: 900ns must be at least 1s`},
		{"device offline_after zero", `devices: [{id: ms-1, offline_after: 0s}]`, `devices[0].offline_after: 0s must be at least 1s`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := vendorStore + c.yaml
			if strings.HasPrefix(c.yaml, "doors:") {
				src = "site: {id: s1, timezone: UTC}\nzones: [{id: store, capacity: 100}]\n" + c.yaml
			}
			_, err := Parse([]byte(src), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant a problem containing %s", err, c.want)
			}
		})
	}
}

func TestDeviceTokenIsAccepted(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cfg, err := Parse([]byte(vendorStore+"devices: [{id: ms-1, format: cfgtest}, {id: ms-2, format: cfgtest}]\nauth: {tokens: [{name: ms-1, sha256: "+tok+", role: device, device: ms-1}]}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Auth.Tokens[0].Device != "ms-1" || cfg.HTTP.Ingest.MaxBody != 256<<10 {
		t.Errorf("token %+v, max_body %d", cfg.Auth.Tokens[0], cfg.HTTP.Ingest.MaxBody)
	}
}

// A device's own offline_after takes the place of devices.offline_after for it alone, in
// either form of the devices section.
func TestDeviceOfflineAfter(t *testing.T) {
	for _, yaml := range []string{`
devices:
  - {id: ms-1, format: cfgtest, offline_after: 15m}
  - {id: ax-1, format: axis}
  - {id: ms-2, format: cfgtest}
`, `
devices:
  offline_after: 30s
  list:
    - {id: ms-1, format: cfgtest, offline_after: 15m}
    - {id: ax-1, format: axis}
    - {id: ms-2, format: cfgtest}
`} {
		cfg, err := Parse([]byte(vendorStore+yaml), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := cfg.OfflineAfter("ms-1"); got != 15*time.Minute {
			t.Errorf("ms-1: %v, want its own 15m", got)
		}
		for _, id := range []string{"ax-1", "lw-1"} { // declared without one, not declared
			if got := cfg.OfflineAfter(id); got != 30*time.Second {
				t.Errorf("%s: %v, want devices.offline_after", id, got)
			}
		}
	}
}
