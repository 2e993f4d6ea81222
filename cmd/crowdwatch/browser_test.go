package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/crowdwatch/crowdwatch/web/auth"
)

// The browser tests drive the real binary through a real headless Chromium (Debian's
// chromium package, installed by make deps). They save screenshots under
// artifacts/screenshots/ (or $CROWDWATCH_SCREENSHOTS) for CI to keep.

var browserStore = `
site: {id: web-store, name: {en: "Browser test store", zh: 浏览器测试店}, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
zones:
  - {id: store, name: {en: Store, zh: 全店}, capacity: 200}
  - {id: entrance, name: {en: Entrance, zh: 入口}, parent: store, capacity: 10}
  - {id: hall, name: {en: Hall, zh: 大厅}, parent: store, capacity: 100}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
  - {id: arch, from: entrance, to: hall, counter: {device: dc-02}}
` + groundFloor("entrance", "hall", 320) + `screens:
  - id: door
    zone: entrance
    languages: [zh, en]
    alternatives: [{zone: hall, arrow: right, label: {en: "the hall", zh: "大厅"}}]
    exit: {arrow: left, label: {en: "the main door", zh: "正门"}}
auth:
  users:
    - {username: guard, password_hash: "%s", role: security}
  tokens:
    - {name: door-screen, sha256: "%s", role: display, screen: door}
`

// groundFloor is the floor plan of the browser tests' stores: one floor of 1000 by 600,
// left of x the left zone, right of x+20 the right one (the map every picture shows).
func groundFloor(left, right string, x int) string {
	return fmt.Sprintf(`floors:
  - id: ground
    name: {en: Ground floor, zh: 一楼}
    width: 1000
    height: 600
    zones:
      - {zone: %[1]s, polygon: [[20, 20], [%[3]d, 20], [%[3]d, 580], [20, 580]]}
      - {zone: %[2]s, polygon: [[%[4]d, 20], [980, 20], [980, 580], [%[4]d, 580]]}
`, left, right, x, x+20)
}

func screenshotDir(t *testing.T) string {
	dir := os.Getenv("CROWDWATCH_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "artifacts", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser starts a headless Chromium; tabs are made from the returned context.
func browser(t *testing.T) context.Context {
	t.Helper()
	path := need(t, "chromium", "chromium")
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1366, 768), chromedp.Flag("lang", "en-US"))
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting chromium (%s): %v", path, err)
	}
	// The page's console errors and uncaught exceptions go to the test's log, which is
	// shown when the test fails: a page that never becomes ready says why.
	var mu sync.Mutex
	ended := false
	t.Cleanup(func() { mu.Lock(); ended = true; mu.Unlock() })
	console := chromedp.Console(ctx)
	go func() {
		for m, err := range console {
			if err != nil {
				return
			}
			if m.Type != chromedp.ConsoleError && m.Type != chromedp.ConsoleException && m.Type != chromedp.ConsoleWarning {
				continue
			}
			mu.Lock()
			if !ended {
				t.Logf("browser console: %s", m)
			}
			mu.Unlock()
		}
	}()
	return ctx
}

// newTab opens another tab in ctx's browser, for the test's whole length.
func newTab(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	tab, cancel := chromedp.NewContext(ctx)
	t.Cleanup(cancel)
	if err := chromedp.Do(tab); err != nil { // opens the tab
		t.Fatal(err)
	}
	return tab
}

// guardSecrets are what a browser store's auth section holds: the hash of the guard's
// password, guard-password, and a display token for a screen with its sum.
type guardSecrets struct{ hash, token, sum string }

func newGuardSecrets(t *testing.T) guardSecrets {
	t.Helper()
	hash, err := auth.HashPassword("guard-password")
	if err != nil {
		t.Fatal(err)
	}
	token, sum, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	return guardSecrets{hash: hash, token: token, sum: sum}
}

// serveBrowserStore runs the binary on browserStore with new secrets.
func serveBrowserStore(t *testing.T) (*service, guardSecrets) {
	t.Helper()
	sec := newGuardSecrets(t)
	return startService(t, "serve", "--config", writeConfig(t, t.TempDir(), fmt.Sprintf(browserStore, sec.hash, sec.sum))), sec
}

// step runs browser actions with a time limit and fails the test with what was being done.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v\npage: %s", what, err, pageState(ctx))
	}
}

