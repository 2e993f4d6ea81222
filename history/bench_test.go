package history

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/zones"
	bolt "go.etcd.io/bbolt"
)

// benchDir holds the generated year, shared by the benchmarks of one run.
var benchDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" {
		if keep := os.Getenv("HISTORY_BENCH_KEEP"); keep != "" {
			// HISTORY_BENCH_KEEP=FILE keeps the generated year (for the restart-to-ready
			// measurement in docs/benchmarks.md) instead of removing it.
			if err := os.Rename(filepath.Join(benchDir, "history.db"), keep); err != nil {
				fmt.Fprintln(os.Stderr, "history bench: keeping the year:", err)
			}
		}
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

// benchSite is a 50-zone store: the whole store and 49 departments, each with its own door
// from outside.
func benchSite(loc *time.Location) Site {
	s := Site{ID: "bench", Loc: loc, Zones: []ZoneInfo{{ID: "store", Capacity: 5000, AreaM2: 20000}}}
	for i := 1; i < 50; i++ {
		id := fmt.Sprintf("dept%02d", i)
		s.Zones = append(s.Zones, ZoneInfo{ID: id, Parent: "store", Capacity: 150, AreaM2: 300})
		s.Doors = append(s.Doors, DoorInfo{ID: "door-" + id, From: "outside", To: id})
	}
	return s
}

