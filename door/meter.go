package door

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

// AlertSource is what the meter reads from alerting: each zone's shown level and whether its
// figure is certain (alerting.Status.Show). nil: the built-in thresholds, always certain.
type AlertSource interface {
	Status() *alerting.Status
	Subscribe() (<-chan struct{}, func())
}

// EpisodeKeeper keeps a finished metering episode for the review (Records over the alert
// file). It may wait on its owner; the meter calls it from its own writer goroutine.
type EpisodeKeeper interface {
	KeepEpisode(ctx context.Context, ep promotion.MeteringEpisode) error
}

// Options wire a Meter.
type Options struct {
	Config     *configs.Config
	Model      *zones.Model
	Engine     zones.Source
	Alerts     AlertSource // nil: built-in thresholds
	Capacities Capacities  // nil: NewPlanCapacities(Config)
	// Plans are the promotion plans known now, the store file's and the API's
	// (promotion.Plans); nil: Config.Events.
	Plans    func() []configs.EventPlan
	Episodes EpisodeKeeper
	// Tick is how often the meter steps between changes (releases are due on time, not on
	// commits); default 250 ms.
	Tick time.Duration
	Now  func() time.Time
	Log  *slog.Logger
}

// Meter owns every metered door's state (one goroutine, Run) and publishes the admissions
// through an atomic pointer and a coalesced signal, like the engine and the alert manager.
type Meter struct {
	o       Options
	doors   map[string]doorInfo
	state   atomic.Pointer[map[string]guidance.Admission]
	changed owner.Signal
	keep    chan promotion.MeteringEpisode
	// open are the episodes under way as of the last step (OpenEpisodes).
	open atomic.Pointer[[]promotion.MeteringEpisode]
}

// doorInfo is what the meter knows of a door from the layout.
type doorInfo struct {
	index int      // in the model
	path  []string // the zones an entering person is added to
	in    bool     // entering is the door's "in" crossing (From -> To)
	rate  float64  // half the door's flow limit
}

// NewMeter builds the meter; Run starts it.
func NewMeter(o Options) *Meter {
	if o.Tick <= 0 {
		o.Tick = 250 * time.Millisecond
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Capacities == nil {
		o.Capacities = NewPlanCapacities(o.Config)
	}
	m := &Meter{o: o, doors: map[string]doorInfo{}, keep: make(chan promotion.MeteringEpisode, 64)}
	width := map[string]float64{}
	for _, d := range o.Config.Doors {
		width[d.ID] = d.WidthM
	}
	for i, d := range o.Model.Doors {
		into, in := d.To, true
		if d.To == configs.Outside {
			into, in = d.From, false
		}
		route := guidance.RouteFor(configs.Screen{Zone: into, Door: d.ID}, o.Model)
		m.doors[d.ID] = doorInfo{index: i, path: route.Guards, in: in,
			rate: width[d.ID] * o.Config.Alerting.Evacuation.FlowPerMetre / 2}
	}
	empty := map[string]guidance.Admission{}
	m.state.Store(&empty)
	return m
}

// DefaultRate is a metered door's release rate when its plan gives none: half the door's flow
// limit (width_m x alerting.evacuation.flow_per_metre / 2), or 10 a minute for a door without
// a width (a cautious figure: a door nobody measured is not assumed wide).
func (m *Meter) DefaultRate(door string) float64 {
	if r := m.doors[door].rate; r > 0 {
		return r
	}
	return 10
}

// Admission is what a metered door says now; ok is false for a door not metered now.
func (m *Meter) Admission(door string) (guidance.Admission, bool) {
	a, ok := (*m.state.Load())[door]
	return a, ok
}

// Admissions are every metered door's admission now.
func (m *Meter) Admissions() map[string]guidance.Admission { return *m.state.Load() }

// OpenEpisodes are the metering episodes under way (not yet kept), as of the meter's last
// step: a review made while the doors are still metered shows them too.
func (m *Meter) OpenEpisodes() []promotion.MeteringEpisode {
	if p := m.open.Load(); p != nil {
		return slices.Clone(*p)
	}
	return nil
}

// Subscribe returns a channel signalled (coalesced) after each change of admissions.
func (m *Meter) Subscribe() (<-chan struct{}, func()) { return m.changed.Subscribe() }

// Run owns the metered doors until ctx ends; an episode still open then is kept as it is.
func (m *Meter) Run(ctx context.Context) {
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); m.writer() }()
	defer func() { close(m.keep); <-writerDone }()
	engineCh, unsubscribe := m.o.Engine.Subscribe()
	defer unsubscribe()
	var alertCh <-chan struct{}
	if m.o.Alerts != nil {
		ch, cancel := m.o.Alerts.Subscribe()
		defer cancel()
		alertCh = ch
	}
	tick := time.NewTicker(m.o.Tick)
	defer tick.Stop()
	gates := map[string]*gate{}
	defer func() {
		for _, g := range gates {
			m.kept(g.finish())
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-engineCh:
		case <-alertCh:
		case <-tick.C:
		}
		m.step(m.o.Now(), gates)
	}
}

