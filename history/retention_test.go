package history

import (
	"context"
	"testing"
	"time"
)

// TestPruneRemovesExactlyExpiredBlocks records ten days, prunes with retentions that cut
// through the middle of hours and days, and checks that exactly the blocks that ended before
// each cut-off are gone and every other record is intact.
func TestPruneRemovesExactlyExpiredBlocks(t *testing.T) {
	sh, _ := time.LoadLocation("Asia/Shanghai")
	site := testSite(sh)
	h := newHarness(t, site)
	h.flushEvery = 30 * time.Minute
	c := newCrowd(site, 3)
	a := time.Date(2026, 5, 1, 0, 0, 0, 0, sh)
	b := a.AddDate(0, 0, 10)
	// Slow ticks keep the test quick; the retention logic does not depend on their rate.
	busy := func(time.Time) int { return 2 }
	h.run(c, a, b, busy)
	h.flush(b)

	count := func(kind byte, res Resolution) (n int, first int64) {
		_ = h.reader().view(context.Background(), func(q *txq) error {
			top := q.tx.Bucket(bucketName(kind, res))
			if top == nil {
				return nil
			}
			first = 1 << 62
			return top.ForEachBucket(func(name []byte) error {
				return top.Bucket(name).ForEach(func(k, _ []byte) error {
					n++
					first = min(first, keyTime(k))
					return nil
				})
			})
		})
		return n, first
	}
	before := map[[2]int]int{}
	for _, kind := range []byte{kindZone, kindDoor} {
		for _, res := range []Resolution{Raw, Minute, Hour} {
			before[[2]int{int(kind), int(res)}], _ = count(kind, res)
		}
	}
	now := b.Add(-30 * time.Minute) // inside the last hour
	keep := Retention{Raw: 48*time.Hour + 20*time.Minute, Minute: 5*24*time.Hour + 90*time.Minute, Hour: 8 * 24 * time.Hour}
	n, err := h.f.prune(context.Background(), now, keep, 7) // small transactions on purpose
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		res    Resolution
		cutoff time.Time
		// firstKept is the first block that must survive: the one holding the cut-off.
		firstKept time.Time
	}{
		{Raw, now.Add(-keep.Raw), time.Date(2026, 5, 8, 23, 0, 0, 0, sh)},       // cut-off 23:10
		{Minute, now.Add(-keep.Minute), time.Date(2026, 5, 5, 22, 0, 0, 0, sh)}, // cut-off 22:00 exactly: the block ending then goes
		{Hour, now.Add(-keep.Hour), time.Date(2026, 5, 2, 0, 0, 0, 0, sh)},      // cut-off 2026-05-02 23:30: its day block survives
	} {
		for _, kind := range []byte{kindZone, kindDoor} {
			left, first := count(kind, tc.res)
			per := len(site.Zones)
			if kind == kindDoor {
				per = len(site.Doors)
			}
			if first != tc.firstKept.UnixMilli() {
				t.Errorf("%c %s: first block left %s, want %s (cut-off %s)", kind, tc.res,
					time.UnixMilli(first).In(sh), tc.firstKept, tc.cutoff)
			}
			var span int
			if tc.res == Hour {
				span = int(tc.firstKept.Sub(a).Hours() / 24)
			} else {
				span = int(tc.firstKept.Sub(a).Hours())
			}
			if want := before[[2]int{int(kind), int(tc.res)}] - span*per; left != want {
				t.Errorf("%c %s: %d blocks left, want %d", kind, tc.res, left, want)
			}
		}
	}
	if n[Raw] == 0 || n[Minute] == 0 || n[Hour] == 0 {
		t.Errorf("deleted %v", n)
	}
	// Forever keeps everything.
	if n, err := h.f.prune(context.Background(), now.AddDate(5, 0, 0), Retention{}, 100); err != nil || len(n) != 0 {
		t.Errorf("retention 0 pruned %v (%v)", n, err)
	}
}
