package alerting

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Config is the part of the store file alerting reads, and what a reload swaps in (the zones
// and doors themselves must stay the same: they need a restart). ConfigOf takes it from a
// whole store file.
type Config struct {
	Site     configs.Site     // id and name, carried by every notification
	Alerting configs.Alerting // the alerting section: rules, escalation, routes, channels, playbook
	Zones    []configs.Zone   // zones[].alerts: each zone's thresholds over alerting.defaults
	Doors    []configs.Door   // stairs (evacuation flow) and entrances (playbook)
	Devices  configs.Devices  // offline_after: the start-up grace before a device counts as silent
	Location *time.Location   // site.timezone resolved, for the times in messages
	EventDay configs.EventDay // opening alert, drills (configs/eventday.go)
	// Events are the store file's promotion plans, for the opening alert when Options.Plans
	// is nil.
	Events []configs.EventPlan
}

// ConfigOf is alerting's part of a store file.
func ConfigOf(cfg *configs.Config) *Config {
	return &Config{Site: cfg.Site, Alerting: cfg.Alerting, Zones: cfg.Zones, Doors: cfg.Doors, Devices: cfg.Devices,
		Location: cfg.Location, EventDay: cfg.EventDay, Events: cfg.Events}
}

// Options wire a manager.
type Options struct {
	Config *Config
	// Path is the alert file (configs.Config.AlertsPath), opened by New.
	Path     string
	Model    *zones.Model
	Source   zones.Source // the occupancy engine's committed snapshots
	Notifier Notifier     // where notifications go; nil drops them
	Metrics  *Metrics
	// Messages is the catalogue the playbook's actions are rendered from; nil: the embedded one.
	Messages Catalogue
	Logger   *slog.Logger
	Now      func() time.Time
	// Plans are the promotion plans known now, the store file's and those made through the API
	// (promotion.Plans); nil: Config.Events.
	Plans func() []configs.EventPlan
}

// Notifier takes notifications for delivery; it must not block.
type Notifier interface {
	Notify(n Notification, routes []string)
}

// settings are the reloadable part of the config, resolved.
type settings struct {
	cfg    *Config
	limits []Limits
	topo   *topology
	play   *playbook
}

func newSettings(cfg *Config, m *zones.Model, cat Catalogue) (*settings, error) {
	play, err := newPlaybook(cfg, cat)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	s := &settings{cfg: cfg, topo: newTopology(m, cfg), limits: make([]Limits, len(m.Zones)), play: play}
	byID := map[string]*configs.Thresholds{}
	for i := range cfg.Zones {
		byID[cfg.Zones[i].ID] = cfg.Zones[i].Alerts
	}
	var errs []error
	for i, z := range m.Zones {
		l, err := ResolveLimits(byID[z.ID], &cfg.Alerting.Defaults)
		if err != nil {
			errs = append(errs, fmt.Errorf("zone %q: %w", z.ID, err))
		}
		s.limits[i] = l
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("alerting: %w", errors.Join(errs...))
	}
	return s, nil
}

// CheckLimits reports zones whose thresholds, merged over the defaults, are out of order, and
// playbook keys that are not in the embedded message catalogue.
func CheckLimits(cfg *configs.Config) error { return checkLimits(ConfigOf(cfg)) }

func checkLimits(cfg *Config) error {
	var errs []error
	if cat, err := DefaultCatalogue(); err != nil {
		errs = append(errs, err)
	} else if _, err := newPlaybook(cfg, cat); err != nil {
		errs = append(errs, err)
	}
	for i, z := range cfg.Zones {
		if _, err := ResolveLimits(z.Alerts, &cfg.Alerting.Defaults); err != nil {
			errs = append(errs, fmt.Errorf("zones[%d].alerts (zone %q, merged over alerting.defaults): %w", i, z.ID, err))
		}
	}
	return errors.Join(errs...)
}

// Manager evaluates alerts. Run owns all of its state; the API methods talk to it through a
// command channel and read the latest Status through an atomic pointer.
type Manager struct {
	opts    Options
	store   *store
	log     *slog.Logger
	metrics *Metrics
	cmds    *owner.Commands[func(now time.Time) (any, error)]
	stopped chan struct{}
	status  atomic.Pointer[Status]
	changed owner.Signal

	// Owned by Run.
	set      *settings
	levels   []levelTracker
	conds    map[string]*condTracker
	alerts   map[string]*Alert // open ones
	resolved []*Alert          // recently resolved, newest last, bounded
	silences map[string]*Silence
	evacs    map[string]*Evacuation
	trends   []trend
	drift    []series[driftSample]
	lastCorr []int64
	started  time.Time
	version  uint64
	pending  *changes
	outbox   []outgoing
	// The latest evaluation's per-zone figures, for the published Status.
	zoneStatus []ZoneStatus
	siteEvac   *float64
	// Open security findings by alert id (security.go).
	security map[string]security.Finding
	// Drills in force (eventday.go).
	eventDay *eventDay
	// Acknowledgements that reached this instance before their alert opened (earlyack.go).
	pendingAcks map[string]*PendingAck
}

type driftSample struct {
	at      time.Time
	clamped int64
}

func (s driftSample) when() time.Time { return s.at }

type outgoing struct {
	n      Notification
	routes []string
}

// ErrStopped is returned once the manager has stopped.
var ErrStopped = errors.New("alerting stopped")

// ErrNotFound is returned for an unknown alert, zone or silence.
var ErrNotFound = errors.New("not found")

const keepResolved = 1000

// New opens the alert database and brings back the open alerts, silences and evacuations.
func New(o Options) (*Manager, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Metrics == nil {
		o.Metrics = NewMetrics(nil)
	}
	if o.Messages == nil {
		cat, err := DefaultCatalogue()
		if err != nil {
			return nil, err
		}
		o.Messages = cat
	}
	if err := checkLimits(o.Config); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	set, err := newSettings(o.Config, o.Model, o.Messages)
	if err != nil {
		return nil, err
	}
	st, err := openStore(o.Path, o.Config.Site.ID)
	if err != nil {
		return nil, err
	}
	l, err := st.load()
	if err != nil {
		st.close()
		return nil, err
	}
	n := len(o.Model.Zones)
	m := &Manager{opts: o, store: st, log: o.Logger, metrics: o.Metrics,
		stopped: make(chan struct{}), set: set,
		levels: make([]levelTracker, n), conds: map[string]*condTracker{}, alerts: map[string]*Alert{},
		silences: l.silences, evacs: l.evacs, pendingAcks: l.acks, trends: make([]trend, n), drift: make([]series[driftSample], n),
		lastCorr: make([]int64, n), started: o.Now(), pending: newChanges()}
	m.cmds = owner.NewCommands[func(now time.Time) (any, error)](m.stopped, ErrStopped)
	for id, a := range l.alerts {
		if !a.Open() {
			m.resolved = append(m.resolved, a)
			continue
		}
		m.alerts[id] = a
		// An alert open before the restart is still held: it must neither fire again nor
		// wait out its hold-down, so nobody is paged twice for it.
		m.conds[id] = &condTracker{Fired: true, Above: a.StartsAt}
		m.restoreSecurity(a)
		if a.Kind == KindLevel {
			if z, ok := o.Model.Zone(a.Zone); ok && a.Level > m.levels[z].Level {
				m.levels[z] = levelTracker{Level: a.Level, Since: a.StartsAt}
			}
		}
	}
	if err := m.restoreDrills(); err != nil {
		st.close()
		return nil, err
	}
	slices.SortFunc(m.resolved, func(a, b *Alert) int { return a.EndsAt.Compare(*b.EndsAt) })
	if len(m.resolved) > keepResolved {
		m.resolved = m.resolved[len(m.resolved)-keepResolved:]
	}
	if snap := o.Source.Snapshot(); snap != nil {
		for z := range m.lastCorr {
			m.lastCorr[z] = snap.Zones[z].Corrected + snap.Zones[z].Anchored
		}
	}
	m.publish(o.Now(), o.Source.Snapshot())
	return m, nil
}

// Close closes the alert database; call it after Run has returned.
func (m *Manager) Close() error { return m.store.close() }

// Status returns the latest alerting view. It never blocks.
func (m *Manager) Status() *Status { return m.status.Load() }

// Subscribe returns a channel signalled (coalesced) after each new Status, and a function
// that unsubscribes.
func (m *Manager) Subscribe() (<-chan struct{}, func()) { return m.changed.Subscribe() }

// Run evaluates on every occupancy change and every alerting.evaluate_every until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	defer close(m.stopped)
	changed, unsubscribe := m.opts.Source.Subscribe()
	defer unsubscribe()
	tick := time.NewTicker(m.set.cfg.Alerting.EvaluateEvery)
	defer tick.Stop()
	// A busy store commits hundreds of times a second; evaluating after each commit cost 9%
	// of the service's CPU at saturation (docs/benchmarks.md). A change after a quiet spell is
	// evaluated at once, later ones at most every minChangeGap, which is far inside every
	// hold-down. Every evaluation counts as the pacer's last one, whatever caused it.
	pace := owner.NewPacer(minChangeGap, owner.Leading)
	defer pace.Stop()
	step := func(now time.Time) { m.step(now); pace.Sent() }
	step(m.opts.Now())
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
			if !pace.Ready() {
				continue
			}
		case <-pace.C():
			pace.Fired()
		case <-tick.C:
		case c := <-m.cmds.Requests():
			now := m.opts.Now()
			v, err := c.Req(now)
			step(now)
			c.Reply(v, err)
			continue
		}
		step(m.opts.Now())
	}
}

