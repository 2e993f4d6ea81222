package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/firmware-sim/sim"
)

// TestDoorbusterAccuracyUnderRecoverableFaults runs the door-buster morning through a real
// mosquitto into the real service while devices send duplicates, reorder, reboot, wrap their
// 16-bit counters, drop offline, send garbage and (one of them) interval reports, and the
// broker is restarted mid-run. At every checkpoint, once each device's last report is
// applied, every zone must equal the simulator's truth exactly.
func TestDoorbusterAccuracyUnderRecoverableFaults(t *testing.T) {
	mq := startMosquitto(t)
	dir := t.TempDir()
	store, err := configs.Load("../../configs/demo-store.yaml", map[string]any{
		"storage.path": dir + "/cw.db", "http.listen": "127.0.0.1:0", "mqtt.broker": "tcp://" + mq.addr,
		"occupancy.daily_reset": "off",
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := startService(t, "serve", "--config", "../../configs/demo-store.yaml",
		"--storage-path", dir+"/cw.db", "--http-listen", "127.0.0.1:0", "--broker", "tcp://"+mq.addr)
	waitReady(t, svc)

	sc, err := scenario.Load("../../configs/scenarios/doorbuster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// The hours around the opening: the queue, the surge past the entrance's capacity.
	sc.Start, sc.End = 7*60+15, 9*60+15
	sc.Devices.SensorNoise = 0
	sc.Faults = scenario.Faults{Duplicate: 0.05, Reorder: 0.05, Malformed: 0.01, RebootPerHour: 1,
		OfflinePerHr: 1, OfflineFor: 2 * time.Minute, Wrap16: true, IntervalDevices: []string{"dc-02"}}

	cmp := &sim.Comparer{URL: "http://" + svc.HTTP, Config: store, Exact: true}
	var restarted atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	checkpoint := func(ctx context.Context, at time.Time, truth map[string]int64, sent map[string]sim.Mark) error {
		if err := cmp.Checkpoint(ctx, at, truth, sent); err != nil {
			return err
		}
		// Half way, restart the broker while the devices go on publishing.
		if at.Hour() == 8 && at.Minute() >= 10 && restarted.CompareAndSwap(false, true) {
			go mq.restart(t)
		}
		return nil
	}
	sum, err := sim.Run(ctx, sim.Options{Config: store, Scenario: sc, Broker: "tcp://" + mq.addr, Seed: 42,
		Speed: 0, CheckpointEvery: 10 * time.Minute, Checkpoint: checkpoint})
	if err != nil {
		t.Fatal(err)
	}
	if !restarted.Load() {
		t.Fatal("the broker was never restarted")
	}
	if sum.Checkpoints < 10 || sum.Duplicates == 0 || sum.Reboots == 0 || sum.Offlines == 0 || sum.Malformed == 0 {
		t.Fatalf("the faults did not all happen: %+v", sum)
	}
	if sum.Peak["entrance"] <= 150 {
		t.Fatalf("the surge never passed the entrance's capacity: %v", sum.Peak)
	}
	t.Logf("%d reports, %d duplicates, %d malformed, %d reboots, %d outages, %d checkpoints in %s\n%s",
		sum.Reports, sum.Duplicates, sum.Malformed, sum.Reboots, sum.Offlines, sum.Checkpoints, sum.WallDuration, cmp.Table())
	if !strings.Contains(svc.metrics(), `reason="malformed"`) {
		t.Error("the malformed payloads never reached the service")
	}
}
