package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

// The generated bench store must pass the service's own validation.
func TestBenchStoreIsValid(t *testing.T) {
	dir := t.TempDir()
	f := benchFlags{devices: 7, zones: 200}
	for _, broker := range []string{"", "tcp://127.0.0.1:1"} {
		path := filepath.Join(dir, "store.yaml")
		if err := os.WriteFile(path, []byte(benchStore(f, broker, tokenSum("t"), filepath.Join(dir, "b.db"))), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := configs.Load(path, nil)
		if err != nil {
			t.Fatalf("broker %q: %v", broker, err)
		}
		if len(cfg.Zones) != 200 || len(cfg.Doors) != 7 || cfg.MQTT.Broker != broker {
			t.Fatalf("broker %q: %d zones, %d doors, broker %q", broker, len(cfg.Zones), len(cfg.Doors), cfg.MQTT.Broker)
		}
	}
}

func TestLatHistQuantiles(t *testing.T) {
	var h latHist
	for range 98 {
		h.add(time.Millisecond)
	}
	h.add(50 * time.Millisecond)
	h.add(20 * time.Second) // beyond the last bucket
	if got := h.quantile(0.5); got < time.Millisecond || got > 2*time.Millisecond {
		t.Errorf("p50 %s, want about 1ms", got)
	}
	if got := h.quantile(0.99); got < 50*time.Millisecond || got > 51*time.Millisecond {
		t.Errorf("p99 %s, want about 50ms", got)
	}
	if got := time.Duration(h.max.Load()); got != 20*time.Second {
		t.Errorf("max %s, want 20s", got)
	}
	if h.count() != 100 {
		t.Errorf("count %d, want 100", h.count())
	}
}

func TestSeqOf(t *testing.T) {
	for p, want := range map[string]int{
		`{"boot":"b","seq":42,"ts":"x","in":42,"out":0}`: 42,
		`{"boot":"b","ts":"x"}`:                          0,
		`{"seq":7}`:                                      0,
	} {
		if got := seqOf([]byte(p)); got != want {
			t.Errorf("seqOf(%s) = %d, want %d", p, got, want)
		}
	}
}

// The load tool on a small load: the bare broker delivers everything it acknowledged, the
// service loses nothing, and the WebSocket clients measure latency.
func TestBenchCommandMeasuresWholePath(t *testing.T) {
	out, err := exec.Command(binPath, "bench", "--devices", "3", "--rate", "20", "--clients", "3", "--measure-clients", "2",
		"--zones", "5", "--duration", "2s").CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	bare := regexp.MustCompile(`bare embedded: (\d+) acknowledged .* delivered (\d+);`).FindSubmatch(out)
	svc := regexp.MustCompile(`service on embedded: (\d+) acknowledged .* crossings applied (\d+) \(lost (-?\d+)\); publish-to-WebSocket .*\((\d+) samples\); (\d+) WebSocket messages, (\d+) clients dropped`).FindSubmatch(out)
	if bare == nil || svc == nil {
		t.Fatalf("bench output lacks its result lines:\n%s", out)
	}
	n := func(b []byte) int { v, _ := strconv.Atoi(string(b)); return v }
	if n(bare[1]) == 0 || n(bare[1]) != n(bare[2]) {
		t.Errorf("bare broker: %s acknowledged, %s delivered; want equal and > 0", bare[1], bare[2])
	}
	if n(svc[1]) == 0 || n(svc[3]) != 0 || n(svc[1]) != n(svc[2]) {
		t.Errorf("service: %s acknowledged, %s applied, lost %s; want all applied", svc[1], svc[2], svc[3])
	}
	if n(svc[4]) == 0 || n(svc[5]) == 0 || n(svc[6]) != 0 {
		t.Errorf("service: %s latency samples, %s WebSocket messages, %s clients dropped; want samples and messages, no drops", svc[4], svc[5], svc[6])
	}
}
