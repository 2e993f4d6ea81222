package sim

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/ingest"
)

func testDevice(interval bool, width int, lines ...string) *simDevice {
	d := &simDevice{id: "dc-01", interval: interval, width: width, every: time.Second,
		rng: rand.New(rand.NewPCG(1, 2)), totals: map[string][2]uint64{}, sent: map[string][2]uint64{},
		out: make(chan outbound, 64), done: make(chan struct{})}
	for _, l := range lines {
		d.totals[l] = [2]uint64{}
	}
	return d
}

func decoded(t *testing.T, d *simDevice) []byte {
	t.Helper()
	select {
	case o := <-d.out:
		return o.payload
	default:
		t.Fatal("the device queued nothing")
		return nil
	}
}

// The simulated firmware must speak exactly the protocol the service decodes.
func TestReportsDecodeAsTheServiceReadsThem(t *testing.T) {
	cases := []struct {
		name     string
		interval bool
		lines    []string
		wantIn   uint64 // on the second report
	}{
		{"one line totals", false, []string{"1"}, 5},
		{"two lines totals", false, []string{"1", "2"}, 5},
		{"interval reports", true, []string{"1"}, 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := testDevice(tc.interval, 32, tc.lines...)
			d.startBoot(time.Now(), false)
			now := time.Now()
			d.count(tc.lines[0], 3, 1)
			d.report(now, 0)
			first := ingest.Decode(ingest.KindCounter, "dc-01", decoded(t, d), 4096)
			d.count(tc.lines[0], 2, 0)
			d.report(now.Add(time.Second), 0)
			second := ingest.Decode(ingest.KindCounter, "dc-01", decoded(t, d), 4096)
			if first.Reject != nil || second.Reject != nil {
				t.Fatalf("the service refuses the simulator: %v %v", first.Reject, second.Reject)
			}
			r1, r2 := first.Report, second.Report
			if r1.Interval != tc.interval || len(r1.Lines) != len(tc.lines) || r2.Seq != r1.Seq+1 || r1.Boot != r2.Boot {
				t.Fatalf("reports %+v %+v", r1, r2)
			}
			if r2.Lines[0].In != tc.wantIn || r1.Lines[0].Out != 1 {
				t.Fatalf("second report %+v, want in=%d", r2.Lines[0], tc.wantIn)
			}
		})
	}
}

func TestWrap16StartsNearTheTopAndMovesNobody(t *testing.T) {
	d := testDevice(false, 16, "1")
	d.startBoot(time.Now(), true)
	d.count("1", 300, 0) // past 65535
	d.report(time.Now(), 0)
	m := ingest.Decode(ingest.KindCounter, "dc-01", decoded(t, d), 4096)
	if m.Reject != nil {
		t.Fatal(m.Reject)
	}
	l := m.Report.Lines[0]
	if l.In >= 65536 || l.Out < 65335 || l.In >= l.Out {
		t.Fatalf("a 16-bit counter that wrapped should read in < out, both below 65536: %+v", l)
	}
}

func TestFaultsAreInjected(t *testing.T) {
	d := testDevice(false, 32, "1")
	d.faults = scenario.Faults{Duplicate: 0.5, Malformed: 0.5}
	d.startBoot(time.Now(), false)
	for i := range 20 {
		d.report(time.Now().Add(time.Duration(i)*time.Second), 0)
	}
	var good, bad int
	seqs := map[uint64]int{}
	for len(d.out) > 0 {
		o := <-d.out
		m := ingest.Decode(ingest.KindCounter, "dc-01", o.payload, 4096)
		if m.Reject != nil {
			bad++
			continue
		}
		good++
		seqs[m.Report.Seq]++
	}
	dups := 0
	for _, n := range seqs {
		dups += n - 1
	}
	if bad == 0 || dups == 0 || good < 20 || bad != d.malformed || dups != d.duplicates {
		t.Fatalf("good %d, malformed %d (counted %d), duplicates %d (counted %d)", good, bad, d.malformed, dups, d.duplicates)
	}
}

// Two runs of the same seed on the same day boot their devices with different boot ids, so
// the service does not discard the second run's reports as already seen; a BootTag given
// makes them repeatable.
func TestEachRunBootsAfresh(t *testing.T) {
	cfg, err := configs.Parse(configs.DemoStore(), nil)
	if err != nil {
		t.Fatal(err)
	}
	y, _ := configs.Scenario("doorbuster")
	sc, err := scenario.Parse(y)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 11, 5, 0, 0, 0, cfg.Location)
	boots := func(tag string) map[string]string {
		devs, _, err := buildDevices(Options{Config: cfg, Scenario: sc, Seed: 1, BootTag: tag}, rand.New(rand.NewPCG(1, 2)), start)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, d := range devs {
			out[d.id] = d.boot
		}
		return out
	}
	a, b := boots(""), boots("")
	for id := range a {
		if a[id] == b[id] {
			t.Errorf("device %s booted as %q in both runs", id, a[id])
		}
	}
	if x, y := boots("t1"), boots("t1"); x["dc-01"] != y["dc-01"] {
		t.Errorf("the same BootTag gave %q and %q", x["dc-01"], y["dc-01"])
	}
}
