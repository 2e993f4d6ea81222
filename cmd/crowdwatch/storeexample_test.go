package main

import (
	"bytes"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestExampleStorePassesCheckConfig: the store file the package installs as
// /etc/crowdwatch/store.yaml is checked as the technician checks it (from its own folder, where
// its floor plans are) and describes a whole store: floors with plans, screens at the doors,
// sign-in on, and no warning.
func TestExampleStorePassesCheckConfig(t *testing.T) {
	t.Chdir("../../configs")
	cmd := newCheckConfigCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"store-example.yaml"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("check-config store-example.yaml: %v\n%s", err, out.String())
	}
	got := out.String()
	if strings.Contains(got, "WARNING") {
		t.Errorf("check-config warns about the example store:\n%s", got)
	}
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^store-example\.yaml: ok$`),
		regexp.MustCompile(`(?m)^floors    2$`),
		regexp.MustCompile(`(?m)^  ground-floor .*, plan plans/ground\.svg$`),
		regexp.MustCompile(`(?m)^  upper-floor .*, plan plans/upper\.svg$`),
		regexp.MustCompile(`(?m)^screens   [4-9] `),
		regexp.MustCompile(`(?m)^sign-in   [1-9]\d* users, [1-9]\d* tokens$`),
		regexp.MustCompile(`(?m)^  queue +capacity`),                      // the queue outside, a top-level zone
		regexp.MustCompile(`(?m)^    entrance +capacity`),                 // the entrance inside the store
		regexp.MustCompile(`(?m)^      promo +capacity`),                  // the promotion corner on a floor
		regexp.MustCompile(`(?m)^  main-door +outside -> entrance`),       // the main door
		regexp.MustCompile(`(?m)^  cam-01 +head count for queue$`),        // the queue is counted
		regexp.MustCompile(`(?m)^  main-door +at door main-door guards `), // a screen at the door
		regexp.MustCompile(`(?m)^  channel handhelds +mqtt`),
	} {
		if !want.MatchString(got) {
			t.Errorf("check-config output lacks %s:\n%s", want, got)
		}
	}
	// Every screen stands at a door, and the placeholders the technician must replace are marked.
	for _, line := range regexp.MustCompile(`(?m)^screens .*\n((?:  .*\n)+)`).FindStringSubmatch(got)[1:] {
		for _, s := range strings.Split(strings.TrimSpace(line), "\n") {
			if !strings.Contains(s, " at door ") {
				t.Errorf("screen without a door: %s", s)
			}
		}
	}
	raw, err := os.ReadFile("store-example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "CHANGE-ME") || !strings.Contains(string(raw), "crowdwatch hash-password") ||
		!strings.Contains(string(raw), "crowdwatch new-token") {
		t.Error("the example store does not mark its placeholders and the commands that replace them")
	}
}
