package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

// rowBlocks are row blocks as the writer writes them, for each kind the packer handles.
func rowBlocks(rng *rand.Rand, block int64) map[string]struct {
	kind byte
	res  Resolution
	b    []byte
} {
	type blk = struct {
		kind byte
		res  Resolution
		b    []byte
	}
	var raw, mins, hours, draw, dmin []byte
	prev := block
	for i := range 700 {
		s := Sample{At: prev + 4990 + rng.Int64N(20), Occupancy: rng.Int64N(150), Level: levels.Level(rng.IntN(NumLevels)),
			Entries: rng.Int64N(4), Exits: rng.Int64N(4), End: i%97 == 3}
		if i%50 == 7 {
			s.Corrected, s.Clamped, s.Deficit = 2, 1, 3
		}
		raw = appendSample(raw, prev, s)
		prev = s.At
		draw = appendDoor(draw, Raw, block, DoorCount{Start: s.At, In: s.Entries, Out: s.Exits})
	}
	for m := range int64(60) {
		st := block + m*minuteMs
		if m%13 == 5 {
			mins = appendFlat(mins, Minute, block, st, 1, 7, levels.Busy)
			continue
		}
		r := Rollup{Start: st, End: st + minuteMs, Covered: minuteMs - m%3, MaxAt: st + rng.Int64N(minuteMs), Min: 40 + m, Max: 45 + m,
			Last: 41 + m, Integral: (42 + m) * minuteMs, Entries: rng.Int64N(30), Exits: rng.Int64N(30), LastLevel: levels.Level(m % 3)}
		r.AtLevel[m%3] = r.Covered - 1000
		r.AtLevel[(m+1)%3] = 1000
		if m == 30 { // a restart inside the window: a record for each part, merged on read
			a, b := r, r
			a.Covered, a.AtLevel = 20000, [NumLevels]int64{20000}
			a.LastLevel = levels.Normal
			b.Covered -= 20000
			b.AtLevel[m%3] -= 20000
			mins = appendRollup(appendRollup(mins, Minute, block, a), Minute, block, b)
		} else {
			mins = appendRollup(mins, Minute, block, r)
		}
		dmin = appendDoor(dmin, Minute, block, DoorCount{Start: st, In: m, Out: 2 * m})
	}
	hours = appendFlat(hours, Hour, block, block, 9, 0, levels.Normal)
	for h := int64(9); h < 24; h++ {
		r := Rollup{Start: block + h*hourMs, End: block + (h+1)*hourMs, Covered: hourMs, MaxAt: block + h*hourMs + 5, Min: h, Max: math.MaxInt32,
			Last: 3 + h, Integral: 1 << 50, Entries: 4 * h, Exits: 5, Clamped: 1, Corrected: 2, LastLevel: levels.Evacuate}
		r.AtLevel[levels.Evacuate] = hourMs
		hours = appendRollup(hours, Hour, block, r)
	}
	return map[string]blk{"raw samples": {kindZone, Raw, raw}, "minute roll-ups": {kindZone, Minute, mins},
		"hour roll-ups": {kindZone, Hour, hours}, "raw door counts": {kindDoor, Raw, draw}, "door minutes": {kindDoor, Minute, dmin}}
}

// decodeAny reads a block of any kind into comparable JSON.
func decodeAny(t *testing.T, kind byte, res Resolution, block int64, b []byte) (string, error) {
	t.Helper()
	var v any
	var err error
	switch {
	case kind == kindDoor:
		v, err = decodeDoors(res, block, b, nil)
	case res == Raw:
		v, err = decodeSamples(block, b, nil)
	default:
		v, err = decodeRollups(res, block, b, nil)
	}
	js, _ := json.Marshal(v)
	return string(js), err
}

