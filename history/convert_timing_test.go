package history

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestConvertTiming converts a copy of a format-1 file as the recorder's writer does (passes
// of at most 100 ms) and logs how long it took and the longest pass, which is the longest a
// flush waits behind it. HISTORY_CONVERT=FILE names the file (the history bench's year made
// by the format-1 version with HISTORY_BENCH_KEEP, docs/benchmarks.md); it is converted in
// place, so give a copy. Measurement only: it asserts no time.
func TestConvertTiming(t *testing.T) {
	path := os.Getenv("HISTORY_CONVERT")
	if path == "" {
		t.Skip("set HISTORY_CONVERT=FILE (a copy of a format-1 history file)")
	}
	site := benchSite(mustLoc(t, "Asia/Shanghai"))
	f := &file{path: path, site: site.ID, zone: site.Loc.String(), timeout: 5 * time.Second, loc: tz{site.Loc}, layout: &site}
	t0 := time.Now()
	if _, err := f.init(); err != nil {
		t.Fatal(err)
	}
	t.Logf("open and verify: %v (converted: %v)", time.Since(t0), f.converted)
	t1 := time.Now()
	var longest time.Duration
	var blocks, passes int
	var saved int64
	for {
		p0 := time.Now()
		res, err := f.pack(context.Background(), 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		longest = max(longest, time.Since(p0))
		passes++
		blocks += res.Blocks
		saved += res.Saved
		if res.Done {
			break
		}
	}
	t.Logf("packed %d blocks in %d passes, %v; longest pass %v; %.1f MB saved", blocks, passes, time.Since(t1), longest, float64(saved)/(1<<20))
}

func mustLoc(t *testing.T, name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}
