package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// haStore is one instance of a pair; $INST is its name, $DIR its own data folder.
const haStore = `
site: {id: ha-site, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {broker: "tcp://$BROKER", client_id: crowdwatch-ha-test}
occupancy: {daily_reset: "off"}
ha: {enabled: true, instance: $INST, endpoints: ["$ETCD"], failover: 3s, prefix: /hatest}
auth:
  tokens: [{name: officer, sha256: "$SUM", role: security}]
alerting:
  evaluate_every: 200ms
  repeat_interval: 1h
  escalation: {after: 8s, groups: [security, duty_manager]}
  defaults: {warning_ratio: 0.7, critical_ratio: 0.9, evacuate_ratio: 0.97, warning_for: 500ms, critical_for: 500ms, clear_after: 1s, full_horizon: 0s, surge_per_min: 0}
  channels:
    - {name: hook, type: webhook, url: "$HOOK", template: json, max_attempts: 1}
$AMCHANNEL
  routes:
    - {channel: hook, kinds: [level]}
$AMROUTE
zones:
  - {id: hall, capacity: 100}
  - {id: annex, capacity: 100}
doors:
  - {id: hall-door, from: outside, to: hall, counter: {device: dc-01}}
  - {id: annex-door, from: outside, to: annex, counter: {device: dc-02}}
`

// page is one notification the recording webhook received, with its arrival and the
// instance that sent it (each instance's webhook URL says ?from=<instance>).
type page struct {
	key, what, alert, from string
	term                   int64
	degraded               bool
	at                     time.Time
}

type pager struct {
	mu    sync.Mutex
	pages []page
}

func (p *pager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var n struct {
		What     string `json:"what"`
		Term     int64  `json:"term"`
		Degraded bool   `json:"degraded"`
		Alert    struct {
			ID string `json:"id"`
		} `json:"alert"`
	}
	_ = json.Unmarshal(b, &n)
	p.mu.Lock()
	p.pages = append(p.pages, page{key: r.Header.Get("Idempotency-Key"), what: n.What, alert: n.Alert.ID, term: n.Term,
		degraded: n.Degraded, at: time.Now(), from: r.URL.Query().Get("from")})
	p.mu.Unlock()
}

func (p *pager) all() []page {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pages)
}

// whats is what was sent for one alert, in order.
func (p *pager) whats(alert string) []string {
	var out []string
	for _, pg := range p.all() {
		if pg.alert == alert {
			out = append(out, pg.what)
		}
	}
	return out
}

// surgeDevice is a door counter at one zone's only door: it walks the zone's occupancy to a
// target, publishing its totals at QoS 1 like firmware; in-out is the truth.
type surgeDevice struct {
	id      string
	cl      paho.Client
	mu      sync.Mutex // walk and the heartbeat
	seq     int
	in, out uint64
}

func (d *surgeDevice) walk(ctx context.Context, target int64, pace time.Duration) error {
	for {
		d.mu.Lock()
		occ := int64(d.in) - int64(d.out)
		if occ == target {
			d.mu.Unlock()
			return nil
		}
		if target > occ {
			d.in++
		} else {
			d.out++
		}
		err := d.send(ctx)
		d.mu.Unlock()
		if err != nil {
			return err
		}
		time.Sleep(pace)
	}
}

func (d *surgeDevice) send(ctx context.Context) error {
	d.seq++
	payload, _ := json.Marshal(map[string]any{"boot": d.id + "-boot", "seq": d.seq, "in": d.in, "out": d.out,
		"ts": time.Now().UTC().Format(time.RFC3339Nano)})
	return device.PublishAcked(ctx, d.cl, "crowdwatch/ha-site/counter/"+d.id, payload)
}

// heartbeat reports the same totals every second, as a counter does when nobody passes, so
// the device never counts as silent.
func (d *surgeDevice) heartbeat(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		d.mu.Lock()
		_ = d.send(ctx)
		d.mu.Unlock()
	}
}

func (d *surgeDevice) truth() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return int64(d.in) - int64(d.out)
}

type haInstance struct {
	name, cfg string
	svc       *service
}

func (h *haInstance) start(t *testing.T) {
	h.svc = startService(t, "serve", "--config", h.cfg)
	waitReady(t, h.svc)
}

