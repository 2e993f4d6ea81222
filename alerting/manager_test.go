package alerting

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/zones"
)

const testStore = `
site: {id: t-site, timezone: UTC}
storage: {path: $DIR/cw.db}
alerting:
  escalation: {after: 2m, groups: [security, duty_manager, all_staff]}
  repeat_interval: 5m
  channels:
    - {name: radio, type: mqtt}
    - {name: managers, type: webhook, url: "http://127.0.0.1:1/hook"}
    - {name: everyone, type: webhook, url: "http://127.0.0.1:1/all"}
  routes:
    - {channel: radio, group: security, min_severity: warning}
    - {channel: managers, group: duty_manager}
    - {channel: everyone, group: all_staff}
zones:
  - {id: store, capacity: 1000}
  - {id: entrance, parent: store, capacity: 100, area_m2: 50, alerts: {surge_per_min: 60}}
doors:
  - {id: main, from: outside, to: entrance, width_m: 3, counter: {device: dc-01}}
  - {id: inner, from: entrance, to: store, width_m: 2, counter: {device: dc-02}}
  - {id: back, from: store, to: outside, width_m: 2, counter: {device: dc-03}}
`

type fakeSource struct {
	mu   sync.Mutex
	snap *zones.Snapshot
	ch   chan struct{}
}

func (f *fakeSource) Snapshot() *zones.Snapshot { f.mu.Lock(); defer f.mu.Unlock(); return f.snap }
func (f *fakeSource) Subscribe() (<-chan struct{}, func()) {
	return f.ch, func() {}
}

type recorded struct {
	n        Notification
	channels []string
}

type fakeNotifier struct {
	mu  sync.Mutex
	got []recorded
}

func (f *fakeNotifier) Notify(n Notification, channels []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, recorded{n, slices.Clone(channels)})
}

func (f *fakeNotifier) take() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := f.got
	f.got = nil
	return out
}

type harness struct {
	t     *testing.T
	cfg   *configs.Config
	model *zones.Model
	src   *fakeSource
	notes *fakeNotifier
	m     *Manager
	now   time.Time
	occ   map[string]int64
	doors map[string][2]uint64
	down  map[string]bool
}

func newHarness(t *testing.T, yaml string) *harness {
	t.Helper()
	dir := t.TempDir()
	cfg, err := configs.Parse([]byte(strings.ReplaceAll(yaml, "$DIR", dir)), nil)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, cfg: cfg, model: zones.NewModel(cfg), src: &fakeSource{ch: make(chan struct{}, 1)},
		notes: &fakeNotifier{}, now: time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC),
		occ: map[string]int64{}, doors: map[string][2]uint64{}, down: map[string]bool{}}
	h.publish()
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	m, err := New(Options{Config: ConfigOf(h.cfg), Path: h.cfg.AlertsPath(), Model: h.model, Source: h.src, Notifier: h.notes, Now: func() time.Time { return h.now }})
	if err != nil {
		h.t.Fatal(err)
	}
	h.m = m
	h.t.Cleanup(func() { _ = m.Close() })
}

// publish builds a snapshot from the harness's figures.
func (h *harness) publish() {
	s := &zones.Snapshot{Taken: h.now}
	for _, z := range h.model.Zones {
		o := h.occ[z.ID]
		zs := zones.ZoneState{ID: z.ID, Name: z.Name, Occupancy: o, Capacity: z.Capacity, Ratio: float64(o) / float64(z.Capacity), AreaM2: z.AreaM2}
		if z.AreaM2 > 0 {
			d := float64(o) / z.AreaM2
			zs.Density = &d
		}
		s.Zones = append(s.Zones, zs)
	}
	for _, d := range h.model.Doors {
		c := h.doors[d.ID]
		s.Doors = append(s.Doors, zones.DoorState{ID: d.ID, From: d.From, To: d.To, Device: d.Device, In: c[0], Out: c[1]})
	}
	for _, d := range h.model.Devices {
		seen := h.now
		s.Devices = append(s.Devices, zones.DeviceStatus{ID: d.ID, Kind: d.Kind, Doors: d.Doors, Online: !h.down[d.ID], LastSeen: &seen})
	}
	h.src.mu.Lock()
	h.src.snap = s
	h.src.mu.Unlock()
}

