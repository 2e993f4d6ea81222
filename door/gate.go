package door

import (
	"math"
	"time"

	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/web/guidance"
)

// Reasons a metered door says wait (guidance.Admission.Reason).
const (
	ReasonLimit  = "limit"  // a zone on the path is at its limit
	ReasonPaced  = "paced"  // below the limit, the next release is not due yet
	ReasonStale  = "stale"  // the figures cannot be trusted
	ReasonClosed = "closed" // the plan's doors have not opened yet
)

// Modes of a metered door.
const (
	ModeRate        = "rate"
	ModeOneOutOneIn = "one_out_one_in"
)

const (
	// burstSeconds bounds the releases that may be outstanding (granted, not yet counted
	// through the door) to this many seconds' worth at the target rate, at least one: a queue
	// that was away does not come back as a rush, and counters that report every few seconds
	// still see the door used at its rate.
	burstSeconds = 5
	// releaseMargin: a door that held people one out, one in goes back to its rate once every
	// zone on the path is this fraction of its capacity below it (at least one place).
	releaseMargin = 0.10
	// idleEnd ends an episode once nobody has waited for this long: the queue counted
	// empty, or (queue not counted) a release offered and not taken.
	idleEnd = time.Minute
	// maxStep caps the time one step accrues releases for, so a stalled loop does not
	// release a burst when it resumes.
	maxStep = 2 * time.Second
	// enterShow is the longest a release shows "enter" (half the interval between releases
	// when that is shorter): people see enter and wait in turn, and a release that nobody
	// took is not shown for ever. grantExpiry drops a release that no counter has reported
	// after this long (nobody took it; a late count still moves the figures when it comes).
	enterShow = 2 * time.Second
	// minShow: a release shows "enter" at least this long, so that a screen (and a gate that
	// reads the retained topic) sees it; above two releases a second the door says enter
	// without pause, as a steady trickle at the target rate.
	minShow     = 500 * time.Millisecond
	grantExpiry = 15 * time.Second
	// exitWindow is how far back the exit rate (the admission rate one out, one in) is taken.
	exitWindow = 5 * time.Minute
)

// zoneFig is one zone on a metered door's path, as one step sees it.
type zoneFig struct {
	id       string
	occ      int64
	capacity int  // in force now
	critical bool // shown level critical or above (capacity reached, or density)
	// exits and entries are the zone's crossings out and in since the file was made.
	exits, entries uint64
}

func (z zoneFig) room() int64 { return int64(z.capacity) - z.occ }

// inputs is what one step of a gate reads.
type inputs struct {
	now     time.Time
	open    bool // the doors are open (at or after the plan's doors_open)
	trusted bool // every zone on the path has a certain, current figure
	path    []zoneFig
	entered uint64 // crossings in through the door since the file was made
	queue   *int64 // the queue zone's occupancy, nil when not counted
}

// gate is one metered door's state; only the Meter's goroutine touches it.
type gate struct {
	door string
	rate float64 // releases per minute below the limit
	// burst bounds outstanding releases and saved-up tokens.
	burst  int
	tokens float64
	last   time.Time
	// granted counts releases since metering began; base is the door's entered count then;
	// open are the times of the releases not yet counted through the door, oldest first.
	started bool
	granted uint64
	base    uint64
	open    []time.Time
	counted uint64 // entered, as of the last step
	// One out, one in: since when, on which zone, and that zone's counts at the start.
	holding                bool
	holdZone               string
	holdExits, holdEntries uint64
	exitHist               []exitMark
	state                  guidance.State
	ep                     *episode
}

type exitMark struct {
	at    time.Time
	exits uint64
}

type episode struct {
	promotion.MeteringEpisode
	startEntered uint64
	waitSum      float64 // seconds x seconds of expected wait shown
	waitTime     float64 // seconds during which a wait was shown
	idleSince    time.Time
	lastEntered  uint64
}

func newGate(door string, rate float64) *gate {
	return &gate{door: door, rate: rate, burst: max(1, int(math.Ceil(rate*burstSeconds/60)))}
}

