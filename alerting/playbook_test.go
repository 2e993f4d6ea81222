package alerting

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/crowdwatch/crowdwatch/configs"
)

// Every alert carries a summary and an action from the catalogue, in both languages, with
// its params; the English summary template says what Summary says.
func TestAlertMessages(t *testing.T) {
	cat, err := DefaultCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, testStore)
	h.down["dc-03"] = true
	var in uint64
	for s := 0; s <= 61; s++ {
		in += 2
		h.doors["main"] = [2]uint64{in, 0}
		h.occ["entrance"], h.occ["store"] = 104, 990
		h.at(s)
	}
	h.run(func() { _, _ = h.m.Declare(context.Background(), "entrance", "chief", "smoke") })
	kinds := map[Kind]bool{}
	for _, a := range h.m.Status().Alerts {
		kinds[a.Kind] = true
		for _, lang := range []string{"en", "zh"} {
			for _, key := range []string{a.SummaryKey, a.ActionKey} {
				text, ok := cat[lang][key]
				if key == "" || !ok {
					t.Errorf("%s: key %q missing in %s", a.ID, key, lang)
					continue
				}
				if got := fill(text, a.Params); strings.Contains(got, "{") {
					t.Errorf("%s %s: %q has a placeholder without a param (params %v)", a.ID, lang, got, a.Params)
				}
			}
		}
		if a.Action == "" {
			t.Errorf("%s: no action text", a.ID)
		}
		if en, _ := cat.Render("en", a.SummaryKey, a.Params); en != a.Summary {
			t.Errorf("%s: catalogue says %q, summary %q", a.ID, en, a.Summary)
		}
	}
	for _, k := range []Kind{KindLevel, KindSurge, KindEvacTime, KindDeviceSilent, KindUncertain, KindEvacuation} {
		if !kinds[k] {
			t.Errorf("no %s alert to check", k)
		}
	}
	a := h.alert("level:entrance")
	if a == nil || a.ActionKey != "action.level.critical.entrance" || !strings.Contains(a.Action, "Meter the door") {
		t.Fatalf("critical at an entrance: %+v", a)
	}
	if zh, _ := cat.Render("zh", a.SummaryKey, a.Params); zh != "entrance严重拥挤：104人，达容量100的104%，每平方米2.1人" {
		t.Errorf("zh summary %q", zh)
	}
}

// The store's playbook comes before the built-in one, in the playbook's language.
func TestStorePlaybook(t *testing.T) {
	yaml := strings.Replace(testStore, "  repeat_interval: 5m\n", `  repeat_interval: 5m
  playbook:
    language: zh
    actions:
      - {kind: level, level: critical, zones: [entrance], text: {en: "Close door {zone}, call Wang", zh: "关闭{zone}门，呼叫王经理"}}
      - {kind: level, where: inside, key: action.level.critical}
      - {kind: level, zones: [store], key: action.level.warning}
`, 1)
	h := newHarness(t, yaml)
	h.occ["entrance"], h.occ["store"] = 104, 1040
	h.at(0)
	h.at(15)
	a := h.alert("level:entrance")
	if a == nil || a.ActionKey != "" || a.Action != "关闭entrance门，呼叫王经理" || a.ActionText["en"] != "Close door entrance, call Wang" {
		t.Fatalf("store action: %+v", a)
	}
	s := h.alert("level:store")
	if s == nil || s.ActionKey != "action.level.warning" || !strings.Contains(s.Action, "派员") {
		t.Fatalf("store rule by where: %+v", s)
	}
}

