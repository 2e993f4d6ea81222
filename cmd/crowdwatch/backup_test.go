package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const adminToken = "cw_test-admin-token"

// TestBackupAndRestore: a running service gives a consistent copy of each file to an admin
// (and to nobody else); `crowdwatch backup` refuses the files the service holds and points
// to the endpoint, and copies all three once it stops; a copy restored in place of the
// occupancy file starts with the same figures (docs/operations.md).
func TestBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	yaml := embeddedStore + fmt.Sprintf("auth:\n  tokens: [{name: ops, sha256: %q, role: admin}, {name: officer, sha256: %q, role: security}]\n",
		tokenSum(adminToken), tokenSum(securityToken))
	cfg := writeConfig(t, dir, yaml)
	svc := startService(t, "serve", "--config", cfg)
	dev, err := mqttClient(t, "tcp://"+svc.MQTT, "dc-01", "", "")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, dev, "crowdwatch/it-store/counter/dc-01", report("b1", 1, 30, 2))
	waitEntrance(t, svc, 28)
	dev.Disconnect(100)

	get := func(file, token string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", "http://"+svc.HTTP+"/api/v1/backup?file="+file, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	saved := t.TempDir()
	for _, file := range []string{"occupancy", "alerts", "history", "auth", "events"} {
		resp, body := get(file, adminToken)
		if resp.StatusCode != 200 || strconv.Itoa(len(body)) != resp.Header.Get("Content-Length") || len(body) < 4*4096 {
			t.Fatalf("%s: %s, %d bytes, Content-Length %s", file, resp.Status, len(body), resp.Header.Get("Content-Length"))
		}
		if err := os.WriteFile(filepath.Join(saved, file+".db"), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if resp, _ := get("occupancy", securityToken); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a security officer got the backup: %s", resp.Status)
	}
	if resp, _ := get("../cw.db", adminToken); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown file: %s", resp.Status)
	}

	out := t.TempDir()
	b, err := exec.Command(binPath, "backup", "--config", cfg, "--out", out).CombinedOutput()
	if err == nil || !strings.Contains(string(b), "GET /api/v1/backup?file=occupancy") {
		t.Errorf("backup of a running service's files: %v\n%s", err, b)
	}
	svc.stop()
	b, err = exec.Command(binPath, "backup", "--config", cfg, "--out", out).CombinedOutput()
	if err != nil {
		t.Fatalf("backup of a stopped service: %v\n%s", err, b)
	}
	for _, name := range []string{"cw.db", "alerts.db", "cw.history.db", "cw.auth.db", "events.db"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("backup wrote no %s:\n%s", name, b)
		}
	}

	// Restore the copy the running service gave into a new folder and start from it.
	restored := t.TempDir()
	for from, to := range map[string]string{"occupancy.db": "cw.db", "alerts.db": "alerts.db", "history.db": "cw.history.db"} {
		data, err := os.ReadFile(filepath.Join(saved, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(restored, to), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	svc2 := startService(t, "serve", "--config", writeConfig(t, restored, yaml))
	waitEntrance(t, svc2, 28)
	svc2.stop()
}

// waitEntrance polls the entrance's occupancy as the admin until it is want.
func waitEntrance(t *testing.T, svc *service, want int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got struct {
		Occupancy int64 `json:"occupancy"`
	}
	for time.Now().Before(deadline) {
		req, _ := http.NewRequest("GET", "http://"+svc.HTTP+"/api/v1/zones/entrance", nil)
		req.Header.Set("Authorization", "Bearer "+adminToken)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			err = json.NewDecoder(resp.Body).Decode(&got)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 && got.Occupancy == want {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("entrance %d, want %d", got.Occupancy, want)
}
