package configs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const embeddedStore = `
site: {id: s1, timezone: UTC}
zones: [{id: a, capacity: 1}]
doors: [{id: d, from: outside, to: a, counter: {device: dc-01}}]
`

func TestEmbeddedBrokerDefaults(t *testing.T) {
	cfg, err := Parse([]byte(embeddedStore), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.MQTT.Embedded
	if e.ConnectTimeout != 10*time.Second || e.MaxConnections != 1000 || e.MaxConnectionsPerAddress != 100 ||
		e.MaxWillPayload != 256 || e.TLS.Listen != "" || e.Listen != ":1883" {
		t.Fatalf("defaults not applied: %+v", e)
	}
}

// Lowering max_payload or max_connections alone keeps the file valid with the other defaults.
func TestSmallLimitsKeepTheOtherDefaults(t *testing.T) {
	if _, err := Parse([]byte(embeddedStore+"mqtt: {max_payload: 128, embedded: {max_connections: 20}}\n"), nil); err != nil {
		t.Fatal(err)
	}
}

func TestEmbeddedBrokerTLSOnly(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"c.pem", "k.pem", "ca.pem"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// An explicit empty listen turns the plain listener off, leaving only TLS.
	cfg, err := Parse([]byte(embeddedStore+`
mqtt:
  embedded:
    listen: ""
    tls: {listen: ":8883", cert_file: `+dir+`/c.pem, key_file: `+dir+`/k.pem, client_ca_file: `+dir+`/ca.pem}
    users: [{username: dc-01, password: p, role: device}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MQTT.Embedded.Listen != "" || cfg.MQTT.Embedded.TLS.Listen != ":8883" {
		t.Fatalf("listeners: %+v", cfg.MQTT.Embedded)
	}
	if w := cfg.EmbeddedBrokerWarnings(); len(w) != 0 {
		t.Fatalf("warned about a TLS-only broker: %v", w)
	}
}

func TestEmbeddedBrokerValidation(t *testing.T) {
	cases := []struct{ name, mqtt, want string }{
		{"no listener", `{embedded: {listen: ""}}`, "mqtt.embedded.listen: is empty and so is mqtt.embedded.tls.listen"},
		{"tls without certificate", `{embedded: {tls: {listen: ":8883"}}}`, "mqtt.embedded.tls: listen is set, so cert_file and key_file are required"},
		{"certificate without tls listener", `{embedded: {tls: {cert_file: /x.pem, key_file: /y.pem}}}`, "tls.listen is empty"},
		{"unreadable certificate", `{embedded: {tls: {listen: ":8883", cert_file: /nonexistent/c.pem, key_file: /nonexistent/k.pem}}}`,
			`mqtt.embedded.tls.cert_file: "/nonexistent/c.pem" cannot be read`},
		{"same port", `{embedded: {listen: ":1883", tls: {listen: ":1883", cert_file: /x, key_file: /y}}}`, "give TLS its own port"},
		{"connect timeout without unit", `{embedded: {connect_timeout: 10}}`, "mqtt.embedded.connect_timeout: 10ns must be between 1s and 5m"},
		{"no connections", `{embedded: {max_connections: 0}}`, "mqtt.embedded.max_connections: must be >= 1"},
		{"no connections per address", `{embedded: {max_connections_per_address: 0}}`,
			"mqtt.embedded.max_connections_per_address: must be >= 1"},
		{"will too large", `{embedded: {max_will_payload: 100000}}`,
			"mqtt.embedded.max_will_payload: 100000 must be between 16 and 65536 bytes"},
		{"will too small", `{embedded: {max_will_payload: 8}}`, "mqtt.embedded.max_will_payload: 8 must be between 16 and 65536 bytes"},
		{"embedded tls with external broker", `{broker: "ssl://b:8883", embedded: {tls: {listen: ":8883", cert_file: /x, key_file: /y}}}`,
			"with mqtt.broker set, use mqtt.tls"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(embeddedStore+"mqtt: "+tc.mqtt+"\n"), nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error with %q, got %v", tc.want, err)
			}
		})
	}
}

func TestPlainListenerWarningForDevices(t *testing.T) {
	cases := []struct {
		listen string
		users  string
		warn   bool
	}{
		{":1883", "[{username: dc-01, password: p, role: device}]", true},
		{"0.0.0.0:1883", "[{username: dc-01, password: p, role: device}]", true},
		{"192.168.1.5:1883", "[{username: dc-01, password: p, role: device}]", true},
		{"127.0.0.1:1883", "[{username: dc-01, password: p, role: device}]", false},
		{"[::1]:1883", "[{username: dc-01, password: p, role: device}]", false},
		{"localhost:1883", "[{username: dc-01, password: p, role: device}]", false},
		{":1883", "[{username: sign, password: p, role: reader}]", false},
		{":1883", "[]", false}, // open broker: check-config already prints OPEN
	}
	for _, tc := range cases {
		cfg, err := Parse([]byte(embeddedStore+"mqtt: {embedded: {listen: \""+tc.listen+"\", users: "+tc.users+"}}\n"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if w := cfg.EmbeddedBrokerWarnings(); (len(w) > 0) != tc.warn {
			t.Errorf("listen %s, users %s: warnings %q, want a warning: %v", tc.listen, tc.users, w, tc.warn)
		}
	}
}