// TestPackReadsAsRows: a packed block reads exactly as its rows, alone and with rows
// appended after it was packed; packing it again changes nothing; damage is refused.
func TestPackReadsAsRows(t *testing.T) {
	block := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixMilli()
	rng := rand.New(rand.NewPCG(3, 4))
	for name, c := range rowBlocks(rng, block) {
		t.Run(name, func(t *testing.T) {
			want, err := decodeAny(t, c.kind, c.res, block, c.b)
			if err != nil {
				t.Fatal(err)
			}
			p := pack(c.kind, c.res, block, c.b)
			if p == nil || !isPacked(p) {
				t.Fatalf("not packed (%d bytes of rows)", len(c.b))
			}
			t.Logf("%d bytes of rows, %d packed", len(c.b), len(p))
			if got, err := decodeAny(t, c.kind, c.res, block, p); err != nil || got != want {
				t.Fatalf("packed reads differently (%v)", err)
			}
			if pack(c.kind, c.res, block, p) != nil {
				t.Error("a packed block was packed again")
			}
			// Rows written after packing (a restart at the end of the last window): the
			// reader goes on from the packed part.
			var tail []byte
			switch {
			case c.kind == kindZone && c.res == Raw:
				ss, _ := decodeSamples(block, c.b, nil)
				last := ss[len(ss)-1].At
				tail = appendSample(nil, last, Sample{At: last + 5000, Occupancy: 3})
			case c.kind == kindZone:
				rs, _ := decodeRollups(c.res, block, c.b, nil)
				last := rs[len(rs)-1]
				tail = appendRollup(nil, c.res, block, Rollup{Start: last.Start, End: last.End, Entries: 2})
			default:
				cs, _ := decodeDoors(c.res, block, c.b, nil)
				tail = appendDoor(nil, c.res, block, DoorCount{Start: cs[len(cs)-1].Start, In: 1})
				if c.res == Raw {
					tail = appendDoor(tail, c.res, block, DoorCount{Start: cs[len(cs)-1].Start + 5000, In: 1})
				}
			}
			wantAll, err := decodeAny(t, c.kind, c.res, block, append(append([]byte(nil), c.b...), tail...))
			if err != nil {
				t.Fatal(err)
			}
			mixed := append(append([]byte(nil), p...), tail...)
			if got, err := decodeAny(t, c.kind, c.res, block, mixed); err != nil || got != wantAll {
				t.Fatalf("packed + rows reads differently (%v)", err)
			}
			// Packed again only when smaller (a row or two is not worth it), reading the same.
			if again := pack(c.kind, c.res, block, mixed); again != nil {
				if got, _ := decodeAny(t, c.kind, c.res, block, again); got != wantAll || len(again) >= len(mixed) {
					t.Fatal("repacked reads differently or is not smaller")
				}
			}
			// Damage: every truncation and a changed header byte read as damaged, never panic.
			for n := 3; n < len(p); n += max(1, len(p)/40) {
				if _, err := decodeAny(t, c.kind, c.res, block, p[:n]); !errors.Is(err, errCorrupt) {
					t.Fatalf("truncated to %d bytes: %v", n, err)
				}
			}
			bad := append([]byte(nil), p...)
			bad[2] = 9
			if _, err := decodeAny(t, c.kind, c.res, block, bad); !errors.Is(err, errCorrupt) {
				t.Fatalf("unknown packed version: %v", err)
			}
		})
	}
}

// TestPackLeavesWhatItCannotKeep: a block whose packed form would not read back the same,
// or would not be smaller, stays as rows.
func TestPackLeavesWhatItCannotKeep(t *testing.T) {
	block := int64(1_800_000_000_000)
	// Times at levels that do not add up to Covered (no level held): packed, the last
	// level's time would be implied.
	r := Rollup{Start: block, End: block + minuteMs, Covered: minuteMs, MaxAt: block, Min: 1, Max: 1, Last: 1, Integral: minuteMs}
	rows := appendRollup(nil, Minute, block, r)
	rows[len(rows)-1] = 0 // mask: no level held
	var big []byte
	for i := range int64(60) {
		big = append(big, rows...)
		big[len(big)-len(rows)] = byte(i) // window offset in s (< 128)
	}
	if _, err := decodeRollups(Minute, block, big, nil); err != nil {
		t.Fatal(err)
	}
	if pack(kindZone, Minute, block, big) != nil {
		t.Error("packed a block that does not read back the same")
	}
	// One flat hour is a few bytes as rows.
	flat := appendFlat(nil, Minute, block, block, 60, 0, levels.Normal)
	if pack(kindZone, Minute, block, flat) != nil {
		t.Error("packed a block that was smaller as rows")
	}
	// A damaged block stays as it is, for the reader to skip.
	if pack(kindZone, Minute, block, []byte{0xff}) != nil {
		t.Error("packed a damaged block")
	}
}

