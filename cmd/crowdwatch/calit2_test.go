package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
	"github.com/crowdwatch/crowdwatch/firmware-sim/replay"
)

// TestCalIt2ReplayThroughService replays fifteen weeks of a real door counter through MQTT
// into the real service and checks that every day's entries and exits, as the service counted
// them, equal the sums computed directly from the file.
func TestCalIt2ReplayThroughService(t *testing.T) {
	hs, err := replay.LoadFile("../../testdata/calit2/CalIt2.data")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svc := startService(t, "serve", "--config", "../../configs/calit2.yaml", "--storage-path", dir+"/c.db",
		"--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0")
	cl := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + svc.MQTT).SetClientID("calit2-door"))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer cl.Disconnect(100)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	doorTotals := func() (uint64, uint64) {
		var doors struct {
			Doors []struct {
				ID      string `json:"id"`
				In, Out uint64
			} `json:"doors"`
		}
		if err := svc.getJSON("/api/v1/doors", &doors); err != nil {
			t.Fatal(err)
		}
		if len(doors.Doors) != 1 || doors.Doors[0].ID != "main" {
			t.Fatalf("doors %+v", doors.Doors)
		}
		return doors.Doors[0].In, doors.Doors[0].Out
	}
	const steps = 3
	points := replay.Spread(hs, steps)
	want := replay.DailyTotals(hs)
	var bad []string
	start, seq := time.Now(), 0
	var prevIn, prevOut uint64
	day := 0
	for i, h := range hs {
		for _, p := range points[i*steps : (i+1)*steps] {
			seq++
			payload := fmt.Sprintf(`{"boot":"replay-1","seq":%d,"ts":%q,"in":%d,"out":%d}`, seq, p.At.UTC().Format(time.RFC3339), p.In, p.Out)
			if err := device.PublishAcked(ctx, cl, "crowdwatch/calit2/counter/calit2-door", []byte(payload)); err != nil {
				t.Fatal(err)
			}
		}
		// After a day's last half hour, the service's door totals give that day's counts.
		if i+1 == len(hs) || hs[i+1].Start.Format(time.DateOnly) != h.Start.Format(time.DateOnly) {
			in, out := doorTotals()
			got := replay.Day{Date: h.Start.Format(time.DateOnly), In: in - prevIn, Out: out - prevOut}
			if got != want[day] {
				bad = append(bad, fmt.Sprintf("%s: service %d in %d out, file %d in %d out", got.Date, got.In, got.Out, want[day].In, want[day].Out))
			}
			prevIn, prevOut = in, out
			day++
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d days differ:\n%s", len(bad), len(want), strings.Join(bad, "\n"))
	}
	if day != len(want) || prevIn != 19597 || prevOut != 18837 {
		t.Fatalf("%d days, totals %d in %d out; want %d days, 19,597 and 18,837", day, prevIn, prevOut, len(want))
	}
	if m := svc.metrics(); strings.Contains(m, `outcome="rejected"`) {
		t.Errorf("the service refused some of the replay:\n%s", m)
	}
	el := time.Since(start)
	t.Logf("%d days, %d reports in %s (%.0f reports/s), every day equal to the file", day, seq, el.Round(time.Millisecond), float64(seq)/el.Seconds())
}
