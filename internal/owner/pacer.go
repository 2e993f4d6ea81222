package owner

import "time"

// Edge is when a paced change goes out.
type Edge int

const (
	// Leading: a change after a quiet spell goes out at once, later ones when the interval
	// since the last action has passed, so a busy source causes at most one action per
	// interval and a lone change is not delayed.
	Leading Edge = iota
	// Trailing: every change waits for the next tick of a fixed interval, so a burst
	// becomes one action on the tick. C ticks whether or not a change waits.
	Trailing
)

// Pacer limits how often an owner acts on changes. It belongs to the owner's goroutine
// (it is not safe for concurrent use) and fits its select loop:
//
//	case <-changed:
//		if !pace.Ready() { continue } // held: C fires when it is due
//		act(); pace.Sent()
//	case <-pace.C():
//		if pace.Fired() { act(); pace.Sent() }
//
// The owner reads the latest state when it acts, so the last change of a burst is never lost.
type Pacer struct {
	edge     Edge
	interval time.Duration
	timer    *time.Timer  // Leading
	ticker   *time.Ticker // Trailing
	armed    bool         // Leading: the timer runs for a held change
	pending  bool         // Trailing: a change waits for the tick
	last     time.Time
	// gap (Leading, PaceUnderLoad): the least time between two actions now, at most the
	// interval.
	gap func() time.Duration
}

// PaceUnderLoad makes a Leading pacer hold changes for the full interval only while the
// owner is busy: gap, asked at each change, says the least time between two actions now
// (for the live feed: a short gap while every client has written what it was sent and the
// fan-out is small, the interval otherwise); the change goes out once that much has passed
// since the last action. A source that changes every few milliseconds at a store's load then
// reaches its clients within a commit instead of waiting for the interval, and a feed whose
// clients fall behind, or that has a thousand of them, is still held to one action per
// interval. gap runs on the owner's goroutine; its answer is kept between 0 and the interval.
func (p *Pacer) PaceUnderLoad(gap func() time.Duration) {
	p.gap = gap
}

// NewPacer makes a pacer; interval must be > 0. Stop it when the owner returns.
func NewPacer(interval time.Duration, edge Edge) *Pacer {
	p := &Pacer{edge: edge, interval: interval}
	if edge == Trailing {
		p.ticker = time.NewTicker(interval)
	} else {
		p.timer = time.NewTimer(time.Hour)
		p.timer.Stop()
	}
	return p
}

// Ready records a change and reports whether the owner may act on it now. When it may not,
// the change is held and C fires when it is due; a change while one is held joins it.
func (p *Pacer) Ready() bool {
	if p.edge == Trailing {
		p.pending = true
		return false
	}
	if p.armed {
		return false
	}
	since := time.Since(p.last)
	wait := p.interval - since
	if wait > 0 && p.gap != nil {
		wait = min(max(p.gap(), 0), p.interval) - since
	}
	if wait > 0 {
		p.timer.Reset(wait)
		p.armed = true
		return false
	}
	return true
}

// C fires when a held change is due (Leading) or on every tick (Trailing). After receiving
// from it, call Fired.
func (p *Pacer) C() <-chan time.Time {
	if p.edge == Trailing {
		return p.ticker.C
	}
	return p.timer.C
}

// Fired is called after C fired; it reports whether a held change is now due.
func (p *Pacer) Fired() bool {
	if p.edge == Trailing {
		due := p.pending
		p.pending = false
		return due
	}
	p.armed = false
	return true
}

// Sent records that the owner acted: with Leading, the next change goes out at once only
// after the interval since now.
func (p *Pacer) Sent() { p.last = time.Now() }

// Stop releases the timer.
func (p *Pacer) Stop() {
	if p.ticker != nil {
		p.ticker.Stop()
	}
	if p.timer != nil {
		p.timer.Stop()
	}
}
