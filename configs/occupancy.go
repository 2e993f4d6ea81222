package configs

import (
	"fmt"
	"strings"
	"time"
)

// ResetClock parses DailyReset; hour and minute are -1 when it is "off".
func (o Occupancy) ResetClock() (hour, minute int, err error) {
	s := strings.TrimSpace(o.DailyReset)
	if s == "off" {
		return -1, -1, nil
	}
	t, perr := time.Parse("15:04", s)
	if perr != nil {
		return 0, 0, fmt.Errorf("%q must be HH:MM (24-hour, site time) or off", o.DailyReset)
	}
	return t.Hour(), t.Minute(), nil
}

// validateOccupancy checks the occupancy and devices sections.
func (c *Config) validateOccupancy(bad func(key, format string, args ...any)) {
	if _, _, err := c.Occupancy.ResetClock(); err != nil {
		bad("occupancy.daily_reset", "%v", err)
	}
	if c.Occupancy.MaxClockSkew < time.Second {
		bad("occupancy.max_clock_skew", "%v must be at least 1s (write a unit, e.g. 2m)", c.Occupancy.MaxClockSkew)
	}
	if c.Occupancy.ClampAfter < time.Second {
		bad("occupancy.clamp_after", "%v must be at least 1s (write a unit, e.g. 60s)", c.Occupancy.ClampAfter)
	}
	if c.Devices.OfflineAfter < time.Second {
		bad("devices.offline_after", "%v must be at least 1s (write a unit, e.g. 30s)", c.Devices.OfflineAfter)
	}

}
