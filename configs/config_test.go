package configs

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestShippedConfigsAreValid(t *testing.T) {
	for _, name := range []string{"demo-store.yaml", "store-example.yaml", "calit2.yaml"} {
		t.Run(name, func(t *testing.T) {
			cfg, err := Load(name, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfg.Zones) == 0 || len(cfg.Doors) == 0 || cfg.Location == nil {
				t.Fatalf("loaded an empty store: %+v", cfg)
			}
		})
	}
}

func TestDefaultsAndLineNormalisation(t *testing.T) {
	cfg, err := Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != ":8080" || cfg.MQTT.TopicPrefix != "crowdwatch" || cfg.MQTT.MaxPayload != 4096 {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg.Doors[0].Counter.Line != DefaultLine || cfg.Doors[0].Counter.Width != 32 {
		t.Errorf("counter defaults: %+v", cfg.Doors[0].Counter)
	}
	if cfg.Location.String() != "Asia/Shanghai" {
		t.Errorf("location %v", cfg.Location)
	}
}

func TestEnvironmentAndFlagOverrides(t *testing.T) {
	t.Setenv("CROWDWATCH_HTTP_LISTEN", "127.0.0.1:9999")
	t.Setenv("CROWDWATCH_STORAGE_PATH", "/tmp/x.db")
	t.Setenv("CROWDWATCH_OCCUPANCY_MAX_CLOCK_SKEW", "10s")
	cfg, err := Parse([]byte(minimal), map[string]any{"storage.path": "/tmp/flag.db"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.Listen != "127.0.0.1:9999" {
		t.Errorf("env override of http.listen ignored: %q", cfg.HTTP.Listen)
	}
	if cfg.Storage.Path != "/tmp/flag.db" {
		t.Errorf("flag should win over env: %q", cfg.Storage.Path)
	}
	if cfg.Occupancy.MaxClockSkew.String() != "10s" {
		t.Errorf("duration env override: %v", cfg.Occupancy.MaxClockSkew)
	}
}

const minimal = `
site: {id: s1, timezone: Asia/Shanghai}
zones:
  - {id: store, capacity: 100}
  - {id: hall, parent: store, capacity: 10, area_m2: 20}
doors:
  - {id: d1, from: outside, to: hall, counter: {device: dc-01}}
`

func TestValidationListsEveryProblemByKey(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string
	}{
		{"unknown parent and door side", `
site: {id: s1, timezone: UTC}
zones: [{id: a, parent: nope, capacity: 1}]
doors: [{id: d, from: outside, to: ghost}]`,
			[]string{`zones[0].parent: unknown zone "nope"`, `doors[0].to: unknown zone "ghost"`}},
		{"duplicates", `
site: {id: s1, timezone: UTC}
zones: [{id: a, capacity: 1}, {id: a, capacity: 1}]
doors: [{id: d, from: outside, to: a}, {id: d, from: a, to: outside}]`,
			[]string{`zones[1].id: duplicate zone "a"`, `doors[1].id: duplicate door "d"`}},
		{"parent cycle", `
site: {id: s1, timezone: UTC}
zones: [{id: a, parent: b, capacity: 1}, {id: b, parent: c, capacity: 1}, {id: c, parent: a, capacity: 1}]`,
			[]string{"parent cycle a -> b -> c -> a"}},
		{"self parent", `
site: {id: s1, timezone: UTC}
zones: [{id: a, parent: a, capacity: 1}]`,
			[]string{"parent cycle a -> a"}},
		{"door to itself", `
site: {id: s1, timezone: UTC}
zones: [{id: a, capacity: 1}]
doors: [{id: d, from: a, to: a}]`,
			[]string{`doors[0]: door "d" leads from "a" to itself`}},
		{"device bound twice", `
site: {id: s1, timezone: UTC}
zones: [{id: a, capacity: 1}]
doors: [{id: d1, from: outside, to: a, counter: {device: x}}, {id: d2, from: a, to: outside, counter: {device: x, line: "1"}}]
sensors: [{device: x, zone: a}]`,
			[]string{`doors[1].counter: device "x" line "1" is already bound to door "d1"`, `sensors[0].device: device "x" is already bound as a door counter`}},
		{"capacity", `
site: {id: s1, timezone: UTC}
zones: [{id: a, capacity: 0}, {id: b, capacity: -5}, {id: c, capacity: 100000001}]`,
			[]string{`zones[0].capacity: 0 must be between 1 and 100000000`, `zones[1].capacity: -5 must be between 1 and 100000000`,
				`zones[2].capacity: 100000001 must be between 1 and 100000000`}},
		{"capacity: exact whole numbers in range", `
site: {id: s1, timezone: UTC}
storage: {commit_batch: 2.5}
mqtt: {queue_size: 18446744073709551615, max_payload: true}
zones: [{id: a, capacity: 10.7}, {id: b, capacity: 9223372036854775808}, {id: c, capacity: 10.0}]`,
			[]string{`zones[0].capacity: 10.7 is not a whole number`,
				`zones[1].capacity: 9223372036854775808 is out of range: a whole number from -9223372036854775808 to 9223372036854775807`,
				`zones[2].capacity: 10 is written as a decimal number`,
				`storage.commit_batch: 2.5 is not a whole number`, `mqtt.queue_size: 18446744073709551615 is out of range`,
				`mqtt.max_payload: true is not a number`}},
		{"listen addresses", `
site: {id: s1, timezone: UTC}
http: {listen: "127.0.0.1:99999"}
mqtt: {embedded: {listen: "localhost"}}
zones: [{id: a, capacity: 1}]`,
			[]string{`http.listen: "127.0.0.1:99999": port 99999 is out of range: 0 to 65535`, `mqtt.embedded.listen: "localhost" is not host:port`}},
		{"listen address port and host", `
site: {id: s1, timezone: UTC}
http: {listen: "bad host!:80"}
mqtt: {embedded: {listen: ":http"}}
zones: [{id: a, capacity: 1}]`,
			[]string{`http.listen: "bad host!:80": "bad host!" is not an IP address or a host name`, `mqtt.embedded.listen: ":http": port "http" is not a number from 0 to 65535`}},
		{"live interval", `
site: {id: s1, timezone: UTC}
http: {live_interval: 5}
zones: [{id: a, capacity: 1}]`,
			[]string{`http.live_interval: 5ns must be between 10ms and 2s`}},
		{"time zone", `
site: {id: s1, timezone: Mars/Olympus}
zones: [{id: a, capacity: 1}]`,
			[]string{`site.timezone: "Mars/Olympus" is not a known time zone`}},
		{"unknown key is a typo, not ignored", `
site: {id: s1, timezone: UTC}
zones: [{id: a, capacty: 5}]`,
			[]string{"capacty"}},
		{"wrong type", `
site: {id: s1, timezone: UTC}
zones: [{id: a, capacity: lots}]`,
			[]string{"capacity"}},
		{"reserved id, bad reset time, bad width", `
site: {id: s1, timezone: UTC}
occupancy: {daily_reset: "25:00"}
zones: [{id: outside, capacity: 1}, {id: b, capacity: 1}]
doors: [{id: d, from: outside, to: b, counter: {device: x, width: 12}}]`,
			[]string{`zones[0].id: "outside" is reserved`, `occupancy.daily_reset: "25:00" must be HH:MM`, `doors[0].counter.width: 12 must be 16, 32 or 64`}},
		{"device user must be a device", `
site: {id: s1, timezone: UTC}
mqtt: {embedded: {users: [{username: ghost, password: p, role: device}, {username: r, password: p, role: admin}]}}
zones: [{id: a, capacity: 1}]`,
			[]string{`mqtt.embedded.users[0].username: device user "ghost" is not a configured device`, `mqtt.embedded.users[1].role: "admin" must be device or reader`}},
		{"not yaml", "zones: [", []string{"not valid YAML"}},
		{"durations without a unit", `
site: {id: s1, timezone: UTC}
occupancy: {max_clock_skew: 120}
devices: {offline_after: 30}
zones: [{id: a, capacity: 1}]`,
			[]string{"occupancy.max_clock_skew: 120ns must be at least 1s", "devices.offline_after: 30ns must be at least 1s"}},
		{"TLS on an unencrypted broker URL", `
site: {id: s1, timezone: UTC}
mqtt: {broker: "tcp://broker:1883", tls: {ca_file: /etc/ca.pem}}
zones: [{id: a, capacity: 1}]`,
			[]string{"mqtt.tls: is set but tcp:// is unencrypted"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.yaml), nil)
			if err == nil {
				t.Fatal("accepted a bad file")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("want a clear missing-file error, got %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"demo-store.yaml", "store-example.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(minimal))
	f.Add([]byte("zones: [{id: a, parent: a}]"))
	// Exact types: fractions, huge and unsigned numbers, booleans, strings.
	for _, v := range []string{"10.7", "10.0", "1e3", "9223372036854775808", "18446744073709551615", "-9223372036854775809", "true", `"12"`, `"1_000"`, "0x10"} {
		f.Add([]byte("site: {id: s, timezone: UTC}\nmqtt: {queue_size: " + v + "}\nzones: [{id: a, capacity: " + v + "}]\n"))
	}
	for _, v := range []string{"127.0.0.1:99999", ":-1", "[::1]:80", "host:0", ":", "a b:1"} {
		f.Add([]byte("site: {id: s, timezone: UTC}\nhttp: {listen: \"" + v + "\"}\nzones: [{id: a, capacity: 5}]\n"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, nil)
		if err != nil {
			return
		}
		// Whatever the loader accepts must satisfy the invariants the engine relies on.
		ids := map[string]bool{}
		for _, z := range cfg.Zones {
			if z.ID == "" || z.ID == Outside || ids[z.ID] || z.Capacity <= 0 || z.Capacity > MaxCapacity {
				t.Fatalf("accepted bad zone %+v", z)
			}
			ids[z.ID] = true
		}
		for _, d := range cfg.Doors {
			if d.From == d.To || (!ids[d.From] && d.From != Outside) || (!ids[d.To] && d.To != Outside) {
				t.Fatalf("accepted bad door %+v", d)
			}
		}
		if cfg.Location == nil {
			t.Fatal("accepted config without a location")
		}
		if err := checkListen(cfg.HTTP.Listen); err != nil {
			t.Fatalf("accepted http.listen: %v", err)
		}
		if _, port, _ := net.SplitHostPort(cfg.HTTP.Listen); port == "" {
			t.Fatalf("accepted http.listen %q without a port", cfg.HTTP.Listen)
		}
		if cfg.MQTT.QueueSize < 1 || cfg.MQTT.QueueSize > MaxQueueSize {
			t.Fatalf("accepted mqtt.queue_size %d", cfg.MQTT.QueueSize)
		}
	})
}
