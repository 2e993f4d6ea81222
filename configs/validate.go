package configs

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxPayloadLimit is the largest mqtt.max_payload; the embedded broker cuts off packets a little
// above it.
const MaxPayloadLimit = 64 << 10

// MaxCapacity is the largest zone capacity. Corrections are bounded by ten times a zone's
// capacity (zones.MaxCorrectionFactor), so every figure stays far from overflowing.
const MaxCapacity = 100_000_000

// Upper bounds of the queue and batch sizes: each is allocated up front.
const (
	MaxQueueSize   = 1_000_000
	MaxCommitBatch = 100_000
)

// hostPattern is a host name or an IPv4 address; IPv6 addresses are checked by net.ParseIP.
var hostPattern = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$`)

// checkListen checks a listen address the way net.Listen will read it, so that a typo fails
// check-config rather than a start that has already created files: host:port with an
// optional host (an IP address or a name) and a port from 0 (any free port) to 65535.
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port (for example 127.0.0.1:8080 or :8080)", addr)
	}
	if host != "" && net.ParseIP(host) == nil && !hostPattern.MatchString(host) {
		return fmt.Errorf("%q: %q is not an IP address or a host name", addr, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || strings.HasPrefix(port, "+") || strings.HasPrefix(port, "-") {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %d is out of range: 0 to 65535", addr, n)
	}
	return nil
}

// idPattern keeps ids safe inside MQTT topics, URLs, metric labels and file names.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate checks the whole file and reports every problem at once, each prefixed by its key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}

	c.validateSite(bad)
	c.validateStorage(bad)   // configs/storage.go
	c.validateHTTP(bad)      // configs/web.go
	c.validateMQTT(bad)      // configs/mqtt.go
	c.validateOccupancy(bad) // configs/occupancy.go
	c.validateHistory(bad)   // configs/history.go
	// Zones, doors and sensors: configs/zones.go.
	zoneIdx := c.validateZones(bad)
	counterDevices := c.validateDoors(bad, zoneIdx)
	sensorDevices := c.validateSensors(bad, zoneIdx, counterDevices)
	c.validateAlerting(bad, zoneIdx)                        // configs/alerting.go
	c.validateDevices(bad, sensorDevices, counterDevices)   // formats: configs/devices.go
	c.validateMQTTUsers(bad, sensorDevices, counterDevices) // configs/mqtt.go
	c.validateWeb(bad)                                      // floors, screens, users, tokens, HTTPS: configs/web.go
	c.validateNames(bad)                                    // names per language: configs/names.go
	c.validateEvents(bad)                                   // promotion plans: configs/events.go
	c.validateHA(bad)                                       // standby instances: configs/ha.go
	c.validateEventDay(bad)                                 // opening alert, drills, PA: configs/eventday.go
	if len(errs) == 0 {
		return nil
	}
	return &ValidationError{Problems: errs}
}

// ValidationError lists every problem found in a config, one per line.
type ValidationError struct {
	Problems []error
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d problem(s):", len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

func (e *ValidationError) Unwrap() []error { return e.Problems }

// validateSite checks the site's id and time zone, and sets c.Location.
func (c *Config) validateSite(bad func(key, format string, args ...any)) {
	if c.Site.ID == "" {
		bad("site.id", "is required")
	} else if !idPattern.MatchString(c.Site.ID) {
		bad("site.id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", c.Site.ID)
	}
	if loc, err := time.LoadLocation(c.Site.Timezone); err != nil || c.Site.Timezone == "" {
		bad("site.timezone", "%q is not a known time zone (use an IANA name such as Asia/Shanghai)", c.Site.Timezone)
	} else {
		c.Location = loc
	}
}
