package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

var demoPassword = regexp.MustCompile(`sign in as "demo" with password "([^"]+)"`)

// demoRun is one `crowdwatch demo` in dir, signed in as its demo user.
type demoRun struct {
	*service
	client *http.Client
}

func startDemo(t *testing.T, dir string, args ...string) *demoRun {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"demo", "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0",
		"--speed", "60"}, args...)...)
	cmd.Dir = dir // the demo store keeps its files under ./data/
	svc := startCmd(t, cmd)
	var password string
	for range 100 { // the password is printed right after the ready line
		if m := demoPassword.FindStringSubmatch(svc.logs.String()); m != nil {
			password = m[1]
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if password == "" {
		t.Fatalf("the demo printed no password:\n%s", svc.logs)
	}
	jar, _ := cookiejar.New(nil)
	d := &demoRun{service: svc, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	resp, err := d.client.Post("http://"+svc.HTTP+"/api/v1/session", "application/json",
		strings.NewReader(fmt.Sprintf(`{"username":"demo","password":%q}`, password)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("signing in to the demo: %s", resp.Status)
	}
	return d
}

// store is the whole store's occupancy and the boot of the main door's counter.
func (d *demoRun) store(t *testing.T) (int64, string) {
	t.Helper()
	get := func(path string, v any) {
		resp, err := d.client.Get("http://" + d.HTTP + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatal(err)
		}
	}
	var zones struct {
		Zones []struct {
			ID        string `json:"id"`
			Occupancy int64  `json:"occupancy"`
		} `json:"zones"`
	}
	var devices struct {
		Devices []struct {
			ID   string `json:"id"`
			Boot string `json:"boot"`
		} `json:"devices"`
	}
	get("/api/v1/zones", &zones)
	get("/api/v1/devices", &devices)
	var occ int64 = -1
	for _, z := range zones.Zones {
		if z.ID == "store" {
			occ = z.Occupancy
		}
	}
	boot := ""
	for _, dv := range devices.Devices {
		if dv.ID == "dc-01" {
			boot = dv.Boot
		}
	}
	return occ, boot
}

// moving waits until the store's occupancy has changed several times: shoppers are
// arriving and the service counts them.
func (d *demoRun) moving(t *testing.T, run string) (last int64, boot string) {
	t.Helper()
	changes := 0
	prev, _ := d.store(t)
	for range 600 { // 60 s at most
		time.Sleep(100 * time.Millisecond)
		occ, b := d.store(t)
		if occ != prev {
			changes++
			prev = occ
		}
		if changes >= 5 {
			return occ, b
		}
	}
	t.Fatalf("%s: the demo store is frozen at %d people (%d changes in 60 s):\n%s", run, prev, changes, d.logs)
	return 0, ""
}

// TestDemoTwice starts `crowdwatch demo` twice in a row in the same folder: both times the
// crowd moves (issue: the second start reused the first's boot ids and every report was
// discarded as already seen), and the second start is a fresh morning with new boot ids.
func TestDemoTwice(t *testing.T) {
	dir := t.TempDir()
	first := startDemo(t, dir)
	_, boot1 := first.moving(t, "first start")
	first.stop()

	second := startDemo(t, dir)
	if !strings.Contains(second.logs.String(), "fresh morning") {
		t.Errorf("the second start does not say it started a fresh morning:\n%s", second.logs)
	}
	_, boot2 := second.moving(t, "second start")
	if boot1 == "" || boot1 == boot2 {
		t.Errorf("main door counter boots %q then %q, want a new boot per start", boot1, boot2)
	}
	second.stop()
}
