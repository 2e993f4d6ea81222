package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/web/assets"
	"github.com/crowdwatch/crowdwatch/zones"
)

// liveEngine is a fake engine whose snapshot the test replaces.
type liveEngine struct {
	snap atomic.Pointer[zones.Snapshot]
	ch   chan struct{}
}

func newLiveEngine(entrance int64) *liveEngine {
	e := &liveEngine{ch: make(chan struct{}, 1)}
	e.set(entrance)
	return e
}

func (e *liveEngine) Snapshot() *zones.Snapshot            { return e.snap.Load() }
func (e *liveEngine) Subscribe() (<-chan struct{}, func()) { return e.ch, func() {} }
func (e *liveEngine) Healthy() bool                        { return true }
func (e *liveEngine) Correct(context.Context, string, int64, string, string) (zones.ZoneState, error) {
	return zones.ZoneState{}, nil
}

// set puts n people in the entrance (capacity 10) and signals the change.
func (e *liveEngine) set(n int64) {
	e.snap.Store(&zones.Snapshot{Taken: time.Now(), Zones: []zones.ZoneState{
		{ID: "entrance", Name: "Entrance", Occupancy: n, Capacity: 10, Ratio: float64(n) / 10},
		{ID: "hall", Name: "Hall", Occupancy: 1, Capacity: 100, Ratio: 0.01},
	}, Devices: []zones.DeviceStatus{{ID: "dc-01", Kind: zones.KindCounter, Online: true}}})
	select {
	case e.ch <- struct{}{}:
	default:
	}
}

// fakeAlerts is a small AlertSource.
type fakeAlerts struct {
	mu     sync.Mutex
	status *alerting.Status
	ch     chan struct{}
}

func (f *fakeAlerts) Status() *alerting.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status
}

func (f *fakeAlerts) Subscribe() (<-chan struct{}, func()) { return f.ch, func() {} }

func (f *fakeAlerts) set(s *alerting.Status) {
	f.mu.Lock()
	f.status = s
	f.mu.Unlock()
	select {
	case f.ch <- struct{}{}:
	default:
	}
}

// recorder is a fake MQTT publisher.
type recorder struct {
	mu   sync.Mutex
	msgs map[string][]byte
}

func (r *recorder) Connected() bool { return true }
func (r *recorder) Publish(topic string, payload []byte, retain bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if retain {
		r.msgs[topic] = payload
	}
	return nil
}

func (r *recorder) get(topic string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msgs[topic]
}

func liveConfig() *configs.Config {
	return &configs.Config{Site: configs.Site{ID: "s1", Name: "Store"},
		Zones:   []configs.Zone{{ID: "entrance", Capacity: 10}, {ID: "hall", Capacity: 100}},
		Floors:  []configs.Floor{{ID: "g", Width: 10, Height: 10, Zones: []configs.FloorZone{{Zone: "entrance", Polygon: [][2]float64{{0, 0}, {5, 0}, {5, 5}}}}}},
		Signage: configs.Signage{Hold: 30 * time.Second, StaleAfter: 10 * time.Second},
		Screens: []configs.Screen{{ID: "door", Zone: "entrance", Languages: []string{"en"},
			Alternatives: []configs.Pointer{{Zone: "hall", Arrow: "right"}}}},
	}
}

type liveFixture struct {
	engine *liveEngine
	live   *Live
	srv    *httptest.Server
	pub    *recorder
}

func startLive(t testing.TB, alerts AlertSource, buffer int) *liveFixture {
	return startLiveEvery(t, alerts, buffer, 5*time.Millisecond)
}

func startLiveEvery(t testing.TB, alerts AlertSource, buffer int, interval time.Duration) *liveFixture {
	return startLiveLimited(t, alerts, buffer, interval, FeedLimits{})
}

