package loadbench

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
)

func tokenSum(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// The generated bench store must pass the service's own validation.
func TestBenchStoreIsValid(t *testing.T) {
	dir := t.TempDir()
	f := Options{Devices: 7, Zones: 200}
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
