package device

import (
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/ingest"
)

// The simulated firmware must speak exactly the protocol the service decodes.
func TestReportsDecodeAsTheServiceReadsThem(t *testing.T) {
	cases := []struct {
		name     string
		interval bool
		lines    []string
	}{
		{"one line totals", false, []string{"1"}},
		{"two lines totals", false, []string{"1", "2"}},
		{"interval reports", true, []string{"1"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &Counter{cfg: Config{IntervalReports: tc.interval}, boot: "b0", totals: map[string][2]uint64{}, sent: map[string][2]uint64{}}
			for _, l := range tc.lines {
				c.totals[l] = [2]uint64{}
			}
			c.Cross(tc.lines[0], 3, 1)
			first := ingest.Decode(ingest.KindCounter, "dc-01", c.Report(time.Now()), 4096)
			c.Cross(tc.lines[0], 2, 0)
			second := ingest.Decode(ingest.KindCounter, "dc-01", c.Report(time.Now()), 4096)
			if first.Reject != nil || second.Reject != nil {
				t.Fatalf("service rejected the simulator: %v %v", first.Reject, second.Reject)
			}
			r1, r2 := first.Report, second.Report
			if r1.Interval != tc.interval || len(r1.Lines) != len(tc.lines) || r2.Seq != r1.Seq+1 || r1.Boot != "b0" {
				t.Fatalf("reports %+v %+v", r1, r2)
			}
			wantIn := uint64(5)
			if tc.interval {
				wantIn = 2 // the second period only
			}
			if r2.Lines[0].In != wantIn || r1.Lines[0].Out != 1 {
				t.Fatalf("second report line %+v, want in=%d", r2.Lines[0], wantIn)
			}
			c.Reboot()
			third := ingest.Decode(ingest.KindCounter, "dc-01", c.Report(time.Now()), 4096)
			if third.Report.Boot == "b0" || third.Report.Seq != 1 || third.Report.Lines[0].In != 0 {
				t.Fatalf("after reboot %+v", third.Report)
			}
		})
	}
	s := &Sensor{boot: "s0"}
	s.Set(42)
	m := ingest.Decode(ingest.KindOccupancy, "cam-07", s.Report(time.Now()), 4096)
	if m.Reject != nil || m.Report.Count != 42 {
		t.Fatalf("sensor report %+v %v", m.Report, m.Reject)
	}
}
