package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
	"github.com/crowdwatch/crowdwatch/firmware-sim/scenario"
	"github.com/crowdwatch/crowdwatch/firmware-sim/sim"
)

// securityToken is an API token for the tests' security officer; configs hold its SHA-256.
const securityToken = "cw_test-security-officer-token"

func tokenSum(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// post sends a JSON body as the security officer.
func (s *service) post(path, body string) (int, map[string]any) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+s.HTTP+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+securityToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// get reads a path as the security officer.
func (s *service) get(path string) string {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTP+path, nil)
	req.Header.Set("Authorization", "Bearer "+securityToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// alerts reads the service's alerts as the security officer.
func (s *service) alerts(query string) []alerting.Alert {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+s.HTTP+"/api/v1/alerts?"+query, nil)
	req.Header.Set("Authorization", "Bearer "+securityToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct{ Alerts []alerting.Alert }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Alerts
}

func (s *service) waitAlert(query string, within time.Duration, ok func(alerting.Alert) bool) alerting.Alert {
	s.t.Helper()
	deadline := time.Now().Add(within)
	var last []alerting.Alert
	for time.Now().Before(deadline) {
		last = s.alerts(query)
		for _, a := range last {
			if ok(a) {
				return a
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("no matching alert for %q within %s; alerts: %+v\n%s", query, within, last, s.logs)
	return alerting.Alert{}
}

// startAlertmanager runs Debian's prometheus-alertmanager on a loopback port and returns its
// URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	bin := need(t, "prometheus-alertmanager", "prometheus-alertmanager")
	dir := t.TempDir()
	conf := filepath.Join(dir, "am.yml")
	if err := os.WriteFile(conf, []byte("route: {receiver: 'null', group_wait: 1s}\nreceivers: [{name: 'null'}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freePort(t)
	cmd := exec.Command(bin, "--config.file="+conf, "--storage.path="+dir, "--web.listen-address="+addr,
		"--cluster.listen-address=", "--log.level=warn")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager output:\n%s", logs.String())
		}
	})
	url := "http://" + addr
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url
			}
		}
	}
	t.Fatalf("alertmanager not ready:\n%s", logs.String())
	return ""
}

type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Status      struct{ State string }
}

