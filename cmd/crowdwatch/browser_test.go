package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/crowdwatch/crowdwatch/web/auth"
)

// The browser tests drive the real binary through a real headless Chromium (Debian's
// chromium package, installed by make deps). They save screenshots under
// artifacts/screenshots/ (or $CROWDWATCH_SCREENSHOTS) for CI to keep.

const browserStore = `
site: {id: web-store, name: "Browser test store", timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
zones:
  - {id: store, name: Store, capacity: 200}
  - {id: entrance, name: Entrance, parent: store, capacity: 10}
  - {id: hall, name: Hall, parent: store, capacity: 100}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
  - {id: arch, from: entrance, to: hall, counter: {device: dc-02}}
floors:
  - id: ground
    name: Ground floor
    width: 1000
    height: 600
    zones:
      - {zone: entrance, polygon: [[20, 20], [320, 20], [320, 580], [20, 580]]}
      - {zone: hall, polygon: [[340, 20], [980, 20], [980, 580], [340, 580]]}
screens:
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
	return ctx
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

func TestBrowserDashboardAndScreen(t *testing.T) {
	ctx := browser(t)
	hash, err := auth.HashPassword("guard-password")
	if err != nil {
		t.Fatal(err)
	}
	token, sum, err := auth.NewToken()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svc := startService(t, "serve", "--config", writeConfig(t, dir, fmt.Sprintf(browserStore, hash, sum)))
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
		chromedp.WaitVisible("#username"),
		chromedp.SendKeys("#username", "guard"),
		chromedp.SendKeys("#password", "guard-password"),
		chromedp.Click("#submit"),
		chromedp.WaitVisible(`#conn[data-state="live"]`),
		chromedp.WaitVisible(`#zones tr[data-zone="entrance"][data-occupancy="0"]`),
	)

	// A screen on a second tab, with its display token in the URL.
	sign, cancelSign := chromedp.NewContext(ctx)
	defer cancelSign()
	if err := chromedp.Do(sign); err != nil { // opens the tab, for the test's whole length
		t.Fatal(err)
	}
	step(t, sign, "open the guidance screen",
		chromedp.EmulateViewport(1280, 720),
		chromedp.Navigate(base+"/signage/door?token="+token),
		chromedp.WaitVisible(`body[data-state="welcome"]`),
	)

	// Three people come in through the main door (mosquitto_pub to the service's broker):
	// the dashboard's count changes, on the map and in the table; the screen stays green.
	enter(3)
	step(t, ctx, "dashboard shows 3 in the entrance",
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
	shot(t, ctx, "dashboard.png")

	// The same dashboard on a 10-inch tablet held upright.
	step(t, ctx, "tablet viewport", chromedp.EmulateViewport(800, 1280), chromedp.WaitVisible("#map svg"))
	shot(t, ctx, "dashboard-tablet.png")
	step(t, ctx, "laptop viewport", chromedp.EmulateViewport(1366, 768))

	// Chinese and back.
	step(t, ctx, "switch to Chinese", chromedp.Click("#lang"), chromedp.Poll[chromedp.Void](`document.querySelector("#alerts-panel h2").textContent === "警报"`))
	shot(t, ctx, "dashboard-zh.png")
	step(t, ctx, "switch to English", chromedp.Click("#lang"), chromedp.Poll[chromedp.Void](`document.querySelector("#alerts-panel h2").textContent === "Alerts"`))

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
			chromedp.WaitVisible(`#alerts li.alert.sev-critical[data-alert^="level:entrance"] button.ack`),
			chromedp.Click(`#alerts li.alert.sev-critical[data-alert^="level:entrance"] button.ack`),
			chromedp.WaitVisible("#confirm[open] #confirm-note"),
			chromedp.SendKeys("#confirm-note", "on my way"),
			chromedp.Click("#confirm-ok"),
			chromedp.Poll[chromedp.Void](`[...document.querySelectorAll('#alerts li[data-alert^="level:entrance"] .meta')].some(e => e.textContent.includes("guard"))`),
		)
		shot(t, ctx, "dashboard-alert-acknowledged.png")
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
		shot(t, sign, "signage-evacuate.png")
		step(t, ctx, "stand down",
			chromedp.Click(`#evacuations li.evac[data-zone="entrance"] button.standdown`),
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
site: {id: mgr-store, name: "Manager test store", timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
history: {sample_interval: 200ms, flush_interval: 300ms}
zones:
  - {id: store, name: Store, capacity: 200}
  - {id: entrance, name: Entrance, parent: store, capacity: 10}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
auth:
  users:
    - {username: boss, password_hash: "%s", role: manager}
`

// TestBrowserManagerPage signs a manager in, shows the entrance's day as a uPlot chart with
// data and the daily report, and downloads the CSV.
func TestBrowserManagerPage(t *testing.T) {
	ctx := browser(t)
	hash, err := auth.HashPassword("boss-password")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	svc := startService(t, "serve", "--config", writeConfig(t, dir, fmt.Sprintf(managerStore, hash)))
	base := "http://" + svc.HTTP
	topic := "crowdwatch/mgr-store/counter/dc-01"
	mosquittoPub(t, svc.MQTT, topic, report("b1", 1, 3, 0))
	mosquittoPub(t, svc.MQTT, topic, report("b1", 2, 7, 2))

	step(t, ctx, "sign in as a manager and land on the manager page",
		chromedp.Navigate(base+"/manager?zone=entrance"),
		chromedp.WaitVisible("#username"),
		chromedp.SendKeys("#username", "boss"),
		chromedp.SendKeys("#password", "boss-password"),
		chromedp.Click("#submit"),
		chromedp.WaitVisible(`body[data-ready="true"]`),
	)
	// The history is written every 300 ms; ask again until the day shows the peak of 5.
	step(t, ctx, "the chart and the daily report show the entrance's day",
		chromedp.Poll[chromedp.Void](`(() => {
			const row = document.querySelector('#report tr[data-zone="entrance"]');
			if (document.querySelector('#zone').value === "entrance" && row && row.dataset.peak === "5" &&
				Number(document.querySelector('#chart').dataset.points) > 0) return true;
			document.querySelector('#load').click();
			return false;
		})()`, chromedp.WithPollingInterval(time.Second)),
		chromedp.WaitVisible(`#chart .uplot canvas`),
	)
	shot(t, ctx, "manager.png")

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
