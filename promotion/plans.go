package promotion

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/storage"
)

// The plans made through the API are kept in a file of their own (events_path, events.db
// beside storage.path), owned by the Plans goroutine. Every other file already has one owner
// of its write transactions (the engine, the alert manager, the sign-in store, the history
// writer); a bucket in one of them would need a second writer or plans routed through an
// owner that has nothing to do with them. Plans change a few times a year, so a file costs
// nothing, and it can be backed up and restored on its own.
var (
	bucketMeta  = []byte("meta")
	bucketPlans = []byte("plans")
)

const eventsFormat = "crowdwatch-events/1"

// Errors the API turns into statuses.
var (
	ErrStopped  = errors.New("promotion: the plans are not running")
	ErrNotFound = errors.New("no such event plan")
	ErrExists   = errors.New("an event plan with this id exists already")
	ErrFromFile = errors.New("this plan is in the store file: change it there")
	// ErrRunning refuses a change to the capacities of a plan that is in force, or its
	// deletion, unless the caller forces it.
	ErrRunning = errors.New("the plan is running: its capacities are in force; repeat with force to change them now")
	ErrInvalid = errors.New("invalid event plan")
)

// PlanInput is a plan as the API takes and the events file keeps it.
type PlanInput struct {
	ID            string         `json:"id"`
	Name          Names          `json:"name,omitempty"` // a string, or per language
	Kind          string         `json:"kind,omitempty"`
	Start         string         `json:"start"`
	End           string         `json:"end"`
	DoorsOpen     string         `json:"doors_open,omitempty"`
	Capacities    map[string]int `json:"capacities,omitempty"`
	Metered       []Metered      `json:"metered,omitempty"`
	ForecastScale float64        `json:"forecast_scale,omitempty"`
}

// Metered is a metered door in JSON (configs.MeteredDoor).
type Metered struct {
	Door       string  `json:"door"`
	RatePerMin float64 `json:"rate_per_min,omitempty"`
	Queue      string  `json:"queue,omitempty"`
}

// Names is a plan's name in JSON: a plain string (every language) or an object of language
// to text, as in the store file (configs.Names).
type Names configs.Names

func (n *Names) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = nil
		if s != "" {
			*n = Names{"": s}
		}
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return errors.New("name must be a string or an object of language to text")
	}
	*n = m
	return nil
}

