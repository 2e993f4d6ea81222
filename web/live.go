package web

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

// AlertSource is what the live feed needs from alerting: the latest status (per-zone level,
// open alerts, evacuations) and a signal after each new one. Subscribe's channel is coalesced
// and never blocks the sender; the returned func unsubscribes.
type AlertSource interface {
	Status() *alerting.Status
	Subscribe() (<-chan struct{}, func())
}

// Layout is what the live feed and the pages show of the store file (LayoutOf).
type Layout struct {
	Site    configs.Site
	Zones   []configs.Zone      // their names per language
	Floors  []configs.Floor     // the dashboard's map
	Screens []configs.Screen    // the guidance screens, in the store file's order
	Signage configs.Signage     // hold and stale_after
	Events  []configs.EventPlan // the store file's promotion plans (LiveOptions.Plans: all)
	// Model is the store's topology, from which each screen's route is found (required
	// when there are screens).
	Model *zones.Model
	// Peers are the origins of every instance of the store (ha.peers): the pages may probe
	// and move to these, and to nothing else (web/peers.go).
	Peers []string
}

// LayoutOf is the layout of a store file, on its model (nil: zones.NewModel(cfg)).
func LayoutOf(cfg *configs.Config, model *zones.Model) Layout {
	if model == nil {
		model = zones.NewModel(cfg)
	}
	return Layout{Site: cfg.Site, Zones: cfg.Zones, Floors: cfg.Floors, Screens: cfg.Screens, Signage: cfg.Signage,
		Events: cfg.Events, Model: model, Peers: cfg.HA.PeerOrigins()}
}

// Screen finds a screen by its id.
func (l Layout) Screen(id string) (configs.Screen, bool) {
	for _, s := range l.Screens {
		if s.ID == id {
			return s, true
		}
	}
	return configs.Screen{}, false
}

// LiveOptions configure the live feed.
type LiveOptions struct {
	Layout Layout
	Engine zones.Source
	// Alerts, when set, gives each zone's level, the open alerts and the evacuations. When
	// nil, levels come from the built-in thresholds (levels.Instant) and there are no alerts or evacuations.
	Alerts AlertSource
	// Publisher and GuidanceTopic, when set, publish each screen's guidance retained.
	Publisher     Publisher
	GuidanceTopic func(screen string) string
	// Catalogue renders the guidance texts (assets.Messages()).
	Catalogue guidance.Catalogue
	// Admissions, when set, meter the screens at metered entrances (door.Meter; web/live_door.go).
	Admissions AdmissionSource
	// Plans are the promotion plans known now, the store file's and the API's (promotion.Plans),
	// for the dashboard's countdown; nil: Layout.Events.
	Plans func() []configs.EventPlan
	// Interval is the least time between two updates while the feed is behind (a client's
	// queue holds an unwritten message): a change goes out at once when the last update is
	// older, else when Interval has passed since it; default 50 ms. While every client has
	// written what it was sent, the least time is Interval/10.
	Interval time.Duration
	// Heartbeat is how often an idle feed says it is alive; default 2 s.
	Heartbeat time.Duration
	// SendBuffer is how many messages may wait for one client before it is dropped; default 32.
	SendBuffer int
	// Limits bound the connections (http.feed.* in the store file).
	Limits FeedLimits
	Now    func() time.Time
	Log    *slog.Logger
}

// Live is the live feed: one goroutine (Run) owns the latest view, the guidance each screen
// shows and the set of clients; it sends every client its messages through the client's
// bounded queue and drops a client whose queue is full.
type Live struct {
	o LiveOptions
	// joins ask Run to take a client; Run answers "" (taken) or the limit that refused it.
	joins      *owner.Commands[*client]
	unregister chan *client
	done       chan struct{}
	guidance   atomic.Pointer[map[string]guidance.Guidance]
	floors     []floorView
	routes     map[string]guidance.Route    // per screen: the zones it guards, its alternatives' routes
	zoneNames  map[string]map[string]string // zone id -> names per language
	// dataAt is when a device's report was last applied (its report count rose): the age of
	// the newest count, which the dashboard shows; reports seen before count as of last seen.
	dataAt  time.Time
	reports map[string]uint64
	clients atomic.Int64
	drops   atomic.Int64
	refused *prometheus.CounterVec
}