// step works out the door's admission now; done is an episode that ended with this step.
func (g *gate) step(in inputs) (a guidance.Admission, done *promotion.MeteringEpisode) {
	dt := time.Duration(0)
	if !g.last.IsZero() {
		dt = min(max(0, in.now.Sub(g.last)), maxStep)
	}
	g.last = in.now
	if !g.started {
		g.started, g.base = true, in.entered
	}
	entered := in.entered - min(in.entered, g.base)
	// Each crossing counted takes the oldest open release; a release nobody took expires.
	took := entered - min(entered, g.counted)
	g.counted = entered
	g.open = g.open[min(int(took), len(g.open)):]
	for len(g.open) > 0 && in.now.Sub(g.open[0]) > grantExpiry {
		g.open = g.open[1:]
	}
	if entered > g.granted {
		g.granted = entered // someone passed without a release (staff, a counter's late burst)
	}
	outstanding := int64(len(g.open))

	// The zone that limits: critical first, then the fewest places left.
	lim := -1
	for i, z := range in.path {
		if lim < 0 || (z.critical && !in.path[lim].critical) || (z.critical == in.path[lim].critical && z.room() < in.path[lim].room()) {
			lim = i
		}
	}
	atLimit, room := false, int64(math.MaxInt64)
	for _, z := range in.path {
		atLimit = atLimit || z.critical || z.room() <= 0
		room = min(room, z.room())
	}
	if len(in.path) == 0 {
		in.trusted = false
	}
	a = guidance.Admission{Door: g.door, RatePerMin: g.rate, At: in.now, Mode: ModeRate, Queue: in.queue}
	if lim >= 0 {
		a.LimitingZone = in.path[lim].id
		g.exitHist = append(g.exitHist, exitMark{at: in.now, exits: in.path[lim].exits})
		for len(g.exitHist) > 1 && in.now.Sub(g.exitHist[0].at) > exitWindow {
			g.exitHist = g.exitHist[1:]
		}
	}

	switch {
	case !in.trusted || !in.open:
		// Nothing is released on figures that cannot be trusted, or before opening; what was
		// released and not taken is withdrawn.
		g.tokens, outstanding, g.open = 0, 0, nil
		a.Reason = ReasonStale
		if in.trusted {
			a.Reason = ReasonClosed
		}
	default:
		if atLimit && !g.holding {
			z := in.path[lim]
			g.holding, g.holdZone, g.holdExits, g.holdEntries, g.tokens = true, z.id, z.exits, z.entries, 0
		}
		if g.holding && !atLimit {
			clear := true
			for _, z := range in.path {
				margin := max(1, int64(math.Ceil(float64(z.capacity)*releaseMargin)))
				clear = clear && z.room() >= margin
			}
			if clear {
				g.holding = false
			}
		}
		if g.holding {
			a.Mode = ModeOneOutOneIn
			var hz zoneFig
			for _, z := range in.path {
				if z.id == g.holdZone {
					hz = z
				}
			}
			// One in for each one out of the zone that reached its limit, counting every
			// entry into it since (through this door or any other) and what is outstanding.
			credit := int64(hz.exits-min(hz.exits, g.holdExits)) - int64(hz.entries-min(hz.entries, g.holdEntries)) - outstanding
			for credit >= 1 && outstanding < int64(g.burst) && room-outstanding >= 1 && !atLimitCritical(in.path) {
				g.release(in.now)
				outstanding++
				credit--
			}
		} else {
			g.tokens = min(float64(g.burst), g.tokens+g.rate*dt.Minutes())
			for g.tokens >= 1 && outstanding < int64(g.burst) && room-outstanding >= 1 && !atLimitCritical(in.path) {
				g.tokens--
				g.release(in.now)
				outstanding++
			}
		}
	}
	a.Granted = g.granted
	show := min(enterShow, max(minShow, time.Duration(float64(time.Minute)/max(g.rate, 1)/2)))
	fresh := int64(0) // releases still shown
	for _, at := range g.open {
		if in.now.Sub(at) < show {
			fresh++
		}
	}
	if in.trusted && in.open && !atLimit && fresh >= 1 {
		a.State, a.Allowance = guidance.Enter, int(min(fresh, room))
	} else {
		a.State = guidance.Wait
		if a.Reason == "" {
			a.Reason = ReasonPaced
			if atLimit {
				a.Reason = ReasonLimit
			}
		}
	}
	if r := g.admitRate(a.Mode); in.queue != nil && r > 0 {
		w := float64(*in.queue) / r * 60
		a.WaitSeconds = &w
	}
	done = g.track(in, a, entered, outstanding, dt)
	g.state = a.State
	return a, done
}