// minChangeGap is the least time between two evaluations caused by occupancy changes.
const minChangeGap = 50 * time.Millisecond

// step evaluates, stores the transitions, publishes the new status, then hands the
// notifications to the channels: people are paged only for what is on disk.
func (m *Manager) step(now time.Time) {
	snap := m.opts.Source.Snapshot()
	if snap == nil {
		return
	}
	m.evaluate(now, snap)
	m.flush(now, snap)
}

func (m *Manager) flush(now time.Time, snap *zones.Snapshot) {
	if !m.pending.empty() {
		if err := m.store.write(m.pending); err != nil {
			m.metrics.storeErrors.Inc()
			m.log.Error("alerting: storing alert transitions failed; alerts keep working but a restart may repeat them",
				"path", m.store.path, "error", err)
		}
		m.pending = newChanges()
	}
	m.publish(now, snap)
	for _, o := range m.outbox {
		if m.opts.Notifier != nil {
			m.opts.Notifier.Notify(o.n, o.routes)
		}
	}
	m.outbox = m.outbox[:0]
}

// do runs fn inside Run and waits for its effects to be stored.
func (m *Manager) do(ctx context.Context, fn func(now time.Time) (any, error)) (any, error) {
	return m.cmds.Do(ctx, fn)
}

// condTracker is the hold-down and clearing of a non-level condition.
type condTracker struct {
	Fired bool
	Above time.Time // since when the condition has held
	Below time.Time // since when it has been clear (while fired)
}

