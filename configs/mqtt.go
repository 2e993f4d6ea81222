package configs

import (
	"net"
	"os"
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
