package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/crowdwatch/crowdwatch/web/auth"
)

// planStore has a flash sale running now and the next one of its kind a week on: the next
// one's forecast comes from the running one, whose history this test records.
const planStore = `
site: {id: plan-store, name: {en: "Plan test store", zh: 计划测试店}, timezone: Asia/Shanghai}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
history: {sample_interval: 200ms, flush_interval: 300ms}
zones:
  - {id: store, name: {en: Store, zh: 全店}, capacity: 600, area_m2: 500}
  - {id: entrance, name: {en: Entrance, zh: 入口}, parent: store, capacity: 120, area_m2: 30}
  - {id: hall, name: {en: Hall, zh: 大厅}, parent: store, capacity: 400, area_m2: 300}
doors:
  - {id: main-door, from: outside, to: entrance, width_m: 3, counter: {device: dc-01}}
  - {id: side-door, from: outside, to: entrance, width_m: 1.5}
  - {id: arch, from: entrance, to: hall, width_m: 4, counter: {device: dc-02}}
  - {id: fire-exit, from: hall, to: outside, width_m: 2}
events:
  - {id: flash-now, kind: flash, name: {en: Flash sale, zh: 限时抢购}, start: %q, end: %q, capacities: {entrance: 90}, metered: [{door: main-door}]}
  - {id: flash-next, kind: flash, name: {en: Next flash sale, zh: 下一次限时抢购}, start: %q, end: %q, doors_open: %q,
     capacities: {entrance: 100, hall: 350}, metered: [{door: main-door}], forecast_scale: 1.5}
auth:
  users:
    - {username: boss, password_hash: "%s", role: manager}
`