func (h *haInstance) role() (string, int64) {
	var v struct {
		Role string `json:"role"`
		Term int64  `json:"term"`
	}
	_ = json.Unmarshal([]byte(h.svc.get("/api/v1/ha")), &v)
	return v.Role, v.Term
}

func (h *haInstance) zones() map[string]int64 {
	var list struct {
		Zones []struct {
			ID        string `json:"id"`
			Occupancy int64  `json:"occupancy"`
		} `json:"zones"`
	}
	_ = json.Unmarshal([]byte(h.svc.get("/api/v1/zones")), &list)
	out := map[string]int64{}
	for _, z := range list.Zones {
		out[z.ID] = z.Occupancy
	}
	return out
}

// agreement is what two instances must hold alike: zones, open and resolved alerts with
// their state and escalation, silences, and the applied action revision.
func (h *haInstance) agreement() string {
	var b strings.Builder
	fmt.Fprint(&b, h.zones())
	var as []string
	for _, a := range h.svc.alerts("") {
		as = append(as, fmt.Sprintf("%s:%s:%d:%s", a.ID, a.State, a.Escalation, a.AckBy))
	}
	slices.Sort(as) // the resolved ones are listed in the order each instance resolved them
	fmt.Fprint(&b, " ", as)
	var s struct {
		Silences []struct {
			ID string `json:"id"`
		} `json:"silences"`
	}
	_ = json.Unmarshal([]byte(h.svc.get("/api/v1/silences")), &s)
	fmt.Fprintf(&b, " silences %v", s.Silences)
	var ha struct {
		Lag struct {
			Applied int64 `json:"actions_applied"`
		} `json:"lag"`
	}
	_ = json.Unmarshal([]byte(h.svc.get("/api/v1/ha")), &ha)
	fmt.Fprintf(&b, " applied %d", ha.Lag.Applied)
	return b.String()
}

