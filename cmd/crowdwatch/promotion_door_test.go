package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/announce"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/firmware-sim/sim"
	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/web/guidance"
)

// doorbusterPlan is a door-buster morning with a metered main door: the queue stands in a
// counted queue zone outside it; the entrance and the store have event capacities far below
// their everyday ones. The plan's times are set around the test's start (wall clock: the
// service meters in real time), the simulated crowd runs its own clock.
const doorbusterPlan = `
site: {id: doorbuster-plan, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
occupancy: {daily_reset: "off"}
alerting: {evaluate_every: 200ms}
# The PA gateway subscribes just after the start: a short repeat lets it hear the queue's
# metering announced again while the door alternates.
event_day: {announce_repeat: 10s}
auth:
  tokens: [{name: officer, sha256: "$SUM", role: security}]
zones:
  - {id: queue, capacity: 3000}
  - {id: store, capacity: 500}
  - {id: entrance, parent: store, capacity: 100}
doors:
  - {id: line, from: outside, to: queue, width_m: 2, counter: {device: dc-00}}
  - {id: main, from: queue, to: entrance, width_m: 1, counter: {device: dc-01}}
  - {id: inner, from: entrance, to: store, width_m: 3, counter: {device: dc-02}}
  - {id: exit, from: store, to: outside, width_m: 2, counter: {device: dc-03}}
screens:
  - {id: door-main, zone: entrance, door: main, exit: {zone: queue, arrow: left}}
events:
  - id: doorbuster
    name: Door-buster morning
    start: "$START"
    end: "$END"
    doors_open: "$OPEN"
    capacities: {entrance: 25, store: 80}
    metered: [{door: main, rate_per_min: 600, queue: queue}]
`

// The simulated morning: arrivals queue in the queue zone from the start, people stay in the
// entrance long enough for it to reach its event capacity, and at 07:30 everybody leaves
// (the drill's alarm). The main door follows its screen; the inner door and the exit are one
// way, so the metered door is the only way into the entrance and the store.
const doorbusterCrowd = `
name: doorbuster-metered
start: "07:00"
end: "07:20"
arrivals: [{at: "07:00", rate: 40}, {at: "07:20", rate: 40}]
dwell: {default: 5m, zones: {queue: 20s, entrance: 3m}}
leave_weight: 0.05
evacuate_at: "07:14"
metered: [{door: main, screen: door-main}]
one_way: [inner, exit]
devices: {interval: 1s, jitter: 0}
`