// The Chinese templates put inserted names next to the text without spaces, and both
// languages have the same keys and placeholders.
func TestCatalogueAlertMessages(t *testing.T) {
	cat, err := DefaultCatalogue()
	if err != nil {
		t.Fatal(err)
	}
	ph := regexp.MustCompile(`\{[a-z_]+\}`)
	spaced := regexp.MustCompile(`\s\{[a-z_]+\}|\{[a-z_]+\}\s`)
	for key, en := range cat["en"] {
		if !strings.HasPrefix(key, "alert.") && !strings.HasPrefix(key, "action.") {
			continue
		}
		zh, ok := cat["zh"][key]
		if !ok {
			t.Errorf("%s: no Chinese text", key)
			continue
		}
		if spaced.MatchString(zh) {
			t.Errorf("%s: Chinese %q has a space beside an inserted name", key, zh)
		}
		a, b := ph.FindAllString(en, -1), ph.FindAllString(zh, -1)
		slices.Sort(a)
		slices.Sort(b)
		if !slices.Equal(a, b) {
			t.Errorf("%s: placeholders en %v zh %v", key, a, b)
		}
	}
	for _, r := range builtinPlaybook {
		if _, ok := cat["zh"][r.Key]; !ok {
			t.Errorf("built-in action %q not in the catalogue", r.Key)
		}
	}
}

// A playbook key must name a message of the catalogue (check-config says so too).
func TestPlaybookUnknownKey(t *testing.T) {
	yaml := strings.Replace(testStore, "  repeat_interval: 5m\n", "  repeat_interval: 5m\n  playbook: {actions: [{kind: surge, key: action.nope}]}\n", 1)
	dir := t.TempDir()
	cfg, err := configs.Parse([]byte(strings.ReplaceAll(yaml, "$DIR", dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckLimits(cfg); err == nil || !strings.Contains(err.Error(), `"action.nope" is not in the message catalogue`) {
		t.Fatalf("CheckLimits: %v", err)
	}
}

// TestFill: placeholders with a param are replaced, others stay as they are, as a
// strings.Replacer of every "{name}" would leave them.
func TestFill(t *testing.T) {
	params := map[string]any{"zone": "Hall", "n": 104, "pct": 1.5, "x": int64(7)}
	reference := func(t string) string {
		var pairs []string
		for k, v := range params {
			pairs = append(pairs, "{"+k+"}", paramText(v))
		}
		return strings.NewReplacer(pairs...).Replace(t)
	}
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"no placeholders", "no placeholders"},
		{"{zone}", "Hall"},
		{"{zone} has {n} ({pct}%), {x}", "Hall has 104 (1.5%), 7"},
		{"{unknown} stays, {zone} goes", "{unknown} stays, Hall goes"},
		{"{{zone}}", "{Hall}"},
		{"{ {zone} }", "{ Hall }"},
		{"open { only", "open { only"},
		{"close } only {n", "close } only {n"},
		{"{zone{n}}", "{zone104}"},
		{"{}{zone}{", "{}Hall{"},
		{"入口{zone}满", "入口Hall满"},
	} {
		got := fill(tc.in, params)
		if got != tc.want {
			t.Errorf("fill(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if ref := reference(tc.in); got != ref {
			t.Errorf("fill(%q) = %q, a Replacer gives %q", tc.in, got, ref)
		}
	}
	if got := fill("{zone}", nil); got != "{zone}" {
		t.Errorf("without params: %q", got)
	}
}

func FuzzFill(f *testing.F) {
	for _, s := range []string{"{zone} {n}", "{{zone}}", "{", "}{", "{zone{n}}"} {
		f.Add(s)
	}
	params := map[string]any{"zone": "Hall", "n": 104, "z{": "brace"}
	f.Fuzz(func(t *testing.T, s string) {
		var pairs []string
		for k, v := range params {
			if !strings.Contains(k, "{") {
				pairs = append(pairs, "{"+k+"}", paramText(v))
			}
		}
		if got, want := fill(s, params), strings.NewReplacer(pairs...).Replace(s); got != want {
			t.Fatalf("fill(%q) = %q, a Replacer gives %q", s, got, want)
		}
	})
}

func BenchmarkFill(b *testing.B) {
	params := map[string]any{"zone": "Hall", "n": 104, "capacity": 100, "pct": 104, "density": 2.1}
	const t = "{zone} critical: {n} people, {pct}% of capacity {capacity}, {density} per m²"
	b.ReportAllocs()
	for b.Loop() {
		fill(t, params)
	}
}
