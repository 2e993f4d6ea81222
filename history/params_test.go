package history

import (
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	la, _ := time.LoadLocation("America/Los_Angeles")
	for _, tc := range []struct {
		in   string
		want string // RFC 3339 in UTC, or "" for an error
	}{
		{"2026-11-01", "2026-11-01T07:00:00Z"},
		{"2026-11-01T01:30", "2026-11-01T08:30:00Z"}, // occurs twice: the first (PDT)
		{"2026-11-01 03:00", "2026-11-01T11:00:00Z"},
		{"2026-03-08T02:30", ""}, // skipped by spring forward
		{"2026-03-08T03:30", "2026-03-08T10:30:00Z"},
		{"2026-05-01T10:00:00+08:00", "2026-05-01T02:00:00Z"},
		{"2026-02-30", ""},
		{"yesterday", ""},
		{"", ""},
	} {
		got, err := ParseTime(tc.in, la)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%q: got %s, want an error", tc.in, got)
		case tc.want != "" && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case tc.want != "" && got.UTC().Format(time.RFC3339) != tc.want:
			t.Errorf("%q: got %s, want %s", tc.in, got.UTC().Format(time.RFC3339), tc.want)
		}
	}
}

func TestParseStep(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Step
		res  Resolution
		bad  bool
	}{
		{in: "5s", want: Step{D: 5 * time.Second}, res: Raw},
		{in: "1m", want: Step{D: time.Minute}, res: Minute},
		{in: "30m", want: Step{D: 30 * time.Minute}, res: Minute},
		{in: "1h", want: Step{D: time.Hour}, res: Hour},
		{in: "1d", want: Step{Days: 1}, res: Hour},
		{in: "7d", want: Step{Days: 7}, res: Hour},
		{in: "0d", bad: true},
		{in: "500ms", bad: true},
		{in: "1.5s", bad: true},
		{in: "d", bad: true},
		{in: "-1h", bad: true},
		{in: "9000h", bad: true},
	} {
		got, err := ParseStep(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: got %+v, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want || got.Resolution() != tc.res {
			t.Errorf("%q: got %+v %s (%v), want %+v %s", tc.in, got, got.Resolution(), err, tc.want, tc.res)
		}
	}
}

func TestRangeDefaultsAndOrder(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a, b, err := Range("", "", time.UTC, now, 24*time.Hour)
	if err != nil || !b.Equal(now) || !a.Equal(now.Add(-24*time.Hour)) {
		t.Errorf("defaults: %s %s %v", a, b, err)
	}
	if _, _, err := Range("2026-05-02", "2026-05-01", time.UTC, now, time.Hour); err == nil {
		t.Error("a range that ends before it starts was accepted")
	}
}

// FuzzParseParams: the query parameters of the history API come from anyone who can reach it.
func FuzzParseParams(f *testing.F) {
	for _, s := range []string{"2026-11-01", "2026-11-01T01:30", "2026-05-01T10:00:00+08:00", "5s", "1d", "7d", "1h30m", "99999999999d", ""} {
		f.Add(s, s)
	}
	la, _ := time.LoadLocation("America/Los_Angeles")
	f.Fuzz(func(t *testing.T, a, b string) {
		if st, err := ParseStep(a); err == nil {
			if st.Days == 0 && st.D < time.Second || st.Days < 0 || st.Days > 366 {
				t.Fatalf("ParseStep(%q) accepted %+v", a, st)
			}
		}
		from, to, err := Range(a, b, la, time.Unix(1_800_000_000, 0), time.Hour)
		if err == nil && !to.After(from) {
			t.Fatalf("Range(%q, %q) = %s, %s", a, b, from, to)
		}
	})
}