func (s *service) getAuth(path string, v any) error {
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTP+path, nil)
	req.Header.Set("Authorization", "Bearer "+securityToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestDoorbusterMeteredAndDrilled: a metered main door never lets the entrance or the store
// go above their event capacities (checked from the API at every checkpoint, with the crowd
// paused and every report in), the screen alternates enter and wait, and a drill is measured
// from the alarm until each zone is empty and reported.
func TestDoorbusterMeteredAndDrilled(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	yaml := strings.NewReplacer("$DIR", dir, "$SUM", tokenSum(securityToken),
		"$START", now.Add(-time.Hour).Format(time.RFC3339), "$END", now.Add(2*time.Hour).Format(time.RFC3339),
		"$OPEN", now.Add(5*time.Second).Format(time.RFC3339)).Replace(doorbusterPlan)
	cfgPath := writeConfig(t, dir, yaml)
	store, err := configs.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := startApp(t, cfgPath)
	// A PA gateway on the announce topics.
	pa, err := mqttClient(t, "tcp://"+svc.MQTT, "pa-gateway", "", "")
	if err != nil {
		t.Fatal(err)
	}
	var paMu sync.Mutex
	var said []announce.Message
	pa.Subscribe("crowdwatch/doorbuster-plan/announce/#", 1, func(_ paho.Client, m paho.Message) {
		var a announce.Message
		if json.Unmarshal(m.Payload(), &a) == nil {
			paMu.Lock()
			said = append(said, a)
			paMu.Unlock()
		}
	}).Wait()
	sc, err := scenario.Parse([]byte(doorbusterCrowd))
	if err != nil {
		t.Fatal(err)
	}
	limit := map[string]int64{"entrance": 25, "store": 80}
	var peak = map[string]int64{}
	states := map[string]int{}
	drilled := false
	checkpoint := func(ctx context.Context, at time.Time, truth map[string]int64, _ map[string]sim.Mark) error {
		var zs struct {
			Zones []struct {
				ID        string `json:"id"`
				Occupancy int64  `json:"occupancy"`
			} `json:"zones"`
		}
		if err := svc.getAuth("/api/v1/zones", &zs); err != nil {
			return err
		}
		for _, z := range zs.Zones {
			peak[z.ID] = max(peak[z.ID], z.Occupancy)
			if l, ok := limit[z.ID]; ok && (z.Occupancy > l || truth[z.ID] > l) {
				return fmt.Errorf("%s: %s at %d (truth %d), above its event capacity %d", at.Format("15:04:05"), z.ID, z.Occupancy, truth[z.ID], l)
			}
		}
		var ad struct {
			Admissions []guidance.Admission `json:"admissions"`
		}
		if err := svc.getAuth("/api/v1/admissions", &ad); err != nil {
			return err
		}
		for _, a := range ad.Admissions {
			states[string(a.State)+"/"+a.Mode]++
		}
		if h, m, _ := at.Clock(); !drilled && h*60+m >= 7*60+14 {
			if code, body := svc.post("/api/v1/drills", `{"zone": "store"}`); code != 200 {
				return fmt.Errorf("starting the drill: %d %v", code, body)
			}
			drilled = true
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	if _, err := sim.Run(ctx, sim.Options{Config: store, Scenario: sc, Broker: "tcp://" + svc.MQTT, Seed: 11,
		Speed: 20, CheckpointEvery: 10 * time.Second, Checkpoint: checkpoint}); err != nil {
		t.Fatal(err)
	}
	t.Logf("peaks %v, admissions seen %v", peak, states)
	if peak["entrance"] < limit["entrance"]-2 || states["wait/one_out_one_in"] == 0 || states["enter/rate"]+states["enter/one_out_one_in"] == 0 {
		t.Fatalf("the door was not metered up to its limit: peaks %v, states %v", peak, states)
	}
	// The drill ends by itself once both zones are empty, and is reported with its times.
	var rep alerting.Drill
	for range 100 {
		var ds struct {
			Drills []alerting.Drill `json:"drills"`
		}
		if err := svc.getAuth("/api/v1/drills", &ds); err != nil {
			t.Fatal(err)
		}
		if len(ds.Drills) == 1 && ds.Drills[0].EndedAt != nil {
			rep = ds.Drills[0]
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rep.EndReason != "every zone empty" || rep.ClearedSeconds["store"] <= 0 || rep.ClearedSeconds["entrance"] <= 0 ||
		rep.EstimateSeconds == nil || rep.By != "token:officer" || rep.StartCount["store"] == 0 {
		t.Fatalf("drill report %+v", rep)
	}
	// The PA heard the queue metered and the drill, in both languages.
	paMu.Lock()
	heard := map[string]bool{}
	for _, a := range said {
		heard[a.Zone+"/"+a.State+"/"+a.Language] = true
	}
	paMu.Unlock()
	for _, want := range []string{"queue/metering/en", "queue/metering/zh", "store/drill/en", "entrance/drill/zh"} {
		if !heard[want] {
			t.Errorf("the PA gateway did not hear %s: %v", want, heard)
		}
	}
	t.Logf("drill: %d in the store at the alarm, estimate %.0f s, cleared %v", rep.StartCount["store"], *rep.EstimateSeconds, rep.ClearedSeconds)

	// The review puts the metered door's episodes (how long it held people, the queue's
	// wait) and the drill beside the plan, from the records the door and the drill kept.
	var rv promotion.Review
	for range 100 {
		if err := svc.getAuth("/api/v1/events/doorbuster/review", &rv); err != nil {
			t.Fatal(err)
		}
		if len(rv.Metering) == 1 && len(rv.Metering[0].Episodes) > 0 && len(rv.Drills) == 1 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(rv.Metering) != 1 || rv.Metering[0].Door != "main" || len(rv.Metering[0].Episodes) == 0 ||
		rv.Metering[0].HeldS <= 0 || rv.Metering[0].WaitMaxS <= 0 || rv.Metering[0].QueueMax == 0 {
		t.Fatalf("the review's metering: %+v (notes %v)", rv.Metering, rv.Notes)
	}
	if len(rv.Drills) != 1 || rv.Drills[0].ClearedS["store"] <= 0 {
		t.Fatalf("the review's drills: %+v", rv.Drills)
	}
	t.Logf("review: door held %.0f s, %d admitted, queue up to %d, wait up to %.0f s",
		rv.Metering[0].HeldS, rv.Metering[0].Admitted, rv.Metering[0].QueueMax, rv.Metering[0].WaitMaxS)
}
