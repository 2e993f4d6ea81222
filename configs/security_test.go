package configs

import (
	"strings"
	"testing"
)

func TestSecurityAlertSettings(t *testing.T) {
	cfg, err := Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Alerting.Security
	for kind, want := range map[string]int{"client_id_collision": 1, "will_refused": 1, "acl_refused": 3, "signin_failed": 5} {
		if got := s.SecurityThreshold(kind); got != want {
			t.Errorf("default threshold of %s = %d, want %d", kind, got, want)
		}
	}
	y := minimal + "alerting:\n  security: {default_threshold: 10, thresholds: {signin_failed: 0}}\n"
	cfg, err = Parse([]byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Alerting.Security.SecurityThreshold("signin_failed"); got != 0 {
		t.Errorf("signin_failed turned off: %d", got)
	}
	if got := cfg.Alerting.Security.SecurityThreshold("mqtt_auth_failed"); got != 10 {
		t.Errorf("mqtt_auth_failed uses the default: %d", got)
	}
	for _, c := range []struct{ yaml, want string }{
		{"alerting:\n  security: {thresholds: {bogus: 1}}\n", `alerting.security.thresholds.bogus: unknown event kind`},
		{"alerting:\n  security: {window: 1s}\n", `alerting.security.window: 1s must be between 10s and 24h`},
		{"alerting:\n  security: {default_threshold: -1}\n", `alerting.security.default_threshold: -1 must be between 0`},
	} {
		_, err := Parse([]byte(minimal+c.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.yaml, err, c.want)
		}
	}
}
