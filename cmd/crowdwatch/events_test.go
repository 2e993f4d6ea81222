package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const eventStore = `
site: {id: ev-store, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
alerting: {defaults: {critical_for: 0s}}
history: {sample_interval: 200ms, flush_interval: 300ms}
zones:
  - {id: entrance, capacity: 10}
  - {id: hall, capacity: 100}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
screens:
  - {id: door, zone: entrance, languages: [en]}
`

type zoneLevel struct {
	Zones []struct {
		ID       string `json:"id"`
		Capacity int    `json:"capacity"`
		Level    string `json:"level"`
	} `json:"zones"`
}

type screenState struct {
	State    string `json:"state"`
	Level    string `json:"level"`
	Capacity int    `json:"capacity"`
}

// TestRunningPlanChangesLevelAndScreen: five people in a zone of ten are normal; a plan that
// starts now with an event capacity of five makes the zone critical and its screen full
// (with no new count: the plan's change is signalled), and its removal brings both back.
func TestRunningPlanChangesLevelAndScreen(t *testing.T) {
	dir := t.TempDir()
	svc := startApp(t, writeConfig(t, dir, eventStore))
	dev, err := mqttClient(t, "tcp://"+svc.MQTT, "dc-01", "", "")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, dev, "crowdwatch/ev-store/counter/dc-01", report("b1", 1, 5, 0))
	svc.waitOccupancy(map[string]int64{"entrance": 5}, 10*time.Second)

	wait := func(what string, capacity int, level, state string) {
		t.Helper()
		var z zoneLevel
		var g screenState
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			z, g = zoneLevel{}, screenState{}
			_ = svc.getJSON("/api/v1/zones", &z)
			_ = svc.getJSON("/api/v1/signage/door", &g)
			if len(z.Zones) > 0 && z.Zones[0].Capacity == capacity && z.Zones[0].Level == level && g.State == state && g.Capacity == capacity {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("%s: zone %+v, screen %+v; want capacity %d, level %s, screen %s", what, z.Zones, g, capacity, level, state)
	}
	wait("everyday", 10, "normal", "welcome")

	now := time.Now().UTC()
	body := fmt.Sprintf(`{"id":"flash","start":%q,"end":%q,"capacities":{"entrance":5}}`, now.Add(-time.Minute).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	if st, msg := send(t, "POST", "http://"+svc.HTTP+"/api/v1/events", body); st != 201 {
		t.Fatalf("create: %d %s", st, msg)
	}
	wait("while the plan runs", 5, "critical", "full")
	// The alert that pages says the capacity in force.
	var alerts struct {
		Alerts []struct {
			Summary string `json:"summary"`
		} `json:"alerts"`
	}
	deadline := time.Now().Add(10 * time.Second)
	for found := false; !found; time.Sleep(100 * time.Millisecond) {
		alerts.Alerts = nil
		_ = svc.getJSON("/api/v1/alerts?kind=level", &alerts)
		for _, a := range alerts.Alerts {
			found = found || strings.Contains(a.Summary, "100% of capacity 5")
		}
		if !found && time.Now().After(deadline) {
			t.Fatalf("no level alert against the event capacity: %+v", alerts.Alerts)
		}
	}

	// The review while it runs: the entrance against its event capacity, with the alert.
	var rv struct {
		Zones []struct {
			Zone     string `json:"zone"`
			Capacity int    `json:"capacity"`
			Peak     *int64 `json:"peak"`
		} `json:"zones"`
		Alerts *struct {
			Fired int `json:"fired"`
		} `json:"alerts"`
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		err := svc.getJSON("/api/v1/events/flash/review", &rv)
		if err == nil && len(rv.Zones) > 0 && rv.Zones[0].Peak != nil && *rv.Zones[0].Peak == 5 && rv.Alerts != nil && rv.Alerts.Fired > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("review: %v %+v", err, rv)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if rv.Zones[0].Capacity != 5 {
		t.Errorf("review capacity %d, want the event's 5", rv.Zones[0].Capacity)
	}
	if st, msg := send(t, "DELETE", "http://"+svc.HTTP+"/api/v1/events/flash", ""); st != 409 {
		t.Fatalf("unforced delete of the running plan: %d %s", st, msg)
	}
	if st, msg := send(t, "DELETE", "http://"+svc.HTTP+"/api/v1/events/flash?force=true", ""); st != 204 {
		t.Fatalf("forced delete: %d %s", st, msg)
	}
	// The level relaxes through the clear band (below 90% of the trigger: 5 of 10 is well
	// below), and the screen after signage.hold; only the capacity is checked at once.
	var z zoneLevel
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_ = svc.getJSON("/api/v1/zones", &z)
		if z.Zones[0].Capacity == 10 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if z.Zones[0].Capacity != 10 {
		t.Errorf("after the plan: %+v", z.Zones)
	}
}

func send(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPlanningCommands runs assess, plan and report --event on the store file of a running
// service with a plan running now: the commands read the events and history files the
// service writes.
func TestPlanningCommands(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	store := historyStore + fmt.Sprintf(`events:
  - {id: flash, kind: flash, name: {en: Flash sale, zh: 闪购}, start: %q, end: %q, capacities: {entrance: 30}, metered: [{door: main-door}]}
`, now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Hour).Format(time.RFC3339))
	cfg := writeConfig(t, dir, store)
	svc := startApp(t, cfg)
	dev, err := mqttClient(t, "tcp://"+svc.MQTT, "dc-01", "", "")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, dev, "crowdwatch/hist-store/counter/dc-01", report("b1", 1, 25, 0))
	svc.waitOccupancy(map[string]int64{"entrance": 25}, 10*time.Second)

	out, err := exec.Command(binPath, "assess", "--config", cfg, "--event", "flash").CombinedOutput()
	// entrance: 30 m² x 3.5 = 105; no door width: no egress limit.
	if err != nil || !strings.Contains(string(out), "entrance") || !strings.Contains(string(out), "105") ||
		!strings.Contains(string(out), "no exit with a width_m") {
		t.Fatalf("assess: %v\n%s", err, out)
	}
	out, err = exec.Command(binPath, "plan", "--config", cfg).CombinedOutput()
	// The running plan is chosen; no earlier Thursday recorded, so the roster staffs for the
	// event capacity: entrance 1 post + 1 queue + 30/100 -> 3.
	if err != nil || !strings.Contains(string(out), "Plan flash (Flash sale)") || !strings.Contains(string(out), "entrance: 2 fixed") {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	// The review once history holds the peak of 25.
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err = exec.Command(binPath, "report", "--config", cfg, "--event", "flash").CombinedOutput()
		if err == nil && strings.Contains(string(out), "| entrance | 30 | – | 25 |") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("report --event: %v\n%s", err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	if !strings.Contains(string(out), "# Review of Flash sale (flash)") || !strings.Contains(string(out), "83%") {
		t.Errorf("review:\n%s", out)
	}
	if out, err := exec.Command(binPath, "report", "--config", cfg, "--event", "nope").CombinedOutput(); err == nil {
		t.Errorf("an unknown plan was reviewed:\n%s", out)
	}
}
