package configs

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Alerting is the `alerting:` block: level thresholds, trend and evacuation-time settings,
// escalation, channels and routes. Everything in it can be reloaded without a restart.
type Alerting struct {
	// Path is the alert database (open alerts, acknowledgements, silences, evacuations and the
	// history of transitions); empty means alerts.db beside storage.path.
	Path string `mapstructure:"path"`
	// EvaluateEvery is how often hold-downs, escalation and re-notification are checked
	// besides every occupancy change.
	EvaluateEvery time.Duration `mapstructure:"evaluate_every"`
	Defaults      Thresholds    `mapstructure:"defaults"`
	Evacuation    EvacTime      `mapstructure:"evacuation"`
	// RepeatInterval re-notifies a firing, unacknowledged alert.
	RepeatInterval time.Duration `mapstructure:"repeat_interval"`
	Escalation     Escalation    `mapstructure:"escalation"`
	// DriftThreshold people clamped in a zone within DriftWindow raise a drift alert;
	// CorrectionThreshold is the size of one correction (manual, sensor or reset) that does.
	DriftThreshold      int64         `mapstructure:"drift_threshold"`
	DriftWindow         time.Duration `mapstructure:"drift_window"`
	CorrectionThreshold int64         `mapstructure:"correction_threshold"`
	// EventHold is how long a one-off alert (a large correction) stays open unless resolved.
	EventHold time.Duration     `mapstructure:"event_hold"`
	Channels  []AlertChannel    `mapstructure:"channels"`
	Routes    []AlertRoute      `mapstructure:"routes"`
	Reload    AlertReloadConfig `mapstructure:"reload"`
	// Security turns refused attempts into alerts (configs/security.go).
	Security SecurityAlerts `mapstructure:"security"`
	// Playbook is what each alert tells the guard to do.
	Playbook Playbook `mapstructure:"playbook"`
}

// Playbook suggests an action for each alert: the store's Actions first, in order, then the
// built-in ones (docs/alerting.md); the first that matches an alert is its action.
type Playbook struct {
	// Language is the language of an alert's `action` text (for scripts and channels); the
	// dashboard shows each viewer's own language from the message catalogue.
	Language string           `mapstructure:"language"`
	Actions  []PlaybookAction `mapstructure:"actions"`
}

// PlaybookAction is one rule of the playbook. Empty matchers match anything.
type PlaybookAction struct {
	Kind  string `mapstructure:"kind"`
	Level string `mapstructure:"level"` // level alerts: warning, critical or evacuate
	// Where is "entrance" (a zone with a door to outside) or "inside" (any other zone).
	Where string   `mapstructure:"where"`
	Zones []string `mapstructure:"zones"`
	// Key names a message of the catalogue (web/assets/static/i18n.json); Text gives the
	// action per language instead. Exactly one of them.
	Key  string            `mapstructure:"key"`
	Text map[string]string `mapstructure:"text"`
}

// PlaybookWhere are the accepted values of a playbook action's where.
var PlaybookWhere = []string{"entrance", "inside"}

// AlertReloadConfig controls reloading on a file change (SIGHUP always reloads).
type AlertReloadConfig struct {
	WatchFile bool          `mapstructure:"watch_file"`
	Debounce  time.Duration `mapstructure:"debounce"`
}

// Thresholds decide a zone's level. A nil field inherits: zone, then alerting.defaults, then
// the built-in defaults (docs/alerting.md gives their sources). A ratio or density of 0 turns
// that trigger off.
type Thresholds struct {
	BusyRatio       *float64 `mapstructure:"busy_ratio"`
	WarningRatio    *float64 `mapstructure:"warning_ratio"`
	CriticalRatio   *float64 `mapstructure:"critical_ratio"`
	EvacuateRatio   *float64 `mapstructure:"evacuate_ratio"`
	WarningDensity  *float64 `mapstructure:"warning_density"`
	CriticalDensity *float64 `mapstructure:"critical_density"`
	EvacuateDensity *float64 `mapstructure:"evacuate_density"`
	// WarningFor, CriticalFor and EvacuateFor are the hold-downs: how long the zone must stay
	// at or above the trigger before the level is entered.
	WarningFor  *time.Duration `mapstructure:"warning_for"`
	CriticalFor *time.Duration `mapstructure:"critical_for"`
	EvacuateFor *time.Duration `mapstructure:"evacuate_for"`
	// A level clears once the figure has stayed below ClearFactor x its trigger for ClearAfter.
	ClearFactor *float64       `mapstructure:"clear_factor"`
	ClearAfter  *time.Duration `mapstructure:"clear_after"`
	// SurgePerMin is the inflow (persons per minute through the zone's doors, over
	// SurgeWindow) that raises a surge alert; 0 turns it off.
	SurgePerMin *float64       `mapstructure:"surge_per_min"`
	SurgeWindow *time.Duration `mapstructure:"surge_window"`
	// FullHorizon raises a time-to-full alert when the zone would reach its capacity within
	// it at the current net inflow; 0 turns it off. FullFor is its hold-down.
	FullHorizon *time.Duration `mapstructure:"full_horizon"`
	FullFor     *time.Duration `mapstructure:"full_for"`
}