// startLiveLimited is startLiveEvery with feed limits (zero: the defaults).
func startLiveLimited(t testing.TB, alerts AlertSource, buffer int, interval time.Duration, limits FeedLimits) *liveFixture {
	t.Helper()
	cat, err := assets.Messages()
	if err != nil {
		t.Fatal(err)
	}
	f := &liveFixture{engine: newLiveEngine(0), pub: &recorder{msgs: map[string][]byte{}}}
	f.live = NewLive(LiveOptions{Layout: LayoutOf(liveConfig(), nil), Engine: f.engine, Alerts: alerts, Catalogue: cat,
		Publisher: f.pub, GuidanceTopic: func(s string) string { return "cw/s1/guidance/" + s },
		Interval: interval, Heartbeat: time.Hour, SendBuffer: buffer, Limits: limits, Log: slog.New(slog.DiscardHandler)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.live.Run(ctx) }()
	f.srv = httptest.NewServer(NewHandler(Options{Engine: f.engine, Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Live: f.live}))
	t.Cleanup(func() { f.srv.Close(); cancel(); <-done })
	return f
}

func (f *liveFixture) dial(t testing.TB, query string) *websocket.Conn {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/api/v1/live"+query, nil)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", query, err, resp)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

type anyMessage struct {
	Type        string                 `json:"type"`
	Seq         uint64                 `json:"seq"`
	At          time.Time              `json:"at"`
	Zones       []zoneView             `json:"zones"`
	Devices     []zones.DeviceStatus   `json:"devices"`
	Floors      []floorView            `json:"floors"`
	Alerts      *[]alerting.Alert      `json:"alerts"`
	Evacuations *[]alerting.Evacuation `json:"evacuations"`
	Guidance    *struct {
		State      string `json:"state"`
		Target     string `json:"target"`
		PlacesLeft int64  `json:"places_left"`
	} `json:"guidance"`
}

func read(t testing.TB, c *websocket.Conn) anyMessage {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m anyMessage
	if err := c.ReadJSON(&m); err != nil {
		t.Fatalf("reading the feed: %v", err)
	}
	return m
}

// readUntil reads messages until ok accepts one.
func readUntil(t testing.TB, c *websocket.Conn, what string, ok func(anyMessage) bool) anyMessage {
	t.Helper()
	for range 1000 {
		if m := read(t, c); ok(m) {
			return m
		}
	}
	t.Fatalf("no message with %s", what)
	return anyMessage{}
}

func TestFeedSnapshotThenChanges(t *testing.T) {
	f := startLive(t, nil, 32)
	c := f.dial(t, "")
	first := read(t, c)
	if first.Type != "snapshot" || len(first.Zones) != 2 || len(first.Floors) != 1 || first.Alerts == nil {
		t.Fatalf("first message %+v, want a snapshot with 2 zones, 1 floor and an (empty) alert list", first)
	}
	f.engine.set(7)
	up := readUntil(t, c, "the entrance at 7", func(m anyMessage) bool { return m.Type == "update" && len(m.Zones) > 0 })
	if len(up.Zones) != 1 || up.Zones[0].ID != "entrance" || up.Zones[0].Occupancy != 7 || up.Zones[0].Level != levels.Busy {
		t.Errorf("update %+v, want only the entrance, at 7 and busy", up.Zones)
	}
	if up.Seq <= first.Seq {
		t.Errorf("seq %d after %d", up.Seq, first.Seq)
	}
	// A new connection starts from a fresh snapshot with the latest figures.
	c2 := f.dial(t, "")
	if m := read(t, c2); m.Type != "snapshot" || m.Zones[0].Occupancy != 7 {
		t.Errorf("reconnect got %+v, want a snapshot with the entrance at 7", m)
	}
}

// A burst of changes reaches clients coalesced, ending with the latest figure.
func TestFeedCoalesces(t *testing.T) {
	f := startLive(t, nil, 32)
	c := f.dial(t, "")
	read(t, c)
	const changes = 200
	for i := int64(1); i <= changes; i++ {
		f.engine.set(i % 10)
	}
	f.engine.set(9)
	updates := 0
	readUntil(t, c, "the final figure", func(m anyMessage) bool {
		if m.Type == "update" && len(m.Zones) > 0 {
			updates++
			return m.Zones[0].ID == "entrance" && m.Zones[0].Occupancy == 9
		}
		return false
	})
	if updates >= changes {
		t.Errorf("%d updates for %d changes: not coalesced", updates, changes)
	}
}

// The first change after a quiet spell goes out at once, not at the next interval; the
// next one waits for the interval (an hour here, so it must not arrive).
func TestFeedSendsFirstChangeAtOncePacesTheNext(t *testing.T) {
	f := startLiveEvery(t, nil, 32, time.Hour)
	c := f.dial(t, "")
	read(t, c)
	f.engine.set(3)
	if m := read(t, c); m.Type != "update" || len(m.Zones) != 1 || m.Zones[0].Occupancy != 3 {
		t.Fatalf("got %+v, want the update with the entrance at 3 at once", m)
	}
	f.engine.set(5)
	_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var m anyMessage
	if err := c.ReadJSON(&m); err == nil {
		t.Fatalf("got %+v within the interval after the last update, want nothing", m)
	}
}

// While every client has written what it was sent, the next change waits only a tenth of the
// interval (2 s of 20 s here), not the interval: at a store's load the feed is idle between
// commits. (The read below gives up after 10 s, well before the interval.)
func TestFeedPacesOnlyUnderLoad(t *testing.T) {
	f := startLiveEvery(t, nil, 32, 20*time.Second)
	c := f.dial(t, "")
	read(t, c)
	f.engine.set(3)
	if m := read(t, c); m.Type != "update" || len(m.Zones) != 1 || m.Zones[0].Occupancy != 3 {
		t.Fatalf("got %+v, want the update with the entrance at 3 at once", m)
	}
	f.engine.set(5)
	if m := read(t, c); m.Type != "update" || len(m.Zones) != 1 || m.Zones[0].Occupancy != 5 {
		t.Fatalf("got %+v, want the update with the entrance at 5 before the interval", m)
	}
}

// Devices are in an update only when what the dashboard shows of them changes (online or
// not), not with every report they send.
func TestFeedSendsDevicesOnlyWhenTheirStateChanges(t *testing.T) {
	f := startLive(t, nil, 32)
	c := f.dial(t, "")
	read(t, c)
	seen := time.Now()
	put := func(occupancy int64, reports uint64, online bool) {
		f.engine.snap.Store(&zones.Snapshot{Taken: time.Now(), Zones: []zones.ZoneState{
			{ID: "entrance", Name: "Entrance", Occupancy: occupancy, Capacity: 10, Ratio: float64(occupancy) / 10},
			{ID: "hall", Name: "Hall", Occupancy: 1, Capacity: 100, Ratio: 0.01},
		}, Devices: []zones.DeviceStatus{{ID: "dc-01", Kind: zones.KindCounter, Online: online, Reports: reports, Seq: reports, LastSeen: &seen}}})
		f.engine.ch <- struct{}{}
	}
	put(2, 10, true)
	m := readUntil(t, c, "the entrance at 2", func(m anyMessage) bool { return len(m.Zones) > 0 && m.Zones[0].Occupancy == 2 })
	if m.Devices != nil {
		t.Errorf("update carries devices %+v after a report only; want none", m.Devices)
	}
	put(2, 10, false)
	m = readUntil(t, c, "an update", func(m anyMessage) bool { return m.Type == "update" })
	if len(m.Devices) != 1 || m.Devices[0].Online {
		t.Errorf("update devices %+v, want dc-01 offline", m.Devices)
	}
}

// A client that does not take its messages is dropped; the others keep getting theirs.
func TestFeedDropsSlowClient(t *testing.T) {
	f := startLive(t, nil, 2)
	slow := &client{send: make(chan *websocket.PreparedMessage, 2)}
	if refused, ok := f.live.join(slow); !ok || refused != "" {
		t.Fatalf("feed not running, or refused: %q", refused)
	}
	fast := f.dial(t, "")
	read(t, fast)
	for i := int64(1); i <= 6; i++ {
		f.engine.set(i)
		readUntil(t, fast, "each figure", func(m anyMessage) bool {
			return m.Type == "update" && len(m.Zones) > 0 && m.Zones[0].Occupancy == i
		})
	}
	n := 0
	for range slow.send { // drained and closed: the feed let go of it
		n++
	}
	if n != 2 || f.live.Drops() != 1 {
		t.Errorf("slow client got %d messages before being dropped (drops %d), want its buffer of 2 and 1 drop", n, f.live.Drops())
	}
}

func TestFeedRefusesForeignOrigin(t *testing.T) {
	f := startLive(t, nil, 32)
	h := http.Header{"Origin": {"https://evil.example"}}
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/api/v1/live", h)
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: err %v, response %v; want 403", err, resp)
	}
	h.Set("Origin", f.srv.URL)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/api/v1/live", h)
	if err != nil {
		t.Fatalf("same origin refused: %v", err)
	}
	c.Close()
}