// step works out every metered door's admission from the latest figures.
func (m *Meter) step(now time.Time, gates map[string]*gate) {
	snap := m.o.Engine.Snapshot()
	if snap == nil {
		return
	}
	var status *alerting.Status
	if m.o.Alerts != nil {
		status = m.o.Alerts.Status()
	}
	plans := m.o.Config.Events
	if m.o.Plans != nil {
		plans = m.o.Plans()
	}
	plan := RunningPlan(plans, now)
	metered := map[string]configs.MeteredDoor{}
	if plan != nil {
		for _, md := range plan.Metered {
			metered[md.Door] = md
		}
	}
	// Doors no longer metered (the plan ended): their episodes end now.
	for id, g := range gates {
		if _, ok := metered[id]; !ok {
			m.kept(g.finish())
			delete(gates, id)
		}
	}
	out := make(map[string]guidance.Admission, len(metered))
	for id, md := range metered {
		info, ok := m.doors[id]
		if !ok {
			continue
		}
		g := gates[id]
		if g == nil {
			rate := md.RatePerMin
			if rate <= 0 {
				rate = m.DefaultRate(id)
			}
			g = newGate(id, rate)
			gates[id] = g
		}
		in := inputs{now: now, open: !now.Before(plan.DoorsOpen), trusted: true}
		d := snap.Doors[info.index]
		in.entered = d.Out
		if info.in {
			in.entered = d.In
		}
		for _, zid := range info.path {
			zi, ok := m.o.Model.Zone(zid)
			if !ok || zi >= len(snap.Zones) {
				in.trusted = false
				continue
			}
			z := snap.Zones[zi]
			shown := status.Show(z)
			in.trusted = in.trusted && !shown.Uncertain
			f := zoneFig{id: zid, occ: z.Occupancy, capacity: m.o.Capacities.CapacityAt(zid, now), critical: shown.Level >= levels.Critical}
			f.exits, f.entries = crossings(m.o.Model, snap, zi)
			in.path = append(in.path, f)
		}
		if md.Queue != "" {
			if q, ok := snap.Zone(md.Queue); ok {
				v := q.Occupancy
				in.queue = &v
			}
		}
		a, done := g.step(in)
		m.kept(done)
		out[id] = a
	}
	var open []promotion.MeteringEpisode
	for _, g := range gates {
		if ep := g.current(); ep != nil {
			open = append(open, *ep)
		}
	}
	m.open.Store(&open)
	prev := *m.state.Load()
	m.state.Store(&out)
	if !sameAdmissions(prev, out) {
		m.changed.Notify()
	}
}

// crossings are zone zi's exits and entries through all its doors since the file was made.
func crossings(model *zones.Model, snap *zones.Snapshot, zi int) (exits, entries uint64) {
	for i, d := range model.Doors {
		if i >= len(snap.Doors) {
			break
		}
		ds := snap.Doors[i]
		if slices.Contains(d.Gain, zi) { // an "in" crossing enters zi
			entries, exits = entries+ds.In, exits+ds.Out
		}
		if slices.Contains(d.Lose, zi) {
			entries, exits = entries+ds.Out, exits+ds.In
		}
	}
	return exits, entries
}

func sameAdmissions(a, b map[string]guidance.Admission) bool {
	if len(a) != len(b) {
		return false
	}
	for k, x := range a {
		y, ok := b[k]
		if !ok || x.State != y.State || x.Granted != y.Granted || x.Mode != y.Mode || x.Reason != y.Reason ||
			x.LimitingZone != y.LimitingZone || !sameWait(x.WaitSeconds, y.WaitSeconds) {
			return false
		}
	}
	return true
}

func sameWait(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return int(*a/60) == int(*b/60) // the screens show whole minutes
}

// kept hands a finished episode to the writer without waiting (dropped, and logged, when
// 64 are waiting already: the door's control never waits for the review's records).
func (m *Meter) kept(ep *promotion.MeteringEpisode) {
	if ep == nil || m.o.Episodes == nil {
		return
	}
	select {
	case m.keep <- *ep:
	default:
		m.o.Log.Error("door: metering episode not kept, the writer is behind", "door", ep.Door, "from", ep.From)
	}
}

func (m *Meter) writer() {
	for ep := range m.keep {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := m.o.Episodes.KeepEpisode(ctx, ep); err != nil {
			m.o.Log.Error("door: metering episode not kept", "door", ep.Door, "from", ep.From, "error", err)
		}
		cancel()
		m.o.Log.Info("door: metering episode", "door", ep.Door, "from", ep.From, "to", ep.To, "admitted", ep.Admitted,
			"held_for", ep.HeldFor, "queue_max", ep.QueueMax)
	}
}
