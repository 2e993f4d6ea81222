package configs

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestWatchReloadsOnSignal: each value on the reload channel (cmd/crowdwatch sends one on
// SIGHUP) loads the whole file again; a file that does not load goes to onError and a good
// one to onLoad.
func TestWatchReloadsOnSignal(t *testing.T) {
	good, err := os.ReadFile("demo-store.yaml")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "store.yaml")
	write := func(b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(good)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reload := make(chan struct{})
	loaded, failed := make(chan *Config, 1), make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, path, nil, reload, false, time.Second,
			func(c *Config) { loaded <- c }, func(err error) { failed <- err })
	}()
	for _, tc := range []struct {
		name string
		file []byte
		ok   bool
	}{
		{"good file", good, true},
		{"bad file", []byte("site: [\n"), false},
		{"good again", good, true},
	} {
		write(tc.file)
		select {
		case reload <- struct{}{}:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: Watch does not read the reload channel", tc.name)
		}
		select {
		case c := <-loaded:
			if !tc.ok || c.Site.ID == "" {
				t.Fatalf("%s: loaded %q, want a refusal", tc.name, c.Site.ID)
			}
		case err := <-failed:
			if tc.ok {
				t.Fatalf("%s: refused: %v", tc.name, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: nothing happened within 10s of the reload signal", tc.name)
		}
	}
	cancel()
	<-done
}