// pageState describes the page for a failure message.
func pageState(tab context.Context) string {
	c, cancel := context.WithTimeout(context.WithoutCancel(tab), 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(c, chromedp.Evaluate[string](`location.href + " state=" + (document.body.dataset.state || "") + " conn=" + ((document.querySelector("#conn") || {}).dataset || {}).state + "\n" + document.body.innerText.slice(0, 400)`))
	if err != nil {
		return "(cannot read the page: " + err.Error() + ")"
	}
	return s
}

func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(screenshotDir(t), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %s", path)
}

// sizes are the viewports every page is photographed at: a laptop and a 10-inch tablet.
var sizes = []struct {
	name          string
	width, height int64
}{{"laptop", 1366, 768}, {"tablet", 1024, 768}}

// shots saves name-LANG-SIZE.png of the page in its current language at each size, once
// ready (a CSS selector) is visible after the reflow; the page is left at laptop size.
func shots(t *testing.T, ctx context.Context, name, ready string) {
	t.Helper()
	lang, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang.slice(0, 2)`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(name, "signage") {
		lang = "zh-en" // a screen shows both at once
	}
	for _, sz := range sizes {
		step(t, ctx, "resize to "+sz.name, chromedp.EmulateViewport(sz.width, sz.height), chromedp.WaitVisible(ready),
			chromedp.Evaluate[chromedp.Void](`new Promise((r) => requestAnimationFrame(() => setTimeout(r, 300)))`, chromedp.EvalAwaitPromise))
		shot(t, ctx, fmt.Sprintf("%s-%s-%s.png", name, lang, sz.name))
	}
	step(t, ctx, "back to laptop size", chromedp.EmulateViewport(sizes[0].width, sizes[0].height))
}

// setLanguage switches a dashboard or manager page to lang with its language button.
func setLanguage(t *testing.T, ctx context.Context, lang string) {
	t.Helper()
	cur, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.lang.slice(0, 2)`))
	if err != nil {
		t.Fatal(err)
	}
	if cur != lang {
		step(t, ctx, "switch to "+lang, chromedp.Click("#lang"),
			chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.documentElement.lang.startsWith(%q)`, lang)))
	}
}

// bothLanguages photographs a page in English and in Chinese at both sizes.
func bothLanguages(t *testing.T, ctx context.Context, name, ready string) {
	t.Helper()
	for _, l := range []string{"en", "zh"} {
		setLanguage(t, ctx, l)
		shots(t, ctx, name, ready)
	}
	setLanguage(t, ctx, "en")
}

func TestBrowserDashboardAndScreen(t *testing.T) {
	ctx := browser(t)
	svc, sec := serveBrowserStore(t)
	base := "http://" + svc.HTTP
	topic := "crowdwatch/web-store/counter/dc-01"
	seq := 0
	enter := func(total uint64) {
		seq++
		mosquittoPub(t, svc.MQTT, topic, report("b1", seq, total, 0))
	}

	// Sign in: the dashboard sends an unsigned-in browser to the sign-in page.
	step(t, ctx, "sign in",
		chromedp.Navigate(base+"/dashboard"),
		chromedp.WaitVisible(`body[data-ready="true"] #username`),
		chromedp.SendKeys("#username", "guard"),
		chromedp.SendKeys("#password", "guard-password"),
		chromedp.Click("#submit"),
		// Connected, but no count has arrived yet: the figures are not called live.
		chromedp.WaitVisible(`#conn[data-state="stale"]`),
		chromedp.WaitVisible(`#zones tr[data-zone="entrance"][data-occupancy="0"]`),
		// Audio stays locked until the page is clicked, and the button says so.
		chromedp.WaitVisible(`#sound[data-sound="locked"]`),
		chromedp.Click(`#zones`),
		chromedp.WaitVisible(`#sound[data-sound="on"]`),
	)

	// A screen on a second tab, with its display token in the URL.
	sign := newTab(t, ctx)
	step(t, sign, "open the guidance screen",
		chromedp.EmulateViewport(1280, 720),
		chromedp.Navigate(base+"/signage/door?token="+sec.token),
		chromedp.WaitVisible(`body[data-state="welcome"]`),
	)

	// Three people come in through the main door (mosquitto_pub to the service's broker):
	// the dashboard's count changes, on the map and in the table; the screen stays green.
	enter(3)
	step(t, ctx, "dashboard shows 3 in the entrance, live",
		chromedp.WaitVisible(`#conn[data-state="live"]`),
		chromedp.WaitVisible(`#zones tr[data-zone="entrance"][data-occupancy="3"]`),
		chromedp.WaitVisible(`#map g.zone[data-zone="entrance"][data-occupancy="3"][data-level="normal"]`),
	)
	step(t, sign, "screen stays welcome at 30%", chromedp.WaitVisible(`body[data-state="welcome"]`))
	shot(t, sign, "signage-welcome.png")

	// 7 of 10: busy, pointing to the hall.
	enter(7)
	step(t, sign, "screen turns busy at 70%", chromedp.WaitVisible(`body[data-state="busy"]`),
		chromedp.WaitVisible(`#pict svg.arrow`))
	shot(t, sign, "signage-busy.png")

	// 10 of 10: full, with a red X, at once (escalation is never held).
	enter(10)
	step(t, sign, "screen turns full at 100%", chromedp.WaitVisible(`body[data-state="full"]`),
		chromedp.WaitVisible(`#cross svg`))
	shot(t, sign, "signage-full.png")
	step(t, ctx, "dashboard shows the entrance critical",
		chromedp.WaitVisible(`#map g.zone[data-zone="entrance"][data-occupancy="10"][data-level="critical"]`))
	enter(10) // a fresh count, so "data N s old" is young in the pictures
	shots(t, ctx, "dashboard", "#map svg")
	shots(t, sign, "signage-door-full", "#cross svg")

	// In Chinese the store's own names are Chinese too: zones on the map and in the table,
	// the floor and the site.
	setLanguage(t, ctx, "zh")
	step(t, ctx, "zone, floor and site names in Chinese",
		chromedp.Poll[chromedp.Void](`document.querySelector('#map g.zone[data-zone="entrance"] tspan').textContent === "入口" &&
			document.querySelector('#zones tr[data-zone="hall"] td').textContent.trim() === "大厅" &&
			document.querySelector('#site').textContent === "浏览器测试店" &&
			document.querySelector('#alerts-panel h2 [data-i18n]').textContent === "警报"`))
	setLanguage(t, ctx, "en")
	step(t, ctx, "back in English", chromedp.Poll[chromedp.Void](`document.querySelector('#map g.zone[data-zone="entrance"] tspan').textContent === "Entrance"`))

	// A head count through the correction form, behind a confirmation.
	step(t, ctx, "correct the hall",
		chromedp.SetValue("#corr-zone", "hall"),
		chromedp.SendKeys("#corr-occupancy", "42"),
		chromedp.SendKeys("#corr-reason", "head count"),
		chromedp.Click(`#corr-form button[type="submit"]`),
		chromedp.WaitVisible("#confirm[open]"),
		chromedp.Click("#confirm-ok"),
		chromedp.WaitVisible(`#zones tr[data-zone="hall"][data-occupancy="42"]`),
	)
	if !regexp.MustCompile(`msg="http: action" .*who=guard method=POST path=/api/v1/zones/hall/correction status=200`).MatchString(svc.logs.String()) {
		t.Errorf("the correction is not logged with the user:\n%s", svc.logs)
	}

	// The entrance is full (critical) here, so alerting raises a critical alert after its
	// 15 s hold-down.
	t.Run("acknowledge", func(t *testing.T) {
		step(t, ctx, "a critical alert for the entrance appears and is acknowledged",
			chromedp.WaitVisible(`#alerts li.card.sev-critical [data-alert^="level:entrance"] button.ack`),
			clickNow(`#alerts li.card.sev-critical [data-alert^="level:entrance"] button.ack`),
			chromedp.WaitVisible("#confirm[open] #confirm-note"),
			chromedp.SendKeys("#confirm-note", "on my way"),
			chromedp.Click("#confirm-ok"),
			chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#alerts [data-alert^="level:entrance"] .meta')].some(e => e.textContent.includes("guard"))`),
		)
		enter(10)
		bothLanguages(t, ctx, "dashboard-alert", "#alerts li.card")
	})

	t.Run("evacuation", func(t *testing.T) {
		step(t, ctx, "declare an evacuation of the entrance",
			chromedp.SetValue("#evac-zone", "entrance"),
			chromedp.SendKeys("#evac-reason", "drill"),
			chromedp.Click(`#evac-form button[type="submit"]`),
			chromedp.WaitVisible("#confirm[open]"),
			chromedp.Click("#confirm-ok"),
			chromedp.WaitVisible(`#evacuations li.evac[data-zone="entrance"]`),
		)
		step(t, sign, "screen shows exit guidance", chromedp.WaitVisible(`body[data-state="evacuate"]`))
		shots(t, sign, "signage-door-evacuate", `body[data-state="evacuate"]`)
		step(t, sign, "exit guidance in Chinese without stray spaces around the name",
			chromedp.Poll[chromedp.Void](`document.querySelector('#texts .lang[lang="zh-CN"] .detail').textContent === "请从正门离开"`))
		step(t, ctx, "stand down",
			clickNow(`#evacuations li.evac[data-zone="entrance"] button.standdown`),
			chromedp.WaitVisible("#confirm[open]"),
			chromedp.Click("#confirm-ok"),
			chromedp.WaitNotPresent(`#evacuations li.evac[data-zone="entrance"]`),
		)
	})

	// The service stops: the screen must not keep its last state.
	svc.stop()
	step(t, sign, "screen turns neutral when the service is gone", chromedp.WaitVisible(`body[data-state="neutral"]`))
	shot(t, sign, "signage-neutral.png")
	step(t, ctx, "dashboard says the connection is lost", chromedp.WaitVisible(`#conn[data-state="reconnecting"]`))
}