// EvacTime holds the figures of the evacuation-time estimate T = N / (W x F) + pre-movement.
type EvacTime struct {
	FlowPerMetre       float64       `mapstructure:"flow_per_metre"`        // level exits, persons/m/min
	StairsFlowPerMetre float64       `mapstructure:"stairs_flow_per_metre"` // stairs down
	PreMovement        time.Duration `mapstructure:"pre_movement"`
	Target             time.Duration `mapstructure:"target"`
}

// Escalation pages Groups in turn while nobody acknowledges: the first at once, the next
// after After, and so on.
type Escalation struct {
	After  time.Duration `mapstructure:"after"`
	Groups []string      `mapstructure:"groups"`
}

// AlertChannel is one way out for notifications.
type AlertChannel struct {
	Name string `mapstructure:"name"`
	// Type is mqtt, webhook or alertmanager.
	Type string `mapstructure:"type"`
	URL  string `mapstructure:"url"`
	// Secret signs webhook bodies (HMAC-SHA256).
	Secret string `mapstructure:"secret"`
	// Template shapes a webhook body: json (default), wecom, dingtalk, feishu, slack.
	Template string        `mapstructure:"template"`
	Timeout  time.Duration `mapstructure:"timeout"`
	// ResendEvery re-sends firing alerts to Alertmanager (it resolves alerts not re-sent).
	ResendEvery time.Duration `mapstructure:"resend_every"`
	// QueueSize bounds undelivered notifications; the oldest is dropped (and counted) beyond.
	QueueSize int `mapstructure:"queue_size"`
	// MaxAttempts bounds retries of one notification.
	MaxAttempts int `mapstructure:"max_attempts"`
}

// AlertRoute sends matching notifications to a channel. Empty filters match everything.
type AlertRoute struct {
	Channel string `mapstructure:"channel"`
	// Group is an escalation group: the route receives an alert once escalation reaches it.
	// Empty: the route receives every matching alert from the start.
	Group       string   `mapstructure:"group"`
	MinSeverity string   `mapstructure:"min_severity"`
	Zones       []string `mapstructure:"zones"`
	Kinds       []string `mapstructure:"kinds"`
}

// ChannelTypes and WebhookTemplates are the accepted values.
var (
	ChannelTypes     = []string{"mqtt", "webhook", "alertmanager"}
	WebhookTemplates = []string{"json", "wecom", "dingtalk", "feishu", "slack"}
	Severities       = []string{"info", "warning", "critical", "emergency"}
	AlertKinds       = []string{"level", "surge", "time_to_full", "evac_time", "device_silent", "uncertain", "drift", "correction", "evacuation", "security"}
)

func init() {
	for k, v := range map[string]any{
		"alerting.path":                             "",
		"alerting.evaluate_every":                   "1s",
		"alerting.evacuation.flow_per_metre":        80.0,
		"alerting.evacuation.stairs_flow_per_metre": 66.0,
		"alerting.evacuation.pre_movement":          "60s",
		"alerting.evacuation.target":                "150s",
		"alerting.repeat_interval":                  "5m",
		"alerting.escalation.after":                 "2m",
		"alerting.escalation.groups":                []string{"security", "duty_manager", "all_staff"},
		"alerting.drift_threshold":                  20,
		"alerting.drift_window":                     "1h",
		"alerting.correction_threshold":             20,
		"alerting.event_hold":                       "15m",
		"alerting.reload.watch_file":                true,
		"alerting.reload.debounce":                  "1s",
		"alerting.playbook.language":                "en",
	} {
		defaults[k] = v
	}
}