// candidate is an alert condition found by one evaluation.
type candidate struct {
	alert Alert
	// active: the trigger is met; held: the figure is still above its clear line.
	active, held bool
	hold, clear  time.Duration
	// unknown: the figures to judge it are not there yet (a trend warming up); an open alert
	// stays as it is.
	unknown bool
}

// evaluate runs every rule over the latest snapshot and reconciles the candidates they return
// with the open alerts. The order of the rules is the order candidates are appended in.
func (m *Manager) evaluate(now time.Time, snap *zones.Snapshot) {
	set := m.set
	status := make([]ZoneStatus, len(snap.Zones))
	var cands []candidate

	live := m.liveDevices(now, snap)
	for z := range snap.Zones {
		e := m.zoneFigures(now, snap, z, live)
		status[z] = e.st
		cands = append(cands, m.levelRule(e)...)
		cands = append(cands, m.surgeRule(e)...)
		cands = append(cands, m.timeToFullRule(e)...)
		cands = append(cands, m.evacTimeRule(e)...)
		cands = append(cands, m.uncertainRule(e)...)
		cands = append(cands, m.driftRule(now, e)...)
		cands = append(cands, m.correctionRule(now, e)...)
	}
	cands = append(cands, m.deviceSilentRule(snap, live)...)
	siteEvac, siteCands := m.siteEvacTimeRule(snap)
	cands = append(cands, siteCands...)
	cands = append(cands, m.evacuationRule()...)
	cands = append(cands, m.eventDayRules(now, snap)...) // drills, opening queue, doors open: eventday.go
	cands = append(cands, m.securityCandidates(now)...)

	for i := range cands {
		set.play.describe(&cands[i].alert)
	}
	m.reconcile(now, cands)
	if len(m.pendingAcks) > 0 {
		m.prunePendingAcks(now)
	}
	m.zoneStatus, m.siteEvac = status, siteEvac
}