const managerStore = `
site: {id: mgr-store, name: {en: "Manager test store", zh: 经理测试店}, timezone: %s}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
history: {sample_interval: 200ms, flush_interval: 300ms}
zones:
  - {id: store, name: {en: Store, zh: 全店}, capacity: 200}
  - {id: entrance, name: {en: Entrance, zh: 入口}, parent: store, capacity: 10}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
alerting:
  defaults: {warning_for: 1s, critical_for: 1s}
auth:
  users:
    - {username: boss, password_hash: "%s", role: manager}
`

// The manager page's store and its browser are 25 hours apart (UTC+14 and UTC-11), so their
// dates differ at every hour: a page that opened on the browser's day instead of the store's
// is always caught, whatever the time the test runs.
const (
	managerStoreZone   = "Pacific/Kiritimati"
	managerBrowserZone = "Pacific/Pago_Pago"
)

// TestBrowserManagerPage signs a manager in (the browser a day away from the store) and checks that the page opens on the store's day with the day's alert count, the
// doors table and the entrance's chart, then downloads the CSV.
func TestBrowserManagerPage(t *testing.T) {
	ctx := browser(t)
	hash, err := auth.HashPassword("boss-password")
	if err != nil {
		t.Fatal(err)
	}
	zone := managerStoreZone
	loc, err := time.LoadLocation(zone)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svc := startService(t, "serve", "--config", writeConfig(t, dir, fmt.Sprintf(managerStore, zone, hash)))
	base := "http://" + svc.HTTP
	topic := "crowdwatch/mgr-store/counter/dc-01"
	// 12 in, 2 out: the entrance is at 10 of 10, critical; alerts fire after 1 s.
	mosquittoPub(t, svc.MQTT, topic, report("b1", 1, 3, 0))
	mosquittoPub(t, svc.MQTT, topic, report("b1", 2, 12, 2))

	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: managerBrowserZone}); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, base+"/manager", "boss", "boss-password", `body.mgr[data-ready="true"]`)
	day := time.Now().In(loc).Format(time.DateOnly)
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#date").value`))
	if err != nil {
		t.Fatal(err)
	}
	if got != day {
		t.Fatalf("the manager page opened on %s, want the store's day %s (%s)", got, day, zone)
	}
	// The history is written every 300 ms and alerts fire after their 1 s hold-down: ask
	// again until the day shows the entrance's peak of 10 and at least one alert.
	step(t, ctx, "the chart and the report show the entrance's day",
		chromedp.Poll[chromedp.Void](`(() => {
			const row = document.querySelector('#report tr[data-zone="entrance"]');
			if (document.querySelector('#zone').value === "entrance" && row && row.dataset.peak === "10" &&
				Number(document.querySelector('#chart').dataset.points) > 0 &&
				Number(document.querySelector('#alerts-summary').dataset.fired) > 0) return true;
			document.querySelector('#load').click();
			return false;
		})()`, chromedp.WithPollingInterval(time.Second)),
		chromedp.WaitVisible(`#chart .uplot canvas`),
		chromedp.WaitVisible(`#doors tr[data-door="main-door"]`),
	)
	// The alert count is the report's, as the API gives it for the store's day.
	var rep struct {
		Alerts struct {
			Fired int `json:"fired"`
		} `json:"alerts"`
		Doors []struct {
			Door string `json:"door"`
			In   int64  `json:"in"`
		} `json:"doors"`
	}
	page, err := chromedp.Run(ctx, chromedp.Evaluate[string](`fetch("/api/v1/reports/daily?date=`+day+`").then((r) => r.text())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(page), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, page)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#alerts-summary").textContent.split(" ")[0] + " " + document.querySelector('#doors tr[data-door="main-door"] td:nth-child(4)').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d %d", rep.Alerts.Fired, rep.Doors[0].In); rep.Alerts.Fired == 0 || shown != want {
		t.Errorf("the page says %q (alerts this day, main-door entries), the report %q", shown, want)
	}
	shown, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("#alert-list tbody tr td:nth-child(2)").textContent`))
	if err != nil || shown != "Entrance" {
		t.Errorf("the alert list's zone %q (%v), want Entrance", shown, err)
	}
	bothLanguages(t, ctx, "manager", "#chart .uplot canvas")
	setLanguage(t, ctx, "zh")
	step(t, ctx, "the report in Chinese names the zone in Chinese",
		chromedp.Poll[chromedp.Void](`document.querySelector('#report tr[data-zone="entrance"] td').textContent === "入口" &&
			document.querySelector("#site").textContent === "经理测试店"`))
	setLanguage(t, ctx, "en")

	downloads := filepath.Join(dir, "downloads")
	progress := chromedp.Events(ctx, cdpbrowser.DownloadProgress)
	step(t, ctx, "download the CSV",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			_, err := chromedp.Call(ctx, cdpbrowser.SetDownloadBehavior, cdpbrowser.SetDownloadBehaviorParams{
				Behavior: cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: downloads, EventsEnabled: ptrTo(true)})
			return err
		}),
		chromedp.Click("#csv"),
	)
	var file string
	for ev, err := range progress {
		if err != nil {
			t.Fatal(err)
		}
		if ev.State == cdpbrowser.DownloadProgressStateCompleted {
			file = filepath.Join(downloads, ev.GUID)
			break
		}
		if ev.State == cdpbrowser.DownloadProgressStateCanceled {
			t.Fatal("the CSV download was cancelled")
		}
	}
	csv, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(csv), "\nentrance,") || strings.Contains(string(csv), "\nstore,") {
		t.Fatalf("downloaded CSV:\n%s", csv)
	}
}

