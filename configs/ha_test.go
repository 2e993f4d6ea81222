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