// validatePlaybook checks alerting.playbook; that a key names a message of the catalogue is
// checked by alerting.CheckLimits, which has the catalogue.
func (c *Config) validatePlaybook(bad func(key, format string, args ...any), zoneIdx map[string]int) {
	p := &c.Alerting.Playbook
	if !slices.Contains(Languages, p.Language) {
		bad("alerting.playbook.language", "%q must be one of %v", p.Language, Languages)
	}
	for i, r := range p.Actions {
		key := fmt.Sprintf("alerting.playbook.actions[%d]", i)
		if r.Kind != "" && !slices.Contains(AlertKinds, r.Kind) {
			bad(key+".kind", "%q must be one of %v", r.Kind, AlertKinds)
		}
		if r.Level != "" {
			if !slices.Contains([]string{"warning", "critical", "evacuate"}, r.Level) {
				bad(key+".level", "%q must be warning, critical or evacuate", r.Level)
			}
			if r.Kind != "level" {
				bad(key+".level", "only level alerts have a level (set kind: level)")
			}
		}
		if r.Where != "" && !slices.Contains(PlaybookWhere, r.Where) {
			bad(key+".where", "%q must be one of %v", r.Where, PlaybookWhere)
		}
		for _, z := range r.Zones {
			if _, ok := zoneIdx[z]; !ok {
				bad(key+".zones", "unknown zone %q", z)
			}
		}
		switch {
		case r.Key == "" && len(r.Text) == 0:
			bad(key, "needs key (a message of the catalogue) or text (per language)")
		case r.Key != "" && len(r.Text) > 0:
			bad(key, "key and text exclude each other")
		}
		for lang, t := range r.Text {
			if !slices.Contains(Languages, lang) {
				bad(key+".text", "language %q must be one of %v", lang, Languages)
			} else if strings.TrimSpace(t) == "" {
				bad(key+".text."+lang, "is empty")
			}
		}
	}
}

// AlertsPath is the alert database's path.
func (c *Config) AlertsPath() string {
	if c.Alerting.Path != "" {
		return c.Alerting.Path
	}
	return filepath.Join(filepath.Dir(c.Storage.Path), "alerts.db")
}

func (c *Config) validateAlerting(bad func(key, format string, args ...any), zoneIdx map[string]int) {
	a := &c.Alerting
	if a.EvaluateEvery < 100*time.Millisecond || a.EvaluateEvery > time.Minute {
		bad("alerting.evaluate_every", "%v must be between 100ms and 1m (write a unit, e.g. 1s)", a.EvaluateEvery)
	}
	if a.RepeatInterval < 10*time.Second {
		bad("alerting.repeat_interval", "%v must be at least 10s (write a unit, e.g. 5m)", a.RepeatInterval)
	}
	if a.Escalation.After < time.Second {
		bad("alerting.escalation.after", "%v must be at least 1s (write a unit, e.g. 2m)", a.Escalation.After)
	}
	if len(a.Escalation.Groups) == 0 {
		bad("alerting.escalation.groups", "at least one group is required (e.g. [security, duty_manager, all_staff])")
	}
	for i, g := range a.Escalation.Groups {
		if !idPattern.MatchString(g) || slices.Index(a.Escalation.Groups, g) != i {
			bad(fmt.Sprintf("alerting.escalation.groups[%d]", i), "%q must be a unique id", g)
		}
	}
	if a.DriftThreshold < 1 {
		bad("alerting.drift_threshold", "must be >= 1")
	}
	if a.DriftWindow < time.Minute {
		bad("alerting.drift_window", "%v must be at least 1m", a.DriftWindow)
	}
	if a.CorrectionThreshold < 1 {
		bad("alerting.correction_threshold", "must be >= 1")
	}
	if a.EventHold < time.Minute {
		bad("alerting.event_hold", "%v must be at least 1m", a.EventHold)
	}
	if a.Reload.Debounce < 0 {
		bad("alerting.reload.debounce", "must be >= 0")
	}
	e := a.Evacuation
	if e.FlowPerMetre <= 0 || e.StairsFlowPerMetre <= 0 {
		bad("alerting.evacuation", "flow_per_metre and stairs_flow_per_metre must be > 0 (persons per metre per minute)")
	}
	if e.PreMovement < 0 {
		bad("alerting.evacuation.pre_movement", "must be >= 0")
	}
	if e.Target < time.Second {
		bad("alerting.evacuation.target", "%v must be at least 1s (write a unit, e.g. 150s)", e.Target)
	}
	validateThresholds(bad, "alerting.defaults", a.Defaults)
	c.validateSecurity(bad)
	for i, z := range c.Zones {
		if z.Alerts != nil {
			validateThresholds(bad, fmt.Sprintf("zones[%d].alerts", i), *z.Alerts)
		}
	}

	c.validatePlaybook(bad, zoneIdx)

	channels := map[string]string{}
	for i := range a.Channels {
		ch := &a.Channels[i]
		key := fmt.Sprintf("alerting.channels[%d]", i)
		if !idPattern.MatchString(ch.Name) {
			bad(key+".name", "%q must be letters, digits, '.', '_' or '-'", ch.Name)
		} else if _, dup := channels[ch.Name]; dup {
			bad(key+".name", "duplicate channel %q", ch.Name)
		}
		channels[ch.Name] = ch.Type
		if !slices.Contains(ChannelTypes, ch.Type) {
			bad(key+".type", "%q must be one of %v", ch.Type, ChannelTypes)
		}
		if ch.Type == "webhook" || ch.Type == "alertmanager" {
			if u, err := url.Parse(ch.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(key+".url", "%q must be an http:// or https:// URL", ch.URL)
			}
		}
		if ch.Template == "" {
			ch.Template = "json"
		}
		if ch.Type == "webhook" && !slices.Contains(WebhookTemplates, ch.Template) {
			bad(key+".template", "%q must be one of %v", ch.Template, WebhookTemplates)
		}
		if ch.Timeout == 0 {
			ch.Timeout = 5 * time.Second
		}
		if ch.ResendEvery == 0 {
			ch.ResendEvery = time.Minute
		}
		if ch.QueueSize == 0 {
			ch.QueueSize = 256
		}
		if ch.MaxAttempts == 0 {
			ch.MaxAttempts = 8
		}
		if ch.Timeout < 0 || ch.ResendEvery < time.Second || ch.QueueSize < 1 || ch.MaxAttempts < 1 {
			bad(key, "timeout, resend_every (>= 1s), queue_size and max_attempts must be positive")
		}
	}
	for i, r := range a.Routes {
		key := fmt.Sprintf("alerting.routes[%d]", i)
		if _, ok := channels[r.Channel]; !ok {
			bad(key+".channel", "unknown channel %q", r.Channel)
		}
		if r.Group != "" && !slices.Contains(a.Escalation.Groups, r.Group) {
			bad(key+".group", "%q is not in alerting.escalation.groups %v", r.Group, a.Escalation.Groups)
		}
		if r.MinSeverity != "" && !slices.Contains(Severities, r.MinSeverity) {
			bad(key+".min_severity", "%q must be one of %v", r.MinSeverity, Severities)
		}
		for _, z := range r.Zones {
			if _, ok := zoneIdx[z]; !ok {
				bad(key+".zones", "unknown zone %q", z)
			}
		}
		for _, k := range r.Kinds {
			if !slices.Contains(AlertKinds, k) {
				bad(key+".kinds", "%q must be one of %v", k, AlertKinds)
			}
		}
	}
}