func ptrTo[T any](v T) *T { return &v }

// clickNow clicks an element in the page's own script: the alert list is redrawn when the
// feed says something changed, so a node found one moment may be replaced the next.
func clickNow(selector string) chromedp.Action[chromedp.Void] {
	return chromedp.Poll[chromedp.Void](fmt.Sprintf(`(() => { const e = document.querySelector(%q); if (!e || e.disabled) return false; e.click(); return true; })()`, selector))
}

// signIn signs a user in through the sign-in page the dashboard or manager page sends to.
func signIn(t *testing.T, ctx context.Context, url, user, password, ready string) {
	t.Helper()
	step(t, ctx, "sign in as "+user,
		chromedp.Navigate(url),
		chromedp.WaitVisible(`body[data-ready="true"] #username`),
		chromedp.SendKeys("#username", user),
		chromedp.SendKeys("#password", password),
		chromedp.Click("#submit"),
		chromedp.WaitVisible(ready),
	)
}

// The guidance branch's contract: a zone's shown level escalates at once (the hold-down
// delays the alert, not the colour). The map records every state it draws the entrance in;
// the first drawing with the entrance over capacity must already be critical.
func TestBrowserOverCapacityCriticalAtOnce(t *testing.T) {
	ctx := browser(t)
	svc, _ := serveBrowserStore(t)
	signIn(t, ctx, "http://"+svc.HTTP+"/dashboard", "guard", "guard-password", `#map g.zone[data-zone="entrance"][data-occupancy="0"]`)
	step(t, ctx, "record every drawing of the entrance",
		chromedp.Evaluate[chromedp.Void](`window.seen = [];
			new MutationObserver(() => {
				const g = document.querySelector('#map g.zone[data-zone="entrance"]');
				if (g) window.seen.push([Number(g.dataset.occupancy), g.dataset.level]);
			}).observe(document.getElementById("map"), { childList: true, subtree: true });`))
	mosquittoPub(t, svc.MQTT, "crowdwatch/web-store/counter/dc-01", report("b1", 1, 12, 0))
	step(t, ctx, "the map shows 12 of 10", chromedp.WaitVisible(`#map g.zone[data-zone="entrance"][data-occupancy="12"]`))
	first, err := chromedp.Run(ctx, chromedp.Evaluate[[]any](`window.seen.find((s) => s[0] >= 10) || []`))
	if err != nil {
		t.Fatal(err)
	}
	if len(first) != 2 || first[1] != "critical" {
		t.Fatalf("the first drawing of the entrance over capacity is %v, want critical in the same feed update", first)
	}
	// Its critical alert waits out a 15 s hold-down before anyone is paged; meanwhile the map
	// and the table say that an alert is pending.
	step(t, ctx, "the map and the table say an alert is pending",
		chromedp.WaitVisible(`#map g.zone[data-zone="entrance"][data-pending="critical"]`),
		chromedp.WaitVisible(`#zones tr[data-zone="entrance"] .pending[data-pending="critical"]`))
	shots(t, ctx, "dashboard-over-capacity", "#map svg")
}

