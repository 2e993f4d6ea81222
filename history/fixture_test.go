package history

import (
	"os"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestMakeFixture writes the history of testSite for two days (a busy day, a restart in the
// middle of the second, a stop) to $HISTORY_MAKE_FIXTURE. It is how
// testdata/history/format1.db was made, run in a checkout of the last format-1 version
// (testdata/history/README.md); it uses only what that version has.
func TestMakeFixture(t *testing.T) {
	out := os.Getenv("HISTORY_MAKE_FIXTURE")
	if out == "" {
		t.Skip("set HISTORY_MAKE_FIXTURE=FILE to write the fixture")
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	site := testSite(sh)
	h := newHarness(t, site)
	c := newCrowd(site, 7)
	c.drifted, c.resetDaily = true, true
	busy := func(t time.Time) int {
		if hr := t.In(sh).Hour(); hr >= 9 && hr < 22 {
			return 3
		}
		return 0
	}
	a := time.Date(2026, 3, 1, 0, 0, 0, 0, sh)
	h.run(c, a, a.Add(36*time.Hour+17*time.Minute), busy)
	h.restart() // a crash: the recorder resumes from what the file holds
	h.run(c, a.Add(36*time.Hour+17*time.Minute+40*time.Second), a.Add(48*time.Hour), busy)
	h.stop(a.Add(48 * time.Hour))
	// Compacted: the recorder's file has room to grow that a fixture need not carry.
	src, err := bolt.Open(h.f.path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	os.Remove(out)
	dst, err := bolt.Open(out, 0o644, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	if err := bolt.Compact(dst, src, 1<<20); err != nil {
		t.Fatal(err)
	}
}
