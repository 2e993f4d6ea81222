package app

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"log/slog"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

const testStore = `
site: {id: app-store, timezone: Europe/Paris}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
zones:
  - {id: store, capacity: 100, area_m2: 400}
doors:
  - {id: main, from: outside, to: store, width_m: 2, counter: {device: dc-01}}
`

func loadStore(t *testing.T, dir, extra string) *configs.Config {
	t.Helper()
	cfg, err := configs.Load(testkit.WriteStore(t, dir, testStore+extra), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestNewFailureClosesWhatItOpened: a New that fails after opening the occupancy and alert
// files (the sign-in file cannot be opened) closes them, so that a second New on the same
// files succeeds at once instead of waiting for their locks.
func TestNewFailureClosesWhatItOpened(t *testing.T) {
	dir := t.TempDir()
	bad := loadStore(t, dir, "auth: {path: "+dir+"}\n") // a folder, not a file
	if _, err := New(bad, Options{Logger: slog.New(slog.DiscardHandler)}); err == nil {
		t.Fatal("New opened a folder as the sign-in file")
	}
	a, err := New(loadStore(t, dir, ""), Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("New after a failed New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := a.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRunServesAndStopsInOrder: Run serves on the addresses New bound and, once its context
// ends, stops every component once, in the documented order.
func TestRunServesAndStopsInOrder(t *testing.T) {
	dir := t.TempDir()
	var logs testkit.Buffer
	ready := make(chan struct{})
	a, err := New(loadStore(t, dir, ""), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Version: "test",
		OnReady: func(*App) { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	if a.HTTPAddr() == "" || strings.HasSuffix(a.HTTPAddr(), ":0") || strings.HasSuffix(a.MQTTAddr(), ":0") {
		t.Fatalf("addresses %q, %q: want bound ports", a.HTTPAddr(), a.MQTTAddr())
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Run returned before it was ready: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatal("not ready within 30s")
	}
	if !strings.Contains(logs.String(), `msg="crowdwatch ready" site=app-store http=`+a.HTTPAddr()+" mqtt="+a.MQTTAddr()) {
		t.Errorf("the ready line lacks the app's addresses:\n%s", logs.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}
	var order []string
	for _, m := range regexp.MustCompile(`msg=stopped site=app-store component=("[^"]+"|\S+)`).FindAllStringSubmatch(logs.String(), -1) {
		order = append(order, strings.Trim(m[1], `"`))
	}
	want := []string{"engine", "history", "retained publishers", "door meter and announcements", "mqtt", "live feed", "http", "event plans", "sign-in file",
		"security monitor", "alerting", "ha", "alert file", "occupancy file", "http listener"}
	if !slices.Equal(order, want) {
		t.Errorf("stop order %v, want %v", order, want)
	}
}