// zoneEval holds one zone's figures for one evaluation, shared by the zone rules.
type zoneEval struct {
	z     int
	zs    *zones.ZoneState
	l     *Limits
	info  zones.ZoneInfo
	name  string
	level levels.Level
	shown levels.Level
	weak  []string // doors of the zone without a live counter
	st    ZoneStatus
	// The zone's flow over the surge window; trendOK is false while it warms up.
	inflow, net float64
	trendOK     bool
	toFull      float64 // seconds to capacity at the net rate, when it is rising
}

// params are the params every zone alert's messages take; each kind adds its own.
func (e *zoneEval) params(kv ...any) map[string]any {
	p := map[string]any{"zone": e.zs.ID, "zone_name": e.name}
	for i := 0; i+1 < len(kv); i += 2 {
		p[kv[i].(string)] = kv[i+1]
	}
	return p
}

// liveDevices says which devices count as live. A device never heard from counts as live
// until the service has waited its offline_after for it (the device's own, else
// devices.offline_after), so a start-up does not page anyone before the devices have had a
// chance: a vendor device that reports every 15 min gets its 15 min.
func (m *Manager) liveDevices(now time.Time, snap *zones.Snapshot) map[string]bool {
	up := now.Sub(m.started)
	live := map[string]bool{}
	for _, d := range snap.Devices {
		live[d.ID] = d.Online || (d.LastSeen == nil && up < m.set.cfg.Devices.OfflineAfterFor(d.ID))
	}
	return live
}

// zoneFigures steps zone z's level and trend trackers and works out its status figures.
func (m *Manager) zoneFigures(now time.Time, snap *zones.Snapshot, z int, live map[string]bool) *zoneEval {
	set := m.set
	a := &set.cfg.Alerting
	zs := &snap.Zones[z]
	l := &set.limits[z]
	info := set.topo.zones[z]
	level := m.levels[z].step(l, zs.Ratio, zs.Density, now)
	shown := m.levels[z].Shown
	st := ZoneStatus{Zone: zs.ID, Level: level, Shown: shown, limits: l}
	if lv, since, ok := m.levels[z].pending(); ok {
		st.Pending, st.PendingSince = &lv, &since
	}
	weak := set.topo.uncertainDoors(z, live)
	st.Uncertain = len(weak) > 0

	in, out := set.topo.zoneFlows(z, snap.Doors)
	m.trends[z].add(flowSample{at: now, in: in, out: out}, l.SurgeWindow)
	inflow, net, trendOK := m.trends[z].rates(l.SurgeWindow)
	st.InflowPerMin, st.NetPerMin = round1(inflow), round1(net)
	var toFull float64
	if trendOK && net > 0 {
		toFull = max(0, float64(int64(zs.Capacity)-zs.Occupancy)/net*60) // the capacity in force (promotion.InForce)
		st.SecondsToFull = ptr(round1(toFull))
	}
	if t, ok := evacSeconds(zs.Occupancy, set.topo.exits[z], a.Evacuation.PreMovement); ok {
		st.EvacSeconds = ptr(round1(t))
	}
	return &zoneEval{z: z, zs: zs, l: l, info: info, name: cmp.Or(info.Name, info.ID), level: level, shown: shown,
		weak: weak, st: st, inflow: inflow, net: net, trendOK: trendOK, toFull: toFull}
}

