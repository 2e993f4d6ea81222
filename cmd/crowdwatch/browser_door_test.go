package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// promotionStore is the browser store with a door-buster plan: the main door is metered at
// 30 a minute (enter and wait in turn, a second each) and the doors open shortly after the
// test starts, so the dashboard counts down first.
var promotionStore = `
site: {id: promo-store, name: {en: "Promotion test store", zh: 促销测试店}, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
devices: {offline_after: 10m}
signage: {hold: 5s}
zones:
  - {id: store, name: {en: Store, zh: 全店}, capacity: 200}
  - {id: entrance, name: {en: Entrance, zh: 入口}, parent: store, capacity: 10}
  - {id: hall, name: {en: Hall, zh: 大厅}, parent: store, capacity: 100}
doors:
  - {id: main-door, from: outside, to: entrance, width_m: 1, counter: {device: dc-01}}
  - {id: arch, from: entrance, to: hall, counter: {device: dc-02}}
` + groundFloor("entrance", "hall", 320) + `screens:
  - id: door
    zone: entrance
    door: main-door
    languages: [zh, en]
    exit: {arrow: left, label: {en: "the main door", zh: "正门"}}
events:
  - id: doorbuster
    name: {en: Door-buster morning, zh: 开门抢购}
    start: "%s"
    end: "%s"
    doors_open: "%s"
    capacities: {entrance: 8}
    metered: [{door: main-door, rate_per_min: 30}]
auth:
  users:
    - {username: guard, password_hash: "%s", role: security}
  tokens:
    - {name: door-screen, sha256: "%s", role: display, screen: door}
`

// docSizes are the widths the promotion-day pictures in docs/screenshots are taken at.
var docSizes = []struct {
	name          string
	width, height int64
}{{"laptop", 1366, 768}, {"tablet", 768, 1024}}

