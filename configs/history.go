package configs

import (
	"path/filepath"
	"strings"
	"time"
)

// History configures the occupancy history (package history): its own bbolt file beside the
// main database, sampling, flushing and retention per resolution.
type History struct {
	// Path is the history file; empty means beside storage.path, named after it with
	// .history.db (./data/demo.db -> ./data/demo.history.db).
	Path string `mapstructure:"path"`
	// SampleInterval: every zone is sampled this often (unchanged zones write nothing); level
	// changes are recorded when they happen.
	SampleInterval time.Duration `mapstructure:"sample_interval"`
	// FlushInterval: buffered history is written this often; the file is closed in between so
	// that `crowdwatch report` can read it. A crash loses at most this much raw history.
	FlushInterval time.Duration `mapstructure:"flush_interval"`
	// BufferBytes bounds raw records waiting while the file is busy; beyond it raw records are
	// dropped (counted in crowdwatch_history_dropped_total) and roll-ups kept.
	BufferBytes int `mapstructure:"buffer_bytes"`
	// Retention per resolution; 0 keeps for ever.
	RetainRaw     time.Duration `mapstructure:"retain_raw"`
	RetainMinutes time.Duration `mapstructure:"retain_minutes"`
	RetainHours   time.Duration `mapstructure:"retain_hours"`
}

func init() {
	for k, v := range map[string]any{
		"history.path":            "",
		"history.sample_interval": "5s",
		"history.flush_interval":  "15s",
		"history.buffer_bytes":    16 << 20,
		"history.retain_raw":      "720h",  // 30 days
		"history.retain_minutes":  "9600h", // 400 days
		"history.retain_hours":    "0s",    // for ever
	} {
		defaults[k] = v
	}
}

// HistoryPath is the history file: history.path, or NAME.history.db beside storage.path
// (NAME.db). Not a fixed history.db: the shipped stores all keep their databases in ./data,
// and each site needs its own history.
func (c *Config) HistoryPath() string {
	if c.History.Path != "" {
		return c.History.Path
	}
	base := strings.TrimSuffix(filepath.Base(c.Storage.Path), filepath.Ext(c.Storage.Path))
	return filepath.Join(filepath.Dir(c.Storage.Path), base+".history.db")
}

// validateHistory adds the history section's problems.
func (c *Config) validateHistory(bad func(key, format string, args ...any)) {
	h := c.History
	if h.SampleInterval < 100*time.Millisecond || h.SampleInterval > time.Minute {
		bad("history.sample_interval", "%v must be between 100ms and 1m (write a unit, e.g. 5s)", h.SampleInterval)
	}
	if h.FlushInterval < 100*time.Millisecond || h.FlushInterval > 10*time.Minute {
		bad("history.flush_interval", "%v must be between 100ms and 10m (write a unit, e.g. 15s)", h.FlushInterval)
	}
	if h.BufferBytes < 64<<10 || h.BufferBytes > 1<<30 {
		bad("history.buffer_bytes", "%d must be between 65536 and 1073741824 (1 GiB)", h.BufferBytes)
	}
	for key, d := range map[string]time.Duration{"history.retain_raw": h.RetainRaw, "history.retain_minutes": h.RetainMinutes, "history.retain_hours": h.RetainHours} {
		if d != 0 && d < time.Hour {
			bad(key, "%v must be 0 (keep for ever) or at least 1h (write a unit, e.g. 720h)", d)
		}
	}
	if c.History.Path != "" && c.History.Path == c.Storage.Path {
		bad("history.path", "%q is the main database; history needs its own file", c.History.Path)
	}
}