// FuzzPackedDecode: any bytes after the packed mark read as a packed part or as damage,
// without panicking, allocating more than maxPacked records, or giving a figure the row
// decoder would refuse. (The rows after a packed part are the row decoder's, fuzzed by
// FuzzCodecRoundTrip; a flat run expands to up to maxRun windows, so they are left out here.)
func FuzzPackedDecode(f *testing.F) {
	block := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixMilli()
	for _, c := range rowBlocks(rand.New(rand.NewPCG(1, 1)), block) {
		if p := pack(c.kind, c.res, block, c.b); p != nil {
			f.Add(p[2:], uint8(c.kind), uint8(c.res))
		}
	}
	f.Add([]byte{1, 3, 2, 0, 0}, uint8(kindZone), uint8(Minute))
	f.Fuzz(func(t *testing.T, b []byte, kind, res uint8) {
		v := append(packedMark[:], b...)
		r := Resolution(res % 3)
		switch {
		case kind%2 == 0:
			if cs, _, err := unpackDoors(r, block, v, nil); err == nil {
				for _, c := range cs {
					if c.In < 0 || c.Out < 0 {
						t.Fatalf("count %+v", c)
					}
				}
			}
		case r == Raw:
			if ss, _, _, err := unpackSamples(block, v, nil); err == nil {
				for _, s := range ss {
					if s.Level < 0 || int(s.Level) >= NumLevels || s.Occupancy < 0 || s.Entries < 0 {
						t.Fatalf("sample %+v", s)
					}
				}
			}
		default:
			if rs, _, err := unpackRollups(r, block, v, nil); err == nil {
				for _, x := range rs {
					var sum int64
					for _, a := range x.AtLevel {
						sum += a
						if a < 0 {
							t.Fatalf("window %+v", x)
						}
					}
					if x.Covered < 0 || sum != x.Covered || int(x.LastLevel) >= NumLevels || x.Min < 0 || x.Integral < 0 {
						t.Fatalf("window %+v", x)
					}
				}
			}
		}
	})
}

// answers are a history file's answers to a fixed set of queries, as JSON: every zone at
// raw, minute, hour and day steps, every door by the minute, each day's report and the
// report of the whole range.
func answers(t *testing.T, path string, from, to time.Time) []string {
	t.Helper()
	r := NewReader(path, nil, 5*time.Second)
	r.Now = func() time.Time { return to.Add(time.Hour) }
	ctx := context.Background()
	var out []string
	add := func(v any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(js))
	}
	for _, st := range []Step{{D: 10 * time.Second}, {D: time.Minute}, {D: 15 * time.Minute}, {D: time.Hour}, {Days: 1}} {
		add(r.History(ctx, Query{From: from, To: to, Step: st}))
		if st.D >= time.Minute || st.Days > 0 {
			add(r.DoorFlows(ctx, Query{From: from, To: to, Step: st}))
		}
	}
	for d := from; d.Before(to); d = d.AddDate(0, 0, 1) {
		add(r.Daily(ctx, d))
	}
	add(r.Report(ctx, from, to))
	return out
}

// fixture copies the format-1 fixture to a temporary file.
func fixture(t *testing.T) (path string, site Site, from, to time.Time) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "history", "format1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), "history.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	sh, _ := time.LoadLocation("Asia/Shanghai")
	from = time.Date(2026, 3, 1, 0, 0, 0, 0, sh)
	return path, testSite(sh), from, from.AddDate(0, 0, 2)
}

