package configs

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// This file holds the embedded broker's hardening settings: its TLS listener, the CONNECT
// deadline, the connection limits and the Last Will size (docs/security.md).

func init() {
	for k, v := range map[string]any{
		"mqtt.embedded.tls.listen":                  "",
		"mqtt.embedded.tls.cert_file":               "",
		"mqtt.embedded.tls.key_file":                "",
		"mqtt.embedded.tls.client_ca_file":          "",
		"mqtt.embedded.connect_timeout":             "10s",
		"mqtt.embedded.max_connections":             1000,
		"mqtt.embedded.max_connections_per_address": 100,
		"mqtt.embedded.max_will_payload":            256,
	} {
		defaults[k] = v
	}
}

// validateEmbedded checks the embedded broker's listeners and limits; bad reports each problem.
func (c *Config) validateEmbedded(bad func(key, format string, args ...any)) {
	e := c.MQTT.Embedded
	t := e.TLS
	if c.MQTT.Broker == "" && e.Listen == "" && t.Listen == "" {
		bad("mqtt.embedded.listen", "is empty and so is mqtt.embedded.tls.listen: the broker would not listen at all")
	}
	if t.Listen != "" {
		if t.CertFile == "" || t.KeyFile == "" {
			bad("mqtt.embedded.tls", "listen is set, so cert_file and key_file are required")
		}
		if e.Listen != "" && e.Listen == t.Listen {
			bad("mqtt.embedded.tls.listen", "%q is also mqtt.embedded.listen; give TLS its own port (8883 is usual)", t.Listen)
		}
	} else if t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" {
		bad("mqtt.embedded.tls", "certificate files are set but tls.listen is empty, so no TLS listener would use them")
	}
	if c.MQTT.Broker != "" && t.Listen != "" {
		bad("mqtt.embedded.tls", "is for the embedded broker; with mqtt.broker set, use mqtt.tls for the connection to that broker")
	}
	for _, f := range []struct{ key, path string }{{"mqtt.embedded.tls.cert_file", t.CertFile},
		{"mqtt.embedded.tls.key_file", t.KeyFile}, {"mqtt.embedded.tls.client_ca_file", t.ClientCAFile}} {
		if f.path != "" {
			if _, err := os.Stat(f.path); err != nil {
				bad(f.key, "%q cannot be read", f.path)
			}
		}
	}
	if e.ConnectTimeout < time.Second || e.ConnectTimeout > 5*time.Minute {
		bad("mqtt.embedded.connect_timeout", "%v must be between 1s and 5m (write a unit, e.g. 10s)", e.ConnectTimeout)
	}
	if e.MaxConnections < 1 {
		bad("mqtt.embedded.max_connections", "must be >= 1")
	}
	// Above max_connections it changes nothing (the total binds first), so lowering only the
	// total keeps the file valid.
	if e.MaxConnectionsPerAddress < 1 {
		bad("mqtt.embedded.max_connections_per_address", "must be >= 1")
	}
	// The broker applies the smaller of this and mqtt.max_payload, so a store with a small
	// max_payload keeps working with the default.
	if e.MaxWillPayload < 16 || e.MaxWillPayload > MaxPayloadLimit {
		bad("mqtt.embedded.max_will_payload", "%d must be between 16 and %d bytes", e.MaxWillPayload, MaxPayloadLimit)
	}
}

// EmbeddedBrokerWarnings lists what is allowed but unsafe in the embedded broker's setup, for
// check-config and the service log: device passwords and counts crossing the store network
// in clear text.
func (c *Config) EmbeddedBrokerWarnings() []string {
	if c.MQTT.Broker != "" || c.MQTT.Embedded.Listen == "" {
		return nil
	}
	devices := 0
	for _, u := range c.MQTT.Embedded.Users {
		if u.Role == "device" {
			devices++
		}
	}
	if devices == 0 || IsLoopback(c.MQTT.Embedded.Listen) {
		return nil
	}
	return []string{"mqtt.embedded.listen " + c.MQTT.Embedded.Listen + " is plain TCP on a non-loopback address: " +
		"device passwords and counts cross the store network in clear text; add mqtt.embedded.tls and " +
		"set mqtt.embedded.listen to \"\" or 127.0.0.1 (docs/security.md)"}
}

// IsLoopback reports whether a listen address ("host:port") only accepts connections from
// this machine. An empty host (":1883") listens on every interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// validateMQTT checks the mqtt section: the listeners, the topic prefix, the external broker,
// TLS and the limits.
func (c *Config) validateMQTT(bad func(key, format string, args ...any)) {
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
}

// validateMQTTUsers checks the embedded broker's accounts; a device account must be a
// configured door counter or sensor.
func (c *Config) validateMQTTUsers(bad func(key, format string, args ...any), sensorDevices map[string]int, counterDevices map[string]bool) {
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
}
