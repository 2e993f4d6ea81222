package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRepositoryStandsAlone fails when any tracked file refers to a folder beside the
// repository: a user clones it with nothing beside it, so every input of a build, a test or
// the demo must be inside (data sets live in testdata/ with their source).
func TestRepositoryStandsAlone(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("git", "-C", root, "ls-files").Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	// Built so that this file does not match itself.
	needle := []byte(".." + "/shared")
	var bad []string
	for _, f := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			continue // deleted in the work tree
		}
		if bytes.Contains(b, needle) {
			bad = append(bad, f)
		}
	}
	if len(bad) > 0 {
		t.Fatalf("these files refer to a folder outside the repository (%s): %v", needle, bad)
	}
}