func amAlerts(t *testing.T, url string) []amAlert {
	resp, err := http.Get(url + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []amAlert
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// hookRecorder is a webhook receiver that fails its first answers, then records what it gets.
type hookRecorder struct {
	mu       sync.Mutex
	failures int
	attempts int
	bodies   []map[string]any
	badSigs  int
}

func (h *hookRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.attempts++
	sig := r.Header.Get("X-Crowdwatch-Signature")
	if sig != "sha256="+alerting.Sign("hook-secret", r.Header.Get("X-Crowdwatch-Timestamp"), body) {
		h.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if h.failures > 0 {
		h.failures--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	var v map[string]any
	_ = json.Unmarshal(body, &v)
	h.bodies = append(h.bodies, v)
	w.WriteHeader(http.StatusOK)
}

func (h *hookRecorder) texts() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, b := range h.bodies {
		if md, ok := b["markdown"].(map[string]any); ok {
			out = append(out, fmt.Sprint(md["content"]))
		}
	}
	return out
}

const alertStore = `
site: {id: am-site, name: "Test store", timezone: UTC}
http: {listen: "$HTTP"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "$MQTT"}}
occupancy: {daily_reset: "off"}
auth:
  tokens: [{name: officer, sha256: "$SUM", role: security}]
alerting:
  evaluate_every: 200ms
  defaults: {critical_for: 1s, warning_for: 1s, clear_after: 1s, full_horizon: 0s}
  channels:
    - {name: am, type: alertmanager, url: "$AM", resend_every: 2s}
    - {name: chat, type: webhook, url: "$HOOK", secret: hook-secret, template: wecom}
    - {name: radio, type: mqtt}
  routes:
    - {channel: am}
    - {channel: chat, min_severity: warning, kinds: [level, evacuation]}
    - {channel: radio, min_severity: warning}
zones:
  - {id: store, capacity: 1000}
  - {id: entrance, name: Entrance, parent: store, capacity: 20}
doors:
  - {id: main, from: outside, to: entrance, width_m: 2, counter: {device: dc-01}}
  - {id: inner, from: entrance, to: store, width_m: 2, counter: {device: dc-02}}
`

// TestAlertsReachAlertmanagerAndWebhook drives a zone to critical through the real broker and
// checks the alert arrives at a real Alertmanager (read back through its API), at a webhook
// that first fails (retried, signed, in the WeCom robot format) and on MQTT, is acknowledged
// through the API, survives a restart without paging again, and resolves everywhere.
func TestAlertsReachAlertmanagerAndWebhook(t *testing.T) {
	amURL := startAlertmanager(t)
	hook := &hookRecorder{failures: 2}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()

	dir := t.TempDir()
	httpAddr, mqttAddr := freePort(t), freePort(t)
	yaml := alertStore
	for k, v := range map[string]string{"$HTTP": httpAddr, "$MQTT": mqttAddr, "$SUM": tokenSum(securityToken), "$AM": amURL, "$HOOK": hookSrv.URL} {
		yaml = strings.ReplaceAll(yaml, k, v)
	}
	cfgPath := writeConfig(t, dir, yaml)
	svc := startApp(t, cfgPath)

	// A handheld listening on the alert topics.
	retained := make(chan string, 64)
	sub := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + mqttAddr).SetClientID("handheld"))
	if tok := sub.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer sub.Disconnect(100)
	sub.Subscribe("crowdwatch/am-site/alert/#", 1, func(_ paho.Client, m paho.Message) { retained <- m.Topic() + " " + string(m.Payload()) })

	dev := paho.NewClient(device.Options("tcp://"+mqttAddr, "dc-01"))
	defer dev.Disconnect(100)
	seq := 0
	report := func(in, out int) {
		seq++
		p := fmt.Sprintf(`{"boot":"b1","seq":%d,"ts":%q,"in":%d,"out":%d}`, seq, time.Now().UTC().Format(time.RFC3339Nano), in, out)
		if err := device.PublishAcked(context.Background(), dev, "crowdwatch/am-site/counter/dc-01", []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	report(0, 0)
	report(25, 0) // 25 people in a 20-place entrance: critical

	a := svc.waitAlert("kind=level", 20*time.Second, func(a alerting.Alert) bool {
		return a.Zone == "entrance" && a.Severity == alerting.SeverityCritical && a.State == alerting.StateFiring
	})
	if a.ID != "level:entrance" {
		t.Fatalf("alert id %q", a.ID)
	}
	waitFor(t, 20*time.Second, "the alert in Alertmanager", func() bool {
		for _, am := range amAlerts(t, amURL) {
			if am.Labels["alertname"] == "crowdwatch_level" && am.Labels["zone"] == "entrance" &&
				am.Labels["severity"] == "critical" && am.Labels["site"] == "am-site" && strings.Contains(am.Annotations["summary"], "Entrance critical") {
				return true
			}
		}
		return false
	})
	waitFor(t, 20*time.Second, "the webhook after two failures", func() bool {
		for _, txt := range hook.texts() {
			if strings.Contains(txt, "[CRITICAL]") && strings.Contains(txt, "level:entrance") {
				return true
			}
		}
		return false
	})
	hook.mu.Lock()
	if hook.attempts < 3 || hook.badSigs != 0 {
		t.Errorf("webhook: %d attempts, %d bad signatures; want the two failures retried and every body signed", hook.attempts, hook.badSigs)
	}
	hook.mu.Unlock()
	waitFor(t, 10*time.Second, "the retained MQTT alert", func() bool {
		for {
			select {
			case m := <-retained:
				if strings.HasPrefix(m, "crowdwatch/am-site/alert/level:entrance ") && strings.Contains(m, `"what":"fired"`) {
					return true
				}
			default:
				return false
			}
		}
	})
	if m := svc.get("/metrics"); !strings.Contains(m, `crowdwatch_notifications_total{channel="chat",result="retried"} 2`) {
		t.Errorf("retries not counted:\n%s", grepLines(m, "crowdwatch_notifications_total"))
	}

	// Refused without the security role.
	if resp, err := http.Post("http://"+svc.HTTP+"/api/v1/alerts/level:entrance/ack", "application/json", strings.NewReader(`{}`)); err != nil || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusForbidden) {
		t.Fatalf("anonymous acknowledgement: %v %v", resp.StatusCode, err)
	}
	if code, body := svc.post("/api/v1/alerts/level:entrance/ack", `{"note":"two guards at the door"}`); code != 200 || body["ack_by"] != "token:officer" {
		t.Fatalf("ack: %d %v", code, body)
	}
	waitFor(t, 20*time.Second, "the acknowledgement in Alertmanager", func() bool {
		for _, am := range amAlerts(t, amURL) {
			if am.Labels["zone"] == "entrance" && strings.Contains(am.Annotations["description"], "acknowledged by token:officer") {
				return true
			}
		}
		return false
	})

	// A restart brings back the acknowledged alert and pages nobody again.
	hook.mu.Lock()
	before := len(hook.bodies)
	hook.mu.Unlock()
	svc.stop()
	svc = startApp(t, cfgPath)
	a = svc.waitAlert("kind=level", 10*time.Second, func(a alerting.Alert) bool { return a.ID == "level:entrance" })
	if a.State != alerting.StateAcknowledged || a.AckBy != "token:officer" || a.AckNote != "two guards at the door" {
		t.Fatalf("after restart: %+v", a)
	}
	time.Sleep(2 * time.Second)
	hook.mu.Lock()
	for _, b := range hook.bodies[before:] {
		if md, _ := b["markdown"].(map[string]any); strings.Contains(fmt.Sprint(md["content"]), "fired") {
			t.Errorf("paged again after a restart: %v", md["content"])
		}
	}
	hook.mu.Unlock()

	// The crowd leaves: resolved in the service, in Alertmanager and on the webhook.
	report(25, 24)
	svc.waitAlert("state=resolved", 20*time.Second, func(a alerting.Alert) bool { return a.ID == "level:entrance" })
	waitFor(t, 20*time.Second, "the resolution in Alertmanager", func() bool {
		for _, am := range amAlerts(t, amURL) {
			if am.Labels["zone"] == "entrance" && am.Labels["alertname"] == "crowdwatch_level" {
				return false
			}
		}
		return true
	})
	waitFor(t, 20*time.Second, "the resolution on the webhook", func() bool {
		for _, txt := range hook.texts() {
			if strings.Contains(txt, "resolved · level:entrance") {
				return true
			}
		}
		return false
	})
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("%s did not happen within %s", what, within)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestDoorbusterRaisesAcknowledgesAndResolves runs the simulator's door-buster morning into
// the real service: the entrance goes critical at the opening, the alert fires after its
// hold-down, is acknowledged through the API, and resolves once the crowd has moved on, with
// every transition stored.
func TestDoorbusterRaisesAcknowledgesAndResolves(t *testing.T) {
	dir := t.TempDir()
	base, err := os.ReadFile("../../configs/demo-store.yaml")
	if err != nil {
		t.Fatal(err)
	}
	// Hold-downs are in wall time and the simulator runs as fast as it can, pausing at each
	// checkpoint; short holds keep the test quick without changing what is tested.
	auth := fmt.Sprintf("\nauth:\n  tokens: [{name: officer, sha256: %q, role: security}]\n", tokenSum(securityToken))
	quick := "alerting:\n  evaluate_every: 200ms\n  defaults: {critical_for: 2s, warning_for: 2s, clear_after: 2s}\n"
	if !bytes.Contains(base, []byte("\nalerting:\n")) {
		t.Fatal("the demo store has no alerting block to add the test's hold-downs to")
	}
	yaml := strings.Replace(string(base), "\nalerting:\n", "\n"+quick, 1) + auth
	cfgPath := filepath.Join(dir, "store.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr, mqttAddr := freePort(t), freePort(t)
	store, err := configs.Load(cfgPath, map[string]any{"storage.path": dir + "/cw.db", "http.listen": httpAddr,
		"mqtt.embedded.listen": mqttAddr, "occupancy.daily_reset": "off"})
	if err != nil {
		t.Fatal(err)
	}
	svc := startAppWith(t, cfgPath, map[string]any{"storage.path": dir + "/cw.db", "http.listen": httpAddr, "mqtt.embedded.listen": mqttAddr})

	sc, err := scenario.Load("../../configs/scenarios/doorbuster.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sc.Start, sc.End = 7*60+15, 10*60+30
	sc.Devices.SensorNoise = 0
	capacity := 0
	for _, z := range store.Zones {
		if z.ID == "entrance" {
			capacity = z.Capacity
		}
	}
	cmp := &sim.Comparer{URL: "http://" + svc.HTTP, Config: store, Token: securityToken}
	var fired, acked, resolved bool
	var peak int64
	checkpoint := func(ctx context.Context, at time.Time, truth map[string]int64, sent map[string]sim.Mark) error {
		if err := cmp.Checkpoint(ctx, at, truth, sent); err != nil {
			return err
		}
		peak = max(peak, truth["entrance"])
		switch {
		case !fired && truth["entrance"] > int64(capacity):
			// The simulator is paused here with the entrance over capacity: the alert must
			// come once its hold-down has passed.
			a := svc.waitAlert("kind=level&zone=entrance", 30*time.Second, func(a alerting.Alert) bool {
				return a.Severity == alerting.SeverityCritical && a.State == alerting.StateFiring
			})
			fired = true
			if code, body := svc.post("/api/v1/alerts/"+a.ID+"/ack", `{"note":"closing the second door"}`); code != 200 {
				return fmt.Errorf("ack: %d %v", code, body)
			}
			acked = true
		case acked && !resolved && float64(truth["entrance"]) < 0.5*float64(capacity):
			svc.waitAlert("state=resolved&kind=level&zone=entrance", 30*time.Second, func(a alerting.Alert) bool {
				return a.AckBy == "token:officer" && a.EndsAt != nil
			})
			resolved = true
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := sim.Run(ctx, sim.Options{Config: store, Scenario: sc, Broker: "tcp://" + mqttAddr, Seed: 7,
		Speed: 0, CheckpointEvery: time.Minute, Checkpoint: checkpoint}); err != nil {
		t.Fatal(err)
	}
	if !fired || !acked || !resolved {
		t.Fatalf("fired %v acked %v resolved %v (entrance peak %d of %d)", fired, acked, resolved, peak, capacity)
	}
	// Every transition is stored: the alert's history reads back from the alert database
	// after the service has stopped.
	svc.stop()
	cfg, err := configs.Load(cfgPath, map[string]any{"storage.path": dir + "/cw.db"})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := alerting.ReadEvents(cfg.AlertsPath(), time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, e := range evs {
		if e.AlertID == "level:entrance" {
			seq = append(seq, e.What)
		}
	}
	want := []string{"fired", "acknowledged", "resolved"}
	if !containsInOrder(seq, want) {
		t.Fatalf("stored transitions of level:entrance %v, want %v in order", seq, want)
	}
}

func containsInOrder(got, want []string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// reloadStore writes a store file whose default warning and critical ratios write(warn,
// crit) rewrites, and returns its path (written with 0.85 and 1.0) and write.
func reloadStore(t *testing.T) (string, func(warn, crit string)) {
	dir := t.TempDir()
	yaml := strings.NewReplacer("$SUM", tokenSum(securityToken)).Replace(`
site: {id: reload-site, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
auth:
  tokens: [{name: officer, sha256: "$SUM", role: security}]
alerting:
  evaluate_every: 200ms
  reload: {watch_file: false}
  defaults: {critical_ratio: CRIT, warning_ratio: WARN, critical_for: 0s, warning_for: 0s}
zones:
  - {id: hall, capacity: 10}
doors:
  - {id: d, from: outside, to: hall, counter: {device: dc-01}}
`)
	write := func(warn, crit string) string {
		return writeConfig(t, dir, strings.NewReplacer("WARN", warn, "CRIT", crit).Replace(yaml))
	}
	return write("0.85", "1.0"), func(warn, crit string) { write(warn, crit) }
}

// hallAt70 puts 7 people in the 10-place hall of reloadStore and waits for it to show busy;
// it returns the hall's level as the service shows it.
func hallAt70(t *testing.T, svc *service) func() string {
	dev := paho.NewClient(device.Options("tcp://"+svc.MQTT, "dc-01"))
	t.Cleanup(func() { dev.Disconnect(100) })
	p := fmt.Sprintf(`{"boot":"b","seq":1,"ts":%q,"in":7,"out":0}`, time.Now().UTC().Format(time.RFC3339Nano))
	if err := device.PublishAcked(context.Background(), dev, "crowdwatch/reload-site/counter/dc-01", []byte(p)); err != nil {
		t.Fatal(err)
	}
	level := func() string {
		var st alerting.Status
		if err := json.Unmarshal([]byte(svc.get("/api/v1/status")), &st); err != nil {
			return err.Error()
		}
		z, _ := st.Zone("hall")
		return z.Level.String()
	}
	waitFor(t, 10*time.Second, "hall busy at 70%", func() bool { return level() == "busy" })
	return level
}

// TestReload rewrites the store file under a running service (in-process, app.Reload): a
// bad file is refused (logged, in a metric) and the old thresholds keep running; a good one
// is swapped in.
func TestReload(t *testing.T) {
	cfgPath, write := reloadStore(t)
	svc := startApp(t, cfgPath)
	level := hallAt70(t, svc)

	write("0.9", "0.5") // warning above critical: refused
	svc.reload()
	waitFor(t, 10*time.Second, "the bad file refused in the metric", func() bool {
		return strings.Contains(svc.get("/metrics"), "crowdwatch_config_last_reload_successful 0")
	})
	if !strings.Contains(svc.logs.String(), "config reload rejected") || level() != "busy" {
		t.Fatalf("bad reload: level %s, logs:\n%s", level(), svc.logs)
	}

	write("0.62", "0.65") // 70% is now critical
	svc.reload()
	waitFor(t, 10*time.Second, "the new thresholds applied", func() bool { return level() == "critical" })
	if m := svc.get("/metrics"); !strings.Contains(m, "crowdwatch_config_last_reload_successful 1") ||
		!strings.Contains(m, `crowdwatch_config_reloads_total{result="success"} 1`) {
		t.Fatalf("reload metrics:\n%s", grepLines(m, "reload"))
	}
}

// TestReloadOnSIGHUP: the binary reloads its store file on SIGHUP (the rest of reloading is
// TestReload's, in-process).
func TestReloadOnSIGHUP(t *testing.T) {
	cfgPath, write := reloadStore(t)
	svc := startService(t, "serve", "--config", cfgPath)
	level := hallAt70(t, svc)

	write("0.62", "0.65") // 70% is now critical
	svc.reload()
	waitFor(t, 10*time.Second, "the new thresholds applied", func() bool { return level() == "critical" })
	if m := svc.get("/metrics"); !strings.Contains(m, `crowdwatch_config_reloads_total{result="success"} 1`) {
		t.Fatalf("reload metrics:\n%s", grepLines(m, "reload"))
	}
}
