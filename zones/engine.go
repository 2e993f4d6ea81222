package zones

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/crowdwatch/crowdwatch/internal/owner"
)

// Outcome is what became of one message; Done callbacks receive it after the commit that
// covers the message, in the order messages were submitted.
type Outcome int

const (
	Applied   Outcome = iota // changed state, now committed
	Duplicate                // already counted; nothing changed
	Rejected                 // bad input; nothing changed
	Failed                   // could not be committed: do not acknowledge, let it come again
)

func (o Outcome) String() string {
	return [...]string{"applied", "duplicate", "rejected", "failed"}[o]
}

// Message is one input to the engine: a decoded report, a status word, or a rejection found
// while decoding (it still goes through the engine so acknowledgements stay in order).
type Message struct {
	Report   *Report
	Vendor   *VendorReport // a vendor format's readings (zones/vendor.go)
	Status   *Status
	Reject   *RejectError
	Retained bool // a broker's retained copy, not a live message
	Received time.Time
	// Done is called once, after the commit that covers this message, in submission order.
	Done func(Outcome)
	// Refusal is, once Done is called with Rejected, why (set by the engine before Done;
	// the HTTP ingest answers it to the device).
	Refusal *RejectError
}

// Options tune the engine; zero values take the defaults noted.
type Options struct {
	CommitInterval time.Duration // default 5ms
	// CommitOnIdle commits as soon as no message waits (see configs.Storage.CommitMode).
	CommitOnIdle bool
	CommitBatch  int           // default 1000
	QueueSize    int           // default 4096
	MaxClockSkew time.Duration // default 2m
	OfflineAfter time.Duration // default 30s
	// ClampAfter is how long a zone must stay below zero, with all its counters live, before
	// the deficit is taken as drift and clamped (default 60s). Shorter deficits are reports
	// arriving out of step and resolve themselves.
	ClampAfter time.Duration
	// LogRetention keeps crossing-log entries this long; older ones are folded into the log's
	// base and deleted. 0 keeps them for ever.
	LogRetention time.Duration
	// ResetHour and ResetMinute give the daily reset in Location; -1 turns it off.
	ResetHour, ResetMinute int
	Location               *time.Location
	Now                    func() time.Time
	Logger                 *slog.Logger
}

// Engine owns the occupancy state. Run it in one goroutine; everything else talks to it
// through Submit, the command methods and Snapshot.
type Engine struct {
	model   *Model
	store   *Store
	opts    Options
	metrics *Metrics
	log     *slog.Logger

	in      chan *Message
	cmds    *owner.Commands[func() (any, error)]
	stopped chan struct{}
	snap    atomic.Pointer[Snapshot]
	healthy atomic.Bool

	changed owner.Signal

	// Owned by the Run goroutine.
	occ     *occupancy
	devices map[string]*deviceState
	pending batch
	dones   []pendingDone
	version uint64
	logOnce map[string]*rate.Sometimes
	// negativeSince[z] is when zone z went below zero (zero time while it is not).
	negativeSince []time.Time
	// lastPrune is when the crossing log was last pruned to its retention.
	lastPrune time.Time
}

type pendingDone struct {
	msg     *Message
	outcome Outcome
	reason  string
}

// ErrStopped is returned to callers once the engine has stopped.
var ErrStopped = errors.New("occupancy engine stopped")

