package replay

import (
	"strings"
	"testing"
	"time"
)

var pacific, _ = time.LoadLocation("America/Los_Angeles")

func TestLoadRefusesMalformedLines(t *testing.T) {
	cases := map[string]string{
		"field count":    "9,07/24/05,00:00:00",
		"flow code":      "8,07/24/05,00:00:00,1\n7,07/24/05,00:00:00,1",
		"date":           "9,07/32/05,00:00:00,1\n7,07/32/05,00:00:00,1",
		"time":           "9,07/24/05,25:00:00,1\n7,07/24/05,25:00:00,1",
		"negative count": "9,07/24/05,00:00:00,-1\n7,07/24/05,00:00:00,1",
		"fraction":       "9,07/24/05,00:00:00,1.5\n7,07/24/05,00:00:00,1",
		"in without out": "9,07/24/05,00:00:00,1",
		"two in rows":    "9,07/24/05,00:00:00,1\n9,07/24/05,00:00:00,2\n7,07/24/05,00:00:00,1",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(strings.NewReader(text), pacific)
			if err == nil || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("want an error naming the line, got %v", err)
			}
		})
	}
}

func TestMidnightRowBelongsToThePreviousDay(t *testing.T) {
	hs, err := Load(strings.NewReader("7,07/24/05,00:00:00,2\n9,07/24/05,00:00:00,3\n7,07/24/05,00:30:00,1\n9,07/24/05,00:30:00,4"), pacific)
	if err != nil {
		t.Fatal(err)
	}
	days := DailyTotals(hs)
	if len(days) != 2 || days[0] != (Day{"2005-07-23", 3, 2}) || days[1] != (Day{"2005-07-24", 4, 1}) {
		t.Fatalf("days %+v", days)
	}
}

func TestSpreadIsExact(t *testing.T) {
	base := time.Date(2005, 7, 24, 0, 0, 0, 0, pacific)
	hs := []HalfHour{{base, base.Add(30 * time.Minute), 7, 3}, {base.Add(30 * time.Minute), base.Add(time.Hour), 0, 5}, {base.Add(time.Hour), base.Add(90 * time.Minute), 11, 0}}
	for _, steps := range []int{1, 3, 7} {
		ps := Spread(hs, steps)
		if len(ps) != steps*len(hs) {
			t.Fatalf("steps %d: %d points", steps, len(ps))
		}
		var in, out uint64
		for i, h := range hs {
			in, out = in+h.In, out+h.Out
			last := ps[(i+1)*steps-1]
			if last.In != in || last.Out != out || !last.At.Equal(h.End) {
				t.Fatalf("steps %d: end of half hour %d is %+v, want %d/%d at %s", steps, i, last, in, out, h.End)
			}
		}
		for i := 1; i < len(ps); i++ {
			if ps[i].In < ps[i-1].In || ps[i].Out < ps[i-1].Out || !ps[i].At.After(ps[i-1].At) {
				t.Fatalf("steps %d: not monotone at %d: %+v then %+v", steps, i, ps[i-1], ps[i])
			}
		}
	}
}

func TestRealFile(t *testing.T) {
	hs, err := LoadFile("../../../shared/data/calit2/CalIt2.data")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 5040 {
		t.Fatalf("%d half hours, want 5040 (10,080 rows)", len(hs))
	}
	var in, out uint64
	for _, d := range DailyTotals(hs) {
		in, out = in+d.In, out+d.Out
	}
	if in != 19597 || out != 18837 {
		t.Fatalf("totals in %d out %d, want 19,597 and 18,837 (SOURCE.md)", in, out)
	}
	for i := 1; i < len(hs); i++ {
		if !hs[i].End.After(hs[i-1].End) {
			t.Fatalf("half hours out of order at %s", hs[i].End)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add("7,07/24/05,00:00:00,2\n9,07/24/05,00:00:00,3")
	f.Add("9,10/30/05,01:30:00,1\n7,10/30/05,01:30:00,0\n")
	f.Fuzz(func(t *testing.T, text string) {
		hs, err := Load(strings.NewReader(text), pacific)
		if err != nil {
			return
		}
		var in, out uint64
		for _, h := range hs {
			in, out = in+h.In, out+h.Out
		}
		var dIn, dOut uint64
		for _, d := range DailyTotals(hs) {
			dIn, dOut = dIn+d.In, dOut+d.Out
		}
		if in != dIn || out != dOut {
			t.Fatalf("daily totals %d/%d differ from the half hours %d/%d", dIn, dOut, in, out)
		}
		if ps := Spread(hs, 3); len(hs) > 0 && (ps[len(ps)-1].In != in || ps[len(ps)-1].Out != out) {
			t.Fatalf("spread ends at %+v, want %d/%d", ps[len(ps)-1], in, out)
		}
	})
}