// release lets one more person in.
func (g *gate) release(now time.Time) {
	g.granted++
	g.open = append(g.open, now)
}

func atLimitCritical(path []zoneFig) bool {
	for _, z := range path {
		if z.critical {
			return true
		}
	}
	return false
}

// admitRate is the rate the queue moves at: the target rate, or one out, one in the exit
// rate of the limiting zone over the last minutes.
func (g *gate) admitRate(mode string) float64 {
	if mode == ModeRate {
		return g.rate
	}
	if len(g.exitHist) < 2 {
		return 0
	}
	first, last := g.exitHist[0], g.exitHist[len(g.exitHist)-1]
	span := last.at.Sub(first.at).Minutes()
	if span < 0.5 {
		return 0
	}
	return float64(last.exits-min(last.exits, first.exits)) / span
}

// track keeps the episode: it begins the first time the door says wait while open and ends
// once nobody has waited for idleEnd.
func (g *gate) track(in inputs, a guidance.Admission, entered uint64, outstanding int64, dt time.Duration) *promotion.MeteringEpisode {
	ep := g.ep
	if ep == nil {
		// Somebody is held back: the queue counted is not empty, or (not counted) the door
		// is one out, one in or every release so far was taken.
		waiting := g.holding || outstanding == 0
		if in.queue != nil {
			waiting = *in.queue > 0
		}
		if !in.open || a.State != guidance.Wait || !waiting {
			return nil
		}
		ep = &episode{MeteringEpisode: promotion.MeteringEpisode{Door: g.door, From: in.now}, startEntered: entered, lastEntered: entered}
		g.ep = ep
	}
	ep.To = in.now
	if g.state == guidance.Wait {
		ep.HeldFor += dt
	}
	ep.Admitted = int(entered - min(entered, ep.startEntered))
	if in.queue != nil {
		ep.QueueMax = max(ep.QueueMax, int(*in.queue))
	}
	if a.WaitSeconds != nil {
		w := time.Duration(*a.WaitSeconds * float64(time.Second))
		ep.WaitMax = max(ep.WaitMax, w)
		ep.waitSum += *a.WaitSeconds * dt.Seconds()
		ep.waitTime += dt.Seconds()
	}
	idle := false
	switch {
	case !in.open:
		idle = true
	case in.queue != nil:
		idle = *in.queue == 0 && !g.holding
	default:
		idle = outstanding >= 1 && entered == ep.lastEntered && !g.holding
	}
	ep.lastEntered = entered
	if !idle {
		ep.idleSince = time.Time{}
		return nil
	}
	if ep.idleSince.IsZero() {
		ep.idleSince = in.now
	}
	if in.open && in.now.Sub(ep.idleSince) < idleEnd {
		return nil
	}
	return g.finish()
}

// current is the open episode as it stands, if any, for a review made while it lasts.
func (g *gate) current() *promotion.MeteringEpisode {
	ep := g.ep
	if ep == nil {
		return nil
	}
	out := ep.MeteringEpisode
	if ep.waitTime > 0 {
		out.WaitMean = time.Duration(ep.waitSum / ep.waitTime * float64(time.Second))
	}
	return &out
}

// finish ends the open episode, if any.
func (g *gate) finish() *promotion.MeteringEpisode {
	ep := g.ep
	if ep == nil {
		return nil
	}
	g.ep = nil
	if ep.waitTime > 0 {
		ep.WaitMean = time.Duration(ep.waitSum / ep.waitTime * float64(time.Second))
	}
	out := ep.MeteringEpisode
	return &out
}