func alertID(a *Alert) string {
	if a.Kind == KindSecurity {
		return securityAlertID(a.SecurityKind, a.Source)
	}
	if planAlert(a.Kind) && a.Detail != "" {
		// Per plan (Detail is its id): two plans whose opening notices overlap (one's doors
		// at 11:58, the next's at 12:00) each get their own alert and notice.
		return string(a.Kind) + ":" + a.Detail
	}
	subject := cmp.Or(a.Zone, a.Device, "site")
	return string(a.Kind) + ":" + subject
}

// planAlert says whether alerts of kind k are a plan's (their id names the plan).
func planAlert(k Kind) bool { return k == KindOpeningQueue || k == KindDoorsOpen }

// reconcile turns this evaluation's candidates into alert transitions.
func (m *Manager) reconcile(now time.Time, cands []candidate) {
	seen := map[string]bool{}
	for i := range cands {
		c := &cands[i]
		id := alertID(&c.alert)
		seen[id] = true
		t := m.conds[id]
		if t == nil {
			t = &condTracker{}
			m.conds[id] = t
		}
		if c.unknown {
			continue
		}
		if c.active {
			if t.Above.IsZero() {
				t.Above = now
			}
		} else {
			t.Above = time.Time{}
		}
		switch {
		case !t.Fired && c.active && now.Sub(t.Above) >= c.hold:
			t.Fired, t.Below = true, time.Time{}
			m.fire(now, id, &c.alert)
		case t.Fired && c.held:
			t.Below = time.Time{}
			m.update(now, id, &c.alert)
		case t.Fired:
			if t.Below.IsZero() {
				t.Below = now
			}
			if now.Sub(t.Below) >= c.clear {
				t.Fired = false
				m.resolve(now, id)
			}
		}
	}
	for id, t := range m.conds {
		if seen[id] {
			continue
		}
		// The condition is gone altogether (the level fell below warning, the device came
		// back, the evacuation was stood down): level hysteresis already happened in the
		// level tracker, and nothing else has a clearing delay to wait out.
		if t.Fired {
			m.resolve(now, id)
		}
		delete(m.conds, id)
	}
	m.inhibitSilenceEscalate(now)
}

func (m *Manager) fire(now time.Time, id string, c *Alert) {
	if a := m.alerts[id]; a != nil { // restored open alert whose tracker was reset
		m.update(now, id, c)
		return
	}
	a := *c
	a.ID, a.State, a.StartsAt, a.UpdatedAt, a.Notified, a.EscalatedAt = id, StateFiring, now, now, now, now
	m.alerts[id] = &a
	a.Inhibited, a.Silenced = m.muted(&a, now)
	m.metrics.fired.WithLabelValues(string(a.Kind), string(a.Severity)).Inc()
	m.record(now, &a, "fired", "", "")
	if a.Kind == KindLevel && a.Level == levels.Evacuate {
		m.record(now, &a, "evacuation_recommended", "", "")
	}
	m.log.Warn("alert fired", "id", id, "severity", a.Severity, "summary", a.Summary)
	m.notify(&a, "fired")
	m.takePendingAck(now, &a)
}

func (m *Manager) update(now time.Time, id string, c *Alert) {
	a := m.alerts[id]
	if a == nil {
		return
	}
	worse := c.Severity.Rank() > a.Severity.Rank() || (c.Kind == KindLevel && c.Level > a.Level)
	changed := a.Summary != c.Summary || a.Uncertain != c.Uncertain || a.Level != c.Level || a.Severity != c.Severity
	a.Value, a.Summary, a.Detail, a.Uncertain, a.Doors = c.Value, c.Summary, c.Detail, c.Uncertain, c.Doors
	a.SummaryKey, a.Params, a.ActionKey, a.Action, a.ActionText = c.SummaryKey, c.Params, c.ActionKey, c.Action, c.ActionText
	prevLevel := a.Level
	a.Level, a.Severity = c.Level, c.Severity
	if !changed {
		return
	}
	a.UpdatedAt = now
	m.pending.alerts[id] = a
	if worse {
		// A worse level pages again from the start, even if the milder one was acknowledged.
		a.State, a.AckBy, a.AckAt, a.AckNote = StateFiring, "", nil, ""
		a.Escalation, a.Notified, a.EscalatedAt = 0, now, now
		m.record(now, a, "worsened", "", "")
		if a.Kind == KindLevel && a.Level == levels.Evacuate && prevLevel < levels.Evacuate {
			m.record(now, a, "evacuation_recommended", "", "")
		}
		m.log.Warn("alert worsened", "id", id, "severity", a.Severity, "summary", a.Summary)
		m.notify(a, "worsened")
	}
}