// benchYear is the generated history: a year of a busy store, recorded through the
// recorder's core as the service does (a sample every 5 s while open, 09:00-22:00, each
// department's occupancy changing at nearly every sample; closed nights sampled every
// minute and flat), written in a batch per simulated hour, with the default retention
// applied at the end (raw samples: the last 30 days).
var benchYear = sync.OnceValues(func() (*harness, error) {
	var err error
	benchDir, err = os.MkdirTemp("", "crowdwatch-history-bench")
	if err != nil {
		return nil, err
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	site := benchSite(sh)
	h := &harness{t: &testing.B{}, site: site, f: &file{path: filepath.Join(benchDir, "history.db"), site: site.ID,
		zone: sh.String(), timeout: 5 * time.Second, loc: tz{sh}, layout: &site}}
	if keep := os.Getenv("HISTORY_BENCH_FILE"); keep != "" {
		// A year kept by an earlier run (HISTORY_BENCH_KEEP), copied: the queries alone,
		// without the generation, e.g. to run two versions' benchmarks one after the other.
		b, err := os.ReadFile(keep)
		if err != nil {
			return nil, err
		}
		return h, os.WriteFile(h.f.path, b, 0o600)
	}
	if _, err := h.f.init(); err != nil {
		return nil, err
	}
	h.c = newCore(site, 0, func() int { return 0 })
	days := 365
	if s := os.Getenv("HISTORY_BENCH_DAYS"); s != "" {
		fmt.Sscan(s, &days)
	}
	start := time.Date(2025, 11, 23, 0, 0, 0, 0, sh)
	rng := rand.New(rand.NewPCG(1, 2))
	snap := &zones.Snapshot{}
	occ := make([]int64, len(site.Zones))
	var in, out = make([]uint64, len(site.Doors)), make([]uint64, len(site.Doors))
	for _, z := range site.Zones {
		snap.Zones = append(snap.Zones, zones.ZoneState{ID: z.ID, Capacity: z.Capacity})
	}
	for _, d := range site.Doors {
		snap.Doors = append(snap.Doors, zones.DoorState{ID: d.ID})
	}
	fill := func() {
		var total int64
		for i := 1; i < len(occ); i++ {
			total += occ[i]
		}
		occ[0] = total
		for i := range occ {
			zs := &snap.Zones[i]
			zs.Occupancy, zs.Ratio = occ[i], float64(occ[i])/float64(zs.Capacity)
		}
		for i := range snap.Doors {
			snap.Doors[i].In, snap.Doors[i].Out = in[i], out[i]
		}
	}
	end := start.AddDate(0, 0, days)
	for t := start; t.Before(end); {
		hour := t.Hour()
		open := hour >= 9 && hour < 22
		step := time.Minute
		if open {
			step = 5 * time.Second
			// A day's shape: busier towards the evening, a sine on top.
			busy := 0.5 + 0.5*math.Sin(float64(hour-9)/13*math.Pi)
			for i := 1; i < len(occ); i++ {
				target := int64(busy * 120)
				if rng.IntN(3) > 0 {
					n := int64(rng.IntN(4))
					if occ[i] < target {
						in[i-1] += uint64(n)
						occ[i] += n
					} else if occ[i] >= n {
						out[i-1] += uint64(n)
						occ[i] -= n
					}
				}
			}
		} else if hour == 22 && t.Minute() == 0 {
			for i := 1; i < len(occ); i++ { // everyone leaves at closing
				out[i-1] += uint64(occ[i])
				occ[i] = 0
			}
		}
		fill()
		h.c.observe(t.UnixMilli(), snap, nil, true)
		t = t.Add(step)
		if t.Minute() == 0 && t.Second() == 0 && t.Hour()%6 == 0 {
			// The service writes every 15 s; six hours at a time keeps the generation short
			// and gives the same blocks.
			h.c.advance(t.UnixMilli())
			if err := h.f.write(h.c.takeBatch()); err != nil {
				return nil, err
			}
			// The writer packs the blocks closed since its last pass (recorder.go, packer).
			if os.Getenv("HISTORY_BENCH_FORMAT") != "1" {
				if _, err := h.f.pack(context.Background(), time.Hour); err != nil {
					return nil, err
				}
			}
			if t.Hour() == 0 {
				// Retention runs as the service runs it, so freed pages are reused.
				if _, err := h.f.prune(context.Background(), t, Retention{Raw: 720 * time.Hour, Minute: 9600 * time.Hour}, 10000); err != nil {
					return nil, err
				}
			}
		}
	}
	return h, nil
})

func loadBench(b *testing.B) (*harness, *Reader, time.Time) {
	h, err := benchYear()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		st, _ := os.Stat(h.f.path)
		b.ReportMetric(float64(st.Size())/(1<<20), "file-MB")
		db, err := openFile(h.f.path, false, false, time.Second) // read-write: loads the free list
		if err != nil {
			return
		}
		defer db.Close()
		_ = db.View(func(tx *bolt.Tx) error {
			return tx.ForEach(func(name []byte, bk *bolt.Bucket) error {
				st := bk.Stats()
				b.Logf("bucket %-4s %7.1f MB in use (%d keys)", name, float64(st.LeafInuse+st.BranchInuse)/(1<<20), st.KeyN)
				return nil
			})
		})
		free := db.Stats().FreePageN + db.Stats().PendingPageN
		b.ReportMetric(float64(st.Size()-int64(free*db.Info().PageSize))/(1<<20), "used-MB")
	})
	var last time.Time
	_ = h.reader().view(context.Background(), func(q *txq) error { last = time.UnixMilli(q.wm).In(h.site.Loc); return nil })
	return h, NewReader(h.f.path, &h.site, 5*time.Second), last
}

