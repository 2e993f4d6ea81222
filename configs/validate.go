package configs

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
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
	if c.Storage.Path == "" {
		bad("storage.path", "is required")
	}
	// Durations need a unit ("5ms", "2m"): a bare number is nanoseconds, which the bounds
	// below catch.
	if c.Storage.CommitInterval < 100*time.Microsecond || c.Storage.CommitInterval > time.Second {
		bad("storage.commit_interval", "%v must be between 100µs and 1s (write a unit, e.g. 5ms)", c.Storage.CommitInterval)
	}
	if c.HTTP.LiveInterval < 10*time.Millisecond || c.HTTP.LiveInterval > 2*time.Second {
		bad("http.live_interval", "%v must be between 10ms and 2s (write a unit, e.g. 50ms)", c.HTTP.LiveInterval)
	}
	if c.Storage.CommitMode != "idle" && c.Storage.CommitMode != "interval" {
		bad("storage.commit_mode", "%q must be idle or interval", c.Storage.CommitMode)
	}
	if c.Storage.LogRetention != 0 && c.Storage.LogRetention < time.Hour {
		bad("storage.log_retention", "%v must be 0 (keep for ever) or at least 1h (write a unit, e.g. 168h)", c.Storage.LogRetention)
	}
	if c.Storage.CommitBatch < 1 || c.Storage.CommitBatch > MaxCommitBatch {
		bad("storage.commit_batch", "%d must be between 1 and %d", c.Storage.CommitBatch, MaxCommitBatch)
	}
	if err := checkListen(c.HTTP.Listen); err != nil {
		bad("http.listen", "%v", err)
	}
	if c.MQTT.Broker == "" {
		// An empty plain listener turns plain TCP off (TLS only); validateEmbedded says
		// when neither listener is set.
		for key, addr := range map[string]string{"mqtt.embedded.listen": c.MQTT.Embedded.Listen,
			"mqtt.embedded.tls.listen": c.MQTT.Embedded.TLS.Listen} {
			if addr == "" {
				continue
			}
			if err := checkListen(addr); err != nil {
				bad(key, "%v", err)
			}
		}
	}
	if c.MQTT.TopicPrefix == "" || strings.ContainsAny(c.MQTT.TopicPrefix, "#+") {
		bad("mqtt.topic_prefix", "%q must be non-empty and contain no wildcards", c.MQTT.TopicPrefix)
	}
	if c.MQTT.Broker != "" {
		u, err := url.Parse(c.MQTT.Broker)
		if err != nil || u.Host == "" {
			bad("mqtt.broker", "%q is not a broker URL such as tcp://host:1883", c.MQTT.Broker)
		} else if !slices.Contains([]string{"tcp", "mqtt", "ssl", "tls", "mqtts", "ws", "wss"}, u.Scheme) {
			bad("mqtt.broker", "scheme %q is not one of tcp, mqtt, ssl, tls, mqtts, ws, wss", u.Scheme)
		} else if t := c.MQTT.TLS; (t.CAFile != "" || t.CertFile != "" || t.InsecureSkipVerify) &&
			!slices.Contains([]string{"ssl", "tls", "mqtts", "wss"}, u.Scheme) {
			bad("mqtt.tls", "is set but %s:// is unencrypted; use ssl:// (or wss://) for TLS", u.Scheme)
		}
		if len(c.MQTT.Embedded.Users) > 0 {
			bad("mqtt.embedded.users", "accounts are for the embedded broker; with mqtt.broker set, configure them on that broker")
		}
	}
	if (c.MQTT.TLS.CertFile == "") != (c.MQTT.TLS.KeyFile == "") {
		bad("mqtt.tls", "cert_file and key_file go together")
	}
	if c.MQTT.MaxPayload < 64 || c.MQTT.MaxPayload > MaxPayloadLimit {
		bad("mqtt.max_payload", "%d must be between 64 and %d bytes", c.MQTT.MaxPayload, MaxPayloadLimit)
	}
	if c.MQTT.QueueSize < 1 || c.MQTT.QueueSize > MaxQueueSize {
		bad("mqtt.queue_size", "%d must be between 1 and %d", c.MQTT.QueueSize, MaxQueueSize)
	}
	c.validateEmbedded(bad) // TLS listener, CONNECT deadline, connection and will limits: configs/mqtt.go
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

	c.validateHistory(bad)

	zoneIdx := map[string]int{}
	if len(c.Zones) == 0 {
		bad("zones", "at least one zone is required")
	}
	for i, z := range c.Zones {
		key := fmt.Sprintf("zones[%d]", i)
		switch {
		case z.ID == "":
			bad(key+".id", "is required")
		case z.ID == Outside:
			bad(key+".id", "%q is reserved for the world outside the store", Outside)
		case !idPattern.MatchString(z.ID):
			bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", z.ID)
		default:
			if j, dup := zoneIdx[z.ID]; dup {
				bad(key+".id", "duplicate zone %q (also zones[%d])", z.ID, j)
			} else {
				zoneIdx[z.ID] = i
			}
		}
		if z.Capacity < 1 || z.Capacity > MaxCapacity {
			bad(key+".capacity", "%d must be between 1 and %d (zone %q)", z.Capacity, MaxCapacity, z.ID)
		}
		if z.AreaM2 < 0 {
			bad(key+".area_m2", "must be >= 0 (zone %q)", z.ID)
		}
	}
	for i, z := range c.Zones {
		if z.Parent == "" {
			continue
		}
		if _, ok := zoneIdx[z.Parent]; !ok {
			bad(fmt.Sprintf("zones[%d].parent", i), "unknown zone %q", z.Parent)
		}
	}
	for _, cycle := range parentCycles(c.Zones, zoneIdx) {
		bad(fmt.Sprintf("zones[%d].parent", zoneIdx[cycle[0]]), "parent cycle %s", strings.Join(cycle, " -> "))
	}

	knownSide := func(id string) bool {
		_, ok := zoneIdx[id]
		return ok || id == Outside
	}
	doorIDs := map[string]int{}
	type binding struct{ device, line string }
	bound := map[binding]string{}
	widths := map[string]int{}
	counterDevices := map[string]bool{}
	for i := range c.Doors {
		d := &c.Doors[i]
		key := fmt.Sprintf("doors[%d]", i)
		if d.ID == "" {
			bad(key+".id", "is required")
		} else if !idPattern.MatchString(d.ID) {
			bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", d.ID)
		} else if j, dup := doorIDs[d.ID]; dup {
			bad(key+".id", "duplicate door %q (also doors[%d])", d.ID, j)
		} else {
			doorIDs[d.ID] = i
		}
		if !knownSide(d.From) {
			bad(key+".from", "unknown zone %q", d.From)
		}
		if !knownSide(d.To) {
			bad(key+".to", "unknown zone %q", d.To)
		}
		if d.From == d.To {
			bad(key, "door %q leads from %q to itself", d.ID, d.From)
		}
		if d.WidthM < 0 {
			bad(key+".width_m", "must be >= 0")
		}
		if d.Counter.Device == "" {
			continue // an uncounted door: allowed, the alerting issue flags what it weakens
		}
		if !idPattern.MatchString(d.Counter.Device) {
			bad(key+".counter.device", "%q must be letters, digits, '.', '_' or '-' (at most 64)", d.Counter.Device)
		}
		if d.Counter.Line == "" {
			d.Counter.Line = DefaultLine
		}
		if d.Counter.Width == 0 {
			d.Counter.Width = 32
		}
		if !(d.Counter.Width == 16 || d.Counter.Width == 32 || d.Counter.Width == 64) {
			bad(key+".counter.width", "%d must be 16, 32 or 64 bits", d.Counter.Width)
		}
		b := binding{d.Counter.Device, d.Counter.Line}
		if other, dup := bound[b]; dup {
			bad(key+".counter", "device %q line %q is already bound to door %q", b.device, b.line, other)
		} else {
			bound[b] = d.ID
		}
		if w, seen := widths[d.Counter.Device]; seen && w != d.Counter.Width {
			bad(key+".counter.width", "device %q is declared %d bits on another door", d.Counter.Device, w)
		} else {
			widths[d.Counter.Device] = d.Counter.Width
		}
		counterDevices[d.Counter.Device] = true
	}

	sensorDevices := map[string]int{}
	for i, s := range c.Sensors {
		key := fmt.Sprintf("sensors[%d]", i)
		if !idPattern.MatchString(s.Device) {
			bad(key+".device", "%q must be letters, digits, '.', '_' or '-' (at most 64)", s.Device)
		}
		if _, ok := zoneIdx[s.Zone]; !ok {
			bad(key+".zone", "unknown zone %q", s.Zone)
		}
		if counterDevices[s.Device] {
			bad(key+".device", "device %q is already bound as a door counter", s.Device)
		}
		if j, dup := sensorDevices[s.Device]; dup {
			bad(key+".device", "device %q is already bound (sensors[%d])", s.Device, j)
		} else {
			sensorDevices[s.Device] = i
		}
	}

	c.validateAlerting(bad, zoneIdx)

	users := map[string]bool{}
	for i, u := range c.MQTT.Embedded.Users {
		key := fmt.Sprintf("mqtt.embedded.users[%d]", i)
		if u.Username == "" || u.Password == "" {
			bad(key, "username and password are required")
		}
		if users[u.Username] {
			bad(key+".username", "duplicate user %q", u.Username)
		}
		users[u.Username] = true
		switch u.Role {
		case "device":
			if _, ok := sensorDevices[u.Username]; !ok && !counterDevices[u.Username] {
				bad(key+".username", "device user %q is not a configured device", u.Username)
			}
		case "reader":
		default:
			bad(key+".role", "%q must be device or reader", u.Role)
		}
	}
	c.validateWeb(bad)   // floors, screens, users, tokens, HTTPS: configs/web.go
	c.validateNames(bad) // names per language: configs/names.go
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

// parentCycles returns each cycle in the parent relation once, as the ids along it.
func parentCycles(zs []Zone, idx map[string]int) [][]string {
	parent := map[string]string{}
	for _, z := range zs {
		if z.Parent != "" {
			parent[z.ID] = z.Parent
		}
	}
	reported := map[string]bool{}
	var cycles [][]string
	for _, z := range zs {
		seen := map[string]int{}
		var path []string
		for id := z.ID; id != ""; id = parent[id] {
			if _, ok := idx[id]; !ok {
				break
			}
			if at, ok := seen[id]; ok {
				cyc := append(path[at:], id)
				if !reported[id] {
					for _, c := range cyc {
						reported[c] = true
					}
					cycles = append(cycles, cyc)
				}
				break
			}
			seen[id] = len(path)
			path = append(path, id)
		}
	}
	return cycles
}

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
