// Package promotion helps a store prepare and learn from a promotion: the capacity
// assessment, the event plan in force, the forecast and staffing plan, and the review after
// the event (docs/events.md). The live door metering and drills record what happened in the
// shapes below, which the review reads.
package promotion

import "time"

// MeteringEpisode is one stretch during which a metered entrance held people back (its
// screen showed "please wait" at least part of the time).
type MeteringEpisode struct {
	Door     string
	From, To time.Time
	// Admitted is how many people the door let in during the episode.
	Admitted int
	// HeldFor is the total time the screen said "please wait".
	HeldFor time.Duration
	// QueueMax is the largest queue counted outside (0 when the queue is not counted), and
	// WaitMax / WaitMean the expected waits shown to the queue.
	QueueMax          int
	WaitMax, WaitMean time.Duration
}

// DrillReport is one evacuation drill as measured.
type DrillReport struct {
	ID        string
	Zones     []string // the zones drilled ("" never; the site drill lists every zone)
	By        string   // the security user who started it
	StartedAt time.Time
	EndedAt   time.Time
	// Estimate is the evacuation-time estimate at the alarm; Cleared is, per zone, how long
	// after the alarm it was empty (absent: not empty before the drill ended).
	Estimate time.Duration
	Cleared  map[string]time.Duration
	// StartCount is each zone's occupancy at the alarm.
	StartCount map[string]int64
}

// Records is where the live side keeps what happened at the doors and in drills, for the
// review.
type Records interface {
	MeteringEpisodes(from, to time.Time) ([]MeteringEpisode, error)
	Drills(from, to time.Time) ([]DrillReport, error)
}
