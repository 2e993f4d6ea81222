package alerting

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/storage"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Promotion-day alert kinds (docs/alerting.md, "Promotion day").
const (
	KindDrill        Kind = "drill"         // an evacuation drill in progress: marked DRILL everywhere
	KindOpeningQueue Kind = "opening_queue" // before opening, the queue outside is more than the doors absorb
	KindDoorsOpen    Kind = "doors_open"    // the all-staff notice at a plan's opening time
)

// everyRoute: kinds every route hears whatever its filters, like an evacuation: a drill
// (everyone practises as for the real thing, told it is a drill) and the doors-open notice
// (all staff are told when the doors open).
func everyRoute(k Kind) bool { return k == KindDrill || k == KindDoorsOpen }

// noEscalation: kinds nobody has to acknowledge; they are told once and never escalate.
func noEscalation(k Kind) bool { return k == KindDrill || k == KindDoorsOpen }

// doorsOpenFor is how long the doors-open notice stays up on the dashboard.
const doorsOpenFor = 5 * time.Minute

// Drill is an evacuation drill of a zone (and every zone inside it) or, with Zone "", the
// whole site: screens and channels mark it DRILL; the manager measures how long each zone
// takes to empty and ends it when all have (or after event_day.drill_max, or by hand).
type Drill struct {
	ID       string    `json:"id"`
	Zone     string    `json:"zone"` // "" = the whole site
	Affected []string  `json:"affected"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	// EstimateSeconds is the evacuation-time estimate at the alarm (the zone's, or the
	// site's for a site drill); nil when the exits' widths are not known.
	EstimateSeconds *float64         `json:"estimate_seconds,omitempty"`
	StartCount      map[string]int64 `json:"start_count"`
	// ClearedSeconds: per zone, seconds from the alarm until it was empty (occupancy at or
	// below event_day.drill_empty_at); absent: not empty when the drill ended.
	ClearedSeconds map[string]float64 `json:"cleared_seconds"`
	EndedAt        *time.Time         `json:"ended_at,omitempty"`
	EndedBy        string             `json:"ended_by,omitempty"`
	// EndReason: "every zone empty", "time limit", "ended by hand", "real evacuation".
	EndReason string `json:"end_reason,omitempty"`
}

// eventDay is the manager's promotion-day state; owned by Run like the rest.
type eventDay struct {
	drills map[string]*Drill // in force, by zone ("" = site)
	seq    int
}

func (m *Manager) day() *eventDay {
	if m.eventDay == nil {
		m.eventDay = &eventDay{drills: map[string]*Drill{}}
	}
	return m.eventDay
}

var (
	bucketDrills   = []byte("drills")   // start time + id -> Drill
	bucketMetering = []byte("metering") // start time + seq -> the door's episode (JSON, package door)
)

// record is one JSON value to keep in one of the promotion buckets.
type record struct {
	bucket []byte
	key    []byte
	value  []byte
}

func recordKey(at time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(at.UnixNano()))
	return append(k, id...)
}

// writeRecords puts c's records in tx (their buckets are made on first use, so a file from
// before promotion-day support opens unchanged).
func writeRecords(tx *bolt.Tx, recs []record) error {
	for _, r := range recs {
		b, err := tx.CreateBucketIfNotExists(r.bucket)
		if err != nil {
			return err
		}
		if err := b.Put(r.key, r.value); err != nil {
			return err
		}
	}
	return nil
}

// readRecords returns the values in bucket whose key time is in [from, to) (to zero: no end).
func readRecords(db *bolt.DB, bucket []byte, from, to time.Time) ([][]byte, error) {
	var out [][]byte
	err := storage.View(db, func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if !from.IsZero() {
			k, v = c.Seek(recordKey(from, ""))
		}
		for ; k != nil; k, v = c.Next() {
			if len(k) < 8 {
				continue
			}
			if !to.IsZero() && int64(binary.BigEndian.Uint64(k)) >= to.UnixNano() {
				break
			}
			out = append(out, slices.Clone(v))
		}
		return nil
	})
	return out, err
}

// KeepMetering stores one metering episode (JSON from package door, keyed by its start) in
// the alert file, in the manager's own transaction: the alert file is where the review
// already reads alerts and drills, and only the manager writes it.
func (m *Manager) KeepMetering(ctx context.Context, from time.Time, door string, episode []byte) error {
	if !json.Valid(episode) {
		return fmt.Errorf("%w: a metering episode must be JSON", ErrInvalid)
	}
	_, err := m.do(ctx, func(time.Time) (any, error) {
		m.pending.records = append(m.pending.records, record{bucket: bucketMetering, key: recordKey(from, door), value: episode})
		return nil, nil
	})
	return err
}

// MeteringRecords returns the stored metering episodes that began in [from, to).
func (m *Manager) MeteringRecords(from, to time.Time) ([][]byte, error) {
	return readRecords(m.store.db, bucketMetering, from, to)
}

// DrillReports returns the drills that began in [from, to), ended or not, oldest first.
func (m *Manager) DrillReports(from, to time.Time) ([]Drill, error) {
	raw, err := readRecords(m.store.db, bucketDrills, from, to)
	if err != nil {
		return nil, err
	}
	out := []Drill{}
	for _, v := range raw {
		var d Drill
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, fmt.Errorf("alerting: a stored drill: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (m *Manager) keepDrill(d *Drill) {
	v, _ := json.Marshal(d)
	m.pending.records = append(m.pending.records, record{bucket: bucketDrills, key: recordKey(d.At, d.ID), value: v})
}

// StartDrill starts an evacuation drill of zone (every zone inside it) or, with zone "", of
// the whole site. A drill of a zone already being drilled returns that drill; a zone under a
// real evacuation cannot be drilled.
func (m *Manager) StartDrill(ctx context.Context, zone, by string) (Drill, error) {
	return m.StartDrillAs(ctx, DrillStart{Zone: zone, By: by})
}

// DrillStart is a drill as the HA action log carries it: its id and start are the taking
// instance's, so that it is the same drill on every instance.
type DrillStart struct {
	Zone string
	By   string
	ID   string    // "": drawn here
	At   time.Time // zero: now
}

// StartDrillAs starts a drill with the given id and start. A drill of that id started
// before (the same action applied again after a crash) is returned as it is, ended or not.
func (m *Manager) StartDrillAs(ctx context.Context, x DrillStart) (Drill, error) {
	zone, by := x.Zone, x.By
	if by == "" {
		return Drill{}, fmt.Errorf("%w: a drill needs the name of who starts it", ErrInvalid)
	}
	v, err := m.do(ctx, func(now time.Time) (any, error) {
		affected, err := m.affected(zone)
		if err != nil {
			return nil, err
		}
		at := x.At
		if at.IsZero() {
			at = now
		}
		day := m.day()
		if x.ID != "" {
			if d, err := m.storedDrill(at, x.ID); err != nil || d != nil {
				return d, err
			}
		}
		for _, ev := range m.evacs {
			for _, z := range affected {
				if slices.Contains(ev.Affected, z) {
					return nil, fmt.Errorf("%w: %s is under a real evacuation; no drill now", ErrInvalid, cmpOrSite(zone))
				}
			}
		}
		if d := day.drills[zone]; d != nil {
			return *d, nil
		}
		id := x.ID
		if id == "" {
			day.seq++
			id = fmt.Sprintf("drill-%s-%d", now.UTC().Format("20060102T150405"), day.seq)
		}
		d := &Drill{ID: id, Zone: zone, Affected: affected,
			By: by, At: at, StartCount: map[string]int64{}, ClearedSeconds: map[string]float64{}}
		snap := m.opts.Source.Snapshot()
		if snap != nil {
			for _, z := range affected {
				if zi, ok := m.opts.Model.Zone(z); ok && zi < len(snap.Zones) {
					d.StartCount[z] = snap.Zones[zi].Occupancy
				}
			}
			d.EstimateSeconds = m.drillEstimate(zone, snap)
		}
		day.drills[zone] = d
		m.keepDrill(d)
		m.pending.events = append(m.pending.events, &Event{At: now, Kind: KindDrill, Zone: zone, What: "drill_started", By: by})
		m.log.Warn("DRILL started (not a real evacuation)", "zone", cmpOrSite(zone), "by", by, "id", d.ID)
		return *d, nil
	})
	if err != nil {
		return Drill{}, err
	}
	return v.(Drill), nil
}

// storedDrill is the drill id started at at, in force or in the alert file; nil if neither.
func (m *Manager) storedDrill(at time.Time, id string) (any, error) {
	for _, d := range m.day().drills {
		if d.ID == id {
			return *d, nil
		}
	}
	for i := len(m.pending.records) - 1; i >= 0; i-- { // kept by this evaluation, not written yet
		if r := m.pending.records[i]; string(r.key) == string(recordKey(at, id)) {
			var d Drill
			return d, json.Unmarshal(r.value, &d)
		}
	}
	var raw []byte
	err := storage.View(m.store.db, func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketDrills); b != nil {
			raw = slices.Clone(b.Get(recordKey(at, id)))
		}
		return nil
	})
	if err != nil || raw == nil {
		return nil, err
	}
	var d Drill
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("alerting: the stored drill %q: %w", id, err)
	}
	return d, nil
}

// restoreDrills brings back the drills in force before a restart: those stored without an
// end. One that outlived event_day.drill_max ends at the first evaluation, as it would have.
func (m *Manager) restoreDrills() error {
	raw, err := readRecords(m.store.db, bucketDrills, time.Time{}, time.Time{})
	if err != nil {
		return err
	}
	day := m.day()
	for _, v := range raw {
		var d Drill
		if err := json.Unmarshal(v, &d); err != nil {
			return fmt.Errorf("alerting: a stored drill: %w", err)
		}
		if d.EndedAt != nil {
			continue
		}
		if old := day.drills[d.Zone]; old != nil && old.At.After(d.At) {
			continue
		}
		day.drills[d.Zone] = &d
		day.seq++
	}
	return nil
}

// drillEstimate is the evacuation-time estimate for what is drilled, now.
func (m *Manager) drillEstimate(zone string, snap *zones.Snapshot) *float64 {
	pre := m.set.cfg.Alerting.Evacuation.PreMovement
	if zone == "" {
		var n int64
		for _, r := range m.set.topo.roots {
			n += snap.Zones[r].Occupancy
		}
		if t, ok := evacSeconds(n, m.set.topo.siteExits, pre); ok {
			return ptr(round1(t))
		}
		return nil
	}
	zi, ok := m.opts.Model.Zone(zone)
	if !ok {
		return nil
	}
	if t, ok := evacSeconds(snap.Zones[zi].Occupancy, m.set.topo.exits[zi], pre); ok {
		return ptr(round1(t))
	}
	return nil
}

// EndDrill ends the drill of zone ("" = the site) by hand.
func (m *Manager) EndDrill(ctx context.Context, zone, by string) (Drill, error) {
	return m.EndDrillAt(ctx, zone, by, time.Time{})
}

// EndDrillAt ends the drill of zone by hand as of at (with HA the action's time; zero: now).
func (m *Manager) EndDrillAt(ctx context.Context, zone, by string, at time.Time) (Drill, error) {
	if by == "" {
		return Drill{}, fmt.Errorf("%w: ending a drill needs the name of who ends it", ErrInvalid)
	}
	v, err := m.do(ctx, func(now time.Time) (any, error) {
		d := m.day().drills[zone]
		if d == nil {
			return nil, fmt.Errorf("%w: no drill in progress for %s", ErrNotFound, cmpOrSite(zone))
		}
		m.endDrill(cmpTime(at, now), d, by, "ended by hand")
		return *d, nil
	})
	if err != nil {
		return Drill{}, err
	}
	return v.(Drill), nil
}

func cmpTime(a, b time.Time) time.Time {
	if a.IsZero() {
		return b
	}
	return a
}

func (m *Manager) endDrill(now time.Time, d *Drill, by, reason string) {
	t := now
	d.EndedAt, d.EndedBy, d.EndReason = &t, by, reason
	delete(m.day().drills, d.Zone)
	m.keepDrill(d)
	m.pending.events = append(m.pending.events, &Event{At: now, Kind: KindDrill, Zone: d.Zone, What: "drill_ended", By: by, Note: reason})
	m.log.Warn("drill ended", "zone", cmpOrSite(d.Zone), "id", d.ID, "reason", reason, "cleared", d.ClearedSeconds)
}

// endDrillsFor ends at once every drill that overlaps a real evacuation of affected: the
// real one overrides it everywhere.
func (m *Manager) endDrillsFor(now time.Time, affected []string) {
	for _, d := range m.drillsInForce() {
		for _, z := range d.Affected {
			if slices.Contains(affected, z) {
				m.endDrill(now, d, "", "real evacuation")
				break
			}
		}
	}
}

func (m *Manager) drillsInForce() []*Drill {
	var out []*Drill
	for _, d := range m.day().drills {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *Drill) int { return cmp.Compare(a.Zone, b.Zone) })
	return out
}

// Drills are the drills in force, for the Status.
func (m *Manager) drillView() []Drill {
	out := []Drill{}
	for _, d := range m.drillsInForce() {
		out = append(out, *d)
	}
	return out
}

// eventDayRules measures the drills (and ends those done), and returns the drill, opening
// queue and doors-open candidates.
func (m *Manager) eventDayRules(now time.Time, snap *zones.Snapshot) []candidate {
	ed := &m.set.cfg.EventDay
	var cands []candidate
	for _, d := range m.drillsInForce() {
		all := true
		for _, z := range d.Affected {
			if _, done := d.ClearedSeconds[z]; done {
				continue
			}
			zi, ok := m.opts.Model.Zone(z)
			if ok && zi < len(snap.Zones) && snap.Zones[zi].Occupancy <= int64(ed.DrillEmptyAt) {
				// A new map, not a write into the old one: the published Status shares it with
				// readers (the live feed encodes it while this goroutine measures).
				cleared := maps.Clone(d.ClearedSeconds)
				if cleared == nil {
					cleared = map[string]float64{}
				}
				cleared[z] = round1(now.Sub(d.At).Seconds())
				d.ClearedSeconds = cleared
				m.keepDrill(d)
				continue
			}
			all = false
		}
		switch {
		case all:
			m.endDrill(now, d, "", "every zone empty")
			continue
		case ed.DrillMax > 0 && now.Sub(d.At) >= ed.DrillMax:
			m.endDrill(now, d, "", "time limit")
			continue
		}
		key, params := "alert.drill.site", map[string]any{"by": d.By}
		where := "the whole site"
		if d.Zone != "" {
			key, params["zone"], params["zone_name"], where = "alert.drill", d.Zone, d.Zone, d.Zone
			if zi, ok := m.opts.Model.Zone(d.Zone); ok {
				params["zone_name"] = cmp.Or(m.set.topo.zones[zi].Name, d.Zone)
			}
		}
		cands = append(cands, candidate{alert: Alert{Kind: KindDrill, Zone: d.Zone, Severity: SeverityInfo,
			Summary:    fmt.Sprintf("DRILL (not a real evacuation): evacuation drill of %s started by %s", where, d.By),
			SummaryKey: key, Params: params, Detail: d.ID}, active: true, held: true})
	}
	cands = append(cands, m.openingRule(now, snap)...)
	return cands
}

// OpeningCheck is the arithmetic of the opening alert: the queue outside the metered
// entrances, and how many they admit at their rates within the first N minutes.
type OpeningCheck struct {
	Queue   int64
	Absorb  float64
	Counted bool // at least one metered entrance has its queue counted
}

// Opening works the check out for plan e from the snapshot: the queue is the sum of the
// metered doors' queue zones (each zone once), the absorption their rates (rate_per_min, or
// half the door's flow limit, 10/min without a width) times absorb.
func Opening(cfg *Config, e *configs.EventPlan, snap *zones.Snapshot, absorb time.Duration) OpeningCheck {
	width := map[string]float64{}
	for _, d := range cfg.Doors {
		width[d.ID] = d.WidthM
	}
	var c OpeningCheck
	seen := map[string]bool{}
	for _, md := range e.Metered {
		rate := md.RatePerMin
		if rate <= 0 {
			rate = width[md.Door] * cfg.Alerting.Evacuation.FlowPerMetre / 2
		}
		if rate <= 0 {
			rate = 10
		}
		c.Absorb += rate * absorb.Minutes()
		if md.Queue == "" || seen[md.Queue] {
			continue
		}
		seen[md.Queue] = true
		if z, ok := snap.Zone(md.Queue); ok {
			c.Queue += z.Occupancy
			c.Counted = true
		}
	}
	return c
}

// openingRule: from event_day.opening_window before a plan's doors_open until it, a warning
// while the queue outside is more than the metered entrances absorb in the first
// event_day.opening_absorb; at doors_open, the all-staff notice for doorsOpenFor.
func (m *Manager) openingRule(now time.Time, snap *zones.Snapshot) []candidate {
	ed := &m.set.cfg.EventDay
	var cands []candidate
	plans := m.set.cfg.Events
	if m.opts.Plans != nil {
		plans = m.opts.Plans()
	}
	for i := range plans {
		e := &plans[i]
		if e.DoorsOpen.IsZero() {
			continue
		}
		if !now.Before(e.DoorsOpen) && now.Before(e.DoorsOpen.Add(doorsOpenFor)) {
			cands = append(cands, candidate{alert: Alert{Kind: KindDoorsOpen, Severity: SeverityInfo,
				Summary:    fmt.Sprintf("Doors open now for %s: all staff to their posts", e.Name),
				SummaryKey: "alert.doors_open", Params: map[string]any{"event": e.Name}, Detail: e.ID}, active: true, held: true})
		}
		if now.Before(e.DoorsOpen.Add(-ed.OpeningWindow)) || !now.Before(e.DoorsOpen) {
			continue
		}
		c := Opening(m.set.cfg, e, snap, ed.OpeningAbsorb)
		if !c.Counted {
			continue
		}
		mins := int(math.Ceil(e.DoorsOpen.Sub(now).Minutes()))
		absorb := int64(math.Floor(c.Absorb))
		cands = append(cands, candidate{alert: Alert{Kind: KindOpeningQueue, Severity: SeverityWarning,
			Summary: fmt.Sprintf("Opening in %d min: %d waiting outside, the metered entrances admit %d in the first %d min",
				mins, c.Queue, absorb, int(ed.OpeningAbsorb.Minutes())),
			SummaryKey: "alert.opening_queue", Detail: e.ID, Value: float64(c.Queue),
			Params: map[string]any{"minutes": mins, "queue": c.Queue, "absorb": absorb, "window": int(ed.OpeningAbsorb.Minutes()), "event": e.Name}},
			// Held until the queue is back under 90% of what the doors absorb, so it does not flap.
			active: float64(c.Queue) > c.Absorb, held: float64(c.Queue) > 0.9*c.Absorb, clear: time.Minute})
	}
	return cands
}
