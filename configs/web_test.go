package configs

import (
	"strings"
	"testing"
	"time"
)

const webBase = `
site: {id: s1, timezone: UTC}
zones:
  - {id: store, capacity: 100}
  - {id: hall, parent: store, capacity: 50}
doors:
  - {id: d1, from: outside, to: hall}
`

func TestWebSectionsParse(t *testing.T) {
	cfg, err := Parse([]byte(webBase+`
floors:
  - id: g
    name: Ground
    width: 100
    height: 50
    zones:
      - {zone: hall, polygon: [[0, 0], [50, 0], [50, 50.5e-1]]}
screens:
  - id: door
    zone: hall
    languages: [zh, en]
    orientation: portrait
    alternatives: [{zone: store, arrow: up-right, label: {en: "Gate B", zh: "B 门"}}]
    exit: {arrow: left}
auth:
  users: [{username: guard, password_hash: "$2a$10$abcdefghijklmnopqrstuuJ2xN6HzBDh1JIhVWw3wYd1p7C2zGc6y", role: security}]
  tokens: [{name: door, sha256: "`+strings.Repeat("ab", 32)+`", role: display, screen: door}]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Floors) != 1 || cfg.Floors[0].Zones[0].Polygon[2] != [2]float64{50, 5.05} {
		t.Errorf("floors %+v", cfg.Floors)
	}
	s := cfg.Screens[0]
	if s.Alternatives[0].Label["zh"] != "B 门" || s.Alternatives[0].Arrow != "up-right" || s.Orientation != "portrait" {
		t.Errorf("screen %+v", s)
	}
	if cfg.Signage.Hold != 30*time.Second || cfg.Signage.StaleAfter != 10*time.Second || cfg.Auth.SessionTTL != 12*time.Hour {
		t.Errorf("defaults: %+v %+v", cfg.Signage, cfg.Auth.SessionTTL)
	}
}

func TestWebSectionsValidation(t *testing.T) {
	cases := []struct {
		name, yaml, want string
	}{
		{"floor without size", "floors: [{id: g, zones: []}]", "floors[0]: width and height must be > 0"},
		{"floor bad id", "floors: [{id: 'g g', width: 1, height: 1}]", "floors[0].id"},
		{"duplicate floor", "floors: [{id: g, width: 1, height: 1}, {id: g, width: 1, height: 1}]", "duplicate floor"},
		{"plan not an image", "floors: [{id: g, width: 1, height: 1, plan: plan.txt}]", "floors[0].plan"},
		{"plan missing", "floors: [{id: g, width: 1, height: 1, plan: /nonexistent/plan.png}]", "cannot be read"},
		{"polygon unknown zone", "floors: [{id: g, width: 10, height: 10, zones: [{zone: nope, polygon: [[0,0],[1,0],[1,1]]}]}]", `unknown zone "nope"`},
		{"polygon too short", "floors: [{id: g, width: 10, height: 10, zones: [{zone: hall, polygon: [[0,0],[1,0]]}]}]", "at least 3 points"},
		{"polygon outside", "floors: [{id: g, width: 10, height: 10, zones: [{zone: hall, polygon: [[0,0],[11,0],[1,1]]}]}]", "outside the floor"},
		{"zone twice on a floor", "floors: [{id: g, width: 10, height: 10, zones: [{zone: hall, polygon: [[0,0],[1,0],[1,1]]}, {zone: hall, polygon: [[0,0],[1,0],[1,1]]}]}]", "already drawn"},
		{"screen unknown zone", "screens: [{id: s, zone: nope}]", `screens[0].zone: unknown zone "nope"`},
		{"duplicate screen", "screens: [{id: s, zone: hall}, {id: s, zone: hall}]", "duplicate screen"},
		{"bad arrow", "screens: [{id: s, zone: hall, alternatives: [{zone: store, arrow: sideways}]}]", "arrow"},
		{"alternative is itself", "screens: [{id: s, zone: hall, alternatives: [{zone: hall}]}]", "is the zone the screen guards"},
		{"alternative without zone", "screens: [{id: s, zone: hall, alternatives: [{arrow: left}]}]", "alternatives[0].zone: is required"},
		{"bad language", "screens: [{id: s, zone: hall, languages: [fr]}]", "languages"},
		{"bad label language", "screens: [{id: s, zone: hall, exit: {label: {fr: Sortie}}}]", "exit.label"},
		{"bad orientation", "screens: [{id: s, zone: hall, orientation: diagonal}]", "orientation"},
		{"screen unknown door", "screens: [{id: s, zone: hall, door: nope}]", `screens[0].door: unknown door "nope"`},
		{"alternative unknown door", "screens: [{id: s, zone: store, alternatives: [{zone: hall, door: nope}]}]", `alternatives[0].door: unknown door "nope"`},
		{"playbook bad kind", "alerting: {playbook: {actions: [{kind: fire, key: action.surge}]}}", "actions[0].kind"},
		{"playbook level on another kind", "alerting: {playbook: {actions: [{kind: surge, level: critical, key: action.surge}]}}", "only level alerts have a level"},
		{"playbook bad level", "alerting: {playbook: {actions: [{kind: level, level: busy, key: action.surge}]}}", "must be warning, critical or evacuate"},
		{"playbook bad where", "alerting: {playbook: {actions: [{where: lobby, key: action.surge}]}}", "actions[0].where"},
		{"playbook unknown zone", "alerting: {playbook: {actions: [{zones: [nope], key: action.surge}]}}", `unknown zone "nope"`},
		{"playbook without action", "alerting: {playbook: {actions: [{kind: surge}]}}", "needs key"},
		{"playbook key and text", "alerting: {playbook: {actions: [{kind: surge, key: action.surge, text: {en: x}}]}}", "exclude each other"},
		{"playbook text language", "alerting: {playbook: {actions: [{kind: surge, text: {fr: x}}]}}", `language "fr"`},
		{"playbook language", "alerting: {playbook: {language: fr}}", "alerting.playbook.language"},
		{"hold too long", "signage: {hold: 1h}", "signage.hold"},
		{"stale too short", "signage: {stale_after: 1s}", "signage.stale_after"},
		{"plain password", "auth: {users: [{username: guard, password_hash: secret, role: security}]}", "must be a bcrypt hash"},
		{"user with display role", "auth: {users: [{username: guard, password_hash: '$2a$10$abcdefghijklmnopqrstuuJ2xN6HzBDh1JIhVWw3wYd1p7C2zGc6y', role: display}]}", "screens use tokens"},
		{"duplicate user", "auth: {users: [{username: g, password_hash: x, role: admin}, {username: g, password_hash: x, role: admin}]}", "duplicate user"},
		{"token not hex", "auth: {tokens: [{name: t, sha256: xyz, role: manager}]}", "64 hex digits"},
		{"display token without screen", "auth: {tokens: [{name: t, sha256: " + strings.Repeat("0", 64) + ", role: display}]}", "display token needs"},
		{"screen on a manager token", "screens: [{id: s, zone: hall}]\nauth: {tokens: [{name: t, sha256: " + strings.Repeat("0", 64) + ", role: manager, screen: s}]}", "only display tokens"},
		{"token without name", "auth: {tokens: [{sha256: " + strings.Repeat("0", 64) + ", role: manager}]}", "tokens[0].name"},
		{"session too short", "auth: {session_ttl: 10s}", "auth.session_ttl"},
		{"tls half", "http: {tls: {cert_file: /etc/hostname}}", "cert_file and key_file go together"},
		{"tls missing file", "http: {tls: {cert_file: /nonexistent.pem, key_file: /nonexistent.key}}", "cannot be read"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(webBase+c.yaml), nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
}

// The sign-in file sits beside the database; the feed limits have defaults and bounds.
func TestAuthFileAndFeedLimits(t *testing.T) {
	cfg, err := Parse([]byte(webBase+"storage: {path: /var/lib/cw/store.db}\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.AuthPath(); got != "/var/lib/cw/store.auth.db" {
		t.Errorf("AuthPath %q", got)
	}
	if f := cfg.HTTP.Feed; f.MaxPerUser != 20 || f.MaxPerAddress != 50 || f.MaxTotal != 1000 || cfg.Auth.AuditRetention != 90*24*time.Hour {
		t.Errorf("defaults: %+v, audit retention %v", f, cfg.Auth.AuditRetention)
	}
	for extra, want := range map[string]string{
		"http: {feed: {max_per_user: 0}}":           "http.feed.max_per_user",
		"http: {feed: {max_total: 1000000}}":        "http.feed.max_total",
		"auth: {audit_retention: 1h}":               "auth.audit_retention",
		"storage: {path: a.db}\nauth: {path: a.db}": "auth.path",
	} {
		_, err := Parse([]byte(webBase+extra+"\n"), nil)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want a problem with %s", extra, err, want)
		}
	}
}