func TestScreenFeedAndMQTT(t *testing.T) {
	f := startLive(t, nil, 32)
	c := f.dial(t, "?screen=door")
	dash := f.dial(t, "")
	if m := read(t, c); m.Type != "guidance" || m.Guidance == nil || m.Guidance.State != "welcome" || m.Guidance.PlacesLeft != 10 {
		t.Fatalf("first screen message %+v, want welcome guidance with 10 places", m)
	}
	f.engine.set(7)
	m := readUntil(t, c, "busy", func(m anyMessage) bool { return m.Guidance != nil && m.Guidance.State == "busy" })
	if m.Guidance.Target != "hall" {
		t.Errorf("busy points to %q, want the hall", m.Guidance.Target)
	}
	f.engine.set(10)
	readUntil(t, c, "full", func(m anyMessage) bool { return m.Guidance != nil && m.Guidance.State == "full" })
	// Relaxing is held (30 s here): the screen stays full although the entrance empties.
	f.engine.set(2)
	readUntil(t, dash, "the entrance at 2", func(m anyMessage) bool {
		return len(m.Zones) > 0 && m.Zones[0].ID == "entrance" && m.Zones[0].Occupancy == 2
	})
	if g, _ := f.live.Guidance("door"); g.State != "full" {
		t.Errorf("screen relaxed to %s at once, want it held at full", g.State)
	}
	// The same guidance, retained on MQTT.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var g struct {
			State string `json:"state"`
			Text  map[string]struct {
				Title string `json:"title"`
			} `json:"text"`
		}
		if b := f.pub.get("cw/s1/guidance/door"); b != nil && json.Unmarshal(b, &g) == nil && g.State == "full" {
			if g.Text["en"].Title != "Full" {
				t.Errorf("MQTT guidance text %+v", g.Text)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Errorf("no retained full guidance on MQTT: %s", f.pub.get("cw/s1/guidance/door"))
}

func TestScreenFeedUnknownScreen(t *testing.T) {
	f := startLive(t, nil, 32)
	resp, err := http.Get(f.srv.URL + "/api/v1/live?screen=nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown screen: %d, want 404", resp.StatusCode)
	}
}

