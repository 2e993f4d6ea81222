package configs

import (
	"context"
	"encoding/json"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watch reloads the store file on each value from reload (cmd/crowdwatch sends one on
// SIGHUP; nil: never) and, when watchFile is set, on a change to the file (debounced: editors
// write in several steps). Each reload loads and validates the whole file; onError gets a
// file that does not load, onLoad one that does. The caller keeps running its old config
// after an error. Watch returns when ctx ends.
func Watch(ctx context.Context, path string, overrides map[string]any, reload <-chan struct{}, watchFile bool, debounce time.Duration,
	onLoad func(*Config), onError func(error)) {
	var events chan fsnotify.Event
	if watchFile {
		if w, err := fsnotify.NewWatcher(); err != nil {
			onError(err)
		} else {
			defer w.Close()
			// Watch the folder: an editor that saves by renaming replaces the file's inode.
			if err := w.Add(filepath.Dir(path)); err != nil {
				onError(err)
			}
			events = w.Events
		}
	}
	var timer <-chan time.Time
	load := func() {
		cfg, err := Load(path, overrides)
		if err != nil {
			onError(err)
			return
		}
		onLoad(cfg)
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-reload:
			load()
		case ev := <-events:
			if filepath.Clean(ev.Name) == filepath.Clean(path) && ev.Op&(fsnotify.Write|fsnotify.Create|fsnotify.Rename) != 0 {
				timer = time.After(debounce)
			}
		case <-timer:
			timer = nil
			load()
		}
	}
}

// NeedsRestart reports whether next differs from c in anything but the alerting settings,
// which are all a running service can take without a restart.
func (c *Config) NeedsRestart(next *Config) bool {
	return restartPart(c) != restartPart(next)
}

func restartPart(c *Config) string {
	cp := *c
	cp.Alerting = Alerting{}
	cp.Location = nil
	cp.Zones = make([]Zone, len(c.Zones))
	for i, z := range c.Zones {
		z.Alerts = nil
		cp.Zones[i] = z
	}
	b, _ := json.Marshal(cp)
	return string(b)
}
