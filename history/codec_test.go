package history

import (
	"math"
	"testing"

	"github.com/crowdwatch/crowdwatch/levels"
)

// TestCodecWritesOnlyWhatItReads: the figures a wrapped correction produced (by a bug since fixed:
// a deficit of 9.2e18, a negative corrected count, an overflowed integral) are clamped when
// written, and the block they are in still reads.
func TestCodecWritesOnlyWhatItReads(t *testing.T) {
	for _, v := range []int64{0, 1, -1, 1 << 62, 1<<62 + 1, math.MaxInt64, math.MinInt64} {
		block := int64(1_800_000_000_000)
		s := Sample{At: block + 5000, Occupancy: v, Deficit: v, Entries: v, Exits: v, Clamped: v, Corrected: v, Level: levels.Level(7)}
		b := appendSample(nil, block, Sample{At: block, Occupancy: 3})
		b = appendSample(b, block, s)
		ss, err := decodeSamples(block, b, nil)
		if err != nil || len(ss) != 2 {
			t.Errorf("sample with %d: %v (%d samples)", v, err, len(ss))
		}
		r := Rollup{Start: block, End: block + minuteMs, Covered: minuteMs, MaxAt: block, Min: v, Max: v, Last: v,
			Integral: v, Entries: v, Exits: v, Clamped: v, Corrected: v, LastLevel: levels.Level(9)}
		r.AtLevel[1] = minuteMs
		rb := appendRollup(nil, Minute, block, r)
		rb = appendFlat(rb, Minute, block, block+minuteMs, 3, v, levels.Level(-2))
		if rs, err := decodeRollups(Minute, block, rb, nil); err != nil || len(rs) != 4 {
			t.Errorf("roll-ups with %d: %v (%d windows)", v, err, len(rs))
		}
		db := appendDoor(nil, Minute, block, DoorCount{Start: block, In: v, Out: v})
		if ds, err := decodeDoors(Minute, block, db, nil); err != nil || len(ds) != 1 {
			t.Errorf("door with %d: %v", v, err)
		}
	}
	// A flat run longer than one record holds is split, not refused.
	b := appendFlat(nil, Minute, 0, 0, 2*maxRun+5, 4, levels.Busy)
	if rs, err := decodeRollups(Minute, 0, b, nil); err != nil || len(rs) != 2*maxRun+5 || rs[len(rs)-1].Start != int64(2*maxRun+4)*minuteMs {
		t.Errorf("long run: %v, %d windows", err, len(rs))
	}
}

// FuzzCodecRoundTrip: whatever figures reach the writer, the reader accepts the block.
func FuzzCodecRoundTrip(f *testing.F) {
	f.Add(int64(5000), int64(3), int64(0), int64(1), int64(0), uint8(1), int64(60000), int64(2))
	f.Add(int64(1), int64(math.MaxInt64), int64(math.MinInt64), int64(-1), int64(1<<62+1), uint8(200), int64(-5), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, dt, occ, deficit, entries, corrected int64, level uint8, covered, split int64) {
		block := int64(1_800_000_000_000)
		dt = max(0, dt%hourMs)
		s := Sample{At: block + dt, Occupancy: occ, Deficit: deficit, Entries: entries, Exits: -entries,
			Corrected: corrected, Clamped: deficit, Level: levels.Level(level), End: level&1 == 1}
		if _, err := decodeSamples(block, appendSample(nil, block, s), nil); err != nil {
			t.Fatalf("sample %+v: %v", s, err)
		}
		// Roll-ups as the core builds them: times at levels add up to Covered.
		covered = max(0, covered%minuteMs)
		split = max(0, split%(covered+1))
		r := Rollup{Start: block, End: block + minuteMs, Covered: covered, MaxAt: block + dt%minuteMs, Min: occ, Max: deficit,
			Last: entries, Integral: occ * covered, Entries: entries, Exits: corrected, Clamped: -occ, Corrected: corrected,
			LastLevel: levels.Level(level)}
		r.AtLevel[int(level)%NumLevels] = split
		r.AtLevel[(int(level)+1)%NumLevels] += covered - split
		b := appendRollup(nil, Minute, block, r)
		b = appendFlat(b, Minute, block, block+minuteMs, int(max(0, entries%100)), occ, levels.Level(level))
		if _, err := decodeRollups(Minute, block, b, nil); err != nil {
			t.Fatalf("roll-up %+v: %v", r, err)
		}
		if _, err := decodeDoors(Raw, block, appendDoor(nil, Raw, block, DoorCount{Start: block + dt, In: occ, Out: deficit}), nil); err != nil {
			t.Fatalf("door: %v", err)
		}
	})
}