// blockCounts counts a file's blocks and how many are packed.
func blockCounts(t *testing.T, path string) (format string, blocks, packed int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		format = string(tx.Bucket(bucketMeta).Get(keyFormat))
		return tx.ForEach(func(name []byte, top *bolt.Bucket) error {
			if bytes.Equal(name, bucketMeta) {
				return nil
			}
			return top.ForEachBucket(func(s []byte) error {
				return top.Bucket(s).ForEach(func(_, v []byte) error {
					blocks++
					if isPacked(v) {
						packed++
					}
					return nil
				})
			})
		})
	})
	return format, blocks, packed
}

// TestConvertFormat1: a format-1 file is taken over as it is (it reads the same at once),
// its blocks are packed one transaction at a time, and after every transaction (where a
// crash would leave it) and at the end it answers every query exactly as before.
func TestConvertFormat1(t *testing.T) {
	path, site, from, to := fixture(t)
	format, blocks, packed := blockCounts(t, path)
	if format != historyFormat1 || packed != 0 || blocks == 0 {
		t.Fatalf("fixture: format %q, %d blocks, %d packed", format, blocks, packed)
	}
	want := answers(t, path, from, to)
	f := &file{path: path, site: site.ID, zone: site.Loc.String(), timeout: time.Second, loc: tz{site.Loc}, layout: &site}
	if _, err := f.init(); err != nil {
		t.Fatal(err)
	}
	if !f.converted {
		t.Error("init did not see a format-1 file")
	}
	steps := 0
	for ; steps < 100; steps++ {
		res, err := f.pack(context.Background(), 0) // one transaction, then the file is closed
		if err != nil {
			t.Fatal(err)
		}
		if got := answers(t, path, from, to); !equal(got, want) {
			t.Fatalf("after %d packing transactions the answers differ", steps+1)
		}
		if res.Done {
			break
		}
	}
	format, blocks2, packed := blockCounts(t, path)
	t.Logf("%d transactions; %d of %d blocks packed", steps+1, packed, blocks2)
	if format != historyFormat || blocks2 != blocks || packed < blocks/2 || steps < 3 {
		t.Fatalf("after packing: format %q, %d of %d blocks packed, %d steps", format, packed, blocks2, steps)
	}
	// A second start finds nothing left to do and writes nothing.
	f2 := &file{path: path, site: site.ID, zone: site.Loc.String(), timeout: time.Second, loc: tz{site.Loc}, layout: &site}
	if _, err := f2.init(); err != nil || f2.converted {
		t.Fatalf("second start: %v, converted %v", err, f2.converted)
	}
	if res, err := f2.pack(context.Background(), time.Second); err != nil || !res.Done || res.Blocks != 0 {
		t.Fatalf("second pass: %+v, %v", res, err)
	}
}

// staticEngine is an engine that does not change: testSite's zones and doors as the
// fixture left them.
type staticEngine struct{ snap *zones.Snapshot }

func (s staticEngine) Snapshot() *zones.Snapshot { return s.snap }
func (s staticEngine) Subscribe() (<-chan struct{}, func()) {
	return make(chan struct{}), func() {}
}