const parentStore = `
site: {id: parent-store, name: "Parent test store", timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
zones:
  - {id: store, name: Store, capacity: 20}
  - {id: entrance, name: Entrance, parent: store, capacity: 100}
  - {id: hall, name: Hall, parent: store, capacity: 100}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
  - {id: side-door, from: outside, to: hall, counter: {device: dc-02}}
screens:
  - id: door
    zone: entrance
    languages: [zh, en]
auth:
  tokens:
    - {name: door-screen, sha256: "%s", role: display, screen: door}
`

// An entrance screen turns full when the zone it leads into fills: its own zone is empty,
// but whoever passes it enters the store, which is over capacity (the guidance branch
// judges screens over the zone hierarchy).
func TestBrowserEntranceFullWhenParentFills(t *testing.T) {
	ctx := browser(t)
	token, sum, _ := auth.NewToken()
	dir := t.TempDir()
	svc := startService(t, "serve", "--config", writeConfig(t, dir, fmt.Sprintf(parentStore, sum)))
	step(t, ctx, "the entrance screen welcomes",
		chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate("http://"+svc.HTTP+"/signage/door?token="+token),
		chromedp.WaitVisible(`body[data-state="welcome"]`))
	// 22 people come in by the side door, into the hall: the store (capacity 20) is full.
	mosquittoPub(t, svc.MQTT, "crowdwatch/parent-store/counter/dc-02", report("b1", 1, 22, 0))
	step(t, ctx, "the entrance screen says full", chromedp.WaitVisible(`body[data-state="full"]`))
	shots(t, ctx, "signage-parent-full", `body[data-state="full"]`)
}

