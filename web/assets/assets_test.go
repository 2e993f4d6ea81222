package assets

import (
	"io/fs"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Every language has every key, and every key the pages use is in the catalogue.
func TestCatalogueComplete(t *testing.T) {
	cat, err := Messages()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat) < 2 || cat["en"] == nil || cat["zh"] == nil {
		t.Fatalf("catalogue needs en and zh, has %d languages", len(cat))
	}
	for lang, msgs := range cat {
		for key := range cat["en"] {
			if msgs[key] == "" {
				t.Errorf("%s lacks %q", lang, key)
			}
		}
		for key := range msgs {
			if _, ok := cat["en"][key]; !ok {
				t.Errorf("%s has %q which en lacks", lang, key)
			}
		}
	}
	// Keys used in the pages: t("key") in scripts and data-i18n="key" in HTML.
	use := regexp.MustCompile(`\bt\(\s*["']([a-z0-9_.]+)["']\s*[,)]|data-i18n(?:-[a-z]+)?="([a-z0-9_.]+)"`)
	var missing []string
	err = fs.WalkDir(FS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !(strings.HasSuffix(path, ".js") || strings.HasSuffix(path, ".html")) {
			return err
		}
		b, err := fs.ReadFile(FS(), path)
		if err != nil {
			return err
		}
		for _, m := range use.FindAllStringSubmatch(string(b), -1) {
			key := m[1] + m[2]
			if _, ok := cat["en"][key]; !ok {
				missing = append(missing, path+": "+key)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("keys used but not in i18n.json:\n%s", strings.Join(missing, "\n"))
	}
}

// The scripts parse (node --check), when node is installed.
func TestScriptsParse(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed; the browser tests in cmd/crowdwatch run the scripts for real")
	}
	entries, _ := fs.Glob(FS(), "*.js")
	for _, e := range entries {
		b, _ := fs.ReadFile(FS(), e)
		cmd := exec.Command(node, "--check", "--input-type=module")
		cmd.Stdin = strings.NewReader(string(b))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", e, err, out)
		}
	}
}
