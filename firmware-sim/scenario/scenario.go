// Package scenario reads the simulator's scenario files (configs/scenarios/*.yaml): when the
// simulated day starts and ends, when the doors open, how people arrive, stay and move, and
// which device faults to inject.
package scenario

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"sort"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// Scenario is one scenario file after defaults and validation.
type Scenario struct {
	Name  string `mapstructure:"name"`
	Start Clock  `mapstructure:"start"`
	End   Clock  `mapstructure:"end"`
	// Open is when the outside doors open; arrivals before it queue outside.
	Open     Clock      `mapstructure:"open"`
	Arrivals []Arrival  `mapstructure:"arrivals"`
	Dwell    Dwell      `mapstructure:"dwell"`
	Attract  Attraction `mapstructure:"attraction"`
	// LeaveWeight is the weight of a way out against a neighbouring zone's attraction.
	LeaveWeight float64 `mapstructure:"leave_weight"`
	// FollowGuidance makes people avoid crowded zones, as guidance signs would ask.
	FollowGuidance bool `mapstructure:"follow_guidance"`
	// FlowPerMetre limits each door to this many persons per metre of width per minute.
	FlowPerMetre float64 `mapstructure:"flow_per_metre"`
	// EvacuateAt, when set, sends everyone out by the nearest way from that moment.
	EvacuateAt Clock `mapstructure:"evacuate_at"`
	// Metered doors: people go in through each only as its screen's admission allows (the
	// retained guidance topic); while it says wait they queue on its near side, as queues do.
	Metered []Metered `mapstructure:"metered"`
	// OneWay doors are passed only from their from side to their to side: an exit (to:
	// outside) lets nobody in, a one-way turnstile nobody back.
	OneWay  []string `mapstructure:"one_way"`
	Devices Devices  `mapstructure:"devices"`
	Faults  Faults   `mapstructure:"faults"`
}

// Metered is a metered door and the guidance screen whose admission it follows.
type Metered struct {
	Door   string `mapstructure:"door"`
	Screen string `mapstructure:"screen"`
}

// Clock is a wall-clock time of day, "HH:MM", as minutes after midnight (-1 when unset).
type Clock int

// Arrival is one point of the arrival-rate curve.
type Arrival struct {
	At   Clock   `mapstructure:"at"`
	Rate float64 `mapstructure:"rate"` // persons per minute, all outside doors together
}

type Dwell struct {
	Default time.Duration            `mapstructure:"default"`
	Zones   map[string]time.Duration `mapstructure:"zones"`
}

type Attraction struct {
	Default float64            `mapstructure:"default"`
	Zones   map[string]float64 `mapstructure:"zones"`
}

// Devices says how the simulated devices report.
type Devices struct {
	Interval time.Duration `mapstructure:"interval"` // report period, default 1s
	Jitter   float64       `mapstructure:"jitter"`   // share of the interval, default 0.2
	// SensorNoise is the standard deviation of an area sensor's head count, in persons.
	SensorNoise float64 `mapstructure:"sensor_noise"`
}

// Faults are injected on demand; every rate is a probability per report unless named per hour.
type Faults struct {
	Duplicate     float64       `mapstructure:"duplicate"`
	Reorder       float64       `mapstructure:"reorder"`
	Malformed     float64       `mapstructure:"malformed"`
	RebootPerHour float64       `mapstructure:"reboot_per_hour"`
	OfflinePerHr  float64       `mapstructure:"offline_per_hour"`
	OfflineFor    time.Duration `mapstructure:"offline_for"`
	ClockSkew     time.Duration `mapstructure:"clock_skew"`
	// Wrap16 starts every 16-bit counter a little below 65,535 so it wraps early in the run.
	Wrap16 bool `mapstructure:"wrap16"`
	// IntervalDevices send period_in/period_out instead of totals.
	IntervalDevices []string `mapstructure:"interval_devices"`
	// Counting errors, per crossing: missed "in", missed "out", and an extra crossing.
	MissIn  float64 `mapstructure:"miss_in"`
	MissOut float64 `mapstructure:"miss_out"`
	Extra   float64 `mapstructure:"extra"`
}

// Recoverable reports whether every enabled fault is one the protocol recovers from exactly.
func (f Faults) Recoverable() bool { return f.MissIn == 0 && f.MissOut == 0 && f.Extra == 0 }