func (m *Manager) resolve(now time.Time, id string) {
	a := m.alerts[id]
	if a == nil {
		return
	}
	delete(m.alerts, id)
	end := now
	a.State, a.EndsAt, a.UpdatedAt = StateResolved, &end, now
	a.NextEscalationAt = nil // nobody will be paged for it any more
	m.pending.alerts[id] = a
	m.resolved = append(m.resolved, a)
	if len(m.resolved) > keepResolved {
		m.resolved = slices.Delete(m.resolved, 0, len(m.resolved)-keepResolved)
	}
	m.record(now, a, "resolved", "", "")
	m.log.Info("alert resolved", "id", id, "summary", a.Summary)
	m.notify(a, "resolved")
}

func (m *Manager) record(now time.Time, a *Alert, what, by, note string) {
	m.pending.alerts[a.ID] = a
	m.pending.events = append(m.pending.events, &Event{At: now, AlertID: a.ID, Kind: a.Kind, Zone: a.Zone, Device: a.Device,
		What: what, Severity: a.Severity, Level: a.Level, By: by, Note: note})
}

func (m *Manager) publish(now time.Time, snap *zones.Snapshot) {
	m.version++
	s := &Status{Version: m.version, At: now, Zones: m.zoneStatus, SiteEvacSeconds: m.siteEvac}
	if s.Zones == nil && snap != nil {
		for _, z := range snap.Zones {
			s.Zones = append(s.Zones, ZoneStatus{Zone: z.ID})
		}
	}
	affected := map[string]bool{}
	for _, ev := range m.evacs {
		s.Evacuations = append(s.Evacuations, *ev)
		for _, z := range ev.Affected {
			affected[z] = true
		}
	}
	s.index = make(map[string]int, len(s.Zones))
	for i := range s.Zones {
		s.Zones[i].Evacuating = affected[s.Zones[i].Zone]
		s.index[s.Zones[i].Zone] = i
	}
	slices.SortFunc(s.Evacuations, func(a, b Evacuation) int { return cmp.Compare(a.Zone, b.Zone) })
	s.Drills = m.drillView()
	for _, a := range m.alerts {
		if a.Kind == KindSecurity {
			s.Security = append(s.Security, *a)
			continue
		}
		s.Alerts = append(s.Alerts, *a)
	}
	sortAlerts(s.Security)
	sortAlerts(s.Alerts)
	counts := map[[2]string]float64{}
	for _, a := range m.alerts {
		if a.State == StateFiring {
			counts[[2]string{string(a.Kind), string(a.Severity)}]++
		}
	}
	m.metrics.setFiring(counts)
	m.status.Store(s)
	m.changed.Notify()
}

// sortAlerts puts the most severe first, then unacknowledged, then the oldest.
func sortAlerts(as []Alert) {
	slices.SortFunc(as, func(a, b Alert) int {
		return cmp.Or(-cmp.Compare(a.Severity.Rank(), b.Severity.Rank()),
			cmp.Compare(firingFirst(a.State), firingFirst(b.State)), a.StartsAt.Compare(b.StartsAt), cmp.Compare(a.ID, b.ID))
	})
}

func firingFirst(s State) int {
	if s == StateFiring {
		return 0
	}
	return 1
}

func round1(v float64) float64 { return float64(int64(v*10+0.5*sign(v))) / 10 }

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

func humanDuration(seconds float64) string {
	switch {
	case seconds < 90:
		return fmt.Sprintf("%.0f s", seconds)
	case seconds < 5400:
		return fmt.Sprintf("%.0f min", seconds/60)
	}
	return fmt.Sprintf("%.1f h", seconds/3600)
}