type storedPlan struct {
	PlanInput
	UpdatedBy string    `json:"updated_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (in PlanInput) plan() configs.EventPlan {
	return configs.EventPlan{ID: in.ID, Names: configs.Names(in.Name), Kind: in.Kind, StartText: in.Start, EndText: in.End, DoorsOpenText: in.DoorsOpen,
		Capacities: maps.Clone(in.Capacities), Metered: meteredDoors(in.Metered), ForecastScale: in.ForecastScale}
}

func meteredDoors(ms []Metered) []configs.MeteredDoor {
	var out []configs.MeteredDoor
	for _, m := range ms {
		out = append(out, configs.MeteredDoor{Door: m.Door, RatePerMin: m.RatePerMin, Queue: m.Queue})
	}
	return out
}

// InputOf is a plan in the API's shape (what GET returns inside "plan").
func InputOf(p configs.EventPlan) PlanInput {
	return PlanInput{ID: p.ID, Name: Names(p.Names), Kind: p.Kind, Start: p.Start.Format(time.RFC3339), End: p.End.Format(time.RFC3339),
		DoorsOpen: p.DoorsOpen.Format(time.RFC3339), Capacities: p.Capacities, Metered: meteredOf(p.Metered), ForecastScale: p.ForecastScale}
}

func meteredOf(ms []configs.MeteredDoor) []Metered {
	out := []Metered{}
	for _, m := range ms {
		out = append(out, Metered{Door: m.Door, RatePerMin: m.RatePerMin, Queue: m.Queue})
	}
	return out
}

// PlansOptions configure Plans.
type PlansOptions struct {
	Path   string // the events file; "" keeps API plans in memory only (tests)
	Now    func() time.Time
	Logger *slog.Logger
}

// Plans owns the event plans: the store file's and those made through the API. One goroutine
// (Run) owns the events file's write transactions and the schedule; readers take the latest
// immutable Schedule, and Subscribe tells them when the capacities in force may have changed
// (a plan starts or ends, or is changed).
type Plans struct {
	cfg    *configs.Config
	opts   PlansOptions
	sched  atomic.Pointer[Schedule]
	signal owner.Signal
	cmds   *owner.Commands[func(now time.Time) (any, error)]
	done   chan struct{}
	// owned by Run:
	api map[string]storedPlan
}

// OpenPlans opens the events file and builds the schedule; nothing runs until Run. A stored
// plan that no longer fits the store file (a zone removed) is left out of the schedule, kept
// in the file, and logged.
func OpenPlans(cfg *configs.Config, o PlansOptions) (*Plans, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	p := &Plans{cfg: cfg, opts: o, done: make(chan struct{}), api: map[string]storedPlan{}}
	p.cmds = owner.NewCommands[func(time.Time) (any, error)](p.done, ErrStopped)
	if o.Path != "" {
		stored, err := readStored(o.Path, cfg.Site.ID, false)
		if err != nil {
			return nil, err
		}
		p.api = stored
	}
	sched, problems := p.build(p.api, "")
	for _, pr := range problems {
		o.Logger.Warn("events: a stored plan is left out", "problem", pr)
	}
	p.sched.Store(sched)
	return p, nil
}

// Close is there for symmetry with the other files: the events file is open only while it
// is read at the start and for each change, so that `crowdwatch plan` and `review` can read
// it while the service runs.
func (p *Plans) Close() error { return nil }

// readStored reads the plans of the events file at path (creating it unless readOnly).
func readStored(path, site string, readOnly bool) (map[string]storedPlan, error) {
	out := map[string]storedPlan{}
	db, err := storage.Open(path, storage.Options{ReadOnly: readOnly, Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer db.Close()
	check := func(meta *bolt.Bucket) error {
		if f := string(meta.Get([]byte("format"))); f != eventsFormat {
			return fmt.Errorf("it is a %q file, not an events file", f)
		}
		if s := string(meta.Get([]byte("site"))); s != site {
			return fmt.Errorf("it belongs to site %q, not %q", s, site)
		}
		return nil
	}
	load := func(b *bolt.Bucket) error {
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			var sp storedPlan
			if err := json.Unmarshal(v, &sp); err != nil {
				return fmt.Errorf("plan %q is damaged: %w", k, err)
			}
			out[sp.ID] = sp
			return nil
		})
	}
	if readOnly {
		err = storage.View(db, func(tx *bolt.Tx) error {
			meta := tx.Bucket(bucketMeta)
			if meta == nil {
				return storage.ErrNotOurs
			}
			if err := check(meta); err != nil {
				return err
			}
			return load(tx.Bucket(bucketPlans))
		})
	} else {
		err = db.Update(func(tx *bolt.Tx) error {
			meta, err := storage.ClaimMeta(tx, bucketMeta, map[string]string{"format": eventsFormat, "site": site})
			if err != nil {
				return err
			}
			if err := check(meta); err != nil {
				return err
			}
			b, err := tx.CreateBucketIfNotExists(bucketPlans)
			if err != nil {
				return err
			}
			return load(b)
		})
	}
	if err != nil {
		return nil, fmt.Errorf("events: %s: %w", path, err)
	}
	return out, nil
}

// LoadSchedule is the schedule a command reads while the service may run: the store file's
// plans and those in the events file (when it exists), read-only.
func LoadSchedule(cfg *configs.Config) (*Schedule, error) {
	p := &Plans{cfg: cfg, api: map[string]storedPlan{}}
	if _, err := os.Stat(cfg.EventsPath()); err == nil {
		if p.api, err = readStored(cfg.EventsPath(), cfg.Site.ID, true); err != nil {
			return nil, err
		}
	}
	sched, _ := p.build(p.api, "")
	return sched, nil
}

// build makes the schedule of the file's plans and api; the stored plans that do not
// validate, or overlap, are left out and described.
// The plan last (a new or changed one) is tried after every other, so that a change that
// would overlap is the one refused.
func (p *Plans) build(api map[string]storedPlan, last string) (*Schedule, []string) {
	all := make([]Plan, 0, len(p.cfg.Events)+len(api))
	ids := map[string]bool{}
	for _, e := range p.cfg.Events {
		all = append(all, Plan{EventPlan: e, Origin: "file"})
		ids[e.ID] = true
	}
	var problems []string
	order := slices.DeleteFunc(slices.Sorted(maps.Keys(api)), func(id string) bool { return id == last })
	if _, ok := api[last]; ok {
		order = append(order, last)
	}
	for _, id := range order {
		sp := api[id]
		e := sp.plan()
		if err := p.cfg.CheckEvent(&e); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		if ids[id] {
			problems = append(problems, fmt.Sprintf("%s: the store file has a plan of this id", id))
			continue
		}
		cand := append(slices.Clone(all), Plan{EventPlan: e, Origin: "api", UpdatedBy: sp.UpdatedBy, UpdatedAt: sp.UpdatedAt})
		if ov := overlaps(cand); len(ov) > 0 {
			problems = append(problems, fmt.Sprintf("%s: overlaps %s", id, ov[0]))
			continue
		}
		all = cand
	}
	return NewSchedule(Everyday(p.cfg), all), problems
}

func overlaps(ps []Plan) []string {
	es := make([]configs.EventPlan, len(ps))
	for i, p := range ps {
		es[i] = p.EventPlan
	}
	return configs.Overlapping(es)
}

// Schedule is the latest schedule (never nil).
func (p *Plans) Schedule() *Schedule { return p.sched.Load() }

// Subscribe signals after the schedule changed or a plan started or ended (internal/owner).
func (p *Plans) Subscribe() (<-chan struct{}, func()) { return p.signal.Subscribe() }

// Run owns the plans until ctx ends: it carries out changes and signals at each plan's start
// and end.
func (p *Plans) Run(ctx context.Context) error {
	defer close(p.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	arm := func() {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		now := p.opts.Now()
		next := p.Schedule().NextChange(now)
		if next.IsZero() {
			return
		}
		// By the plans' clock (a test's may not be the wall clock); capped so that a clock
		// step (NTP at boot) is noticed within the hour. The boundary is after now, so the
		// wait is positive and the timer never spins.
		timer.Reset(min(next.Sub(now)+10*time.Millisecond, time.Hour))
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
			p.signal.Notify()
			arm()
		case c := <-p.cmds.Requests():
			c.Reply(c.Req(p.opts.Now()))
			arm()
		}
	}
}

// Create adds a plan made through the API.
func (p *Plans) Create(ctx context.Context, in PlanInput, by string) (Plan, error) {
	return p.CreateAsOf(ctx, in, by, time.Time{})
}

// CreateAsOf is Create as of at (with HA the action's time, the same on every instance;
// zero: now): the plan's updated_at.
func (p *Plans) CreateAsOf(ctx context.Context, in PlanInput, by string, at time.Time) (Plan, error) {
	v, err := p.cmds.Do(ctx, func(now time.Time) (any, error) {
		now = asOf(at, now)
		if _, ok := p.Schedule().Plan(in.ID); ok {
			return nil, fmt.Errorf("%w: %q", ErrExists, in.ID)
		}
		if _, ok := p.api[in.ID]; ok {
			return nil, fmt.Errorf("%w: %q (kept in the events file but left out of the schedule)", ErrExists, in.ID)
		}
		return p.put(in, by, now)
	})
	if err != nil {
		return Plan{}, err
	}
	return v.(Plan), nil
}

// Update replaces the API plan id. Changing the capacities in force of a running plan (its
// capacities, or times that end or start it now) is refused unless force.
func (p *Plans) Update(ctx context.Context, id string, in PlanInput, by string, force bool) (Plan, error) {
	return p.UpdateAsOf(ctx, id, in, by, force, time.Time{})
}

// UpdateAsOf is Update with whether the plan is running judged at at (zero: now). With HA
// every instance applies a change at its own moment; judged at the action's time, the
// taking instance's, they all decide alike even at a plan's very start or end.
func (p *Plans) UpdateAsOf(ctx context.Context, id string, in PlanInput, by string, force bool, at time.Time) (Plan, error) {
	in.ID = id
	v, err := p.cmds.Do(ctx, func(now time.Time) (any, error) {
		now = asOf(at, now)
		old, err := p.apiPlan(id)
		if err != nil {
			return nil, err
		}
		if !force {
			e := in.plan()
			if err := p.cfg.CheckEvent(&e); err != nil {
				return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
			}
			if changesInForce(old, e, now) {
				return nil, ErrRunning
			}
		}
		return p.put(in, by, now)
	})
	if err != nil {
		return Plan{}, err
	}
	return v.(Plan), nil
}

// Delete removes the API plan id; a running one only with force.
func (p *Plans) Delete(ctx context.Context, id, by string, force bool) error {
	return p.DeleteAsOf(ctx, id, by, force, time.Time{})
}

// DeleteAsOf is Delete with whether the plan is running judged at at (zero: now), as
// UpdateAsOf.
func (p *Plans) DeleteAsOf(ctx context.Context, id, by string, force bool, at time.Time) error {
	_, err := p.cmds.Do(ctx, func(now time.Time) (any, error) {
		now = asOf(at, now)
		old, err := p.apiPlan(id)
		if err != nil {
			return nil, err
		}
		if running := !old.Start.IsZero() && !now.Before(old.Start) && now.Before(old.End) && len(old.Capacities) > 0; running && !force {
			return nil, ErrRunning
		}
		if err := p.write(func(b *bolt.Bucket) error { return b.Delete([]byte(id)) }); err != nil {
			return nil, err
		}
		api := maps.Clone(p.api)
		delete(api, id)
		p.commit(api)
		return nil, nil
	})
	return err
}

func asOf(at, now time.Time) time.Time {
	if at.IsZero() {
		return now
	}
	return at
}

// APIPlan is a plan made through the API as the events file keeps it.
type APIPlan struct {
	Input     PlanInput `json:"input"`
	UpdatedBy string    `json:"updated_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

// APIPlans are the plans made through the API, by id (the HA snapshot carries them).
func (p *Plans) APIPlans(ctx context.Context) ([]APIPlan, error) {
	v, err := p.cmds.Do(ctx, func(time.Time) (any, error) {
		out := []APIPlan{}
		for _, id := range slices.Sorted(maps.Keys(p.api)) {
			sp := p.api[id]
			out = append(out, APIPlan{Input: sp.PlanInput, UpdatedBy: sp.UpdatedBy, UpdatedAt: sp.UpdatedAt})
		}
		return out, nil
	})
	if err != nil {
		return nil, err
	}
	return v.([]APIPlan), nil
}

// apiPlan is the API plan id as scheduled (a stored one left out has a zero Start).
func (p *Plans) apiPlan(id string) (configs.EventPlan, error) {
	if sp, ok := p.Schedule().Plan(id); ok {
		if sp.Origin == "file" {
			return configs.EventPlan{}, ErrFromFile
		}
		return sp.EventPlan, nil
	}
	if _, ok := p.api[id]; ok {
		return configs.EventPlan{}, nil
	}
	return configs.EventPlan{}, fmt.Errorf("%w: %q", ErrNotFound, id)
}

// changesInForce: would replacing old with e change a capacity in force now?
func changesInForce(old, e configs.EventPlan, now time.Time) bool {
	running := func(x configs.EventPlan) bool { return !now.Before(x.Start) && now.Before(x.End) }
	was, will := running(old), running(e)
	switch {
	case was && will:
		return !maps.Equal(old.Capacities, e.Capacities)
	case was:
		return len(old.Capacities) > 0 // ends it now
	default:
		return false // a plan that starts now is a new decision, not a change to one in force
	}
}

// put validates and stores in (in Run).
func (p *Plans) put(in PlanInput, by string, now time.Time) (any, error) {
	e := in.plan()
	if err := p.cfg.CheckEvent(&e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	api := maps.Clone(p.api)
	api[in.ID] = storedPlan{PlanInput: in, UpdatedBy: by, UpdatedAt: now}
	sched, problems := p.build(api, in.ID)
	for _, pr := range problems {
		if strings.HasPrefix(pr, in.ID+":") {
			return nil, fmt.Errorf("%w: %s", ErrInvalid, pr)
		}
	}
	b, err := json.Marshal(api[in.ID])
	if err != nil {
		return nil, err
	}
	if err := p.write(func(bk *bolt.Bucket) error { return bk.Put([]byte(in.ID), b) }); err != nil {
		return nil, err
	}
	p.api = api
	p.sched.Store(sched)
	p.signal.Notify()
	got, _ := sched.Plan(in.ID)
	return got, nil
}

func (p *Plans) commit(api map[string]storedPlan) {
	sched, _ := p.build(api, "")
	p.api = api
	p.sched.Store(sched)
	p.signal.Notify()
}

// write opens the events file for one change (in Run).
func (p *Plans) write(fn func(*bolt.Bucket) error) error {
	if p.opts.Path == "" {
		return nil
	}
	db, err := storage.Open(p.opts.Path, storage.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("events: %w", err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPlans)
		if b == nil {
			return fmt.Errorf("it has no plans bucket: %w", storage.ErrNotOurs)
		}
		return fn(b)
	})
	if cerr := db.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("events: writing %s: %w", p.opts.Path, err)
	}
	return nil
}
