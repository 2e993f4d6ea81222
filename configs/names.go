package configs

import (
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/go-viper/mapstructure/v2"
)

// Names is a name given per language in the store file: either a plain string, the same in
// every language (`name: Entrance hall`), or a map of language to text
// (`name: {zh: 入口大厅, en: Entrance hall}`). The pages and screens show the viewer's
// language; the rest of the code (logs, reports, metrics) uses the struct's plain Name, which
// Parse sets to Default().
type Names map[string]string

// namesHook decodes a plain YAML string into Names as the name in every language (key "").
func namesHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeFor[Names]() {
		return data, nil
	}
	if from.Kind() == reflect.String {
		s := data.(string)
		if s == "" {
			return Names(nil), nil
		}
		return Names{"": s}, nil
	}
	return data, nil
}

// Get is the name in lang, else the plain one, else the English one, else any.
func (n Names) Get(lang string) string {
	if s := n[lang]; s != "" {
		return s
	}
	return n.Default()
}

// Default is the name for everything that is not a page in a chosen language: the plain
// name, else the English one, else the first language's.
func (n Names) Default() string {
	if s := n[""]; s != "" {
		return s
	}
	if s := n["en"]; s != "" { // logs, reports and metrics are in English
		return s
	}
	for _, l := range Languages {
		if s := n[l]; s != "" {
			return s
		}
	}
	return ""
}

// ByLanguage is the name in every language the pages know, for the JSON views
// (`"names": {"zh": "入口大厅", "en": "Entrance hall"}`); fallback stands in when none is
// given (a Config built in code sets only Name). Nil when there is no name at all.
func (n Names) ByLanguage(fallback string) map[string]string {
	if n.Default() == "" {
		if fallback == "" {
			return nil
		}
		n = Names{"": fallback}
	}
	out := make(map[string]string, len(Languages))
	for _, l := range Languages {
		out[l] = n.Get(l)
	}
	return out
}

// validate reports a language the pages have no catalogue for, and empty texts.
func (n Names) validate(key string, bad func(key, format string, args ...any)) {
	for _, l := range slices.Sorted(func(yield func(string) bool) {
		for l := range n {
			if !yield(l) {
				return
			}
		}
	}) {
		if l == "" {
			continue
		}
		if !slices.Contains(Languages, l) {
			bad(key, "language %q must be one of %s", l, strings.Join(Languages, ", "))
		} else if strings.TrimSpace(n[l]) == "" {
			bad(key+"."+l, "is empty")
		}
	}
}

// resolveNames sets every plain Name from its Names, so code that needs one string keeps
// using Name.
func (c *Config) resolveNames() {
	set := func(name *string, n Names) {
		if d := n.Default(); d != "" {
			*name = d
		}
	}
	set(&c.Site.Name, c.Site.Names)
	for i := range c.Zones {
		set(&c.Zones[i].Name, c.Zones[i].Names)
	}
	for i := range c.Floors {
		set(&c.Floors[i].Name, c.Floors[i].Names)
	}
	zones := map[string]Names{}
	for _, z := range c.Zones {
		zones[z.ID] = z.Names
	}
	for i := range c.Screens {
		s := &c.Screens[i]
		set(&s.Name, s.Names)
		// A pointer without a label says the zone's name, in each language the zone has one.
		for j := range s.Alternatives {
			labelFromZone(&s.Alternatives[j], zones)
		}
		labelFromZone(&s.Exit, zones)
	}
}

func labelFromZone(p *Pointer, zones map[string]Names) {
	n := zones[p.Zone]
	if len(p.Label) > 0 || len(n) == 0 || n[""] != "" {
		return // labelled, no zone, or one plain name (the screen's own default uses it)
	}
	p.Label = map[string]string{}
	for _, l := range Languages {
		p.Label[l] = n.Get(l)
	}
}

func (c *Config) validateNames(bad func(key, format string, args ...any)) {
	c.Site.Names.validate("site.name", bad)
	for i, z := range c.Zones {
		z.Names.validate(fmt.Sprintf("zones[%d].name", i), bad)
	}
	for i, f := range c.Floors {
		f.Names.validate(fmt.Sprintf("floors[%d].name", i), bad)
	}
	for i, s := range c.Screens {
		s.Names.validate(fmt.Sprintf("screens[%d].name", i), bad)
	}
}

var _ mapstructure.DecodeHookFuncType = namesHook