// TestRecorderConvertsFormat1: the recorder started on a format-1 file records at once and
// packs the old blocks in its writer; the old history answers as before.
func TestRecorderConvertsFormat1(t *testing.T) {
	path, site, from, to := fixture(t)
	want := answers(t, path, from, to)
	snap := &zones.Snapshot{}
	for _, z := range site.Zones {
		snap.Zones = append(snap.Zones, zones.ZoneState{ID: z.ID, Capacity: z.Capacity})
	}
	for _, d := range site.Doors {
		snap.Doors = append(snap.Doors, zones.DoorState{ID: d.ID})
	}
	reg := prometheus.NewRegistry()
	now := to.Add(3 * time.Hour)
	rec, err := NewRecorder(staticEngine{snap}, reg, Options{Path: path, Site: site, SampleInterval: 10 * time.Millisecond,
		FlushInterval: 20 * time.Millisecond, LockTimeout: time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- rec.Run(ctx) }()
	for i := 0; i < 500 && testutil.ToFloat64(rec.m.packedUpTo) < float64(to.Add(-time.Hour).Unix()); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(rec.m.packed); got == 0 {
		t.Error("no blocks packed")
	}
	if testutil.ToFloat64(rec.m.lastFlush) == 0 {
		t.Error("nothing recorded")
	}
	if format, _, packed := blockCounts(t, path); format != historyFormat || packed == 0 {
		t.Errorf("format %q, %d blocks packed", format, packed)
	}
	// The watermark moved on with the new recording; everything else reads as before.
	wm := regexp.MustCompile(`"recorded_to":"[^"]*"`)
	got := answers(t, path, from, to)
	for i := range got {
		if wm.ReplaceAllString(got[i], "") != wm.ReplaceAllString(want[i], "") {
			t.Errorf("answer %d differs after the conversion", i)
		}
	}
}

// BenchmarkDecodeBlock: reading one busy block of each kind, as rows and packed (the part
// of a query that the packing changes).
func BenchmarkDecodeBlock(b *testing.B) {
	block := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC).UnixMilli()
	blocks := rowBlocks(rand.New(rand.NewPCG(3, 4)), block)
	for _, name := range []string{"minute roll-ups", "raw samples", "door minutes"} {
		c := blocks[name]
		p := pack(c.kind, c.res, block, c.b)
		for _, form := range []struct {
			name string
			v    []byte
		}{{"rows", c.b}, {"packed", p}} {
			b.Run(name+"/"+form.name, func(b *testing.B) {
				var rs []Rollup
				var ss []Sample
				var cs []DoorCount
				for b.Loop() {
					switch {
					case c.kind == kindDoor:
						cs, _ = decodeDoors(c.res, block, form.v, cs[:0])
					case c.res == Raw:
						ss, _ = decodeSamples(block, form.v, ss[:0])
					default:
						rs, _ = decodeRollups(c.res, block, form.v, rs[:0])
					}
				}
				b.ReportMetric(float64(len(form.v)), "bytes")
			})
		}
	}
}

// TestRecordsAfterClose: records that reach a block after it was moved to the closed bucket
// go to the open bucket under the same key; reads add them, and the next pass packs both
// into the closed block.
func TestRecordsAfterClose(t *testing.T) {
	site := testSite(time.UTC)
	h := newHarness(t, site)
	c := newCrowd(site, 9)
	a := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	h.run(c, a, a.Add(3*time.Hour), func(time.Time) int { return 2 })
	if _, err := h.f.pack(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	r := h.reader()
	q := Query{Zones: []string{"main"}, From: a, To: a.Add(time.Hour), Step: Step{D: time.Minute}}
	before, err := r.DoorFlows(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	late := newBatch()
	// The last window of the hour, as a restart inside it writes a second record for it.
	minute := a.Add(59 * time.Minute).UnixMilli()
	late.add(blockRef{kindDoor, Minute, "main", a.UnixMilli()}, appendDoor(nil, Minute, a.UnixMilli(), DoorCount{Start: minute, In: 5, Out: 1}))
	if err := h.f.write(late); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		after, err := r.DoorFlows(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range after.Doors[0].Points {
			b := before.Doors[0].Points[i]
			in, out := b.In, b.Out
			if p.Start.UnixMilli() == minute {
				in, out = in+5, out+1
			}
			if p.In != in || p.Out != out {
				t.Fatalf("%s: minute %s: %d in, %d out; want %d, %d", when, p.Start, p.In, p.Out, in, out)
			}
		}
	}
	check("late rows in the open bucket")
	if _, err := h.f.pack(context.Background(), time.Minute); err != nil {
		t.Fatal(err)
	}
	check("packed together")
	db, err := bolt.Open(h.f.path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketName(kindDoor, Minute)).Bucket([]byte("main")).Get(blockKey(a.UnixMilli())); v != nil {
			t.Error("the late rows stayed in the open bucket")
		}
		if v := tx.Bucket(closedName(kindDoor, Minute)).Bucket([]byte("main")).Get(blockKey(a.UnixMilli())); !isPacked(v) {
			t.Error("the closed block is not packed")
		}
		return nil
	})
}
