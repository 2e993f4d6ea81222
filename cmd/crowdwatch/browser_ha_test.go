package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// pairBrowserStore is one instance of a pair the browser test drives; $INST is its name,
// $DIR its own data folder, $LISTEN its fixed address (the peers name both beforehand).
var pairBrowserStore = `
site: {id: pair-site, name: {en: "Pair test store", zh: 双机测试店}, timezone: UTC}
http: {listen: "$LISTEN"}
storage: {path: $DIR/cw.db}
mqtt: {broker: "tcp://$BROKER", client_id: crowdwatch-pair-browser}
occupancy: {daily_reset: "off"}
ha: {enabled: true, instance: $INST, endpoints: ["$ETCD"], failover: 3s, prefix: /pairbrowser, peers: [$PEERS]}
zones:
  - {id: hall, name: {en: Hall, zh: 大厅}, capacity: 100}
  - {id: annex, name: {en: Annex, zh: 附楼}, capacity: 100}
doors:
  - {id: hall-door, from: outside, to: hall, counter: {device: dc-01}}
  - {id: annex-door, from: outside, to: annex, counter: {device: dc-02}}
` + groundFloor("hall", "annex", 600) + `screens:
  - id: hall-door
    zone: hall
    languages: [zh, en]
    alternatives: [{zone: annex, arrow: right, label: {en: "the annex", zh: "附楼"}}]
    exit: {arrow: left, label: {en: "the main door", zh: "正门"}}
auth:
  users:
    - {username: guard, password_hash: "$HASH", role: security}
  tokens:
    - {name: officer, sha256: "$SUM", role: security}
    - {name: hall-screen, sha256: "$SCREEN", role: display, screen: hall-door}
`

// pairCounter is the hall's door counter: it walks the occupancy to a target and reports
// its totals every second besides, at QoS 1 on the shared broker, as firmware does.
type pairCounter struct {
	cl      paho.Client
	mu      sync.Mutex
	seq     int
	in, out uint64
}

func (c *pairCounter) send(ctx context.Context) error {
	c.seq++
	payload, _ := json.Marshal(map[string]any{"boot": "dc-01-boot", "seq": c.seq, "in": c.in, "out": c.out,
		"ts": time.Now().UTC().Format(time.RFC3339Nano)})
	return device.PublishAcked(ctx, c.cl, "crowdwatch/pair-site/counter/dc-01", payload)
}

