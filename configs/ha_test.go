package configs

import (
	"strings"
	"testing"
)

func TestHAConfig(t *testing.T) {
	on := func(kv ...any) map[string]any {
		m := map[string]any{"ha.enabled": true, "ha.endpoints": []string{"http://127.0.0.1:2379"}}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	for _, c := range []struct {
		name      string
		overrides map[string]any
		problem   string // "" for a valid file
	}{
		{"off by default", nil, ""},
		{"off ignores the rest", map[string]any{"ha.failover": "1ms"}, ""},
		{"on", on(), ""},
		{"on without etcd", map[string]any{"ha.enabled": true}, "ha.endpoints: is required"},
		{"endpoint without scheme", on("ha.endpoints", []string{"127.0.0.1:2379"}), "ha.endpoints"},
		{"failover too short", on("ha.failover", "1s"), "ha.failover"},
		{"bad instance name", on("ha.instance", "a b"), "ha.instance"},
		{"bad prefix", on("ha.prefix", "crowdwatch/"), "ha.prefix"},
		{"state file is the store", on("ha.state_path", "./data/demo.db"), "ha.state_path"},
		{"peers", on("ha.peers", []string{"https://a.store.lan:8080", "https://b.store.lan:8080/"}), ""},
		{"peers by IP", on("ha.peers", []string{"http://10.0.0.5:8080", "http://10.0.0.6:8080"}), ""},
		{"peers without ha", map[string]any{"ha.peers": []string{"https://a.lan", "https://b.lan"}}, "ha.peers: is set but ha.enabled is off"},
		{"one peer", on("ha.peers", []string{"https://a.store.lan"}), "ha.peers: names one address"},
		{"peer without scheme", on("ha.peers", []string{"a.store.lan:8080", "https://b.store.lan"}), "must start with http:// or https://"},
		{"peer with a path", on("ha.peers", []string{"https://a.store.lan/dashboard", "https://b.store.lan"}), "without a path"},
		{"peer with a query", on("ha.peers", []string{"https://a.store.lan?x=1", "https://b.store.lan"}), "without a path, query"},
		{"peer with a user", on("ha.peers", []string{"https://u:p@a.store.lan", "https://b.store.lan"}), "user or password"},
		{"peer twice", on("ha.peers", []string{"https://A.store.lan:443", "https://a.store.lan"}), "listed twice"},
		{"cookie domain", on("ha.peers", []string{"https://a.store.lan", "https://b.store.lan"}, "ha.cookie_domain", "store.lan"), ""},
		{"cookie domain without peers", on("ha.cookie_domain", "store.lan"), "ha.cookie_domain: needs ha.peers"},
		{"cookie domain not covering", on("ha.peers", []string{"https://a.store.lan", "https://b.other.lan"}, "ha.cookie_domain", "store.lan"), "does not cover peer b.other.lan"},
		{"cookie domain on IPs", on("ha.peers", []string{"http://10.0.0.5", "http://10.0.0.6"}, "ha.cookie_domain", "store.lan"), "is an IP address"},
		{"cookie domain with a dot", on("ha.peers", []string{"https://a.store.lan", "https://b.store.lan"}, "ha.cookie_domain", ".store.lan"), "ha.cookie_domain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := Parse(DemoStore(), c.overrides)
			switch {
			case c.problem == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.problem != "" && (err == nil || !strings.Contains(err.Error(), c.problem)):
				t.Fatalf("error %v, want one about %s", err, c.problem)
			}
			if err == nil && c.overrides == nil && (cfg.HA.Enabled || cfg.HA.Failover.String() != "15s") {
				t.Fatalf("defaults: %+v", cfg.HA)
			}
		})
	}
}

func TestPeerOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"https://A.Store.lan:443":   "https://a.store.lan",
		"http://a.store.lan:80/":    "http://a.store.lan",
		"https://a.store.lan:8443":  "https://a.store.lan:8443",
		"http://127.0.0.1:8080":     "http://127.0.0.1:8080",
		"http://[::1]:8080":         "http://[::1]:8080",
		" https://b.store.lan:8080": "https://b.store.lan:8080",
	} {
		if got, err := PeerOrigin(in); err != nil || got != want {
			t.Errorf("PeerOrigin(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a.lan", "ftp://a.lan", "https://", "https://a.lan/x", "https://a.lan#f", "https://u@a.lan"} {
		if got, err := PeerOrigin(in); err == nil {
			t.Errorf("PeerOrigin(%q) = %q, want an error", in, got)
		}
	}
}
