package history

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"
)

// damageBlock overwrites one stored block with bytes no decoder accepts.
func damageBlock(t *testing.T, path string, kind byte, res Resolution, series string, start int64) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketName(kind, res)).Bucket([]byte(series))
		if b.Get(blockKey(start)) == nil {
			t.Fatalf("no %s block for %s at %s", res, series, time.UnixMilli(start).UTC())
		}
		return b.Put(blockKey(start), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDamagedBlockCostsOnlyItself: one damaged block leaves out its own hour, counted in the
// answer and the metric; the rest of the day reads (before, the history API, the daily
// report and `crowdwatch report` failed for the whole day, permanently).
func TestDamagedBlockCostsOnlyItself(t *testing.T) {
	site := testSite(time.UTC)
	h := newHarness(t, site)
	c := newCrowd(site, 3)
	a := time.Date(2026, 11, 11, 9, 0, 0, 0, time.UTC)
	h.run(c, a, a.Add(3*time.Hour), func(time.Time) int { return 2 })
	h.flush(a.Add(3 * time.Hour))
	second := a.Add(time.Hour).UnixMilli()
	damageBlock(t, h.f.path, kindZone, Raw, "entrance", second)
	damageBlock(t, h.f.path, kindZone, Minute, "entrance", second)
	damageBlock(t, h.f.path, kindDoor, Minute, "main", second)

	r := h.reader()
	r.DamagedBlocks = prometheus.NewCounter(prometheus.CounterOpts{Name: "damaged"})
	ctx := context.Background()
	s, err := r.History(ctx, Query{Zones: []string{"entrance"}, From: a, To: a.Add(3 * time.Hour), Step: Step{D: 15 * time.Minute}})
	if err != nil {
		t.Fatalf("history of a day with a damaged block: %v", err)
	}
	if s.DamagedBlocks == 0 {
		t.Error("the answer does not say that a block was left out")
	}
	for _, p := range s.Zones[0].Points {
		inDamaged := !p.Start.Before(a.Add(time.Hour)) && p.Start.Before(a.Add(2*time.Hour))
		if inDamaged && p.Max != nil {
			t.Errorf("%s: a value (%d) in the damaged hour", p.Start.Format("15:04"), *p.Max)
		}
		if !inDamaged && p.Max == nil {
			t.Errorf("%s: no value outside the damaged hour", p.Start.Format("15:04"))
		}
	}
	raw, err := r.History(ctx, Query{Zones: []string{"entrance"}, From: a.Add(30 * time.Minute), To: a.Add(150 * time.Minute), Step: Step{D: 5 * time.Second}})
	if err != nil || raw.DamagedBlocks == 0 {
		t.Fatalf("raw: %v, damaged %d", err, raw.DamagedBlocks)
	}
	for _, p := range raw.Zones[0].Points {
		if p.Start.Hour() == 10 && p.Max != nil {
			t.Fatalf("raw %s: the value before the damaged hour runs on through it", p.Start.Format("15:04:05"))
		}
	}
	if _, err := r.DoorFlows(ctx, Query{From: a, To: a.Add(3 * time.Hour), Step: Step{D: time.Hour}}); err != nil {
		t.Errorf("door flows: %v", err)
	}
	rep, err := r.Daily(ctx, a)
	if err != nil {
		t.Fatalf("daily report: %v", err)
	}
	if rep.DamagedBlocks == 0 || rep.Visitors == 0 {
		t.Errorf("report: damaged %d, visitors %d", rep.DamagedBlocks, rep.Visitors)
	}
	var md strings.Builder
	if err := WriteReportMarkdown(&md, rep); err != nil || !strings.Contains(md.String(), "damaged block") {
		t.Errorf("the Markdown report does not say blocks were left out:\n%s", md.String())
	}
	if n := testutil.ToFloat64(r.DamagedBlocks); n == 0 {
		t.Error("the metric did not count the damaged blocks")
	}
}

// TestRecorderStopsWritingADamagedFile: a history file damaged under a running recorder is
// tried once, then left alone (each try of a file bbolt panics on costs a mapping); the
// recorder keeps running and stops cleanly.
func TestRecorderStopsWritingADamagedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "h.db")
	eng := &fakeEngine{}
	eng.set(0, 0)
	stop, reg := startRecorder(t, eng, path, 1<<20, nil)
	eng.set(5, 1)
	waitVisitors(t, path, 5)
	// Random bytes over every page header after the meta pages, through the file itself.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	junk := bytes.Repeat([]byte{0xa5}, 16)
	for off := int64(2 * 4096); off+16 <= int64(len(b)); off += 4096 {
		if _, err := f.WriteAt(junk, off); err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	for i := range 8 {
		eng.set(uint64(6+i), 1) // more to write
		time.Sleep(60 * time.Millisecond)
	}
	if n := testkit.Metric(t, reg, "crowdwatch_history_flush_errors_total"); n != 1 {
		t.Errorf("%v failed writes of the damaged file, want exactly 1 (then none)", n)
	}
	stop()
}
