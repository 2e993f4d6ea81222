package scenario

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestShippedScenariosLoad(t *testing.T) {
	files, _ := filepath.Glob("../../configs/scenarios/*.yaml")
	if len(files) < 3 {
		t.Fatalf("found %d scenarios", len(files))
	}
	for _, f := range files {
		s, err := Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if s.Name == "" || s.End <= s.Start || len(s.Arrivals) == 0 {
			t.Errorf("%s: %+v", f, s)
		}
	}
}

func TestArrivalRateInterpolates(t *testing.T) {
	s, err := Parse([]byte(`
name: t
start: "08:00"
end: "10:00"
arrivals: [{at: "09:00", rate: 20}, {at: "08:00", rate: 10}]
dwell: {default: 5m, zones: {hall: 30s}}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ minute, want float64 }{{7 * 60, 10}, {8 * 60, 10}, {8*60 + 30, 15}, {9 * 60, 20}, {11 * 60, 20}} {
		if got := s.ArrivalRate(c.minute); got != c.want {
			t.Errorf("rate at minute %v = %v, want %v", c.minute, got, c.want)
		}
	}
	if s.DwellIn("hall") != 30*time.Second || s.DwellIn("other") != 5*time.Minute || s.Open != s.Start {
		t.Errorf("dwell or default opening: %+v", s)
	}
}

func TestBadScenariosAreRefused(t *testing.T) {
	cases := map[string]string{
		"end before start":   `{name: x, start: "10:00", end: "09:00", arrivals: [{at: "10:00", rate: 1}]}`,
		"no arrivals":        `{name: x, start: "09:00", end: "10:00"}`,
		"negative rate":      `{name: x, arrivals: [{at: "10:00", rate: -1}]}`,
		"bad clock":          `{name: x, start: "9am", arrivals: [{at: "10:00", rate: 1}]}`,
		"probability over 1": `{name: x, arrivals: [{at: "10:00", rate: 1}], faults: {duplicate: 2}}`,
		"unknown key":        `{name: x, arrivals: [{at: "10:00", rate: 1}], arrival_rate: 3}`,
		"not yaml":           `{name: [`,
	}
	for name, y := range cases {
		if _, err := Parse([]byte(y)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("../../configs/scenarios/*.yaml")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse(data)
		if err != nil {
			return
		}
		if s.End <= s.Start || len(s.Arrivals) == 0 || s.Dwell.Default <= 0 {
			t.Fatalf("accepted an unusable scenario: %+v", s)
		}
		for m := float64(s.Start); m <= float64(s.End); m += 7 {
			if r := s.ArrivalRate(m); r < 0 {
				t.Fatalf("negative rate %v", r)
			}
		}
	})
}