// BenchmarkQueryDayMinutes: one zone, one day (yesterday) at 1-minute steps.
func BenchmarkQueryDayMinutes(b *testing.B) {
	_, r, last := loadBench(b)
	day := time.Date(last.Year(), last.Month(), last.Day()-1, 0, 0, 0, 0, last.Location())
	q := Query{Zones: []string{"dept07"}, From: day, To: day.AddDate(0, 0, 1), Step: Step{D: time.Minute}}
	for b.Loop() {
		s, err := r.History(context.Background(), q)
		if err != nil || len(s.Zones[0].Points) != 1440 {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueryDayMinutesAllZones: the same for all 50 zones in one answer.
func BenchmarkQueryDayMinutesAllZones(b *testing.B) {
	_, r, last := loadBench(b)
	day := time.Date(last.Year(), last.Month(), last.Day()-1, 0, 0, 0, 0, last.Location())
	q := Query{From: day, To: day.AddDate(0, 0, 1), Step: Step{D: time.Minute}}
	for b.Loop() {
		if _, err := r.History(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueryMonthHours: one zone, the last 30 days at 1-hour steps.
func BenchmarkQueryMonthHours(b *testing.B) {
	_, r, last := loadBench(b)
	q := Query{Zones: []string{"dept07"}, From: last.AddDate(0, 0, -30), To: last, Step: Step{D: time.Hour}}
	for b.Loop() {
		if _, err := r.History(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQueryMonthHoursAllZones: all 50 zones.
func BenchmarkQueryMonthHoursAllZones(b *testing.B) {
	_, r, last := loadBench(b)
	q := Query{From: last.AddDate(0, 0, -30), To: last, Step: Step{D: time.Hour}}
	for b.Loop() {
		if _, err := r.History(context.Background(), q); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReportDay: the daily report (50 zones, 49 doors, unusual traffic over 8 weeks).
func BenchmarkReportDay(b *testing.B) {
	_, r, last := loadBench(b)
	day := time.Date(last.Year(), last.Month(), last.Day()-1, 0, 0, 0, 0, last.Location())
	for b.Loop() {
		if _, err := r.Daily(context.Background(), day); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReportYear: the report of the whole year.
func BenchmarkReportYear(b *testing.B) {
	_, r, last := loadBench(b)
	for b.Loop() {
		if _, err := r.Report(context.Background(), last.AddDate(-1, 0, 0), last); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecorderTick: the recorder's cost per 5-second sample of 50 changing zones.
func BenchmarkRecorderTick(b *testing.B) {
	site := benchSite(time.UTC)
	c := newCore(site, 0, func() int { return 0 })
	snap := &zones.Snapshot{}
	for _, z := range site.Zones {
		snap.Zones = append(snap.Zones, zones.ZoneState{ID: z.ID, Capacity: z.Capacity})
	}
	for _, d := range site.Doors {
		snap.Doors = append(snap.Doors, zones.DoorState{ID: d.ID})
	}
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	i := 0
	for b.Loop() {
		i++
		for k := range snap.Zones {
			snap.Zones[k].Occupancy = int64((i + k) % 7)
		}
		for k := range snap.Doors {
			snap.Doors[k].In += uint64(k % 2)
		}
		c.observe(t+int64(i)*5000, snap, nil, true)
		if i%180 == 0 {
			c.takeBatch()
		}
	}
}

// BenchmarkFlush: one write of 15 s of a busy 50-zone store (three changed samples per zone
// and door), opening and closing the file as the writer does, fsync included.
func BenchmarkFlush(b *testing.B) {
	site := benchSite(time.UTC)
	f := &file{path: filepath.Join(b.TempDir(), "h.db"), site: site.ID, zone: "UTC", timeout: 5 * time.Second, loc: tz{time.UTC}, layout: &site}
	if _, err := f.init(); err != nil {
		b.Fatal(err)
	}
	c := newCore(site, 0, func() int { return 0 })
	snap := &zones.Snapshot{}
	for _, z := range site.Zones {
		snap.Zones = append(snap.Zones, zones.ZoneState{ID: z.ID, Capacity: z.Capacity})
	}
	for _, d := range site.Doors {
		snap.Doors = append(snap.Doors, zones.DoorState{ID: d.ID})
	}
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	i := 0
	for b.Loop() {
		for range 3 {
			i++
			for k := range snap.Zones {
				snap.Zones[k].Occupancy = int64((i + k) % 7)
			}
			for k := range snap.Doors {
				snap.Doors[k].In++
			}
			c.observe(t+int64(i)*5000, snap, nil, true)
		}
		if err := f.write(c.takeBatch()); err != nil {
			b.Fatal(err)
		}
	}
}
