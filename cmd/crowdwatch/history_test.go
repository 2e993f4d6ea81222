package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

const historyStore = `
site: {id: hist-store, timezone: Asia/Shanghai}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
history: {sample_interval: 200ms, flush_interval: 300ms}
# Levels come from alerting; no hold-down, so the recorded level follows the figures at once.
alerting: {evaluate_every: 200ms, defaults: {warning_for: 0s, critical_for: 0s}}
zones:
  - {id: store, capacity: 100, area_m2: 400}
  - {id: entrance, parent: store, capacity: 20, area_m2: 30}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
`

// TestHistoryThroughService feeds the real binary counter reports, reads them back from
// /api/v1/history and the daily report, and runs `crowdwatch report` on the history file again
// and again while the service keeps writing to it.
func TestHistoryThroughService(t *testing.T) {
	dir := t.TempDir()
	cfg := writeConfig(t, dir, historyStore)
	svc := startApp(t, cfg)
	dev, err := mqttClient(t, "tcp://"+svc.MQTT, "dc-01", "", "")
	if err != nil {
		t.Fatal(err)
	}
	topic := "crowdwatch/hist-store/counter/dc-01"
	publish(t, dev, topic, report("b1", 1, 40, 0))
	svc.waitOccupancy(map[string]int64{"entrance": 40}, 10*time.Second)
	publish(t, dev, topic, report("b1", 2, 50, 5))
	svc.waitOccupancy(map[string]int64{"entrance": 45, "store": 45}, 10*time.Second)

	from := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	to := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	q := "from=" + url.QueryEscape(from) + "&to=" + url.QueryEscape(to)

	// The history shows what the engine committed once the recorder has flushed.
	var series struct {
		Resolution string `json:"resolution"`
		Zones      []struct {
			Zone     string `json:"zone"`
			Capacity int    `json:"capacity"`
			Bands    []struct {
				Level     string  `json:"level"`
				Occupancy float64 `json:"occupancy"`
			} `json:"bands"`
			Points []struct {
				Max     *int64  `json:"max"`
				Last    *int64  `json:"last"`
				Level   *string `json:"level"`
				Entries int64   `json:"entries"`
				Exits   int64   `json:"exits"`
			} `json:"points"`
		} `json:"zones"`
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := svc.getJSON("/api/v1/history?zone=entrance&step=1h&"+q, &series)
		var entries, exits, peak int64
		level := ""
		if err == nil && len(series.Zones) == 1 {
			for _, p := range series.Zones[0].Points {
				entries += p.Entries
				exits += p.Exits
				if p.Max != nil {
					peak = max(peak, *p.Max)
				}
				if p.Level != nil && *p.Level > level {
					level = *p.Level
				}
			}
		}
		if entries == 50 && exits == 5 && peak == 45 {
			// 45 people in a zone of 20 is critical by ratio and warning by density (1.5/m² is not).
			if level != "critical" || series.Resolution != "hour" || series.Zones[0].Capacity != 20 || len(series.Zones[0].Bands) == 0 {
				t.Errorf("level %q, resolution %q, zone %+v", level, series.Resolution, series.Zones[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("history: %d entries, %d exits, peak %d (err %v); want 50, 5, 45", entries, exits, peak, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	resp, err := http.Get("http://" + svc.HTTP + "/api/v1/history.csv?step=1m&" + q)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(body), "zone,start,end") || !strings.Contains(string(body), "\nentrance,") {
		t.Errorf("history.csv: %s\n%s", resp.Status, body)
	}
	var day struct {
		Visitors int64 `json:"visitors"`
	}
	if err := svc.getJSON("/api/v1/reports/period?"+q, &day); err != nil || day.Visitors != 50 {
		t.Errorf("period report: %d visitors (%v), want 50", day.Visitors, err)
	}

	// `crowdwatch report` reads the file while the service writes to it every 300 ms, and
	// while more reports keep arriving.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for seq := 3; ; seq++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			publish(t, dev, topic, report("b1", seq, uint64(50+seq), 5+uint64(seq)))
		}
	}()
	for i := range 5 {
		out, err := exec.Command(binPath, "report", "--config", cfg, "--from", from, "--to", to, "--format", "json").CombinedOutput()
		if err != nil {
			t.Fatalf("report %d while the service runs: %v\n%s", i, err, out)
		}
		var rep struct {
			Visitors int64 `json:"visitors"`
			Zones    []struct {
				Zone string `json:"zone"`
				Peak *int64 `json:"peak"`
			} `json:"zones"`
		}
		if err := json.Unmarshal(out, &rep); err != nil {
			t.Fatalf("report %d: %v\n%s", i, err, out)
		}
		if rep.Visitors < 50 || len(rep.Zones) != 2 || rep.Zones[1].Peak == nil || *rep.Zones[1].Peak < 45 {
			t.Fatalf("report %d: %s", i, out)
		}
	}
	close(stop)
	wg.Wait()
	out, err := exec.Command(binPath, "report", "--config", cfg, "--from", from, "--to", to).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "# Crowd report: hist-store") || !strings.Contains(string(out), "| entrance | 20 |") {
		t.Fatalf("markdown report: %v\n%s", err, out)
	}
	svc.stop()
	// After a clean stop every crossing is in the history: the report agrees with the doors.
	out, err = exec.Command(binPath, "report", "--db", dir+"/cw.history.db", "--site", "hist-store", "--from", from, "--to", to, "--format", "csv").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "(site visitors)") {
		t.Fatalf("csv report after stop: %v\n%s", err, out)
	}
	if _, err := exec.Command(binPath, "report", "--db", dir+"/cw.history.db", "--site", "other", "--date", "2026-01-01").CombinedOutput(); err == nil {
		t.Error("a report for another site's history was not refused")
	}
}
