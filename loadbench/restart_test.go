package loadbench

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// TestRestartWritesTheLog: the restart bench's crossing log is every report it submitted,
// applied and committed, one crossing entry each.
func TestRestartWritesTheLog(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "bench.db")
	yaml := benchStore(Options{Zones: 2, Devices: 2}, "", "0000000000000000000000000000000000000000000000000000000000000000", db)
	cfg, err := configs.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	o := RestartOptions{Zones: 2, Days: 1, Runs: 1}
	if err := o.Check(); err != nil {
		t.Fatal(err)
	}
	n, err := writeLog(context.Background(), cfg, db, o)
	if err != nil {
		t.Fatal(err)
	}
	// 13 open hours of 720 ticks, two reports in three from each of 2 counters.
	if n < 2*13*720*2/3-2 || n > 2*13*720*2/3+2 {
		t.Errorf("%d reports submitted", n)
	}
	store, err := zones.OpenStore(db, cfg.Site.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	crossings := 0
	if err := store.Entries("log", func(e *zones.LogEntry) error {
		if e.Kind == zones.EntryCrossing {
			crossings++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if crossings != n {
		t.Errorf("%d crossing entries for %d reports", crossings, n)
	}
	for _, bad := range []RestartOptions{{Zones: 0, Runs: 1}, {Zones: 50, Days: 40, Runs: 1}, {Zones: 50, Days: 7, Runs: 0}} {
		if bad.Check() == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