// TestFailoverUnderTheSurge runs a pair of real binaries on a real mosquitto and a real etcd
// while two door counters drive a door-buster surge; the leader is SIGKILLed in the middle of
// it. The survivor leads, its zones equal the devices' truth at every checkpoint, the webhook
// gets each alert transition exactly once (an alert acknowledged before the kill is not paged
// again; one waiting to escalate escalates after the takeover), and the killed instance,
// restarted, catches up its MQTT session and the action log and agrees exactly. A real
// Alertmanager, a channel on both, shows each alert once (one per label set, the term not
// splitting it) before and after the takeover, and both resolved. It logs the takeover time
// (docs/benchmarks.md).
func TestFailoverUnderTheSurge(t *testing.T) {
	e := testkit.Etcd(t)
	mq := startMosquitto(t)
	am := startAlertmanager(t)
	p := runPair(t, pairOptions{etcd: e.Endpoint, broker: mq.addr, am: am})
	lead, survivor, oldTerm, hook, d := p.a, p.b, p.term, p.hook, p.doors

	// Every retained zone message on the broker, with its term and arrival, for the takeover.
	type zoneMsg struct {
		term int64
		at   time.Time
	}
	var zmu sync.Mutex
	var zmsgs []zoneMsg
	watcher, err := mqttClient(t, "tcp://"+mq.addr, "ha-test-watcher", "", "")
	if err != nil {
		t.Fatal(err)
	}
	defer watcher.Disconnect(100)
	watcher.Subscribe("crowdwatch/ha-site/zone/#", 1, func(_ paho.Client, m paho.Message) {
		var v struct {
			Term int64 `json:"term"`
		}
		_ = json.Unmarshal(m.Payload(), &v)
		zmu.Lock()
		zmsgs = append(zmsgs, zoneMsg{v.Term, time.Now()})
		zmu.Unlock()
	}).Wait()

	both, truth := d.walk, d.truth
	checkpoint := func(what string, insts ...*haInstance) {
		t.Helper()
		checkpointPair(t, what, truth(), insts...)
	}

	// The doors open: both zones past warning (70 %); both instances fire, the leader pages.
	if err := both(72, 72, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpoint("surge", lead, survivor)
	waitFor(t, 20*time.Second, "both alerts paged", func() bool {
		return len(hook.whats("level:hall")) >= 1 && len(hook.whats("level:annex")) >= 1
	})
	// The hall's alert is acknowledged on the standby, once it has it open too (each instance
	// evaluates on its own; docs/ha.md): the action log applies it on both.
	waitFor(t, 20*time.Second, "the standby has the hall's alert open", func() bool {
		return slices.ContainsFunc(survivor.svc.alerts("state=firing"), func(a alerting.Alert) bool { return a.ID == "level:hall" })
	})
	if code, body := survivor.svc.post("/api/v1/alerts/level:hall/ack", `{"note": "stewards at the door"}`); code != 200 {
		t.Fatalf("ack on the standby: %d %v", code, body)
	}
	waitFor(t, 10*time.Second, "the ack applied on the leader and paged", func() bool {
		return len(hook.whats("level:hall")) >= 2 && slices.ContainsFunc(lead.svc.alerts("state=acknowledged"), func(a alerting.Alert) bool { return a.ID == "level:hall" })
	})
	// Alertmanager: one alert per zone (the standby's channel only notes them).
	amShowsOnce(t, am, "before the kill", "hall", "annex")

	// The surge goes on; the leader dies in the middle of it.
	surge := make(chan error, 1)
	go func() { surge <- both(86, 88, 40*time.Millisecond) }()
	time.Sleep(300 * time.Millisecond)
	killed := time.Now()
	lead.svc.kill()
	var leaderAt time.Time
	var newTerm int64
	waitFor(t, 30*time.Second, "the survivor leads", func() bool {
		r, term := survivor.role()
		if r == "leader" {
			leaderAt, newTerm = time.Now(), term
		}
		return r == "leader"
	})
	if newTerm <= oldTerm {
		t.Fatalf("new term %d not above the old %d", newTerm, oldTerm)
	}
	var outAt time.Time
	waitFor(t, 30*time.Second, "a zone message with the new term", func() bool {
		zmu.Lock()
		defer zmu.Unlock()
		for _, m := range zmsgs {
			if m.term == newTerm {
				outAt = m.at
				return true
			}
		}
		return false
	})
	t.Logf("takeover: leader after %v, first zone message with term %d after %v (failover 3s: lease TTL 2s)",
		leaderAt.Sub(killed).Round(time.Millisecond), newTerm, outAt.Sub(killed).Round(time.Millisecond))
	if err := <-surge; err != nil {
		t.Fatal(err)
	}
	checkpoint("surge after the kill", survivor)
	// The annex was never acknowledged: it escalates, from the new leader, once.
	waitFor(t, 30*time.Second, "the annex escalates", func() bool { return slices.Contains(hook.whats("level:annex"), "escalated") })
	// Alertmanager across the takeover: still one alert per zone, now resent by the new
	// leader (a term or an instance in the labels would make a second one), the hall's still
	// carrying its acknowledgement.
	time.Sleep(2500 * time.Millisecond) // two of the new leader's resends
	amShowsOnce(t, am, "after the takeover", "hall", "annex")
	for _, a := range amAlerts(t, am) {
		if a.Labels["zone"] == "hall" && !strings.Contains(a.Annotations["description"], "acknowledged by token:officer") {
			t.Errorf("after the takeover Alertmanager's hall alert lost its acknowledgement: %v", a.Annotations)
		}
	}

	// While a is down: a silence on the survivor (a catches it up from the log).
	if code, body := survivor.svc.post("/api/v1/silences", `{"kind": "surge", "zone": "annex", "duration": "2h", "comment": "drill"}`); code != 201 {
		t.Fatalf("silence: %d %v", code, body)
	}
	// The crowd leaves: both alerts resolve.
	if err := both(5, 5, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpoint("after the surge", survivor)
	waitFor(t, 30*time.Second, "both resolved", func() bool {
		return slices.Contains(hook.whats("level:hall"), "resolved") && slices.Contains(hook.whats("level:annex"), "resolved")
	})
	amShowsOnce(t, am, "resolved by the new leader") // none active: both resolved in Alertmanager

	// a comes back: its MQTT session and the action log catch it up; it agrees exactly.
	lead.start(t)
	checkpoint("restart", lead)
	var ga, gb string
	waitFor(t, 30*time.Second, "the restarted instance agrees", func() bool {
		ga, gb = lead.agreement(), survivor.agreement()
		if ga != gb {
			t.Logf("not yet:\n restarted %s\n survivor  %s", ga, gb)
		}
		return ga == gb
	})
	if r, _ := lead.role(); r != "standby" {
		t.Fatalf("the restarted instance is %s, want standby", r)
	}
	time.Sleep(time.Second) // anything sent twice would have arrived
	// The restarted standby resends nothing: nothing opens again in Alertmanager.
	amShowsOnce(t, am, "after the restart")

	keys := map[string]int{}
	for _, pg := range hook.all() {
		keys[pg.key]++
		if pg.key == "" || pg.term == 0 {
			t.Errorf("a page without its key or term: %+v", pg)
		}
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("transition %s paged %d times", k, n)
		}
	}
	if got, want := hook.whats("level:hall"), []string{"fired", "acknowledged", "resolved"}; !slices.Equal(got, want) {
		t.Errorf("hall paged %v, want %v (acknowledged before the kill: not paged again)", got, want)
	}
	if got, want := hook.whats("level:annex"), []string{"fired", "escalated", "resolved"}; !slices.Equal(got, want) {
		t.Errorf("annex paged %v, want %v", got, want)
	}
	for _, pg := range hook.all() {
		if pg.what == "escalated" && pg.term != newTerm {
			t.Errorf("the escalation was sent in term %d, want the new leader's %d", pg.term, newTerm)
		}
	}
	if t.Failed() {
		t.Logf("pages: %+v\nagreement a: %s\nagreement b: %s", hook.all(), lead.agreement(), survivor.agreement())
	}
}

func cmpErrs(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// pairOptions is what the pair tests vary: where each instance finds etcd and the broker
// (by instance name, "" for the shared one), the webhook (runPair sets its own), and an
// Alertmanager ("" for none).
type pairOptions struct {
	etcd, broker     string
	etcdOf, brokerOf map[string]string
	hook, am         string
}

// newPair writes the two store files, a and b, differing only by ha.instance (and the
// addresses a test routes through a proxy or a bridge); nothing is started.
func newPair(t *testing.T, o pairOptions) map[string]*haInstance {
	t.Helper()
	base := t.TempDir()
	inst := map[string]*haInstance{}
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		etcd, broker := cmp.Or(o.etcdOf[name], o.etcd), cmp.Or(o.brokerOf[name], o.broker)
		amChannel, amRoute := "", ""
		if o.am != "" {
			// resend_every short, so that Alertmanager hears the new leader soon after a takeover.
			amChannel = fmt.Sprintf(`    - {name: am, type: alertmanager, url: %q, resend_every: 1s, max_attempts: 1}`, o.am)
			amRoute = `    - {channel: am, kinds: [level]}`
		}
		// The one test-only difference between the two store files: the webhook learns who sent.
		hook := o.hook + "?from=" + name
		yaml := haStore
		for k, v := range map[string]string{"$INST": name, "$BROKER": broker, "$ETCD": etcd, "$SUM": tokenSum(securityToken),
			"$HOOK": hook, "$AMCHANNEL": amChannel, "$AMROUTE": amRoute} {
			yaml = strings.ReplaceAll(yaml, k, v)
		}
		inst[name] = &haInstance{name: name, cfg: writeConfig(t, dir, strings.ReplaceAll(yaml, "$DIR", dir))}
	}
	return inst
}

// startPair starts a, waits until it leads, then b, until it stands by.
func startPair(t *testing.T, inst map[string]*haInstance) (lead, standby *haInstance) {
	t.Helper()
	inst["a"].start(t)
	waitFor(t, 20*time.Second, "a leads", func() bool { r, _ := inst["a"].role(); return r == "leader" })
	inst["b"].start(t)
	waitFor(t, 20*time.Second, "b stands by", func() bool { r, _ := inst["b"].role(); return r == "standby" })
	return inst["a"], inst["b"]
}

// haPair is a running pair and what the pair tests drive and watch it with: the recording
// webhook both instances page and the store's two door counters on the shared broker.
type haPair struct {
	a, b  *haInstance // a leads, b stands by
	term  int64       // a's term as the pair came up
	hook  *pager
	doors *doors
}

// runPair writes and starts a pair on o's etcd and broker (a leading, b standing by), paging
// a recording webhook (o.hook is set to it), and starts the door counters on o.broker,
// heartbeating for at most three minutes.
func runPair(t *testing.T, o pairOptions) *haPair {
	t.Helper()
	p := &haPair{hook: &pager{}}
	hookSrv := httptest.NewServer(p.hook)
	t.Cleanup(hookSrv.Close)
	o.hook = hookSrv.URL
	p.a, p.b = startPair(t, newPair(t, o))
	_, p.term = p.a.role()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	p.doors = newDoors(t, ctx, o.broker)
	t.Cleanup(cancel) // before the counters disconnect: the heartbeats stop first
	return p
}

// doors is the store's two door counters (hall and annex), heartbeating until ctx ends.
type doors struct {
	ctx         context.Context
	hall, annex *surgeDevice
	quiet       context.CancelFunc // stops the heartbeats
}

func newDoors(t *testing.T, ctx context.Context, broker string) *doors {
	d := &doors{ctx: ctx,
		hall:  &surgeDevice{id: "dc-01", cl: paho.NewClient(device.Options("tcp://"+broker, "dc-01"))},
		annex: &surgeDevice{id: "dc-02", cl: paho.NewClient(device.Options("tcp://"+broker, "dc-02"))}}
	t.Cleanup(func() { d.hall.cl.Disconnect(100); d.annex.cl.Disconnect(100) })
	var beat context.Context
	beat, d.quiet = context.WithCancel(ctx)
	go d.hall.heartbeat(beat)
	go d.annex.heartbeat(beat)
	return d
}

// walk takes both zones to their targets at once, one person per pace.
func (d *doors) walk(h, a int64, pace time.Duration) error {
	errs := make(chan error, 2)
	go func() { errs <- d.hall.walk(d.ctx, h, pace) }()
	go func() { errs <- d.annex.walk(d.ctx, a, pace) }()
	return cmpErrs(<-errs, <-errs)
}

func (d *doors) truth() map[string]int64 {
	return map[string]int64{"hall": d.hall.truth(), "annex": d.annex.truth()}
}

// checkpointPair waits until each instance's zones equal the devices' truth.
func checkpointPair(t *testing.T, what string, want map[string]int64, insts ...*haInstance) {
	t.Helper()
	for _, in := range insts {
		waitFor(t, 30*time.Second, fmt.Sprintf("%s: %s's zones %v equal the truth %v", what, in.name, in.zones(), want), func() bool {
			return matches(in.zones(), want)
		})
	}
}

// amLevels is what Alertmanager shows of the pair's level alerts (active ones: a resolved
// alert is not listed): zone → how many alerts carry that zone, and each one's labels.
func amLevels(t *testing.T, url string) (count map[string]int, labels map[string]map[string]string) {
	count, labels = map[string]int{}, map[string]map[string]string{}
	for _, a := range amAlerts(t, url) {
		if a.Labels["alertname"] != "crowdwatch_level" {
			continue
		}
		count[a.Labels["zone"]]++
		labels[a.Labels["zone"]] = a.Labels
	}
	return count, labels
}

// amShowsOnce checks that Alertmanager holds exactly one alert for each of zones, with the
// alert's own labels and nothing an instance or a term would add (which would split it).
func amShowsOnce(t *testing.T, url, when string, zones ...string) {
	t.Helper()
	var count map[string]int
	var labels map[string]map[string]string
	waitFor(t, 20*time.Second, fmt.Sprintf("%s: Alertmanager shows one alert for each of %v", when, zones), func() bool {
		count, labels = amLevels(t, url)
		if len(count) != len(zones) {
			return false
		}
		for _, z := range zones {
			if count[z] != 1 {
				return false
			}
		}
		return true
	})
	for _, z := range zones {
		want := map[string]string{"alertname": "crowdwatch_level", "kind": "level", "site": "ha-site", "severity": "warning", "zone": z}
		if !maps.Equal(labels[z], want) {
			t.Errorf("%s: Alertmanager's %s alert has labels %v, want %v", when, z, labels[z], want)
		}
	}
}