// The feed shows the shown level, never the paged one: figures over capacity are critical at
// once although paging still waits (the alert is pending), and a level still held for paging
// is not drawn once the figures are below its clear line.
func TestFeedShowsShownLevel(t *testing.T) {
	crit := levels.Critical
	since := time.Now().Add(-5 * time.Second).UTC().Truncate(time.Second)
	a := &fakeAlerts{ch: make(chan struct{}, 1), status: &alerting.Status{Zones: []alerting.ZoneStatus{
		{Zone: "entrance", Shown: levels.Warning, Level: levels.Busy, Pending: &crit, PendingSince: &since},
		{Zone: "hall", Shown: levels.Normal, Level: levels.Critical}}}}
	f := startLive(t, a, 32)
	f.engine.set(12) // 120 % of capacity, newer than the last evaluation
	c := f.dial(t, "")
	m := readUntil(t, c, "entrance at 12", func(m anyMessage) bool {
		return len(m.Zones) > 0 && m.Zones[0].ID == "entrance" && m.Zones[0].Occupancy == 12
	})
	z := m.Zones[0]
	if z.Level != levels.Critical || z.Pending == nil || *z.Pending != levels.Critical || z.PendingSince == nil {
		t.Errorf("entrance 12/10 shown %v pending %v since %v, want critical with a pending critical alert", z.Level, z.Pending, z.PendingSince)
	}
	if len(m.Zones) > 1 && m.Zones[1].Level != levels.Normal {
		t.Errorf("hall at 1 %% shown %v: a level held for paging is not drawn", m.Zones[1].Level)
	}
	s := f.dial(t, "?screen=door")
	if g := read(t, s); g.Guidance.State != "full" {
		t.Errorf("screen %s, want full", g.Guidance.State)
	}
}

