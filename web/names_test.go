package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Zones, floors and the site carry their names per language in the API and the feed, and
// the feed says how old the newest count is (data_at) apart from its own heartbeat.
func TestNamesAndDataAge(t *testing.T) {
	cfg := liveConfig()
	cfg.Site.Names, cfg.Site.Timezone = configs.Names{"zh": "测试店", "en": "Store"}, "Asia/Shanghai"
	cfg.Zones[0].Names = configs.Names{"zh": "入口大厅", "en": "Entrance"}
	cfg.Floors[0].Names = configs.Names{"": "Ground"}
	eng := newLiveEngine(0)
	live := NewLive(LiveOptions{Layout: LayoutOf(cfg, nil), Engine: eng, Interval: 5 * time.Millisecond, Heartbeat: 20 * time.Millisecond,
		Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); live.Run(ctx) }()
	srv := httptest.NewServer(NewHandler(Options{Engine: eng, Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Live: live}))
	t.Cleanup(func() { srv.Close(); cancel(); <-done })

	var list struct {
		Site  siteView `json:"site"`
		Zones []struct {
			ID    string            `json:"id"`
			Names map[string]string `json:"names"`
		} `json:"zones"`
	}
	resp, err := http.Get(srv.URL + "/api/v1/zones")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if list.Site.Timezone != "Asia/Shanghai" || list.Site.Names["zh"] != "测试店" {
		t.Errorf("site %+v, want its time zone and Chinese name", list.Site)
	}
	if list.Zones[0].Names["zh"] != "入口大厅" || list.Zones[0].Names["en"] != "Entrance" || list.Zones[1].Names["zh"] != "Hall" {
		t.Errorf("zones %+v, want names per language (a plain name in both)", list.Zones)
	}

	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/api/v1/live", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type msg struct {
		Type   string      `json:"type"`
		DataAt time.Time   `json:"data_at"`
		Site   *siteView   `json:"site"`
		Zones  []zoneView  `json:"zones"`
		Floors []floorView `json:"floors"`
	}
	readMsg := func() msg {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m msg
		if err := c.ReadJSON(&m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	snap := readMsg()
	if snap.Site == nil || snap.Site.Names["zh"] != "测试店" || snap.Site.Timezone != "Asia/Shanghai" ||
		snap.Zones[0].Names["zh"] != "入口大厅" || snap.Floors[0].Names["zh"] != "Ground" {
		t.Fatalf("snapshot %+v, want names per language", snap)
	}
	if !snap.DataAt.IsZero() {
		t.Errorf("data_at %v before any report was applied", snap.DataAt)
	}
	// A report is applied (the device's report count rises): data_at is now; heartbeats
	// after it keep that time while no newer count arrives.
	before := time.Now()
	s := *eng.Snapshot()
	s.Devices = []zones.DeviceStatus{{ID: "dc-01", Kind: zones.KindCounter, Online: true, Reports: 1}}
	eng.snap.Store(&s)
	eng.ch <- struct{}{}
	var at time.Time
	for range 200 {
		if m := readMsg(); !m.DataAt.IsZero() {
			at = m.DataAt
			break
		}
	}
	if at.Before(before) {
		t.Fatalf("data_at %v, want the time the report was applied (after %v)", at, before)
	}
	for range 3 {
		if m := readMsg(); m.Type == "heartbeat" && !m.DataAt.Equal(at) {
			t.Fatalf("heartbeat data_at %v, want %v (no newer count)", m.DataAt, at)
		}
	}
}
