package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/web/auth"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// The Prometheus rules and the Grafana dashboard shipped in deploy/ (and in the package), tried
// against the real service and Debian's prometheus and promtool.

func deployFile(parts ...string) string {
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "..", "deploy"}, parts...)...))
	if err != nil {
		panic(err)
	}
	return p
}

func runIn(t *testing.T, dir, prog string, args ...string) string {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", prog, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestPrometheusRulesPassPromtool(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	dir := deployFile("prometheus")
	out := runIn(t, dir, promtool, "check", "rules", "crowdwatch.rules.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool check rules:\n%s", out)
	}
	out = runIn(t, dir, promtool, "test", "rules", "crowdwatch.rules.test.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("promtool test rules:\n%s", out)
	}
}

// observedStore is a running service with sign-in on (Prometheus scrapes it with a manager
// token, as in a store), in which every metric family the rules and the dashboard read has
// been made to appear: most vectors export nothing until their first event.
type observedStore struct {
	*service
	token  string
	device paho.Client // dc-01, connected
}

const observedYAML = `
site: {id: obs, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/store.db}
mqtt:
  embedded:
    listen: "127.0.0.1:0"
    users:
      - {username: dc-01, password: "pw-dc-01-long", role: device}
      - {username: dc-02, password: "pw-dc-02-long", role: device}
      - {username: handheld, password: "pw-handheld", role: reader}
devices: {offline_after: 1s}
zones:
  - {id: store, capacity: 1000}
  - {id: entrance, parent: store, capacity: 150, area_m2: 90}
doors:
  - {id: main-door, from: outside, to: entrance, width_m: 4, counter: {device: dc-01}}
  - {id: side-door, from: outside, to: store, width_m: 2, counter: {device: dc-02}}
auth:
  tokens:
    - {name: prometheus, role: manager, sha256: %s}
alerting:
  channels: [{name: handhelds, type: mqtt}]
  routes: [{channel: handhelds}]
`

