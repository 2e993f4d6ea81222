package main

import (
	"strings"
	"testing"
	"time"
)

// TestIntrusionDetection: refused MQTT logins on the real binary are counted by kind in
// /metrics and, from the threshold on, become one security alert for the source that admins
// list, kept out of the crowd's alert list.
func TestIntrusionDetection(t *testing.T) {
	dir := t.TempDir()
	cfg := strings.Replace(embeddedStore, `mqtt: {embedded: {listen: "127.0.0.1:0"}}`, `mqtt:
  embedded:
    listen: "127.0.0.1:0"
    users:
      - {username: dc-01, password: s3cret-1, role: device}
      - {username: dc-02, password: s3cret-2, role: device}`, 1)
	svc := startService(t, "serve", "--config", writeConfig(t, dir, cfg))
	broker := "tcp://" + svc.MQTT
	for i := range 5 {
		if _, err := mqttClient(t, broker, "guess-"+string(rune('a'+i)), "dc-01", "guess"); err == nil {
			t.Fatal("a client with a wrong password was let in")
		}
	}
	svc.waitMetrics(`crowdwatch_security_events_total{kind="mqtt_auth_failed"} 5`)

	type alerts struct {
		Alerts []struct {
			ID, Kind, Source, Summary string
			Value                     float64
		} `json:"alerts"`
	}
	var sec alerts
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := svc.getJSON("/api/v1/security/alerts", &sec); err != nil {
			t.Fatal(err)
		}
		if len(sec.Alerts) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(sec.Alerts) != 1 || sec.Alerts[0].ID != "security:mqtt_auth_failed@127.0.0.1" || sec.Alerts[0].Value != 5 ||
		!strings.Contains(sec.Alerts[0].Summary, "5 refused MQTT logins from 127.0.0.1 (dc-01)") {
		t.Fatalf("security alerts %+v, want one for 127.0.0.1 with 5 refused logins of dc-01", sec.Alerts)
	}
	var crowd alerts
	if err := svc.getJSON("/api/v1/alerts", &crowd); err != nil {
		t.Fatal(err)
	}
	for _, a := range crowd.Alerts {
		if a.Kind == "security" {
			t.Fatalf("a security alert in the crowd's alert list: %+v", a)
		}
	}
}
