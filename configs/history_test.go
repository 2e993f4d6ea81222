package configs

import (
	"strings"
	"testing"
	"time"
)

func TestHistoryDefaultsAndPath(t *testing.T) {
	cfg, err := Parse([]byte(minimal), map[string]any{"storage.path": "/var/lib/cw/main.db"})
	if err != nil {
		t.Fatal(err)
	}
	h := cfg.History
	if h.SampleInterval != 5*time.Second || h.FlushInterval != 15*time.Second || h.RetainRaw != 720*time.Hour ||
		h.RetainMinutes != 9600*time.Hour || h.RetainHours != 0 || h.BufferBytes != 16<<20 {
		t.Errorf("history defaults: %+v", h)
	}
	if p := cfg.HistoryPath(); p != "/var/lib/cw/main.history.db" {
		t.Errorf("default history path %q", p)
	}
	t.Setenv("CROWDWATCH_HISTORY_PATH", "/srv/h.db")
	cfg, err = Parse([]byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p := cfg.HistoryPath(); p != "/srv/h.db" {
		t.Errorf("history.path from the environment: %q", p)
	}
}

func TestHistoryValidation(t *testing.T) {
	for _, tc := range []struct {
		yaml string
		want string
	}{
		{"history: {sample_interval: 1ms}", "history.sample_interval: 1ms must be between 100ms and 1m"},
		{"history: {flush_interval: 1h}", "history.flush_interval: 1h0m0s must be between 100ms and 10m"},
		{"history: {buffer_bytes: 10}", "history.buffer_bytes: 10 must be between 65536 and 1073741824"},
		{"history: {retain_raw: 5m}", "history.retain_raw: 5m0s must be 0 (keep for ever) or at least 1h"},
		{"history: {retain_minutes: 30s}", "history.retain_minutes: 30s must be 0"},
		{"history: {path: ./data/x.db}\nstorage: {path: ./data/x.db}", `history.path: "./data/x.db" is the main database`},
	} {
		_, err := Parse([]byte(minimal+tc.yaml), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.yaml, err, tc.want)
		}
	}
	if _, err := Parse([]byte(minimal+"history: {retain_hours: 87600h, retain_raw: 0s}"), nil); err != nil {
		t.Errorf("valid history section refused: %v", err)
	}
}
