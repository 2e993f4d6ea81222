package configs

import (
	"fmt"
	"slices"
	"time"
)

// SecurityAlerts is the `alerting.security:` block: when refused attempts (wrong passwords,
// refused MQTT logins, ACL and will refusals, unknown devices, client-id collisions, limits
// hit) become an alert. Events are counted per kind and source address over Window; Threshold
// events of one kind from one source raise an alert, which resolves after Quiet without any.
type SecurityAlerts struct {
	Window time.Duration `mapstructure:"window"`
	Quiet  time.Duration `mapstructure:"quiet"`
	// Thresholds per event kind; a kind not listed uses DefaultThreshold; 0 turns a kind's
	// alert off (the events are still counted and logged).
	DefaultThreshold int            `mapstructure:"default_threshold"`
	Thresholds       map[string]int `mapstructure:"thresholds"`
}

// SecurityEventKinds are the kinds the service reports (package security).
var SecurityEventKinds = []string{"signin_failed", "signin_throttled", "mqtt_auth_failed", "acl_refused", "will_refused",
	"unknown_device", "client_id_collision", "connection_limit", "token_refused"}

func init() {
	for k, v := range map[string]any{
		"alerting.security.window":            "5m",
		"alerting.security.quiet":             "15m",
		"alerting.security.default_threshold": 5,
		// One colliding client id or one will outside the account's topics is not a typo:
		// somebody is trying to take a device's place or spoof a topic.
		"alerting.security.thresholds": map[string]int{"client_id_collision": 1, "will_refused": 1, "acl_refused": 3},
	} {
		defaults[k] = v
	}
}

// SecurityThreshold is how many events of kind from one source within the window raise an
// alert; 0 means never.
func (s *SecurityAlerts) SecurityThreshold(kind string) int {
	if n, ok := s.Thresholds[kind]; ok {
		return n
	}
	return s.DefaultThreshold
}

func (c *Config) validateSecurity(bad func(key, format string, args ...any)) {
	s := &c.Alerting.Security
	if s.Window < 10*time.Second || s.Window > 24*time.Hour {
		bad("alerting.security.window", "%v must be between 10s and 24h (write a unit, e.g. 5m)", s.Window)
	}
	if s.Quiet < time.Minute || s.Quiet > 7*24*time.Hour {
		bad("alerting.security.quiet", "%v must be between 1m and 168h (write a unit, e.g. 15m)", s.Quiet)
	}
	if s.DefaultThreshold < 0 || s.DefaultThreshold > 1_000_000 {
		bad("alerting.security.default_threshold", "%d must be between 0 (off) and 1000000", s.DefaultThreshold)
	}
	for k, n := range s.Thresholds {
		if !slices.Contains(SecurityEventKinds, k) {
			bad(fmt.Sprintf("alerting.security.thresholds.%s", k), "unknown event kind (one of %v)", SecurityEventKinds)
		}
		if n < 0 || n > 1_000_000 {
			bad(fmt.Sprintf("alerting.security.thresholds.%s", k), "%d must be between 0 (off) and 1000000", n)
		}
	}
}
