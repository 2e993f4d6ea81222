package replay

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

var pacific = mustLoc(Zone)

func mustLoc(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// dataPath is where the real CalIt2 file is: testdata/calit2 in the repository, or CALIT2_DATA.
func dataPath() string {
	if p := os.Getenv("CALIT2_DATA"); p != "" {
		return p
	}
	return "../../testdata/calit2/CalIt2.data"
}

// dataFile is dataPath; without the file the test is skipped, except under CI=true where it
// fails (the file is part of the repository).
func dataFile(t testing.TB) string {
	p := dataPath()
	if _, err := os.Stat(p); err != nil {
		msg := fmt.Sprintf("the CalIt2 data set is not at %s (set CALIT2_DATA): %v", p, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

func TestLoadRefusesMalformedLines(t *testing.T) {
	const ok = "7,07/24/05,00:30:00,1\n9,07/24/05,00:30:00,2\n"
	cases := []struct {
		name, text string
		line       int
		want       string
	}{
		{"too few fields", ok + "9,07/24/05,01:00:00", 3, "want 4 fields"},
		{"too many fields", ok + "9,07/24/05,01:00:00,1,2", 3, "want 4 fields"},
		{"empty line", "7,07/24/05,00:30:00,1\n\n9,07/24/05,00:30:00,2", 2, "empty line"},
		{"blank line at the end", ok + "\n", 3, "empty line"},
		{"flow code", ok + "8,07/24/05,01:00:00,1", 3, "neither 7"},
		{"flow with a space", " 9,07/24/05,00:00:00,1", 1, "neither 7"},
		{"month 13", "9,13/24/05,00:00:00,1", 1, "date"},
		{"February 29 2005", "9,02/29/05,00:00:00,1", 1, "date"},
		{"one-digit month", "9,7/24/05,00:00:00,1", 1, "date"},
		{"four-digit year", "9,07/24/2005,00:00:00,1", 1, "date"},
		{"hour 24", "9,07/24/05,24:00:00,1", 1, "time"},
		{"one-digit hour", "9,07/24/05,1:00:00,1", 1, "time"},
		{"off the half hour", "9,07/24/05,10:15:00,1", 1, "half-hour mark"},
		{"seconds", "9,07/24/05,10:30:01,1", 1, "half-hour mark"},
		{"negative count", ok + "9,07/24/05,01:00:00,-1", 3, "negative"},
		{"fraction", ok + "9,07/24/05,01:00:00,1.5", 3, "not a whole number"},
		{"exponent", ok + "9,07/24/05,01:00:00,1e3", 3, "not a whole number"},
		{"plus sign", ok + "9,07/24/05,01:00:00,+1", 3, "not a whole number"},
		{"carriage return", "9,07/24/05,01:00:00,1\r\n7,07/24/05,01:00:00,1", 1, "not a whole number"},
		{"empty count", "9,07/24/05,01:00:00,", 1, "empty"},
		{"count over 64 bits", "9,07/24/05,01:00:00,18446744073709551616", 1, "64 bits"},
		{"in without out", ok + "9,07/24/05,01:00:00,1\n9,07/24/05,01:30:00,1\n7,07/24/05,01:30:00,1", 3, "no out row"},
		{"out without in", ok + "7,07/24/05,01:00:00,1", 3, "no in row"},
		{"two in rows", ok + "9,07/24/05,00:30:00,5", 3, "second in row"},
		{"two out rows", ok + "7,07/24/05,00:30:00,5", 3, "second out row"},
		{"totals past 64 bits", "9,07/24/05,01:00:00,18446744073709551615\n7,07/24/05,01:00:00,0\n9,07/24/05,01:30:00,1", 3, "2^64-1"},
		{"skipped by spring forward", "9,04/03/05,02:30:00,1\n7,04/03/05,02:30:00,1", 1, "does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hs, err := Load(strings.NewReader(c.text), pacific)
			if err == nil {
				t.Fatalf("accepted: %+v", hs)
			}
			if want := fmt.Sprintf("line %d: ", c.line); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to name %q and say %q", err, want, c.want)
			}
		})
	}
	if _, err := Load(strings.NewReader(""), pacific); err == nil {
		t.Error("accepted an empty input")
	}
}

func TestLoadPairsAndSorts(t *testing.T) {
	// Out of order, in before out, one newline at the end: all fine.
	hs, err := Load(strings.NewReader("9,07/24/05,01:00:00,4\n9,07/24/05,00:30:00,1\n7,07/24/05,01:00:00,3\n7,07/24/05,00:30:00,2\n"), pacific)
	if err != nil {
		t.Fatal(err)
	}
	at := func(h, m int) time.Time { return time.Date(2005, 7, 24, h, m, 0, 0, pacific) }
	want := []HalfHour{{at(0, 0), at(0, 30), 1, 2}, {at(0, 30), at(1, 0), 4, 3}}
	if len(hs) != 2 {
		t.Fatalf("%+v", hs)
	}
	for i := range want {
		if !hs[i].Start.Equal(want[i].Start) || !hs[i].End.Equal(want[i].End) || hs[i].In != want[i].In || hs[i].Out != want[i].Out {
			t.Errorf("half hour %d: %+v, want %+v", i, hs[i], want[i])
		}
		if hs[i].End.Location() != pacific {
			t.Errorf("half hour %d in %v, want %v", i, hs[i].End.Location(), pacific)
		}
	}
}

// The stamps of the repeated hour are read as their first (daylight-time) occurrence; the
// first stamp after it is standard time, and the real hour between has no half hour.
func TestFallBackReadsTheFirstOccurrence(t *testing.T) {
	var b strings.Builder
	for _, s := range []string{"00:30:00", "01:00:00", "01:30:00", "02:00:00", "02:30:00"} {
		fmt.Fprintf(&b, "7,10/30/05,%s,1\n9,10/30/05,%s,1\n", s, s)
	}
	hs, err := Load(strings.NewReader(b.String()), pacific)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hs {
		got = append(got, h.Start.UTC().Format("15:04")+"-"+h.End.UTC().Format("15:04"))
	}
	want := "07:00-07:30 07:30-08:00 08:00-08:30 09:30-10:00 10:00-10:30"
	if strings.Join(got, " ") != want {
		t.Fatalf("UTC half hours %v, want %s", got, want)
	}
}

func TestMidnightRowBelongsToThePreviousDay(t *testing.T) {
	hs, err := Load(strings.NewReader(
		"7,07/24/05,00:00:00,2\n9,07/24/05,00:00:00,3\n"+
			"7,07/24/05,00:30:00,1\n9,07/24/05,00:30:00,4\n"+
			"7,07/24/05,23:30:00,5\n9,07/24/05,23:30:00,6\n"+
			"7,07/25/05,00:00:00,7\n9,07/25/05,00:00:00,8"), pacific)
	if err != nil {
		t.Fatal(err)
	}
	want := []Day{{"2005-07-23", 3, 2}, {"2005-07-24", 4 + 6 + 8, 1 + 5 + 7}}
	if got := DailyTotals(hs); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("days %+v, want %+v", got, want)
	}
}

func TestSpreadIsExact(t *testing.T) {
	base := time.Date(2005, 7, 24, 0, 0, 0, 0, pacific)
	counts := [][2]uint64{{7, 3}, {0, 5}, {11, 0}, {1, 1}, {62, 54}, {0, 0}, {2, 13}}
	var hs []HalfHour
	for i, c := range counts {
		s := base.Add(time.Duration(i) * Slot)
		hs = append(hs, HalfHour{s, s.Add(Slot), c[0], c[1]})
	}
	for _, steps := range []int{1, 3, 7} {
		t.Run(strconv.Itoa(steps), func(t *testing.T) {
			ps := Spread(hs, steps)
			if len(ps) != steps*len(hs) {
				t.Fatalf("%d points, want %d", len(ps), steps*len(hs))
			}
			var in, out uint64
			for i, h := range hs {
				prevIn, prevOut := in, out
				in, out = in+h.In, out+h.Out
				pts := ps[i*steps : (i+1)*steps]
				if last := pts[steps-1]; last.In != in || last.Out != out || !last.At.Equal(h.End) {
					t.Fatalf("end of half hour %d is %+v, want %d/%d at %s", i, last, in, out, h.End)
				}
				for k, p := range pts {
					// Equal spacing inside the half hour.
					if want := h.Start.Add(Slot * time.Duration(k+1) / time.Duration(steps)); !p.At.Equal(want) {
						t.Errorf("half hour %d step %d at %s, want %s", i, k+1, p.At, want)
					}
					// As even as whole people allow: each step adds floor or ceil of count/steps.
					dIn, dOut := p.In-prevIn, p.Out-prevOut
					if dIn < h.In/uint64(steps) || dIn > (h.In+uint64(steps)-1)/uint64(steps) ||
						dOut < h.Out/uint64(steps) || dOut > (h.Out+uint64(steps)-1)/uint64(steps) {
						t.Errorf("half hour %d (%d in, %d out) step %d adds %d in, %d out", i, h.In, h.Out, k+1, dIn, dOut)
					}
					prevIn, prevOut = p.In, p.Out
				}
			}
			for i := 1; i < len(ps); i++ {
				if ps[i].In < ps[i-1].In || ps[i].Out < ps[i-1].Out || !ps[i].At.After(ps[i-1].At) {
					t.Fatalf("not monotone at %d: %+v then %+v", i, ps[i-1], ps[i])
				}
			}
		})
	}
}

func TestSpreadDoesNotOverflow(t *testing.T) {
	const big = 1<<64 - 1
	s := time.Date(2005, 7, 24, 0, 0, 0, 0, time.UTC)
	ps := Spread([]HalfHour{{s, s.Add(Slot), big, big - 1}}, 7)
	for k, p := range ps {
		if want := share(big, uint64(k+1), 7); p.In != want {
			t.Errorf("step %d: %d, want %d", k+1, p.In, want)
		}
	}
	if last := ps[len(ps)-1]; last.In != big || last.Out != big-1 {
		t.Fatalf("last %+v", last)
	}
}

func TestRealFile(t *testing.T) {
	hs, err := LoadFile(dataFile(t))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(dataFile(t))
	if err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(string(raw), "\n") + 1; rows != 10080 {
		t.Fatalf("%d rows, want 10,080", rows)
	}
	if len(hs) != 5040 {
		t.Fatalf("%d half hours, want 5,040", len(hs))
	}
	var in, out uint64
	for i, h := range hs {
		in, out = in+h.In, out+h.Out
		if i > 0 && h.Start.Before(hs[i-1].End) {
			t.Fatalf("half hours overlap or are out of order at %s", h.End)
		}
	}
	if in != 19597 || out != 18837 {
		t.Fatalf("totals %d in, %d out; want 19,597 and 18,837 (SOURCE.md)", in, out)
	}
	days := DailyTotals(hs)
	var dIn, dOut uint64
	for i, d := range days {
		dIn, dOut = dIn+d.In, dOut+d.Out
		if i > 0 && d.Date <= days[i-1].Date {
			t.Fatalf("days out of order: %s after %s", d.Date, days[i-1].Date)
		}
	}
	if dIn != in || dOut != out {
		t.Fatalf("daily totals sum to %d in, %d out; want %d and %d", dIn, dOut, in, out)
	}
	// 2005-07-23 holds only the first row (stamped 07/24/05 00:00:00); 2005-11-05 lacks its
	// last half hour, which would be stamped 11/06/05 00:00:00.
	if len(days) != 106 || days[0].Date != "2005-07-23" || days[len(days)-1].Date != "2005-11-05" {
		t.Fatalf("%d days from %s to %s; want 106 from 2005-07-23 to 2005-11-05", len(days), days[0].Date, days[len(days)-1].Date)
	}
	// The one gap is the repeated hour of 2005-10-30 (see Load).
	for i := 1; i < len(hs); i++ {
		if gap := hs[i].Start.Sub(hs[i-1].End); gap != 0 &&
			(gap != time.Hour || hs[i].End.UTC() != time.Date(2005, 10, 30, 10, 0, 0, 0, time.UTC)) {
			t.Errorf("gap of %s before %s", gap, hs[i].End)
		}
	}
	ps := Spread(hs, 3)
	if last := ps[len(ps)-1]; last.In != in || last.Out != out {
		t.Fatalf("spread ends at %+v", last)
	}
}

// FuzzLoad: the parser decodes outside input. It must not panic, and what it accepts must say
// what the text says: every line a row, every stamp one half hour with that stamp's counts.
func FuzzLoad(f *testing.F) {
	f.Add("7,07/24/05,00:00:00,2\n9,07/24/05,00:00:00,3")
	f.Add("9,10/30/05,01:30:00,1\n7,10/30/05,01:30:00,0\n")
	f.Add("9,04/03/05,02:30:00,1\n7,04/03/05,02:30:00,1")
	f.Add("9,12/31/99,23:30:00,18446744073709551615\n7,12/31/99,23:30:00,0")
	if raw, err := os.ReadFile(dataPath()); err == nil {
		f.Add(string(raw[:2000]))
	}
	f.Fuzz(func(t *testing.T, text string) {
		hs, err := Load(strings.NewReader(text), pacific)
		if err != nil {
			return
		}
		// Read the text the naive way and compare.
		want := map[string][2]uint64{}
		lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
		for _, l := range lines {
			f := strings.Split(l, ",")
			if len(f) != 4 {
				t.Fatalf("accepted line %q", l)
			}
			n, err := strconv.ParseUint(f[3], 10, 64)
			if err != nil {
				t.Fatalf("accepted count %q", f[3])
			}
			c := want[f[1]+","+f[2]]
			if f[0] == "9" {
				c[0] = n
			} else {
				c[1] = n
			}
			want[f[1]+","+f[2]] = c
		}
		if len(hs) != len(want) || 2*len(hs) != len(lines) {
			t.Fatalf("%d lines, %d stamps, %d half hours", len(lines), len(want), len(hs))
		}
		var in, out uint64
		for i, h := range hs {
			key := h.End.In(pacific).Format("01/02/06,15:04:05")
			if c, ok := want[key]; !ok || c != [2]uint64{h.In, h.Out} {
				t.Fatalf("half hour ending %s has %d in, %d out; the text says %v (found %v)", key, h.In, h.Out, c, ok)
			}
			if h.End.Sub(h.Start) != Slot || (i > 0 && h.Start.Before(hs[i-1].End)) {
				t.Fatalf("half hour %d is %s to %s", i, h.Start, h.End)
			}
			in, out = in+h.In, out+h.Out
		}
		var dIn, dOut uint64
		for _, d := range DailyTotals(hs) {
			dIn, dOut = dIn+d.In, dOut+d.Out
		}
		ps := Spread(hs, 3)
		if dIn != in || dOut != out || ps[len(ps)-1].In != in || ps[len(ps)-1].Out != out {
			t.Fatalf("totals %d/%d; daily %d/%d; spread %+v", in, out, dIn, dOut, ps[len(ps)-1])
		}
	})
}
