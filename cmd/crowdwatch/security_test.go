package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
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
      - {username: dc-02, password: s3cret-2, role: device}`, 1) +
		fmt.Sprintf("auth:\n  tokens: [{name: ops, sha256: %q, role: admin}, {name: boss, sha256: %q, role: manager}]\n",
			tokenSum(adminToken), tokenSum(managerToken))
	svc := startApp(t, writeConfig(t, dir, cfg))
	broker := "tcp://" + svc.MQTT
	for i := range 5 {
		if _, err := mqttClient(t, broker, "guess-"+string(rune('a'+i)), "dc-01", "guess"); err == nil {
			t.Fatal("a client with a wrong password was let in")
		}
	}
	// paho tries MQTT 3.1.1, then 3.1, so each refused client is one or two events.
	deadline := time.Now().Add(10 * time.Second)
	metrics := func() string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+svc.HTTP+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+managerToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	for !regexp.MustCompile(`crowdwatch_security_events_total\{kind="mqtt_auth_failed"\} ([5-9]|10)\n`).MatchString(metrics()) {
		if time.Now().After(deadline) {
			t.Fatalf("refused logins not counted:\n%s", metrics())
		}
		time.Sleep(50 * time.Millisecond)
	}

	type alerts struct {
		Alerts []struct {
			ID, Kind, Source, Summary string
			Value                     float64
		} `json:"alerts"`
	}
	var sec alerts
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if status := getAs(t, svc, adminToken, "/api/v1/security/alerts", &sec); status != 200 {
			t.Fatalf("admin listing security alerts: %d", status)
		}
		if len(sec.Alerts) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(sec.Alerts) != 1 || sec.Alerts[0].ID != "security:mqtt_auth_failed@127.0.0.1" || sec.Alerts[0].Value < 5 ||
		!strings.Contains(sec.Alerts[0].Summary, "refused MQTT logins from 127.0.0.1 (dc-01)") {
		t.Fatalf("security alerts %+v, want one for 127.0.0.1 with 5 refused logins of dc-01", sec.Alerts)
	}
	var crowd alerts
	if status := getAs(t, svc, managerToken, "/api/v1/alerts", &crowd); status != 200 {
		t.Fatalf("manager listing alerts: %d", status)
	}
	if status := getAs(t, svc, managerToken, "/api/v1/security/alerts", &alerts{}); status != 403 {
		t.Fatalf("a manager listed security alerts: %d, want 403", status)
	}
	for _, a := range crowd.Alerts {
		if a.Kind == "security" {
			t.Fatalf("a security alert in the crowd's alert list: %+v", a)
		}
	}
}

const managerToken = "cw_test-manager-token"

// getAs reads path with a bearer token into v and returns the status.
func getAs(t *testing.T, svc *service, token, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+svc.HTTP+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}