// TestBrowserPromotionPlan: the manager page shows the next plan (its assessment with the
// entrance's density warning, the forecast chart from the running sale, the roster), in
// English and Chinese, at laptop and tablet width; and the running sale's review with the
// entrance's actual peak. Screenshots: planShot.
func TestBrowserPromotionPlan(t *testing.T) {
	ctx := browser(t)
	hash, err := auth.HashPassword("boss-password")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Minute)
	nowStart, nowEnd := now.Add(-30*time.Minute), now.Add(90*time.Minute)
	nextStart := nowStart.AddDate(0, 0, 7)
	dir := t.TempDir()
	cfg := fmt.Sprintf(planStore, nowStart.Format(time.RFC3339), nowEnd.Format(time.RFC3339),
		nextStart.Format(time.RFC3339), nextStart.Add(2*time.Hour).Format(time.RFC3339), nextStart.Add(30*time.Minute).Format(time.RFC3339), hash)
	svc := startService(t, "serve", "--config", writeConfig(t, dir, cfg))
	base := "http://" + svc.HTTP
	// 80 in through the main door, 30 of them on into the hall. The arch's count goes first,
	// so that the entrance never shows 80 for a moment: its peak is 50.
	mosquittoPub(t, svc.MQTT, "crowdwatch/plan-store/counter/dc-02", report("b1", 1, 30, 0))
	mosquittoPub(t, svc.MQTT, "crowdwatch/plan-store/counter/dc-01", report("b1", 1, 80, 0))

	if _, err := chromedp.Call(ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "UTC"}); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, base+"/manager?view=plan&event=flash-next", "boss", "boss-password", `body[data-events-ready="true"]`)
	// The forecast comes from the running sale once history has the entrance's 80 arrivals.
	step(t, ctx, "the next plan's forecast, assessment and roster",
		chromedp.Poll[chromedp.Void](`(() => {
			const ok = document.querySelector('#forecast-basis').textContent.includes('flash-now') &&
				document.querySelector('#roster tbody tr[data-slot="0"]') && document.querySelector('#assess tr[data-zone="entrance"]');
			if (!ok && document.body.dataset.eventsLoading !== "true") document.querySelector('#event').dispatchEvent(new Event('change'));
			return !!ok;
		})()`, chromedp.WithPollingInterval(time.Second)),
		chromedp.WaitVisible(`#forecast-chart .uplot canvas`))
	got, err := chromedp.Run(ctx, chromedp.Evaluate[string](`[
		document.querySelector('#assess tr[data-zone="entrance"] td:nth-child(5)').textContent,
		document.querySelector('#assess tr[data-zone="entrance"] td:nth-child(7)').textContent,
		document.querySelector('#assess tr[data-zone="entrance"]').className,
		document.querySelector('#roster tbody tr[data-slot="0"] td[data-zone="entrance"]').textContent,
		document.querySelectorAll('#roster tbody tr').length].join("|")`))
	if err != nil {
		t.Fatal(err)
	}
	// Entrance: 30 m² x 3.5 = 105; exits main 3 m and side 1.5 m (the arch is 4 m, the widest,
	// left out): 4.5 x 80 x 1.5 min = 540. Its capacity 120 exceeds 105: warned. The roster's
	// first half hour: 2 entrance posts (main, side), 1 exit post (the arch), 1 queue post
	// (main is metered), and one for the high end of the expected peak (50 x 1.5 = 75, under
	// 100); 4 half hours.
	if want := "105|540|warned|5|4"; got != want {
		t.Errorf("assessment and roster %q, want %q", got, want)
	}
	// The forecast from the running sale's real history, times 1.5: 80 arrivals in its second
	// half hour (when this test counted them) are 120; the entrance's peak of 50 is 75.
	got, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#roster tbody tr[data-slot="1"] td:nth-child(2)').textContent + "|" +
		document.querySelector('#forecast-peaks').textContent`))
	if err != nil || !strings.HasPrefix(got, "120 (120–120)|") || !strings.Contains(got, "Entrance 75 (75–75) / 100") {
		t.Errorf("forecast %q (%v)", got, err)
	}
	for _, l := range []string{"en", "zh"} {
		setLanguage(t, ctx, l)
		step(t, ctx, "the plan in "+l, chromedp.Poll[chromedp.Void](fmt.Sprintf(`document.querySelector('#assess-panel h2').textContent === %q`,
			map[string]string{"en": "Capacity assessment", "zh": "容量评估"}[l])))
		for _, sz := range []struct {
			name string
			w, h int64
		}{{"laptop", 1366, 768}, {"tablet", 768, 1024}} {
			step(t, ctx, "resize to "+sz.name, chromedp.EmulateViewport(sz.w, sz.h), chromedp.WaitVisible(`#forecast-chart .uplot canvas`),
				chromedp.Evaluate[chromedp.Void](`new Promise((r) => requestAnimationFrame(() => setTimeout(r, 400)))`, chromedp.EvalAwaitPromise))
			planShot(t, ctx, fmt.Sprintf("plan-%s-%s.png", l, sz.name))
		}
	}
	setLanguage(t, ctx, "en")
	step(t, ctx, "back to laptop", chromedp.EmulateViewport(1366, 768))

	// The running sale's review: the entrance's peak (80 in, 30 on into the hall) against its
	// event capacity of 90.
	step(t, ctx, "the running sale's review",
		chromedp.Navigate(base+"/manager?view=plan&event=flash-now"),
		chromedp.WaitVisible(`body[data-events-ready="true"]`),
		chromedp.Poll[chromedp.Void](`(() => {
			const row = document.querySelector('#review tr[data-zone="entrance"]');
			if (row && row.dataset.peak === "50") return true;
			if (document.body.dataset.eventsLoading !== "true") document.querySelector('#event').dispatchEvent(new Event('change'));
			return false;
		})()`, chromedp.WithPollingInterval(time.Second)))
	got, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#review tr[data-zone="entrance"] td:nth-child(2)').textContent + "|" +
		document.querySelector('#event-summary').dataset.status + "|" + document.querySelector('#review-previous').textContent`))
	if err != nil || got != "90|running|No earlier event of this kind." {
		t.Errorf("review %q (%v)", got, err)
	}
	planShot(t, ctx, "review-en-laptop.png")
}

// planShot saves the promotion plan part of the manager page under the screenshot folder
// (artifacts/screenshots/), and with CROWDWATCH_UPDATE_DOC_IMAGES=1 also under
// docs/screenshots/, which the docs show: a plain test run leaves the working tree as it was.
func planShot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.Screenshot("#plan-main"))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dirs := []string{screenshotDir(t)}
	if os.Getenv("CROWDWATCH_UPDATE_DOC_IMAGES") == "1" {
		dirs = append(dirs, filepath.Join("..", "..", "docs", "screenshots"))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot %s", name)
}
