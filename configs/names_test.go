package configs

import (
	"strings"
	"testing"
)

// A name is a plain string (the same in every language) or a map of language to text; Name
// keeps the default-language string for the rest of the code.
func TestNamesPerLanguage(t *testing.T) {
	cases := []struct {
		name, yaml    string
		plain, zh, en string
		wantErr       string
	}{
		{"plain", `Entrance hall`, "Entrance hall", "Entrance hall", "Entrance hall", ""},
		{"both", `{zh: 入口大厅, en: Entrance hall}`, "Entrance hall", "入口大厅", "Entrance hall", ""},
		{"zh only", `{zh: 入口大厅}`, "入口大厅", "入口大厅", "入口大厅", ""},
		{"unknown language", `{fr: Entrée}`, "", "", "", `zones[0].name: language "fr" must be one of zh, en`},
		{"empty text", `{zh: "", en: Hall}`, "", "", "", `zones[0].name.zh: is empty`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			y := strings.Replace(minimal, "{id: store,", "{id: store, name: "+c.yaml+",", 1)
			if y == minimal {
				t.Fatal("fixture: the minimal store has no zone store to name")
			}
			cfg, err := Parse([]byte(y), nil)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			z := cfg.Zones[0]
			if z.Name != c.plain || z.Names.Get("zh") != c.zh || z.Names.Get("en") != c.en {
				t.Errorf("Name %q, zh %q, en %q; want %q, %q, %q", z.Name, z.Names.Get("zh"), z.Names.Get("en"), c.plain, c.zh, c.en)
			}
			if got := z.Names.ByLanguage(z.Name); got["zh"] != c.zh || got["en"] != c.en {
				t.Errorf("ByLanguage %v", got)
			}
		})
	}
}

// The shipped demo store names every zone, floor, the site and every screen in Chinese.
func TestDemoStoreInChinese(t *testing.T) {
	cfg, err := Parse(DemoStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	zh := func(what string, n Names) {
		if n["zh"] == "" || n["en"] == "" || n["zh"] == n["en"] {
			t.Errorf("%s: names %v, want zh and en", what, n)
		}
	}
	zh("site", cfg.Site.Names)
	for _, z := range cfg.Zones {
		zh("zone "+z.ID, z.Names)
	}
	for _, f := range cfg.Floors {
		zh("floor "+f.ID, f.Names)
	}
	for _, s := range cfg.Screens {
		zh("screen "+s.ID, s.Names)
		for _, p := range append(s.Alternatives, s.Exit) {
			if p.Label["zh"] == "" {
				t.Errorf("screen %s: a pointer without a Chinese label", s.ID)
			}
		}
	}
}

// A screen's alternative without a label points by the zone's name in each language.
func TestPointerLabelFromZoneNames(t *testing.T) {
	y := `
site: {id: s1, timezone: UTC}
zones:
  - {id: store, capacity: 100}
  - {id: hall, name: {zh: 大厅, en: Hall}, parent: store, capacity: 10}
  - {id: gate, name: Gate, parent: store, capacity: 10}
doors:
  - {id: d1, from: outside, to: hall, counter: {device: dc-01}}
screens:
  - {id: s, zone: gate, alternatives: [{zone: hall}], exit: {zone: gate, label: {en: the gate}}}
`
	cfg, err := Parse([]byte(y), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Screens[0]
	if l := s.Alternatives[0].Label; l["zh"] != "大厅" || l["en"] != "Hall" {
		t.Errorf("alternative label %v, want the hall's names", l)
	}
	if l := s.Exit.Label; len(l) != 1 || l["en"] != "the gate" {
		t.Errorf("exit label %v, want the file's own label untouched", l)
	}
}