// NewLive builds the feed; Run starts it.
func NewLive(o LiveOptions) *Live {
	if o.Interval <= 0 {
		o.Interval = 50 * time.Millisecond
	}
	if o.Heartbeat <= 0 {
		o.Heartbeat = 2 * time.Second
	}
	if o.SendBuffer <= 0 {
		o.SendBuffer = 32
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	o.Limits = o.Limits.withDefaults()
	l := &Live{o: o, unregister: make(chan *client), done: make(chan struct{}),
		refused: newRefusedCounter(), zoneNames: map[string]map[string]string{}, reports: map[string]uint64{}}
	l.joins = owner.NewCommands[*client](l.done, errFeedStopped)
	for _, z := range o.Layout.Zones {
		l.zoneNames[z.ID] = z.Names.ByLanguage(z.Name)
	}
	for _, f := range o.Layout.Floors {
		fv := floorView{ID: f.ID, Name: f.Name, Names: f.Names.ByLanguage(f.Name), Width: f.Width, Height: f.Height, Zones: []floorZone{}}
		if f.Plan != "" {
			fv.Plan = "/plans/" + f.ID
		}
		for _, z := range f.Zones {
			fv.Zones = append(fv.Zones, floorZone{Zone: z.Zone, Polygon: z.Polygon})
		}
		l.floors = append(l.floors, fv)
	}
	l.routes = map[string]guidance.Route{}
	for _, s := range o.Layout.Screens {
		l.routes[s.ID] = guidance.RouteFor(s, o.Layout.Model)
	}
	empty := map[string]guidance.Guidance{}
	l.guidance.Store(&empty)
	return l
}

// namesOf is a zone's names per language: the store file's, else its one name in every
// language.
func (l *Live) namesOf(z zones.ZoneState) map[string]string {
	if n := l.zoneNames[z.ID]; n != nil {
		return n
	}
	return configs.Names{"": z.Name}.ByLanguage("")
}

// Guidance returns what a screen shows now.
func (l *Live) Guidance(screen string) (guidance.Guidance, bool) {
	g, ok := (*l.guidance.Load())[screen]
	return g, ok
}

// Clients is the number of connected feed clients; Drops counts clients dropped as too slow.
func (l *Live) Clients() int64 { return l.clients.Load() }
func (l *Live) Drops() int64   { return l.drops.Load() }

// view is everything the feed shows at one moment.
type view struct {
	zones       []zoneView
	devices     []zones.DeviceStatus
	alerts      []alerting.Alert
	evacuations []alerting.Evacuation
	drills      []alerting.Drill
	plan        *countdownView
	screens     map[string]guidance.Guidance
	dataAt      time.Time
}

// Run owns the feed until ctx ends, then closes every client.
func (l *Live) Run(ctx context.Context) {
	defer close(l.done)
	engineCh, unsubscribeEngine := l.o.Engine.Subscribe()
	defer unsubscribeEngine()
	var alertCh <-chan struct{}
	if l.o.Alerts != nil {
		ch, unsubscribe := l.o.Alerts.Subscribe()
		defer unsubscribe()
		alertCh = ch
	}
	var admitCh <-chan struct{}
	if l.o.Admissions != nil {
		ch, unsubscribe := l.o.Admissions.Subscribe()
		defer unsubscribe()
		admitCh = ch
	}
	pubCh := make(chan map[string][]byte, 1)
	if l.o.Publisher != nil && l.o.GuidanceTopic != nil {
		pubDone := make(chan struct{})
		pubCtx, stop := context.WithCancel(context.Background())
		go func() { defer close(pubDone); l.publish(pubCtx, pubCh) }()
		defer func() { stop(); <-pubDone }()
	}
	clients := newClientRegistry(l)
	defer clients.closeAll()
	var seq uint64
	// Leading-edge coalescing: the first change after a quiet spell goes out at once (a
	// surge at an entrance reaches the screens within a commit), later ones wait for the
	// interval since the last update, so a busy store sends at most one update per interval.
	// Paced only under load: while every client has written what it was sent, a change goes
	// out sooner (at a store's load the feed is idle between commits, and holding each for
	// the interval made every report wait for it), by how many clients it reaches
	// (clientRegistry.gap).
	pace := owner.NewPacer(l.o.Interval, owner.Leading)
	pace.PaceUnderLoad(func() time.Duration { return clients.gap(l.o.Interval) })
	defer pace.Stop()
	beat := time.NewTicker(l.o.Heartbeat)
	defer beat.Stop()
	staleAfter := l.o.Layout.Signage.StaleAfter
	if staleAfter <= 0 {
		staleAfter = 10 * time.Second
	}
	republish := time.Duration(0)
	cur := l.build(nil)
	l.storeGuidance(cur)
	l.offer(pubCh, cur, nil)

	dirty := false
	for {
		select {
		case <-ctx.Done():
			return
		case ad := <-l.joins.Requests():
			c := ad.Req
			if why := clients.add(c); why != "" {
				ad.Reply(why, nil)
				break
			}
			ad.Reply("", nil)
			seq++
			if c.screen == "" {
				clients.deliver(c, l.prepare(l.snapshotMessage(cur, seq)))
			} else {
				g := cur.screens[c.screen]
				clients.deliver(c, l.prepare(feedMessage{Type: "guidance", Seq: seq, At: l.o.Now(), Guidance: &g}))
			}
		case c := <-l.unregister:
			clients.drop(c)
		case <-engineCh:
			dirty = true
		case <-alertCh:
			dirty = true
		case <-admitCh:
			dirty = true
		case <-pace.C():
			pace.Fired()
		case <-beat.C:
			// Re-evaluate guidance (a held state may now relax) and tell everyone the feed is
			// alive: dashboards get a heartbeat (or an update), screens their guidance again.
			next := l.build(cur.screens)
			seq++
			dash, screens := l.diff(cur, next, seq)
			if dash == nil {
				dash = l.prepare(feedMessage{Type: "heartbeat", Seq: seq, At: l.o.Now(), DataAt: next.dataAt})
			}
			for id, g := range next.screens {
				if screens[id] == nil {
					screens[id] = l.prepare(feedMessage{Type: "guidance", Seq: seq, At: g.At, Guidance: &g})
				}
			}
			l.storeGuidance(next)
			republish += l.o.Heartbeat
			if republish >= staleAfter/2 {
				republish = 0
				l.offer(pubCh, next, nil) // retained payloads stay fresh for signs that check their age
			} else {
				l.offer(pubCh, next, cur.screens)
			}
			cur = next
			clients.broadcast(dash, screens)
		}
		if dirty && pace.Ready() {
			dirty = false
			next := l.build(cur.screens)
			seq++
			dash, screens := l.diff(cur, next, seq)
			if dash != nil || len(screens) > 0 {
				pace.Sent() // only what clients see is paced
			}
			l.storeGuidance(next)
			l.offer(pubCh, next, cur.screens)
			cur = next
			clients.broadcast(dash, screens)
		}
	}
}

// build makes the view from the latest snapshot and alert status; prev is what each screen
// shows now (for the hold).
func (l *Live) build(prev map[string]guidance.Guidance) view {
	now := l.o.Now()
	snap := l.o.Engine.Snapshot()
	var status *alerting.Status
	if l.o.Alerts != nil {
		status = l.o.Alerts.Status()
	}
	v := view{devices: snap.Devices, alerts: []alerting.Alert{}, evacuations: []alerting.Evacuation{},
		screens: map[string]guidance.Guidance{}}
	readings := map[string]guidance.Reading{}
	for _, z := range snap.Zones {
		// The shown level, not the paged one: a figure over a trigger is shown at that level at
		// once, on the map and on the screens alike (hold-downs delay paging only).
		shown := status.Show(z)
		r := guidance.Reading{Zone: z, Level: shown.Level, Uncertain: shown.Uncertain}
		readings[z.ID] = r
		v.zones = append(v.zones, zoneView{ID: z.ID, Name: z.Name, Names: l.namesOf(z), Parent: z.Parent, Occupancy: z.Occupancy,
			Capacity: z.Capacity, Ratio: z.Ratio, Density: z.Density, Level: r.Level, Pending: shown.Pending,
			PendingSince: shown.PendingSince, Uncertain: r.Uncertain, Updated: z.Updated})
	}
	for _, d := range snap.Devices {
		if n, seen := l.reports[d.ID]; d.Reports != n || !seen {
			l.reports[d.ID] = d.Reports
			at := now
			if !seen && d.LastSeen != nil {
				at = *d.LastSeen
			}
			if d.Reports > 0 && at.After(l.dataAt) {
				l.dataAt = at
			}
		}
	}
	v.dataAt = l.dataAt
	evacuating := map[string]bool{}
	if status != nil {
		if status.Alerts != nil {
			v.alerts = status.Alerts
		}
		if status.Evacuations != nil {
			v.evacuations = status.Evacuations
		}
		for _, e := range status.Evacuations {
			if e.Zone == "" {
				for _, z := range snap.Zones {
					evacuating[z.ID] = true
				}
			}
			evacuating[e.Zone] = true
			for _, z := range e.Affected {
				evacuating[z] = true
			}
		}
	}
	drilling := l.drillView(&v, status)
	for _, s := range l.o.Layout.Screens {
		g := guidance.Compute(s, l.routes[s.ID], readings, evacuating, now)
		guidance.ApplyDrill(&g, s, drilling)
		shown, ok := prev[s.ID]
		g = guidance.Hold(guidance.Unmetered(shown), ok, g, l.o.Layout.Signage.Hold)
		l.meter(&g, s, now)
		g.StaleAfterMS = l.o.Layout.Signage.StaleAfter.Milliseconds()
		guidance.Render(&g, l.o.Catalogue)
		v.screens[s.ID] = g
	}
	return v
}

func (l *Live) snapshotMessage(v view, seq uint64) feedMessage {
	yes := l.o.Alerts != nil
	m := feedMessage{Type: "snapshot", Seq: seq, At: l.o.Now(), DataAt: v.dataAt,
		Site:     &siteView{ID: l.o.Layout.Site.ID, Name: l.o.Layout.Site.Name, Names: l.o.Layout.Site.Names.ByLanguage(l.o.Layout.Site.Name), Timezone: l.o.Layout.Site.Timezone},
		Alerting: &yes, StaleAfterMS: l.o.Layout.Signage.StaleAfter.Milliseconds(), Floors: l.floors,
		Zones: v.zones, Devices: v.devices, Alerts: &v.alerts, Evacuations: &v.evacuations, Drills: &v.drills, Plan: v.plan}
	if m.Floors == nil {
		m.Floors = []floorView{}
	}
	for _, s := range l.o.Layout.Screens {
		m.Screens = append(m.Screens, v.screens[s.ID])
	}
	return m
}

// diff returns the dashboard update (nil when nothing changed) and the guidance message of
// each screen whose guidance changed.
func (l *Live) diff(old, next view, seq uint64) (*websocket.PreparedMessage, map[string]*websocket.PreparedMessage) {
	m := feedMessage{Type: "update", Seq: seq, At: l.o.Now(), DataAt: next.dataAt}
	changed := false
	oldZones := map[string]zoneView{}
	for _, z := range old.zones {
		oldZones[z.ID] = z
	}
	for _, z := range next.zones {
		o, ok := oldZones[z.ID]
		if !ok || o.Occupancy != z.Occupancy || o.Level != z.Level || o.Uncertain != z.Uncertain || o.Capacity != z.Capacity ||
			!samePending(o, z) {
			m.Zones = append(m.Zones, z)
		}
	}
	if !slices.EqualFunc(old.devices, next.devices, sameDevice) {
		m.Devices = next.devices
	}
	if !sameJSON(old.alerts, next.alerts) {
		m.Alerts = &next.alerts
	}
	if !sameJSON(old.evacuations, next.evacuations) {
		m.Evacuations = &next.evacuations
	}
	if !sameJSON(old.drills, next.drills) || !sameJSON(old.plan, next.plan) {
		m.Drills, m.Plan = &next.drills, next.plan
	}
	screens := map[string]*websocket.PreparedMessage{}
	for _, s := range l.o.Layout.Screens {
		o, n := old.screens[s.ID], next.screens[s.ID]
		if o.State != n.State || o.Target != n.Target || o.PlacesLeft != n.PlacesLeft || o.Level != n.Level || o.LimitingZone != n.LimitingZone ||
			!sameAdmission(o.Admission, n.Admission) {
			m.Screens = append(m.Screens, n)
			screens[s.ID] = l.prepare(feedMessage{Type: "guidance", Seq: seq, At: n.At, Guidance: &n})
		}
	}
	changed = len(m.Zones) > 0 || m.Devices != nil || m.Alerts != nil || m.Evacuations != nil || len(m.Screens) > 0 || m.Drills != nil
	if !changed {
		return nil, screens
	}
	return l.prepare(m), screens
}

func samePending(a, b zoneView) bool {
	if a.Pending == nil || b.Pending == nil {
		return a.Pending == b.Pending
	}
	return *a.Pending == *b.Pending
}

// sameDevice compares what the dashboard shows of a device (online or not, and since when it
// is silent). Report counts and sequence numbers change with every report; sending them
// would put every counter of a busy store in every update to every client.
func sameDevice(a, b zones.DeviceStatus) bool {
	return a.ID == b.ID && a.Online == b.Online && a.Boot == b.Boot && (a.Online || sameTime(a.LastSeen, b.LastSeen))
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func sameJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// prepare encodes a message once for every client.
func (l *Live) prepare(m feedMessage) *websocket.PreparedMessage {
	b, err := json.Marshal(m)
	if err != nil {
		l.o.Log.Error("live feed: cannot encode a message", "error", err)
		b = []byte(`{"type":"error"}`)
	}
	pm, err := websocket.NewPreparedMessage(websocket.TextMessage, b)
	if err != nil {
		l.o.Log.Error("live feed: cannot prepare a message", "error", err)
	}
	return pm
}

func (l *Live) storeGuidance(v view) {
	g := maps.Clone(v.screens)
	l.guidance.Store(&g)
}