// With alerting wired, its levels, alerts and evacuations drive the feed and the screens.
func TestFeedWithAlertSource(t *testing.T) {
	a := &fakeAlerts{ch: make(chan struct{}, 1), status: &alerting.Status{Zones: []alerting.ZoneStatus{{Zone: "entrance", Shown: levels.Critical}}}}
	f := startLive(t, a, 32)
	c := f.dial(t, "")
	first := read(t, c)
	if first.Zones[0].Level != levels.Critical {
		t.Errorf("entrance level %v, want critical from alerting (the occupancy alone says normal)", first.Zones[0].Level)
	}
	s := f.dial(t, "?screen=door")
	if m := read(t, s); m.Guidance.State != "full" {
		t.Errorf("screen %s, want full", m.Guidance.State)
	}
	a.set(&alerting.Status{Zones: []alerting.ZoneStatus{{Zone: "entrance", Shown: levels.Critical}},
		Alerts:      []alerting.Alert{{ID: "level:entrance", Kind: alerting.KindLevel, Zone: "entrance", Severity: alerting.SeverityCritical, State: alerting.StateFiring}},
		Evacuations: []alerting.Evacuation{{Zone: "", Reason: "fire", By: "guard"}}})
	up := readUntil(t, c, "alerts and evacuations", func(m anyMessage) bool { return m.Type == "update" && m.Alerts != nil })
	if len(*up.Alerts) != 1 || up.Evacuations == nil || len(*up.Evacuations) != 1 {
		t.Errorf("update alerts %v evacuations %v", up.Alerts, up.Evacuations)
	}
	readUntil(t, s, "exit guidance", func(m anyMessage) bool { return m.Guidance != nil && m.Guidance.State == "evacuate" })
}

// TestFeedGap: the feed's least gap between updates grows with the clients it writes to, and
// is the interval while any client is behind.
func TestFeedGap(t *testing.T) {
	const interval = 50 * time.Millisecond
	for _, tc := range []struct {
		clients int
		behind  bool
		want    time.Duration
	}{
		{0, false, 5 * time.Millisecond},
		{1, false, 5 * time.Millisecond},
		{50, false, 5 * time.Millisecond},
		{100, false, 10 * time.Millisecond},
		{200, false, 20 * time.Millisecond},
		{500, false, interval},
		{1000, false, interval},
		{1, true, interval},
		{50, true, interval},
	} {
		r := &clientRegistry{clients: map[*client]bool{}}
		for i := range tc.clients {
			c := &client{send: make(chan *websocket.PreparedMessage, 1)}
			if tc.behind && i == 0 {
				c.send <- nil
			}
			r.clients[c] = true
		}
		if got := r.gap(interval); got != tc.want {
			t.Errorf("%d clients (one behind: %v): gap %v, want %v", tc.clients, tc.behind, got, tc.want)
		}
	}
}