// docShots saves NAME-LANG-SIZE.png at each size once ready is visible: under the test's
// screenshot folder, or, with CROWDWATCH_UPDATE_DOC_IMAGES=1, in docs/screenshots (the
// pictures the docs show, kept in the repository), so an ordinary run changes no file.
func docShots(t *testing.T, ctx context.Context, name, lang, ready string) {
	t.Helper()
	dir := screenshotDir(t)
	if os.Getenv("CROWDWATCH_UPDATE_DOC_IMAGES") == "1" {
		dir = filepath.Join("..", "..", "docs", "screenshots")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, sz := range docSizes {
		step(t, ctx, "resize to "+sz.name, chromedp.EmulateViewport(sz.width, sz.height), chromedp.WaitVisible(ready),
			chromedp.Evaluate[chromedp.Void](`new Promise((r) => requestAnimationFrame(() => setTimeout(r, 300)))`, chromedp.EvalAwaitPromise))
		c, cancel := context.WithTimeout(ctx, 20*time.Second)
		png, err := chromedp.Run(c, chromedp.FullScreenshot(100))
		cancel()
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-%s-%s.png", name, lang, sz.name))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step(t, ctx, "back to laptop size", chromedp.EmulateViewport(docSizes[0].width, docSizes[0].height))
}

// dashShots photographs the dashboard in English and Chinese.
func dashShots(t *testing.T, ctx context.Context, name, ready string) {
	t.Helper()
	for _, l := range []string{"en", "zh"} {
		setLanguage(t, ctx, l)
		docShots(t, ctx, name, l, ready)
	}
	setLanguage(t, ctx, "en")
}

// TestBrowserPromotionDay: the dashboard counts down to the doors' opening; the metered
// door's screen says wait until then and afterwards alternates enter and wait; a drill
// started from the dashboard marks the screen DRILL in both languages; an announcement is
// shown to the guard before it is sent.
func TestBrowserPromotionDay(t *testing.T) {
	ctx := browser(t)
	sec := newGuardSecrets(t)
	now := time.Now().UTC()
	open := now.Add(25 * time.Second)
	dir := t.TempDir()
	yaml := fmt.Sprintf(promotionStore, now.Add(-time.Hour).Format(time.RFC3339), now.Add(2*time.Hour).Format(time.RFC3339),
		open.Format(time.RFC3339), sec.hash, sec.sum)
	svc := startService(t, "serve", "--config", writeConfig(t, dir, yaml))
	base := "http://" + svc.HTTP
	// Five in the entrance and four in the hall: more than a drill's "empty" (2).
	mosquittoPub(t, svc.MQTT, "crowdwatch/promo-store/counter/dc-01", report("b1", 1, 9, 0))
	mosquittoPub(t, svc.MQTT, "crowdwatch/promo-store/counter/dc-02", report("b1", 1, 4, 0))

	signIn(t, ctx, base+"/dashboard", "guard", "guard-password", `#zones tr[data-zone="entrance"][data-occupancy="5"]`)
	step(t, ctx, "the dashboard counts down to the opening",
		chromedp.WaitVisible(`#countdown[data-state="soon"]`),
		chromedp.Poll[chromedp.Void](`(() => { const c = document.getElementById("countdown");
			return Number(c.dataset.left) > 0 && Number(c.dataset.left) <= 25 && c.textContent.includes("Doors open in"); })()`))
	dashShots(t, ctx, "dashboard-countdown", `#countdown[data-state="soon"]`)

	sign := newTab(t, ctx)
	step(t, sign, "before opening the metered screen says wait",
		chromedp.EmulateViewport(1366, 768),
		chromedp.Navigate(base+"/signage/door?token="+sec.token),
		chromedp.WaitVisible(`body[data-state="wait"]`),
		chromedp.Evaluate[chromedp.Void](`window.seen = []; new MutationObserver(() => {
			const s = document.body.dataset.state; if (window.seen[window.seen.length - 1] !== s) window.seen.push(s);
		}).observe(document.body, { attributes: true, attributeFilter: ["data-state"] });`))
	if time.Now().Before(open.Add(-time.Second)) {
		seen, err := chromedp.Run(sign, chromedp.Evaluate[[]string](`window.seen`))
		if err != nil || strings.Contains(strings.Join(seen, ","), "enter") {
			t.Fatalf("the screen said enter before the doors opened: %v %v", seen, err)
		}
	}
	docShots(t, sign, "signage-metered-wait", "zh-en", `body[data-state="wait"]`)

	// After opening: enter and wait in turn (at 30 a minute, one release every 2 s).
	time.Sleep(time.Until(open))
	step(t, sign, "after opening the screen alternates enter and wait",
		chromedp.Poll[chromedp.Void](`window.seen.filter((s) => s === "enter").length >= 3 && window.seen.filter((s) => s === "wait").length >= 3`))
	seen, err := chromedp.Run(sign, chromedp.Evaluate[[]string](`window.seen`))
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(seen); i++ {
		if seen[i] != "enter" && seen[i] != "wait" {
			t.Fatalf("a metered screen showed %q: %v", seen[i], seen)
		}
	}
	step(t, sign, "enter says please enter in both languages", chromedp.WaitVisible(`body[data-state="enter"]`),
		chromedp.Poll[chromedp.Void](`document.body.innerText.includes("Please enter") && document.body.innerText.includes("请进入")`))
	docShots(t, sign, "signage-metered-enter", "zh-en", `body[data-state="enter"]`)

	// A drill of the whole site from the dashboard.
	step(t, ctx, "start a drill",
		chromedp.SetValue("#drill-zone", ""),
		chromedp.Click(`#drill-form button[type="submit"]`),
		chromedp.WaitVisible("#confirm[open]"),
		chromedp.Click("#confirm-ok"),
		chromedp.WaitVisible(`#drills li.drill[data-zone=""]`),
		chromedp.WaitVisible(`#drill-banner`),
		chromedp.WaitVisible(`#alerts li.card.kind-drill`))
	step(t, sign, "the screen says DRILL in both languages, never evacuate",
		chromedp.WaitVisible(`body[data-state="drill"]`),
		chromedp.WaitVisible(`#drill-band`),
		chromedp.Poll[chromedp.Void](`document.getElementById("drill-band").textContent === "演练 · DRILL" &&
			document.body.innerText.includes("This is a drill, not an emergency") && document.body.innerText.includes("这是演练")`))
	docShots(t, sign, "signage-drill", "zh-en", `body[data-state="drill"]`)
	dashShots(t, ctx, "dashboard-drill", `#drills li.drill`)

	// The guard reads the announcement before it goes to the PA.
	step(t, ctx, "announce the drill, reading the text first",
		chromedp.SetValue("#announce-zone", "entrance"),
		chromedp.SetValue("#announce-state", "drill"),
		chromedp.Click(`#announce-form button[type="submit"]`),
		chromedp.WaitVisible("#confirm[open]"),
		chromedp.Poll[chromedp.Void](`document.getElementById("confirm-text").textContent.includes("This is a drill. This is only a drill.") &&
			document.getElementById("confirm-text").textContent.includes("这是演练")`),
		chromedp.Click("#confirm-ok"),
		chromedp.Poll[chromedp.Void](`document.getElementById("message").className === "good"`))
	// The action's log line is written once its answer has gone out: wait for it.
	waitFor(t, 10*time.Second, "the announcement in the audit log", func() bool {
		return strings.Contains(svc.logs.String(), `path=/api/v1/announcements/entrance status=200`)
	})
	step(t, ctx, "end the drill",
		clickNow(`#drills li.drill button.drill-end`),
		chromedp.WaitVisible("#confirm[open]"),
		chromedp.Click("#confirm-ok"),
		chromedp.WaitNotPresent(`#drills li.drill`))
	step(t, sign, "the screen leaves DRILL", chromedp.Poll[chromedp.Void](`document.body.dataset.state !== "drill"`,
		chromedp.WithPollingTimeout(60*time.Second)))
}