func validateThresholds(bad func(key, format string, args ...any), key string, t Thresholds) {
	nonNeg := map[string]*float64{"busy_ratio": t.BusyRatio, "warning_ratio": t.WarningRatio, "critical_ratio": t.CriticalRatio,
		"evacuate_ratio": t.EvacuateRatio, "warning_density": t.WarningDensity, "critical_density": t.CriticalDensity,
		"evacuate_density": t.EvacuateDensity, "surge_per_min": t.SurgePerMin}
	for name, v := range nonNeg {
		if v != nil && *v < 0 {
			bad(key+"."+name, "must be >= 0 (0 turns it off)")
		}
	}
	for name, d := range map[string]*time.Duration{"warning_for": t.WarningFor, "critical_for": t.CriticalFor,
		"evacuate_for": t.EvacuateFor, "clear_after": t.ClearAfter, "full_horizon": t.FullHorizon, "full_for": t.FullFor} {
		if d != nil && *d < 0 {
			bad(key+"."+name, "must be >= 0")
		}
	}
	if t.SurgeWindow != nil && *t.SurgeWindow < 10*time.Second {
		bad(key+".surge_window", "%v must be at least 10s", *t.SurgeWindow)
	}
	if t.ClearFactor != nil && (*t.ClearFactor <= 0 || *t.ClearFactor > 1) {
		bad(key+".clear_factor", "%v must be in (0, 1]", *t.ClearFactor)
	}
	ordered := func(kind string, w, c, e *float64) {
		vals := []*float64{w, c, e}
		names := []string{"warning", "critical", "evacuate"}
		for i := 0; i < len(vals); i++ {
			for j := i + 1; j < len(vals); j++ {
				if vals[i] != nil && vals[j] != nil && *vals[i] > 0 && *vals[j] > 0 && *vals[i] >= *vals[j] {
					bad(key, "%s_%s (%v) must be below %s_%s (%v)", names[i], kind, *vals[i], names[j], kind, *vals[j])
				}
			}
		}
	}
	ordered("ratio", t.WarningRatio, t.CriticalRatio, t.EvacuateRatio)
	ordered("density", t.WarningDensity, t.CriticalDensity, t.EvacuateDensity)
}