// Load reads a scenario file.
func Load(path string) (*Scenario, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("scenario: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return s, nil
}

// Parse reads a scenario from YAML.
func Parse(data []byte) (*Scenario, error) {
	v := viper.New()
	v.SetConfigType("yaml")
	for k, val := range map[string]any{
		"start": "09:00", "end": "21:00", "open": "", "evacuate_at": "",
		"dwell.default": "10m", "attraction.default": 1.0, "leave_weight": 0.5, "flow_per_metre": 80.0,
		"devices.interval": "1s", "devices.jitter": 0.2, "devices.sensor_noise": 1.0,
		"faults.offline_for": "2m",
	} {
		v.SetDefault(k, val)
	}
	if err := v.ReadConfig(bytes.NewReader(data)); err != nil {
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	var s Scenario
	err := v.UnmarshalExact(&s, func(dc *mapstructure.DecoderConfig) {
		dc.DecodeHook = mapstructure.ComposeDecodeHookFunc(mapstructure.StringToTimeDurationHookFunc(), clockHook)
	})
	if err != nil {
		return nil, err
	}
	if s.Open < 0 {
		s.Open = s.Start
	}
	return &s, s.validate()
}

func clockHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[Clock]() {
		return data, nil
	}
	str, ok := data.(string)
	if !ok {
		return nil, fmt.Errorf("%v must be \"HH:MM\"", data)
	}
	if str == "" {
		return Clock(-1), nil
	}
	t, err := time.Parse("15:04", str)
	if err != nil {
		return nil, fmt.Errorf("%q must be \"HH:MM\"", str)
	}
	return Clock(t.Hour()*60 + t.Minute()), nil
}

func (s *Scenario) validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if s.Start < 0 || s.End <= s.Start {
		bad("start and end must be set, end after start")
	}
	if len(s.Arrivals) == 0 {
		bad("arrivals: at least one point is required")
	}
	sort.SliceStable(s.Arrivals, func(i, j int) bool { return s.Arrivals[i].At < s.Arrivals[j].At })
	for i, a := range s.Arrivals {
		if a.Rate < 0 || a.At < 0 {
			bad("arrivals[%d]: time and rate must be set, rate >= 0", i)
		}
	}
	if s.Dwell.Default <= 0 {
		bad("dwell.default must be > 0")
	}
	for z, d := range s.Dwell.Zones {
		if d <= 0 {
			bad("dwell.zones.%s must be > 0", z)
		}
	}
	if s.LeaveWeight <= 0 || s.FlowPerMetre <= 0 {
		bad("leave_weight and flow_per_metre must be > 0")
	}
	for i, m := range s.Metered {
		if m.Door == "" || m.Screen == "" {
			bad("metered[%d]: door and screen are required", i)
		}
	}
	if s.Devices.Interval < 100*time.Millisecond {
		bad("devices.interval must be at least 100ms")
	}
	for name, p := range map[string]float64{"duplicate": s.Faults.Duplicate, "reorder": s.Faults.Reorder,
		"malformed": s.Faults.Malformed, "miss_in": s.Faults.MissIn, "miss_out": s.Faults.MissOut, "extra": s.Faults.Extra} {
		if p < 0 || p >= 1 {
			bad("faults.%s must be a probability in [0, 1)", name)
		}
	}
	return errors.Join(errs...)
}

// ArrivalRate is the arrival rate, persons per minute, at minute m of the day.
func (s *Scenario) ArrivalRate(m float64) float64 {
	a := s.Arrivals
	if m <= float64(a[0].At) {
		return a[0].Rate
	}
	for i := 1; i < len(a); i++ {
		if m <= float64(a[i].At) {
			span := float64(a[i].At - a[i-1].At)
			if span == 0 {
				return a[i].Rate
			}
			f := (m - float64(a[i-1].At)) / span
			return a[i-1].Rate + f*(a[i].Rate-a[i-1].Rate)
		}
	}
	return a[len(a)-1].Rate
}

// DwellIn is the mean stay in a zone.
func (s *Scenario) DwellIn(zone string) time.Duration {
	if d, ok := s.Dwell.Zones[zone]; ok {
		return d
	}
	return s.Dwell.Default
}

// AttractionOf is how strongly a zone draws people.
func (s *Scenario) AttractionOf(zone string) float64 {
	if a, ok := s.Attract.Zones[zone]; ok {
		return a
	}
	return s.Attract.Default
}