var demoScreen = regexp.MustCompile(`screen (\S+)\s+(http://\S+)`)

// TestBrowserDemoPeak runs `crowdwatch demo` (the door-buster morning) and photographs the
// dashboard, both guidance screens and the manager page at the morning's peak, in both
// languages at both sizes. With CROWDWATCH_UPDATE_DOC_IMAGES=1 it also writes the
// README's pictures (docs/img), so they always show the current product.
func TestBrowserDemoPeak(t *testing.T) {
	ctx := browser(t)
	readme := os.Getenv("CROWDWATCH_UPDATE_DOC_IMAGES") == "1"
	// The demo's own pace: faster, the entrance's peak is over before its critical alert's
	// 15 s hold-down has passed.
	dir := t.TempDir()
	demo := startDemo(t, dir, "--speed", "10")
	password := demoPassword.FindStringSubmatch(demo.logs.String())[1]
	screens := map[string]string{}
	for _, m := range demoScreen.FindAllStringSubmatch(demo.logs.String(), -1) {
		screens[m[1]] = m[2]
	}
	if screens["main-door"] == "" || screens["escalator"] == "" {
		t.Fatalf("the demo printed no screen addresses:\n%s", demo.logs)
	}
	base := "http://" + demo.HTTP
	img := func(tab context.Context, name string, w, h int64) {
		if !readme {
			return
		}
		step(t, tab, "README picture "+name, chromedp.EmulateViewport(w, h),
			chromedp.Evaluate[chromedp.Void](`new Promise((r) => requestAnimationFrame(() => setTimeout(r, 300)))`, chromedp.EvalAwaitPromise))
		png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", name), png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("README picture docs/img/%s", name)
	}

	signIn(t, ctx, base+"/dashboard", "demo", password, `#conn[data-state="live"]`)
	// The peak: the entrance over capacity and its critical alert up (15 s hold-down).
	long, cancel := context.WithTimeout(ctx, 12*time.Minute)
	defer cancel()
	if _, err := chromedp.Run(long, chromedp.WaitVisible(`#map g.zone[data-zone="entrance"][data-level="critical"]`)); err != nil {
		t.Fatalf("the demo's entrance never went critical: %v\n%s", err, pageState(ctx))
	}
	if _, err := chromedp.Run(long, chromedp.WaitVisible(`#alerts li.card.sev-critical`)); err != nil {
		t.Fatalf("no critical alert at the demo's peak: %v\n%s", err, pageState(ctx))
	}
	// Every zone at or over capacity drawn critical (at once with the shown level escalating
	// immediately; otherwise after the hold-downs), bounded: the picture is taken anyway.
	settle, cancelSettle := context.WithTimeout(ctx, 100*time.Second)
	_ = chromedp.Do(settle, chromedp.Poll[chromedp.Void](`[...document.querySelectorAll("#zones tr[data-zone]")].every((r) =>
		!(r.cells[2].textContent.replace("%", "") >= 100) || r.querySelector(".badge").classList.contains("level-critical"))`,
		chromedp.WithPollingInterval(time.Second), chromedp.WithPollingTimeout(100*time.Second)))
	cancelSettle()
	bothLanguages(t, ctx, "demo-dashboard", "#map svg")
	img(ctx, "dashboard.png", 1366, 768)

	sign := newTab(t, ctx)
	step(t, sign, "the main door screen at the peak", chromedp.EmulateViewport(1280, 720), chromedp.Navigate(screens["main-door"]),
		chromedp.WaitVisible(`body[data-state="full"]`))
	shots(t, sign, "signage-demo-main-door", `body[data-state="full"]`)
	img(sign, "signage-main-door.png", 1280, 720)
	step(t, sign, "the escalator screen", chromedp.EmulateViewport(540, 960), chromedp.Navigate(screens["escalator"]),
		chromedp.WaitVisible(`body.portrait:not([data-state="neutral"])`))
	shots(t, sign, "signage-demo-escalator", `body.portrait`)
	img(sign, "signage-escalator.png", 540, 960)

	// The manager's view of the morning so far: the entrance's chart with the peak marked,
	// once the history (written every 15 s, a point per 5 s) holds a few minutes of it.
	points, wait := 8, 3*time.Minute
	if readme {
		// The README picture wants a few minutes of the morning on the chart.
		points, wait = 40, 6*time.Minute
	}
	if err := chromedp.Do(long, chromedp.Navigate(base+"/manager?zone=entrance&step=5s"), chromedp.WaitVisible(`body.mgr[data-ready="true"]`),
		chromedp.Poll[chromedp.Void](`(() => {
			if (Number(document.querySelector('#chart').dataset.points) > `+strconv.Itoa(points)+` && Number(document.querySelector('#alerts-summary').dataset.fired) > 0) return true;
			document.querySelector('#load').click();
			return false;
		})()`, chromedp.WithPollingInterval(5*time.Second), chromedp.WithPollingTimeout(wait))); err != nil {
		t.Fatalf("the manager page never showed the morning: %v\n%s", err, pageState(ctx))
	}
	bothLanguages(t, ctx, "demo-manager", "#chart .uplot canvas")
	img(ctx, "manager.png", 1366, 768)
	demo.stop()
}
