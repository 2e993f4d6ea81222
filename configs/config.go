// Package configs loads and validates the store file: the site, its zones and doors, which
// device watches which door, and how the service talks to its broker and disk. The YAML files
// beside this code are the shipped examples; demo-store.yaml is embedded for `crowdwatch demo`.
package configs

import (
	"bytes"
	"embed"
	"fmt"
	"os"
	"strings"
	"time"
	// Edge boxes often lack /usr/share/zoneinfo; site.timezone must resolve anyway.
	_ "time/tzdata"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Outside is the reserved zone id for the world beyond the store's doors.
const Outside = "outside"

//go:embed demo-store.yaml
var demoStore []byte

//go:embed scenarios/*.yaml
var scenarios embed.FS

// DemoStore returns the YAML of the embedded demo store.
func DemoStore() []byte { return bytes.Clone(demoStore) }

// Scenario returns the YAML of a shipped simulator scenario (scenarios/NAME.yaml).
func Scenario(name string) ([]byte, error) {
	b, err := scenarios.ReadFile("scenarios/" + name + ".yaml")
	if err != nil {
		return nil, fmt.Errorf("no shipped scenario %q (see configs/scenarios)", name)
	}
	return b, nil
}

// Config is the whole store file after defaults and environment overrides.
type Config struct {
	Site      Site        `mapstructure:"site"`
	HTTP      HTTP        `mapstructure:"http"`
	Storage   Storage     `mapstructure:"storage"`
	MQTT      MQTT        `mapstructure:"mqtt"`
	Occupancy Occupancy   `mapstructure:"occupancy"`
	Devices   Devices     `mapstructure:"devices"`
	History   History     `mapstructure:"history"`
	Zones     []Zone      `mapstructure:"zones"`
	Doors     []Door      `mapstructure:"doors"`
	Sensors   []Sensor    `mapstructure:"sensors"`
	Alerting  Alerting    `mapstructure:"alerting"`
	Floors    []Floor     `mapstructure:"floors"`  // dashboard map (configs/web.go)
	Screens   []Screen    `mapstructure:"screens"` // guidance screens (configs/web.go)
	Signage   Signage     `mapstructure:"signage"`
	Auth      Auth        `mapstructure:"auth"`   // sign-in: users and API tokens
	Events    []EventPlan `mapstructure:"events"` // promotion plans (configs/events.go)
	// EventsFile keeps the plans made through the API; beside storage.path when "".
	EventsFile string     `mapstructure:"events_path"`
	Assessment Assessment `mapstructure:"assessment"` // capacity assessment (configs/planning.go)
	Staffing   Staffing   `mapstructure:"staffing"`   // staffing rules (configs/planning.go)
	HA         HA         `mapstructure:"ha"`         // two instances with a standby (configs/ha.go)

	// EventDay: door metering, drills, PA announcements (configs/eventday.go).
	EventDay EventDay `mapstructure:"event_day"`

	// Location is Site.Timezone resolved; set by validation.
	Location *time.Location `mapstructure:"-"`
}

type Site struct {
	ID string `mapstructure:"id"`
	// Name is the default-language name (Names.Default()); Names is what the file gives,
	// a plain string or one per language (configs/names.go). The same holds for zones,
	// floors and screens.
	Name     string `mapstructure:"-"`
	Names    Names  `mapstructure:"name"`
	Timezone string `mapstructure:"timezone"`
}

type HTTP struct {
	Listen string `mapstructure:"listen"`
	// LiveInterval is the least time between two updates of the live feed: a change is sent
	// at once when the last update is older, else when this much has passed since it, so a
	// burst of commits becomes one update and a quiet store's change shows immediately.
	LiveInterval time.Duration `mapstructure:"live_interval"`
	TLS          HTTPTLS       `mapstructure:"tls"`  // configs/web.go
	Feed         HTTPFeed      `mapstructure:"feed"` // live feed limits, configs/web.go
	// Ingest bounds devices' HTTP pushes (POST /ingest/v1/{device}), configs/web.go.
	Ingest HTTPIngest `mapstructure:"ingest"`
}

type Storage struct {
	Path string `mapstructure:"path"`
	// CommitMode "idle" (the default) writes as soon as no message is waiting, so a quiet
	// store commits each message at once and a busy one in groups; "interval" always waits
	// CommitInterval to gather a group, for fewer writes on flash storage that wears.
	CommitMode string `mapstructure:"commit_mode"`
	// CommitInterval bounds how long an accepted message waits before its group is written
	// (and acknowledged); CommitBatch caps a group.
	CommitInterval time.Duration `mapstructure:"commit_interval"`
	CommitBatch    int           `mapstructure:"commit_batch"`
	// LogRetention keeps the crossing log (every report's effect, for audits and replays)
	// this long; older entries are folded into a base and deleted. 0 keeps it for ever. The
	// figures themselves, the history and the audit trail of corrections are not affected.
	LogRetention time.Duration `mapstructure:"log_retention"`
}

type MQTT struct {
	TopicPrefix string   `mapstructure:"topic_prefix"`
	Embedded    Embedded `mapstructure:"embedded"`
	// Broker, when set, is an external broker URL (tcp://, ssl://, ws://) and no embedded
	// broker is started.
	Broker   string `mapstructure:"broker"`
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	ClientID string `mapstructure:"client_id"`
	TLS      TLS    `mapstructure:"tls"`
	// MaxPayload is the largest device payload accepted, in bytes.
	MaxPayload int `mapstructure:"max_payload"`
	// QueueSize bounds how many received messages wait for the engine.
	QueueSize int `mapstructure:"queue_size"`
}

type Embedded struct {
	// Listen is the plain-TCP listener; "" turns it off (with TLS.Listen set).
	Listen string `mapstructure:"listen"`
	// Users are the broker's accounts. With none, the broker is open to anyone who can reach
	// it (the demo does this and says so in its log).
	Users []User      `mapstructure:"users"`
	TLS   EmbeddedTLS `mapstructure:"tls"`
	// ConnectTimeout is how long a new connection may take to send its CONNECT (and finish
	// its TLS handshake) before it is closed, so idle sockets cannot pile up.
	ConnectTimeout time.Duration `mapstructure:"connect_timeout"`
	// MaxConnections and MaxConnectionsPerAddress bound the open connections, counted when
	// they are accepted, over all listeners and per remote IP address.
	MaxConnections           int `mapstructure:"max_connections"`
	MaxConnectionsPerAddress int `mapstructure:"max_connections_per_address"`
	// MaxWillPayload is the largest Last Will payload accepted at CONNECT, in bytes. A
	// device's will is "offline"; a longer one is refused with the CONNECT.
	MaxWillPayload int `mapstructure:"max_will_payload"`
}

// EmbeddedTLS is the embedded broker's TLS listener, beside or instead of the plain one.
type EmbeddedTLS struct {
	// Listen is the TLS listener's address (":8883"); "" means no TLS listener.
	Listen   string `mapstructure:"listen"`
	CertFile string `mapstructure:"cert_file"`
	KeyFile  string `mapstructure:"key_file"`
	// ClientCAFile, when set, makes the TLS listener demand a client certificate signed by
	// this CA whose common name (or a DNS name) is the MQTT username.
	ClientCAFile string `mapstructure:"client_ca_file"`
}

// User is an account on the embedded broker. A "device" user's username must be a configured
// device id and may publish only on that device's topics; a "reader" (an LED sign, another
// system) may only subscribe to the site's topics.
type User struct {
	Username string `mapstructure:"username"`
	Password string `mapstructure:"password"`
	Role     string `mapstructure:"role"`
}

type TLS struct {
	CAFile             string `mapstructure:"ca_file"`
	CertFile           string `mapstructure:"cert_file"`
	KeyFile            string `mapstructure:"key_file"`
	InsecureSkipVerify bool   `mapstructure:"insecure_skip_verify"`
}

// Occupancy holds the engine's policy knobs.
type Occupancy struct {
	// DailyReset is "HH:MM" in the site's time zone, or "off" for stores open around the clock.
	DailyReset string `mapstructure:"daily_reset"`
	// MaxClockSkew is how far in the future a device's ts may be before the report is refused.
	MaxClockSkew time.Duration `mapstructure:"max_clock_skew"`
	// ClampAfter is how long a zone may stay below zero, with all its counters live, before
	// the deficit is taken as counting drift and clamped to zero.
	ClampAfter time.Duration `mapstructure:"clamp_after"`
}

// Devices is the `devices` section. It may be written as a map (offline_after, list) or, as
// the issue shows it, directly as the list of device declarations (configs/devices.go); in
// that form offline_after keeps its default.
type Devices struct {
	// OfflineAfter is how long a device may be silent before it is shown offline.
	OfflineAfter time.Duration `mapstructure:"offline_after"`
	// List declares each device's format (configs/devices.go); undeclared devices are native.
	List []DeviceSpec `mapstructure:"list"`
}

type Zone struct {
	ID       string  `mapstructure:"id"`
	Name     string  `mapstructure:"-"`    // Names.Default()
	Names    Names   `mapstructure:"name"` // plain or per language
	Parent   string  `mapstructure:"parent"`
	Capacity int     `mapstructure:"capacity"`
	AreaM2   float64 `mapstructure:"area_m2"`
	// Alerts overrides alerting.defaults for this zone.
	Alerts *Thresholds `mapstructure:"alerts"`
}

type Door struct {
	ID     string  `mapstructure:"id"`
	From   string  `mapstructure:"from"`
	To     string  `mapstructure:"to"`
	WidthM float64 `mapstructure:"width_m"`
	// Stairs marks a stair exit, which passes fewer people per metre than a level door.
	Stairs  bool    `mapstructure:"stairs"`
	Counter Counter `mapstructure:"counter"`
	// Swap is counter.reversed written on the door, as vendors' manuals say it.
	Swap *bool `mapstructure:"swap"`
}

// Counter binds one counting line of a device to a door. "in" on that line is a crossing from
// the door's From side to its To side, unless Reversed says the line was mounted the other way.
type Counter struct {
	Device   string `mapstructure:"device"`
	Line     string `mapstructure:"line"`
	Width    int    `mapstructure:"width"`
	Reversed bool   `mapstructure:"reversed"`
	// Swap is a synonym of Reversed (vendors call it swap); validation folds it into
	// Reversed and refuses the two set differently.
	Swap *bool `mapstructure:"swap"`
}

// Sensor binds an area sensor (absolute head count) to a zone.
type Sensor struct {
	Device string `mapstructure:"device"`
	Zone   string `mapstructure:"zone"`
	// Region is a vendor device's region, area or scenario id whose count is the zone's;
	// "" takes the readings that name no region.
	Region string `mapstructure:"region"`
}

// DefaultLine is the line a one-line counter's top-level in/out are counted on.
const DefaultLine = "1"

// defaults are set through viper so that environment variables can override every scalar key
// (viper only sees an env var for a key it already knows).
var defaults = map[string]any{
	"site.id":                       "",
	"site.name":                     "",
	"site.timezone":                 "UTC",
	"http.listen":                   ":8080",
	"http.live_interval":            "50ms",
	"storage.path":                  "./data/crowdwatch.db",
	"storage.commit_mode":           "idle",
	"storage.commit_interval":       "5ms",
	"storage.commit_batch":          1000,
	"storage.log_retention":         "168h",
	"mqtt.topic_prefix":             "crowdwatch",
	"mqtt.embedded.listen":          ":1883",
	"mqtt.broker":                   "",
	"mqtt.username":                 "",
	"mqtt.password":                 "",
	"mqtt.client_id":                "",
	"mqtt.tls.ca_file":              "",
	"mqtt.tls.cert_file":            "",
	"mqtt.tls.key_file":             "",
	"mqtt.tls.insecure_skip_verify": false,
	"mqtt.max_payload":              4096,
	"mqtt.queue_size":               4096,
	"occupancy.daily_reset":         "04:00",
	"occupancy.max_clock_skew":      "2m",
	"occupancy.clamp_after":         "60s",
	"devices.offline_after":         "30s",
}

// EnvPrefix is the prefix of environment overrides: CROWDWATCH_HTTP_LISTEN sets http.listen.
const EnvPrefix = "CROWDWATCH"

// Load reads a store file, applies defaults, environment overrides and the given overrides
// (flag values keyed like "http.listen"), and validates the result. The error lists every
// problem found, each by its config key.
func Load(path string, overrides map[string]any) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	cfg, err := Parse(data, overrides)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

// Parse is Load on bytes already read.
func Parse(data []byte, overrides map[string]any) (*Config, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	for k, val := range defaults {
		v.SetDefault(k, val)
	}
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	devicesAsList(v) // configs/devices.go
	for k, val := range overrides {
		v.Set(k, val)
	}
	var cfg Config
	err := v.UnmarshalExact(&cfg, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(
			mapstructure.StringToTimeDurationHookFunc(),
			exactNumbers, // configs/types.go
			namesHook,    // configs/names.go
		)
	})
	if err != nil {
		return nil, decodeProblems(err)
	}
	cfg.resolveNames()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}