func (c *pairCounter) walk(ctx context.Context, target int64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for int64(c.in)-int64(c.out) != target {
		if target > int64(c.in)-int64(c.out) {
			c.in++
		} else {
			c.out++
		}
		if err := c.send(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (c *pairCounter) heartbeat(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
		c.mu.Lock()
		_ = c.send(ctx)
		c.mu.Unlock()
	}
}

// pairMember is one instance of the pair (its own type: the failover test's may change).
type pairMember struct {
	name, cfg string
	svc       *service
}

func (m *pairMember) start(t *testing.T) {
	m.svc = startService(t, "serve", "--config", m.cfg)
	waitReady(t, m.svc)
}

func (m *pairMember) role() string {
	var v struct {
		Role string `json:"role"`
	}
	_ = json.Unmarshal([]byte(m.svc.get("/api/v1/ha")), &v)
	return v.Role
}

func (m *pairMember) hall() int64 {
	var z struct {
		Occupancy int64 `json:"occupancy"`
	}
	_ = json.Unmarshal([]byte(m.svc.get("/api/v1/zones/hall")), &z)
	return z.Occupancy
}

// evalNow runs js in a tab within a second.
func evalNow(tab context.Context, js string) (string, error) {
	c, cancel := context.WithTimeout(tab, time.Second)
	defer cancel()
	return chromedp.Run(c, chromedp.Evaluate[string](js))
}

// pickLanguage switches a dashboard to lang with its language button, clicked in the page's
// own script (a page whose server is gone keeps redrawing its header).
func pickLanguage(t *testing.T, tab context.Context, lang string) {
	t.Helper()
	step(t, tab, "switch to "+lang, chromedp.Poll[chromedp.Void](fmt.Sprintf(
		`document.documentElement.lang.startsWith(%q) || (document.querySelector("#lang").click(), false)`, lang)))
}

// screenSample is what the screen showed at one moment, as the page itself reports it
// (signage.js sets these on the body at every drawing) and when the test read it.
type screenSample struct {
	at         time.Time
	Origin     string `json:"origin"`
	State      string `json:"state"`
	Conn       string `json:"conn"`
	Fresh      string `json:"fresh"`
	Received   int64  `json:"received"`
	StaleAfter int64  `json:"staleAfter"`
	Now        int64  `json:"now"`
	err        error
}

const sampleJS = `JSON.stringify({origin: location.origin, state: document.body.dataset.state || "", conn: document.body.dataset.conn || "",
  fresh: document.body.dataset.fresh || "", received: Number(document.body.dataset.received || 0),
  staleAfter: Number(document.body.dataset.staleAfter || 0), now: Date.now()})`

// sampleScreen reads the screen every 100 ms until stop is closed (at most 90 s).
func sampleScreen(tab context.Context, stop <-chan struct{}) []screenSample {
	var out []screenSample
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); {
		select {
		case <-stop:
			return out
		case <-time.After(100 * time.Millisecond):
		}
		s, err := evalNow(tab, sampleJS)
		smp := screenSample{at: time.Now(), err: err}
		if err == nil {
			_ = json.Unmarshal([]byte(s), &smp)
		}
		out = append(out, smp) // a failed read is a page between two addresses
	}
	return out
}

// green is what a screen shows when people may come: welcome, a metered door's enter, and
// the green of exit guidance.
func green(state string) bool { return state == "welcome" || state == "enter" || state == "evacuate" }

// TestBrowserHAScreenAndDashboardMove runs a pair of real binaries (shared mosquitto, real
// etcd, ha.peers naming both) and a real Chromium with a guidance screen and the security
// dashboard on the leader, a. The hall is at 30 % (the screen green); a is SIGKILLed and the
// crowd pushes the hall to 75 % meanwhile. The screen, sampled every 100 ms through the
// takeover, is never green while its data is stale or missing (nor after its feed was lost),
// moves to b by itself and shows b's figure (busy); the dashboard moves to b too, still
// signed in (the session came to b through the action log) and in the language it was in,
// showing the exact occupancy. A screen and a dashboard whose URL names only a stay neutral
// and stale: the pictures of the move.
func TestBrowserHAScreenAndDashboardMove(t *testing.T) {
	e := testkit.Etcd(t)
	mq := startMosquitto(t)
	// chromedp's session on a page holds through the page's own navigations and a dead
	// server only on a browser's first tab: each page has a browser of its own.
	screen, dash, strandedDash, stranded := browser(t), browser(t), browser(t), browser(t)
	sec := newGuardSecrets(t)
	hash, screenTok, screenSum := sec.hash, sec.token, sec.sum
	addr := map[string]string{"a": freePort(t), "b": freePort(t)}
	origin := map[string]string{"a": "http://" + addr["a"], "b": "http://" + addr["b"]}
	inst := map[string]*pairMember{}
	base := t.TempDir()
	for _, name := range []string{"a", "b"} {
		dir := filepath.Join(base, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		yaml := pairBrowserStore
		for k, v := range map[string]string{"$INST": name, "$LISTEN": addr[name], "$BROKER": mq.addr, "$ETCD": e.Endpoint,
			"$PEERS": fmt.Sprintf("%q, %q", origin["a"], origin["b"]), "$HASH": hash, "$SUM": tokenSum(securityToken),
			"$SCREEN": screenSum, "$DIR": dir} {
			yaml = strings.ReplaceAll(yaml, k, v)
		}
		inst[name] = &pairMember{name: name, cfg: writeConfig(t, dir, yaml)}
	}
	inst["a"].start(t)
	waitFor(t, 20*time.Second, "a leads", func() bool { return inst["a"].role() == "leader" })
	inst["b"].start(t)
	waitFor(t, 20*time.Second, "b stands by", func() bool { return inst["b"].role() == "standby" })

	dctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	counter := &pairCounter{cl: paho.NewClient(device.Options("tcp://"+mq.addr, "dc-01"))}
	defer counter.cl.Disconnect(100)
	if err := counter.walk(dctx, 30); err != nil {
		t.Fatal(err)
	}
	go counter.heartbeat(dctx)
	for _, in := range inst {
		waitFor(t, 20*time.Second, in.name+" counts 30 in the hall", func() bool { return in.hall() == 30 })
	}

	// The dashboard, signed in on a, in Chinese.
	signIn(t, dash, origin["a"]+"/dashboard", "guard", "guard-password", `#zones tr[data-zone="hall"][data-occupancy="30"]`)
	pickLanguage(t, dash, "zh")
	step(t, dash, "the dashboard is live on a", chromedp.WaitVisible(`#conn[data-state="live"]`),
		chromedp.Poll[chromedp.Void](`document.querySelector("#instance").dataset.role === "leader"`))
	// The screen on a, its URL naming both addresses.
	peers := url.QueryEscape(origin["a"] + "," + origin["b"])
	step(t, screen, "the screen on a, pointed at both", chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(origin["a"]+"/signage/hall-door?token="+screenTok+"&peers="+peers), chromedp.WaitVisible(`body[data-state="welcome"]`))
	// The same dashboard and screen pointed at a alone: they have nowhere to go.
	signIn(t, strandedDash, origin["a"]+"/dashboard?peers="+url.QueryEscape(origin["a"]), "guard", "guard-password", `#conn[data-state="live"]`)
	step(t, strandedDash, "the stranded dashboard stays on a", chromedp.Navigate(origin["a"]+"/dashboard?peers="+url.QueryEscape(origin["a"])),
		chromedp.WaitVisible(`#conn[data-state="live"]`))
	step(t, stranded, "a screen pointed at a only", chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(origin["a"]+"/signage/hall-door?token="+screenTok+"&peers="+url.QueryEscape(origin["a"])), chromedp.WaitVisible(`body[data-state="welcome"]`))

	stop := make(chan struct{})
	sampled := make(chan []screenSample, 1)
	go func() { sampled <- sampleScreen(screen, stop) }()
	time.Sleep(time.Second) // samples from before the kill: green on live data

	killed := time.Now()
	inst["a"].svc.kill()
	if err := counter.walk(dctx, 75); err != nil { // the crowd comes while the screen moves
		t.Fatal(err)
	}
	var last string
	for deadline := time.Now().Add(40 * time.Second); last != origin["b"]+" busy"; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the screen did not move to b and show busy within 40 s: %q\npage: %s", last, pageState(screen))
		}
		last, _ = evalNow(screen, `location.origin + " " + document.body.dataset.state`)
	}
	moved := time.Now()
	time.Sleep(time.Second) // samples after the move
	close(stop)
	samples := <-sampled

	// The screen: never green on stale or missing data, through the whole takeover.
	var onA, onB, between, neutral int
	lost := false // the page on a has noticed its feed is gone
	bad := 0
	wrong := func(format string, args ...any) { // the first few, and how many
		if bad++; bad <= 5 {
			t.Errorf(format, args...)
		}
	}
	for _, s := range samples {
		if s.err != nil {
			between++
			continue
		}
		// The page draws every 500 ms: what it shows may be that much behind its data's age.
		live := s.Fresh == "true" && s.Conn == "live" && s.Received > 0 && s.Now-s.Received <= s.StaleAfter+600
		if s.Fresh != "true" && s.State != "neutral" {
			wrong("at %v the screen showed %s without fresh data (%+v)", s.at.Sub(killed).Round(time.Millisecond), s.State, s)
		}
		if green(s.State) && !live {
			wrong("at %v the screen showed green on stale or missing data (%+v)", s.at.Sub(killed).Round(time.Millisecond), s)
		}
		switch s.Origin {
		case origin["a"]:
			onA++
			if s.at.After(killed) && s.Conn != "live" {
				lost = true
			}
			if green(s.State) && (lost || s.at.Sub(killed) > time.Duration(s.StaleAfter)*time.Millisecond) {
				wrong("at %v the screen on the dead instance still showed green (%+v)", s.at.Sub(killed).Round(time.Millisecond), s)
			}
		case origin["b"]:
			onB++
		}
		if s.State == "neutral" {
			neutral++
		}
	}
	if bad > 5 {
		t.Errorf("... %d wrong samples in all", bad)
	}
	t.Logf("screen: %d samples (%d on a, %d on b, %d between pages, %d neutral); moved %v after the kill",
		len(samples), onA, onB, between, neutral, moved.Sub(killed).Round(100*time.Millisecond))
	if onA == 0 || onB == 0 || neutral == 0 {
		t.Errorf("the samples do not cover the move: %d on a, %d on b, %d neutral", onA, onB, neutral)
	}

	// The dashboard: on b, still signed in, in Chinese, with b's exact figure.
	for deadline := time.Now().Add(40 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		s, _ := evalNow(dash, `location.origin + location.pathname + " " + !!document.querySelector('#zones tr[data-zone="hall"][data-occupancy="75"]')`)
		if s == origin["b"]+"/dashboard true" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard did not move to b's dashboard (signed in) with the hall at 75 within 40 s: %q", s)
		}
	}
	step(t, dash, "the dashboard on b: live, signed in, in Chinese",
		chromedp.WaitVisible(`#conn[data-state="live"]`),
		chromedp.Poll[chromedp.Void](`location.pathname === "/dashboard" && document.querySelector("#user").textContent === "guard (security)" && !document.querySelector("#signout").hidden`),
		chromedp.Poll[chromedp.Void](`document.documentElement.lang === "zh-CN" && document.querySelector("#instance").textContent.includes("b")`),
	)
	// The stranded pair of pages: neutral and stale, never green.
	step(t, stranded, "the screen with nowhere to go is neutral", chromedp.WaitVisible(`body[data-state="neutral"]`))

	docShots(t, stranded, "signage-ha-moving", "zh-en", `body[data-state="neutral"]`)
	docShots(t, screen, "signage-ha-moved", "zh-en", `body[data-state="busy"]`)
	step(t, strandedDash, "the dashboard with nowhere to go says so", chromedp.WaitVisible(`body.stale #conn[data-state="reconnecting"]`),
		chromedp.WaitVisible(`#instance[data-role="gone"]`))
	for _, l := range []string{"zh", "en"} {
		pickLanguage(t, strandedDash, l)
		docShots(t, strandedDash, "dashboard-ha-moving", l, `#conn[data-state="reconnecting"]`)
	}
	for _, l := range []string{"zh", "en"} {
		pickLanguage(t, dash, l)
		docShots(t, dash, "dashboard-ha-moved", l, `#zones tr[data-zone="hall"][data-occupancy="75"]`)
	}
}