// at moves the clock to t seconds after the start and evaluates.
func (h *harness) at(sec int) {
	h.now = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
	h.publish()
	h.m.step(h.now)
}

// run carries out one command as Run would, at the harness's clock.
func (h *harness) run(call func()) {
	// A call refused before it reaches the manager sends no command; quit then.
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		select {
		case c := <-h.m.cmds.Requests():
			v, err := c.Req(h.now)
			h.m.step(h.now)
			c.Reply(v, err)
		case <-quit:
		}
	}()
	call()
	close(quit)
	<-done
}

func (h *harness) alert(id string) *Alert {
	for _, a := range h.m.Status().Alerts {
		if a.ID == id {
			return &a
		}
	}
	return nil
}

func whats(rs []recorded, id string) []string {
	var out []string
	for _, r := range rs {
		if r.n.Alert.ID == id {
			out = append(out, r.n.What+"->"+strings.Join(r.channels, "+"))
		}
	}
	return out
}

func TestLifecycleHoldAckEscalateResolve(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"], h.occ["store"] = 104, 104 // 104 % of capacity: critical after 15 s
	h.at(0)
	if a := h.alert("level:entrance"); a != nil {
		t.Fatalf("fired before its hold-down: %+v", a)
	}
	h.at(14)
	if h.alert("level:entrance") != nil {
		t.Fatal("fired at 14 s of a 15 s hold-down")
	}
	h.at(15)
	a := h.alert("level:entrance")
	if a == nil || a.State != StateFiring || a.Severity != SeverityCritical || a.Level != levels.Critical {
		t.Fatalf("not firing critical at 15 s: %+v", a)
	}
	if got := whats(h.notes.take(), "level:entrance"); !slices.Equal(got, []string{"fired->radio"}) {
		t.Fatalf("first page: %v, want the security group's radio only", got)
	}

	// Not acknowledged for 2 minutes: the duty manager is paged, then all staff.
	h.at(134)
	if got := whats(h.notes.take(), "level:entrance"); len(got) != 0 {
		t.Fatalf("escalated early: %v", got)
	}
	h.at(135)
	if got := whats(h.notes.take(), "level:entrance"); !slices.Equal(got, []string{"escalated->managers"}) {
		t.Fatalf("after 2 min: %v, want escalated to managers", got)
	}
	h.at(255)
	if got := whats(h.notes.take(), "level:entrance"); !slices.Equal(got, []string{"escalated->everyone"}) {
		t.Fatalf("after 4 min: %v, want escalated to everyone", got)
	}
	// Last group reached: repeats every 5 minutes to every group paged so far.
	h.at(555)
	if got := whats(h.notes.take(), "level:entrance"); !slices.Equal(got, []string{"repeat->radio+managers+everyone"}) {
		t.Fatalf("repeat: %v", got)
	}

	h.run(func() {
		if _, err := h.m.Ack(context.Background(), "level:entrance", "officer-li", "sent two guards"); err != nil {
			t.Error(err)
		}
	})
	if a := h.alert("level:entrance"); a.State != StateAcknowledged || a.AckBy != "officer-li" || a.AckNote != "sent two guards" {
		t.Fatalf("after ack: %+v", a)
	}
	h.notes.take()
	h.at(2000) // long after: no escalation, no repeat once acknowledged
	if got := whats(h.notes.take(), "level:entrance"); len(got) != 0 {
		t.Fatalf("paged after acknowledgement: %v", got)
	}

	// The crowd thins: below 90 % of the warning line for 30 s resolves it.
	h.occ["entrance"], h.occ["store"] = 50, 50
	h.at(2001)
	h.at(2030)
	if a := h.alert("level:entrance"); a == nil {
		t.Fatal("resolved before 30 s below the clear line")
	}
	h.at(2031)
	if a := h.alert("level:entrance"); a != nil {
		t.Fatalf("still open after the crowd thinned: %+v", a)
	}
	if got := whats(h.notes.take(), "level:entrance"); !slices.Equal(got, []string{"resolved->radio+managers+everyone"}) {
		t.Fatalf("resolution notice: %v", got)
	}
	evs, err := h.m.Events(time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	var seq []string
	for _, e := range evs {
		if e.AlertID == "level:entrance" {
			seq = append(seq, e.What)
		}
	}
	if !slices.Equal(seq, []string{"fired", "escalated", "escalated", "acknowledged", "resolved"}) {
		t.Fatalf("stored transitions %v", seq)
	}
}

func TestWorseLevelPagesAgainAfterAck(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"], h.occ["store"] = 110, 110 // density 2.2: warning by density and critical by ratio
	h.at(0)
	h.at(15)
	h.run(func() { _, _ = h.m.Ack(context.Background(), "level:entrance", "li", "") })
	h.notes.take()
	h.occ["entrance"], h.occ["store"] = 260, 260 // 5.2 persons/m²: evacuate at once (hold 0)
	h.at(20)
	a := h.alert("level:entrance")
	if a.Level != levels.Evacuate || a.State != StateFiring || a.Severity != SeverityEmergency || a.AckBy != "" {
		t.Fatalf("worse level did not re-open the alert: %+v", a)
	}
	got := whats(h.notes.take(), "level:entrance")
	if len(got) != 1 || !strings.HasPrefix(got[0], "worsened->") || !strings.Contains(got[0], "everyone") {
		t.Fatalf("evacuate level must go to every channel: %v", got)
	}
	if z, _ := h.m.Status().Zone("entrance"); z.Level != levels.Evacuate {
		t.Fatalf("zone status %+v", z)
	}
}

func TestEvacuationInhibitsAndNotifiesEveryone(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"], h.occ["store"] = 104, 104
	h.at(0)
	h.at(15)
	h.notes.take()
	h.run(func() {
		if _, err := h.m.Declare(context.Background(), "", "", "fire"); err == nil {
			t.Error("declared without who")
		}
	})
	h.run(func() {
		if _, err := h.m.Declare(context.Background(), "entrance", "chief-wang", "smoke at the entrance"); err != nil {
			t.Error(err)
		}
	})
	ev := h.alert("evacuation:entrance")
	if ev == nil || ev.Severity != SeverityEmergency {
		t.Fatalf("no evacuation alert: %+v", h.m.Status().Alerts)
	}
	if got := whats(h.notes.take(), "evacuation:entrance"); !slices.Equal(got, []string{"fired->radio+managers+everyone"}) {
		t.Fatalf("evacuation notice %v", got)
	}
	lv := h.alert("level:entrance")
	if !lv.Inhibited {
		t.Fatalf("the entrance's level alert is not inhibited by its evacuation: %+v", lv)
	}
	if z, _ := h.m.Status().Zone("entrance"); !z.Evacuating {
		t.Fatal("zone status does not say evacuating")
	}
	h.at(300) // inhibited: no escalation
	if got := whats(h.notes.take(), "level:entrance"); len(got) != 0 {
		t.Fatalf("inhibited alert paged: %v", got)
	}
	h.run(func() {
		if err := h.m.StandDown(context.Background(), "entrance", "chief-wang", "false alarm"); err != nil {
			t.Error(err)
		}
	})
	if h.alert("evacuation:entrance") != nil || h.alert("level:entrance").Inhibited {
		t.Fatal("stand-down did not end the evacuation and the inhibition")
	}
}

func TestSilenceMutesNotifications(t *testing.T) {
	h := newHarness(t, testStore)
	h.at(0)
	h.run(func() {
		if _, err := h.m.AddSilence(context.Background(), Silence{Zone: "entrance", End: h.now.Add(10 * time.Minute), By: "li", Comment: "drill"}); err != nil {
			t.Error(err)
		}
	})
	h.occ["entrance"], h.occ["store"] = 104, 104
	h.at(1)
	h.at(16)
	a := h.alert("level:entrance")
	if a == nil || !a.Silenced {
		t.Fatalf("alert not kept as silenced: %+v", a)
	}
	if got := whats(h.notes.take(), "level:entrance"); len(got) != 0 {
		t.Fatalf("silenced alert notified: %v", got)
	}
	h.at(601) // the silence ended: the alert now pages
	if a := h.alert("level:entrance"); a.Silenced {
		t.Fatal("still silenced after the end time")
	}
	if got := whats(h.notes.take(), "level:entrance"); len(got) == 0 {
		t.Fatal("nobody paged after the silence ended")
	}
	h.run(func() {
		if _, err := h.m.AddSilence(context.Background(), Silence{Kind: KindEvacuation, End: h.now.Add(time.Hour), By: "x", Comment: "y"}); err == nil {
			t.Error("an evacuation silence was accepted")
		}
	})
}

func TestDeviceSilentSaysWhatItWeakens(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"], h.occ["store"] = 104, 104
	h.down["dc-01"] = true
	h.at(0)
	h.at(15)
	a := h.alert("device_silent:dc-01")
	if a == nil || !slices.Equal(a.Doors, []string{"main"}) || !strings.Contains(a.Summary, "entrance") {
		t.Fatalf("device alert %+v", a)
	}
	if lv := h.alert("level:entrance"); lv == nil || !lv.Uncertain || !strings.Contains(lv.Detail, "main") {
		t.Fatalf("the entrance's level alert is not marked uncertain: %+v", lv)
	}
	if u := h.alert("uncertain:entrance"); u == nil {
		t.Fatal("no uncertainty alert for the entrance")
	}
	h.down["dc-01"] = false
	h.at(16)
	if h.alert("device_silent:dc-01") != nil || h.alert("uncertain:entrance") != nil {
		t.Fatal("device alerts not resolved once it reports again")
	}
}

func TestSurgeAndTimeToFull(t *testing.T) {
	h := newHarness(t, testStore)
	// 2 people in through the main door every second: 120/min, surge limit 60/min.
	var in uint64
	for s := 0; s <= 60; s++ {
		in += 2
		h.doors["main"] = [2]uint64{in, 0}
		h.occ["entrance"], h.occ["store"] = int64(in)/4, int64(in)/4 // keep it below the levels
		h.at(s)
	}
	if a := h.alert("surge:entrance"); a == nil || a.Value != 120 {
		t.Fatalf("surge %+v", a)
	}
	z, _ := h.m.Status().Zone("entrance")
	if z.InflowPerMin != 120 || z.SecondsToFull == nil {
		t.Fatalf("zone status %+v", z)
	}
	// (100 - 30) people left at 120 net per minute: 35 s, within the 5-minute horizon.
	if *z.SecondsToFull != 35 {
		t.Fatalf("seconds to full %v, want 35", *z.SecondsToFull)
	}
	if a := h.alert("time_to_full:entrance"); a == nil {
		t.Fatal("no time-to-full alert")
	}
}

func TestRestartKeepsAcknowledgedAndDoesNotRepage(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"], h.occ["store"] = 104, 104
	h.at(0)
	h.at(15)
	h.run(func() { _, _ = h.m.Ack(context.Background(), "level:entrance", "li", "on it") })
	h.run(func() {
		_, _ = h.m.AddSilence(context.Background(), Silence{Device: "dc-03", End: h.now.Add(time.Hour), By: "li", Comment: "replacing it"})
	})
	h.run(func() { _, _ = h.m.Declare(context.Background(), "", "chief", "drill") })
	if err := h.m.Close(); err != nil {
		t.Fatal(err)
	}
	h.notes.take()

	h.open() // a restart, with the zone still over capacity
	h.at(20)
	a := h.alert("level:entrance")
	if a == nil || a.State != StateAcknowledged || a.AckBy != "li" || a.AckNote != "on it" {
		t.Fatalf("acknowledged alert not brought back: %+v", a)
	}
	if got := h.notes.take(); len(got) != 0 {
		t.Fatalf("a restart paged again: %+v", got)
	}
	if len(h.m.Status().Evacuations) != 1 {
		t.Fatal("the evacuation did not survive the restart")
	}
	var sil []Silence
	h.run(func() { sil, _ = h.m.Silences(context.Background()) })
	if len(sil) != 1 || sil[0].Comment != "replacing it" {
		t.Fatalf("silences after restart: %+v", sil)
	}
}

func TestReloadChangesThresholds(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"], h.occ["store"] = 70, 70
	h.at(0)
	if z, _ := h.m.Status().Zone("entrance"); z.Level != levels.Busy {
		t.Fatalf("level %s", z.Level)
	}
	next := *h.cfg
	next.Alerting.Defaults.CriticalRatio = ptr(0.65)
	next.Alerting.Defaults.WarningRatio = ptr(0.62)
	h.run(func() {
		if err := h.m.Reload(context.Background(), ConfigOf(&next)); err != nil {
			t.Error(err)
		}
	})
	h.at(20)
	if z, _ := h.m.Status().Zone("entrance"); z.Level != levels.Critical {
		t.Fatalf("after reload level %s, want critical", z.Level)
	}
	bad := next
	bad.Alerting.Defaults.WarningRatio = ptr(0.9) // above critical 0.65
	if err := h.m.Reload(context.Background(), ConfigOf(&bad)); err == nil {
		t.Fatal("an unordered reload was accepted")
	}
}

func TestAlertsFilter(t *testing.T) {
	h := newHarness(t, testStore)
	h.occ["entrance"], h.occ["store"] = 104, 104
	h.down["dc-03"] = true
	h.at(0)
	h.at(15)
	for _, c := range []struct {
		f    Filter
		want int
	}{{Filter{}, 3}, {Filter{Kind: "level"}, 1}, {Filter{Zone: "entrance"}, 1}, {Filter{Zone: "store"}, 1}, {Filter{State: "firing"}, 3}, {Filter{State: "acknowledged"}, 0}} {
		var got []Alert
		h.run(func() { got, _ = h.m.Alerts(context.Background(), c.f) })
		if len(got) != c.want {
			ids := []string{}
			for _, a := range got {
				ids = append(ids, a.ID)
			}
			t.Errorf("filter %+v: %d alerts %v, want %d", c.f, len(got), ids, c.want)
		}
	}
	if _, err := h.m.Alerts(context.Background(), Filter{State: "bogus"}); err == nil {
		t.Error("bad state accepted")
	}
	_ = fmt.Sprint(filepath.Separator)
}

// Changes arriving faster than minChangeGap are evaluated together, and the latest one is
// always evaluated (a burst never leaves the status behind the occupancy): the entrance's
// evacuation time follows its occupancy, so it names the snapshot evaluated.
func TestRunEvaluatesTheLatestOfABurst(t *testing.T) {
	h := newHarness(t, testStore)
	evac := func() float64 {
		z, ok := h.m.Status().Zone("entrance")
		if !ok || z.EvacSeconds == nil {
			return -1
		}
		return *z.EvacSeconds
	}
	h.occ["entrance"], h.occ["store"] = 120, 120
	h.at(0)
	want := evac()
	h.occ["entrance"], h.occ["store"] = 0, 0
	h.at(0)
	if want < 0 || evac() == want {
		t.Fatalf("evacuation time %v at 120 people and %v at 0: cannot tell snapshots apart", want, evac())
	}
	h.m.set.cfg.Alerting.EvaluateEvery = time.Hour // only changes cause evaluations here
	v0 := h.m.Status().Version
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = h.m.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for h.m.Status().Version == v0 { // Run's first evaluation, before the burst
		time.Sleep(time.Millisecond)
	}
	for n := int64(1); n <= 120; n++ {
		h.occ["entrance"], h.occ["store"] = n, n
		h.publish()
		select {
		case h.src.ch <- struct{}{}:
		default:
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for evac() != want {
		if time.Now().After(deadline) {
			t.Fatalf("after the burst the entrance's evacuation time is %v, want %v (120 people)", evac(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A device never heard from gets its own offline_after as the start-up grace: a vendor
// device that reports every 10 minutes is not paged silent 30 s after a restart.
func TestDeviceSilentWaitsForTheDevicesOwnAllowance(t *testing.T) {
	h := newHarness(t, testStore+`
devices:
  offline_after: 30s
  list:
    - {id: dc-02, offline_after: 15m}
`)
	never := func(sec int) {
		h.now = time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC).Add(time.Duration(sec) * time.Second)
		h.publish()
		h.src.mu.Lock()
		for i := range h.src.snap.Devices {
			h.src.snap.Devices[i].Online, h.src.snap.Devices[i].LastSeen = false, nil
		}
		h.src.mu.Unlock()
		h.m.step(h.now)
	}
	never(60)
	never(80)
	if h.alert("device_silent:dc-01") == nil {
		t.Fatal("dc-01 not reported silent past devices.offline_after")
	}
	if a := h.alert("device_silent:dc-02"); a != nil {
		t.Fatalf("dc-02 reported silent within its own offline_after: %+v", a)
	}
	never(16 * 60)
	never(16*60 + 20)
	if h.alert("device_silent:dc-02") == nil {
		t.Fatal("dc-02 not reported silent past its own offline_after")
	}
}