// NewEngine loads the committed state from the store.
func NewEngine(m *Model, s *Store, metrics *Metrics, opts Options) (*Engine, error) {
	if opts.CommitInterval <= 0 {
		opts.CommitInterval = 5 * time.Millisecond
	}
	if opts.CommitBatch <= 0 {
		opts.CommitBatch = 1000
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 4096
	}
	if opts.MaxClockSkew <= 0 {
		opts.MaxClockSkew = 2 * time.Minute
	}
	if opts.OfflineAfter <= 0 {
		opts.OfflineAfter = 30 * time.Second
	}
	if opts.ClampAfter <= 0 {
		opts.ClampAfter = time.Minute
	}
	if opts.Location == nil {
		opts.Location = time.UTC
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	e := &Engine{
		model: m, store: s, opts: opts, metrics: metrics, log: opts.Logger,
		in:      make(chan *Message, opts.QueueSize),
		stopped: make(chan struct{}),
		pending: batch{devices: map[string]*deviceState{}, zones: map[int]bool{}, doors: map[int]bool{}},
		logOnce: map[string]*rate.Sometimes{},
	}
	e.cmds = owner.NewCommands[func() (any, error)](e.stopped, ErrStopped)
	var err error
	if e.occ, e.devices, err = s.load(m); err != nil {
		return nil, err
	}
	e.negativeSince = make([]time.Time, len(m.Zones))
	e.healthy.Store(true)
	metrics.attach(e)
	e.publish()
	return e, nil
}

// Submit queues a message. It blocks while the queue is full (that is the back-pressure on
// the broker connection) until ctx ends or the engine stops.
func (e *Engine) Submit(ctx context.Context, m *Message) error {
	select {
	case <-e.stopped:
		return ErrStopped
	default:
	}
	select {
	case e.in <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-e.stopped:
		return ErrStopped
	}
}

// ErrQueueFull is TrySubmit's answer when the queue is full.
var ErrQueueFull = errors.New("occupancy engine queue is full")

// TrySubmit queues a message without waiting: a full queue is ErrQueueFull (the HTTP ingest
// answers 503 and the device sends again), a stopped engine ErrStopped.
func (e *Engine) TrySubmit(m *Message) error {
	select {
	case <-e.stopped:
		return ErrStopped
	default:
	}
	select {
	case e.in <- m:
		return nil
	default:
		return ErrQueueFull
	}
}

// Stopped is closed once Run has returned. A message queued just before that may never get
// its Done call; whoever waits for one should also wait on this.
func (e *Engine) Stopped() <-chan struct{} { return e.stopped }

// Healthy reports whether the last commit succeeded.
func (e *Engine) Healthy() bool { return e.healthy.Load() }

// Snapshot returns the latest committed state. It never blocks the engine.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// Model returns the store topology.
func (e *Engine) Model() *Model { return e.model }

// Subscribe returns a channel that receives a signal after each new snapshot, and a function
// that cancels the subscription; signals are coalesced, so a slow reader just sees the latest
// snapshot when it looks.
func (e *Engine) Subscribe() (<-chan struct{}, func()) { return e.changed.Subscribe() }

// Run processes messages and commands until ctx ends, then commits what is pending.
func (e *Engine) Run(ctx context.Context) error {
	defer close(e.stopped)
	commitTimer := time.NewTimer(time.Hour)
	commitTimer.Stop()
	timerArmed := false
	liveness := time.NewTicker(time.Second)
	defer liveness.Stop()
	resetTimer := time.NewTimer(time.Hour)
	resetTimer.Stop()
	nextReset, resetOn := e.nextReset()
	if resetOn {
		resetTimer.Reset(nextReset.Sub(e.opts.Now()))
	}
	defer resetTimer.Stop()

	for {
		select {
		case <-ctx.Done():
			e.drainQueued()
			e.commit()
			return nil
		case m := <-e.in:
			e.handle(m)
			// Group commit without a fixed delay (CommitOnIdle): while one commit's fsync
			// runs, messages queue up and the next commit takes them all. A quiet store
			// commits each message at once, a busy one in batches. The timer bounds the wait
			// when the queue never empties, or is the only trigger without CommitOnIdle.
			if len(e.dones) >= e.opts.CommitBatch || (e.opts.CommitOnIdle && len(e.in) == 0) {
				e.commit()
				if timerArmed {
					commitTimer.Stop()
					timerArmed = false
				}
			} else if !timerArmed {
				commitTimer.Reset(e.opts.CommitInterval)
				timerArmed = true
			}
		case <-commitTimer.C:
			timerArmed = false
			e.commit()
		case c := <-e.cmds.Requests():
			// The command runs here and is committed before the reply.
			val, err := c.Req()
			if err == nil && !e.commit() {
				err = errors.New("storage: the change could not be written; nothing was changed")
			}
			c.Reply(val, err)
		case <-resetTimer.C:
			e.dailyReset(nextReset)
			e.commit()
			nextReset, _ = e.nextReset()
			resetTimer.Reset(nextReset.Sub(e.opts.Now()))
		case <-liveness.C:
			if e.settle() {
				e.commit()
			}
			// Only between commits: a snapshot must never show what is not yet on disk.
			if len(e.dones) == 0 && e.pending.empty() && e.livenessChanged() {
				e.publish()
			}
		}
	}
}

// drainQueued handles what is already queued at shutdown so it is committed and acknowledged
// rather than redelivered.
func (e *Engine) drainQueued() {
	for {
		select {
		case m := <-e.in:
			e.handle(m)
		default:
			return
		}
	}
}

func (e *Engine) handle(m *Message) {
	outcome, reason := e.apply(m)
	e.dones = append(e.dones, pendingDone{msg: m, outcome: outcome, reason: reason})
}

// apply changes in-memory state for one message and stages its writes.
func (e *Engine) apply(m *Message) (Outcome, string) {
	if m.Reject != nil {
		return e.rejected(m, m.Reject)
	}
	now := e.opts.Now()
	if m.Status != nil {
		d, ok := e.device(m.Status.Device)
		if !ok {
			return e.rejected(m, Reject("unknown_device", "status from unconfigured device %q", m.Status.Device))
		}
		d.Online = m.Status.Online
		if !m.Retained {
			// A retained status is the broker's memory, not proof the device is alive now.
			d.LastSeen = now
		}
		e.pending.devices[m.Status.Device] = d
		return Applied, ""
	}
	if m.Vendor != nil {
		return e.applyVendor(m, now)
	}
	r := m.Report
	info, known := e.model.Device(r.Device)
	if !known {
		return e.rejected(m, Reject("unknown_device", "report from unconfigured device %q", r.Device))
	}
	if info.Kind != r.Kind {
		return e.rejected(m, Reject("wrong_kind", "device %q is configured as a %s but sent a %s report", r.Device, info.Kind, r.Kind))
	}
	if r.TS.After(now.Add(e.opts.MaxClockSkew)) {
		return e.rejected(m, Reject("future_ts", "device %q ts %s is more than %s ahead of the service clock", r.Device, r.TS.Format(time.RFC3339), e.opts.MaxClockSkew))
	}
	d, _ := e.device(r.Device)
	var err error
	if r.Kind == KindSensor {
		err = e.applySensor(d, r, now)
	} else {
		err = e.applyCounter(d, info, r, now)
	}
	var rej *RejectError
	switch {
	case errors.Is(err, errDuplicate):
		d.LastSeen, d.Online = now, true
		return Duplicate, ""
	case errors.As(err, &rej):
		// A refused report is not proof the device works: it does not keep it online.
		return e.rejected(m, rej)
	case err != nil:
		return e.rejected(m, &RejectError{Reason: "invalid", Err: err})
	}
	d.LastSeen, d.Online = now, true
	d.Reports++
	e.pending.devices[r.Device] = d
	return Applied, ""
}

func (e *Engine) device(id string) (*deviceState, bool) {
	if _, ok := e.model.Device(id); !ok {
		return nil, false
	}
	d := e.devices[id]
	if d == nil {
		d = &deviceState{}
		e.devices[id] = d
	}
	return d, true
}

func (e *Engine) applyCounter(d *deviceState, info DeviceInfo, r *Report, now time.Time) error {
	r = e.boundLines(r)
	plan, err := d.planCounter(r, info.Width)
	if err != nil {
		return err
	}
	if err := e.checkJump(d, &plan, now); err != nil {
		return err
	}
	var doors []DoorDelta
	for _, l := range plan.deltas {
		if l.In == 0 && l.Out == 0 {
			continue
		}
		di, _ := e.model.DoorOf(r.Device, l.Line) // boundLines kept only bound lines
		door := &e.model.Doors[di]
		dd := DoorDelta{Door: door.ID, In: l.In, Out: l.Out}
		if door.Reversed {
			dd.In, dd.Out = dd.Out, dd.In
		}
		doors = append(doors, dd)
	}
	if len(doors) > 0 {
		ts := r.TS
		entry := &LogEntry{At: now, Kind: EntryCrossing, Device: r.Device, Boot: r.Boot, DSeq: r.Seq, TS: &ts, Doors: doors}
		if err := e.occ.replay(entry); err != nil {
			return err // checked before anything changed: the device stays as it was too
		}
		e.stageZones(entry)
		for _, d := range doors {
			e.pending.doors[e.model.doorIdx[d.Door]] = true
		}
		e.pending.log = append(e.pending.log, entry)
	}
	d.commitCounter(&plan, now)
	return nil
}

// boundLines returns the report with only the lines a door is bound to. The others are
// counted (crowdwatch_ingest_unbound_lines_total) and logged, and never reach the device's
// record, which a device naming ever new line ids would otherwise grow without bound.
func (e *Engine) boundLines(r *Report) *Report {
	bound := 0
	for _, l := range r.Lines {
		if _, ok := e.model.DoorOf(r.Device, l.Line); ok {
			bound++
		}
	}
	if bound == len(r.Lines) {
		return r
	}
	e.metrics.observeUnbound(r.Device, len(r.Lines)-bound)
	kept := *r
	kept.Lines = make([]LineCount, 0, bound)
	for _, l := range r.Lines {
		if _, ok := e.model.DoorOf(r.Device, l.Line); ok {
			kept.Lines = append(kept.Lines, l)
		} else {
			e.logLimited("unbound_line:"+r.Device, "counter line is not bound to any door; its counts are ignored and not stored",
				"device", r.Device, "line", l.Line, "unbound_lines", len(r.Lines)-bound)
		}
	}
	return &kept
}

func (e *Engine) applySensor(d *deviceState, r *Report, now time.Time) error {
	if r.Count < 0 {
		return Reject("negative", "count %d is negative", r.Count)
	}
	info, _ := e.model.Device(r.Device)
	z, _ := e.model.Zone(info.Zone)
	if _, err := e.occ.setDiff(z, r.Count); err != nil {
		return err // before the device is touched, so the refusal changes nothing
	}
	if err := d.applySensor(r); err != nil {
		return err
	}
	ts := r.TS
	entry := &LogEntry{At: now, Kind: EntryAnchor, Device: r.Device, Boot: r.Boot, DSeq: r.Seq, TS: &ts,
		Zone: info.Zone, Value: r.Count, Before: e.occ.zones[z].Occupancy}
	if entry.Before == r.Count {
		return nil // a reading that agrees changes nothing and needs no log entry
	}
	if err := e.occ.replay(entry); err != nil {
		return err // unreachable: setDiff checked it
	}
	e.metrics.observeAnchor(info.Zone, r.Count-entry.Before)
	e.stageZones(entry)
	e.pending.log = append(e.pending.log, entry)
	return nil
}

// stageZones marks the zones an entry touched for the next commit.
func (e *Engine) stageZones(entry *LogEntry) {
	switch entry.Kind {
	case EntryCrossing:
		for _, d := range entry.Doors {
			di := e.model.doorIdx[d.Door]
			for _, z := range e.model.Doors[di].Gain {
				e.pending.zones[z] = true
			}
			for _, z := range e.model.Doors[di].Lose {
				e.pending.zones[z] = true
			}
		}
	case EntryReset:
		for z := range e.model.Zones {
			e.pending.zones[z] = true
		}
	default:
		z := e.model.zoneIdx[entry.Zone]
		for _, a := range e.model.Zones[z].Ancestors {
			e.pending.zones[a] = true
		}
	}
}

func (e *Engine) rejected(m *Message, rej *RejectError) (Outcome, string) {
	m.Refusal = rej
	e.logLimited("reject:"+rej.Reason, "message rejected", "reason", rej.Reason, "error", rej.Err)
	return Rejected, rej.Reason
}

// logLimited logs at most once every 10 s per key, so a broken device cannot flood the log.
func (e *Engine) logLimited(key, msg string, args ...any) {
	s := e.logOnce[key]
	if s == nil {
		if len(e.logOnce) > 1000 {
			clear(e.logOnce)
		}
		s = &rate.Sometimes{Interval: 10 * time.Second}
		e.logOnce[key] = s
	}
	s.Do(func() { e.log.Warn(msg, args...) })
}

// commit writes the staged changes, then acknowledges every message handled since the last
// commit, in order. On a write failure the in-memory state goes back to what is on disk and
// the messages are reported Failed, so their senders deliver them again.
func (e *Engine) commit() bool {
	if len(e.dones) == 0 && e.pending.empty() {
		return true
	}
	ok := true
	if !e.pending.empty() {
		now := e.opts.Now()
		if e.opts.LogRetention > 0 && now.Sub(e.lastPrune) >= pruneEvery {
			e.pending.pruneBefore = now.Add(-e.opts.LogRetention)
		}
		start := time.Now()
		err := e.store.commit(&e.pending, e.occ)
		if err == nil && !e.pending.pruneBefore.IsZero() {
			if e.pending.pruned < pruneChunk {
				e.lastPrune = now // caught up; a full chunk means more is waiting for the next commit
			}
			if e.pending.pruned > 0 {
				e.log.Debug("storage: crossing log pruned", "entries", e.pending.pruned, "before", e.pending.pruneBefore)
			}
		}
		e.metrics.observeCommit(time.Since(start), len(e.dones), err)
		if err != nil {
			ok = false
			e.healthy.Store(false)
			e.log.Error("storage: commit failed; state rolled back to the last commit and messages will be redelivered",
				"path", e.store.Path(), "messages", len(e.dones), "error", err)
			if occ, devices, lerr := e.store.load(e.model); lerr == nil {
				e.occ, e.devices = occ, devices
			} else {
				e.log.Error("storage: reloading state after a failed commit", "error", lerr)
			}
		} else if !e.healthy.Swap(true) {
			e.log.Info("storage: commits succeed again", "path", e.store.Path())
		}
	}
	e.pending.clear()
	if ok {
		// Readers see the new state before anyone is told it is committed.
		e.publish()
	}
	now := time.Now()
	for _, p := range e.dones {
		outcome := p.outcome
		if !ok {
			outcome = Failed
		}
		e.metrics.observeMessage(outcome, p.reason, now.Sub(p.msg.Received))
		if p.msg.Done != nil {
			p.msg.Done(outcome)
		}
	}
	clear(e.dones)
	e.dones = e.dones[:0]
	return ok
}

// pruneEvery is how often the crossing log is trimmed to its retention.
const pruneEvery = 10 * time.Minute

// publish builds a new immutable snapshot and signals subscribers.
func (e *Engine) publish() {
	e.version++
	e.snap.Store(e.buildSnapshot())
	e.changed.Notify()
}
