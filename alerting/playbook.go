package alerting

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web/assets"
)

// Catalogue is the message catalogue: language -> key -> text with {placeholders}. Alerts
// carry keys into it and their params; the dashboard renders them in each viewer's language,
// and the manager renders the action in the playbook's language for scripts and channels.
type Catalogue map[string]map[string]string

// DefaultCatalogue is the catalogue embedded in the binary (web/assets/static/i18n.json).
func DefaultCatalogue() (Catalogue, error) {
	c, err := assets.Messages()
	return Catalogue(c), err
}

// Render fills key's template in lang (English where lang lacks it) with params; ok is false
// when neither has the key.
func (c Catalogue) Render(lang, key string, params map[string]any) (string, bool) {
	t, ok := c[lang][key]
	if !ok {
		if t, ok = c["en"][key]; !ok {
			return "", false
		}
	}
	return fill(t, params), true
}

// fill replaces each {name} in t by params[name]; placeholders without a param stay. It is
// called for every alert at every evaluation (each zone's summary and action), so it scans
// the template once rather than building a strings.Replacer per call, which was a fifth of
// all the service's allocation under a busy store's load (docs/benchmarks.md).
func fill(t string, params map[string]any) string {
	if len(params) == 0 || !strings.Contains(t, "{") {
		return t
	}
	var b strings.Builder
	b.Grow(len(t) + 16)
	for {
		open := strings.IndexByte(t, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(t[open+1:], '}')
		if end < 0 {
			break
		}
		b.WriteString(t[:open])
		name := t[open+1 : open+1+end]
		if v, ok := params[name]; ok && !strings.Contains(name, "{") {
			b.WriteString(paramText(v))
			t = t[open+1+end+1:]
		} else { // not a placeholder we know: keep the brace, look again after it
			b.WriteByte('{')
			t = t[open+1:]
		}
	}
	b.WriteString(t)
	return b.String()
}

func paramText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int:
		return strconv.Itoa(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return fmt.Sprint(v)
}

// builtinPlaybook is the playbook after the store's own actions (crowd-safety practice: meter
// the door and stop entry at the limit, staff to the entrance, exits open and clear).
var builtinPlaybook = []configs.PlaybookAction{
	{Kind: "level", Level: "evacuate", Key: "action.level.evacuate"},
	{Kind: "level", Level: "critical", Where: "entrance", Key: "action.level.critical.entrance"},
	{Kind: "level", Level: "critical", Key: "action.level.critical"},
	{Kind: "level", Level: "warning", Where: "entrance", Key: "action.level.warning.entrance"},
	{Kind: "level", Level: "warning", Key: "action.level.warning"},
	{Kind: "surge", Key: "action.surge"},
	{Kind: "time_to_full", Key: "action.time_to_full"},
	{Kind: "evac_time", Key: "action.evac_time"},
	{Kind: "device_silent", Key: "action.device_silent"},
	{Kind: "uncertain", Key: "action.uncertain"},
	{Kind: "drift", Key: "action.drift"},
	{Kind: "correction", Key: "action.correction"},
	{Kind: "evacuation", Key: "action.evacuation"},
	{Kind: "drill", Key: "action.drill"},
	{Kind: "opening_queue", Key: "action.opening_queue"},
	{Kind: "doors_open", Key: "action.doors_open"},
}

// playbook picks an alert's action.
type playbook struct {
	lang     string
	actions  []configs.PlaybookAction // the store's, then the built-in ones
	entrance map[string]bool          // zones with a door to outside
	cat      Catalogue
}

func newPlaybook(cfg *Config, cat Catalogue) (*playbook, error) {
	p := &playbook{lang: cmp.Or(cfg.Alerting.Playbook.Language, "en"), cat: cat, entrance: map[string]bool{}}
	p.actions = append(slices.Clone(cfg.Alerting.Playbook.Actions), builtinPlaybook...)
	for _, d := range cfg.Doors {
		if d.From == configs.Outside {
			p.entrance[d.To] = true
		}
		if d.To == configs.Outside {
			p.entrance[d.From] = true
		}
	}
	var missing []string
	for i, a := range cfg.Alerting.Playbook.Actions {
		if a.Key != "" {
			if _, ok := cat.Render("en", a.Key, nil); !ok {
				missing = append(missing, fmt.Sprintf("alerting.playbook.actions[%d].key: %q is not in the message catalogue", i, a.Key))
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(missing, "; "))
	}
	return p, nil
}

// describe sets the alert's English summary from its key, and its action: action_key (or action_text, for a store's own text) and
// action, the text in the playbook's language.
func (p *playbook) describe(a *Alert) {
	// The English summary is the catalogue's, so channels and the dashboard say the same.
	if s, ok := p.cat.Render("en", a.SummaryKey, a.Params); ok && a.SummaryKey != "" {
		a.Summary = s
	}
	a.ActionKey, a.ActionText, a.Action = "", nil, ""
	for _, r := range p.actions {
		if !p.matches(r, a) {
			continue
		}
		if r.Key != "" {
			a.ActionKey = r.Key
			a.Action, _ = p.cat.Render(p.lang, r.Key, a.Params)
		} else {
			a.ActionText = make(map[string]string, len(r.Text))
			for lang, t := range r.Text {
				a.ActionText[lang] = fill(t, a.Params)
			}
			a.Action = cmp.Or(a.ActionText[p.lang], a.ActionText["en"], a.ActionText["zh"])
		}
		return
	}
}

func (p *playbook) matches(r configs.PlaybookAction, a *Alert) bool {
	if r.Kind != "" && r.Kind != string(a.Kind) {
		return false
	}
	if r.Level != "" && (a.Kind != KindLevel || r.Level != a.Level.String()) {
		return false
	}
	if len(r.Zones) > 0 && !slices.Contains(r.Zones, a.Zone) {
		return false
	}
	switch r.Where {
	case "entrance":
		return a.Zone != "" && p.entrance[a.Zone]
	case "inside":
		return a.Zone != "" && !p.entrance[a.Zone]
	}
	return true
}

// minutes is a duration in seconds as minutes for a message: whole minutes from 10 min up,
// else one decimal, at least 0.1.
func minutes(seconds float64) float64 {
	m := seconds / 60
	if m >= 10 {
		return math.Round(m)
	}
	return max(0.1, math.Round(m*10)/10)
}