func startObservedStore(t *testing.T) *observedStore {
	t.Helper()
	tok, sum, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svc := startApp(t, writeConfig(t, dir, fmt.Sprintf(observedYAML, sum)))
	broker := "tcp://" + svc.MQTT
	dev, err := mqttClient(t, broker, "dc-01", "dc-01", "pw-dc-01-long")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, dev, "crowdwatch/obs/counter/dc-01", report("b1", 1, 5, 1))
	publish(t, dev, "crowdwatch/obs/counter/dc-01", `{"boot":"b1","seq":"two","ts":"2026-11-11T10:00:00Z","in":6,"out":1}`)
	// A wrong device password: a security event. dc-02 never reports: after offline_after it
	// is silent, which raises an alert, which is sent to the handhelds' channel.
	if _, err := mqttClient(t, broker, "intruder", "dc-02", "wrong-password"); err == nil {
		t.Fatal("the broker accepted a wrong device password")
	}
	o := &observedStore{service: svc, token: tok, device: dev}
	deadline := time.Now().Add(30 * time.Second)
	want := []string{`crowdwatch_zone_occupancy{zone="entrance"} 4`, `outcome="rejected"`, `kind="mqtt_auth_failed"`,
		`crowdwatch_alerts_firing{kind="device_silent"`, `crowdwatch_notifications_total{channel="handhelds",result="sent"}`,
		`crowdwatch_device_last_seen_timestamp_seconds{device="dc-01"}`}
	for {
		m := o.scrape(t)
		var missing []string
		for _, w := range want {
			if !strings.Contains(m, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s /metrics still lacks %q:\n%s", missing, m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scrape reads /metrics as Prometheus does, with the bearer token.
func (o *observedStore) scrape(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("GET", "http://"+o.HTTP+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+o.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics with the manager token: %s: %s", resp.Status, b)
	}
	return string(b)
}

// exported is the set of sample names in an exposition (histograms as _bucket, _sum, _count).
func exported(metrics string) map[string]bool {
	names := map[string]bool{}
	for _, line := range strings.Split(metrics, "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	return names
}

var (
	metricName   = regexp.MustCompile(`\bcrowdwatch[_:][a-zA-Z0-9_:]*`)
	recordedName = regexp.MustCompile(`(?m)^\s*- record:\s*(\S+)\s*$`)
)

// dashboardExprs collects every PromQL text of a Grafana dashboard: panel targets and
// template variable queries.
func dashboardExprs(v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, val := range x {
			if s, ok := val.(string); ok && (k == "expr" || k == "query" || k == "definition") {
				*out = append(*out, s)
				continue
			}
			dashboardExprs(val, out)
		}
	case []any:
		for _, e := range x {
			dashboardExprs(e, out)
		}
	}
}

func TestDashboardAndRulesNameOnlyExportedMetrics(t *testing.T) {
	o := startObservedStore(t)
	have := exported(o.scrape(t))
	if !have["crowdwatch_zone_occupancy"] || !have["crowdwatch_ingest_latency_seconds_bucket"] {
		t.Fatalf("the exposition was not read: %v", have)
	}
	rulesText, err := os.ReadFile(deployFile("prometheus", "crowdwatch.rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, m := range recordedName.FindAllStringSubmatch(string(rulesText), -1) {
		recorded[m[1]] = true
	}
	if len(recorded) < 5 {
		t.Fatalf("found only %d recording rules in crowdwatch.rules.yml", len(recorded))
	}
	check := func(where, text string) {
		t.Helper()
		for _, name := range metricName.FindAllString(text, -1) {
			if strings.Contains(name, ":") {
				if !recorded[name] {
					t.Errorf("%s names %s, which no rule in crowdwatch.rules.yml records", where, name)
				}
			} else if !have[name] {
				t.Errorf("%s names %s, which the service does not export", where, name)
			}
		}
	}
	check("crowdwatch.rules.yml", string(rulesText))

	raw, err := os.ReadFile(deployFile("grafana", "crowdwatch.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("deploy/grafana/crowdwatch.json is not JSON: %v", err)
	}
	if dash["uid"] == "" || dash["title"] == "" {
		t.Errorf("the dashboard has no uid or title")
	}
	var exprs []string
	dashboardExprs(dash, &exprs)
	all := strings.Join(exprs, "\n")
	for _, e := range exprs {
		check("the Grafana dashboard", e)
	}
	// Occupancy, levels, alerts, device health and ingest: each has its panel.
	for _, want := range []string{"crowdwatch_zone_occupancy", "crowdwatch:zone_occupancy_ratio", "crowdwatch:zone_level_by_ratio",
		"crowdwatch_alerts_firing", "crowdwatch_device_online", "crowdwatch:device_silence_seconds", "crowdwatch:ingest_rejected:rate5m",
		"crowdwatch:security_events:increase5m"} {
		if !strings.Contains(all, want) {
			t.Errorf("the dashboard shows no %s", want)
		}
	}
	prov, err := os.ReadFile(deployFile("grafana", "provisioning.yaml"))
	if err != nil || !strings.Contains(string(prov), "path: /usr/share/crowdwatch/grafana") {
		t.Errorf("provisioning.yaml does not load the folder the package installs the dashboard in (%v)", err)
	}
}

// promQuery asks Prometheus's HTTP API for an instant vector and returns the values by the
// given label.
func promQuery(base, query, label string) (map[string]string, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, r.Error)
	}
	out := map[string]string{}
	for _, s := range r.Data.Result {
		v, _ := s.Value[1].(string)
		out[s.Metric[label]] = v
	}
	return out, nil
}

func TestPrometheusScrapesOccupancy(t *testing.T) {
	prom := need(t, "prometheus", "prometheus")
	promtool := need(t, "promtool", "prometheus")
	o := startObservedStore(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "crowdwatch.token")
	if err := os.WriteFile(tokenFile, []byte(o.token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The scrape job as deploy/prometheus/README.md tells the operations team to write it.
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [%q]
scrape_configs:
  - job_name: crowdwatch
    authorization: {credentials_file: %q}
    static_configs: [{targets: [%q]}]
`, deployFile("prometheus", "crowdwatch.rules.yml"), tokenFile, o.HTTP)), 0o600); err != nil {
		t.Fatal(err)
	}
	runIn(t, dir, promtool, "check", "config", conf)

	var base string
	logs := &syncBuffer{}
	// The free port may be taken between our probe and Prometheus binding it: a few tries.
	for try := 0; try < 3 && base == ""; try++ {
		listen := freePort(t)
		cmd := exec.Command(prom, "--config.file="+conf, "--storage.tsdb.path="+filepath.Join(dir, fmt.Sprintf("data%d", try)),
			"--web.listen-address="+listen, "--log.level=warn")
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				cmd.Process.Kill()
				<-done
			}
		})
		ready := time.Now().Add(30 * time.Second)
		for base == "" && time.Now().Before(ready) {
			select {
			case err := <-done:
				t.Logf("prometheus on %s exited (%v)", listen, err)
				ready = time.Time{}
				continue
			case <-time.After(200 * time.Millisecond):
			}
			if resp, err := http.Get("http://" + listen + "/-/ready"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					base = "http://" + listen
				}
			}
		}
	}
	if base == "" {
		t.Fatalf("prometheus did not become ready:\n%s", logs)
	}

	waitSeries := func(query, label string, want map[string]string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		var got map[string]string
		var err error
		for time.Now().Before(deadline) {
			if got, err = promQuery(base, query, label); err == nil && matchesStr(got, want) {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Fatalf("%s: got %v (%v), want %v\nprometheus:\n%s", query, got, err, want, logs)
	}
	waitSeries(`crowdwatch_zone_occupancy{job="crowdwatch"}`, "zone", map[string]string{"entrance": "4", "store": "4"})
	waitSeries(`crowdwatch:zone_occupancy_ratio{job="crowdwatch"}`, "zone", map[string]string{"entrance": fmt.Sprint(4.0 / 150)})
	// dc-02 never reported and dc-01 stopped after its two messages (offline_after 1s).
	waitSeries(`crowdwatch:devices_offline:count`, "job", map[string]string{"crowdwatch": "2"})

	// The figure Prometheus reads follows the door: 20 more in, 4 more out.
	publish(t, o.device, "crowdwatch/obs/counter/dc-01", report("b1", 3, 25, 5))
	waitSeries(`crowdwatch_zone_occupancy{job="crowdwatch"}`, "zone", map[string]string{"entrance": "20", "store": "20"})
	waitSeries(`crowdwatch:zone_level_by_ratio{job="crowdwatch"}`, "zone", map[string]string{"entrance": "0", "store": "0"})

	// Every shipped rule loaded and evaluates without error against the real series.
	resp, err := http.Get(base + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var rules struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name   string `json:"name"`
					Health string `json:"health"`
					Error  string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &rules); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range rules.Data.Groups {
		for _, r := range g.Rules {
			n++
			if r.Health == "err" {
				t.Errorf("rule %s fails in prometheus: %s", r.Name, r.Error)
			}
		}
	}
	if want := len(recordedName.FindAllString(mustRead(t, deployFile("prometheus", "crowdwatch.rules.yml")), -1)); n < want+5 {
		t.Errorf("prometheus loaded %d rules, want the %d recording rules and the alerts:\n%s", n, want, b)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func matchesStr(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}
