package web

import (
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web/guidance"
)

// AdmissionSource is what the feed reads from the door meter (door.Meter): each metered
// door's admission now, and a coalesced signal after each change.
type AdmissionSource interface {
	Admission(door string) (guidance.Admission, bool)
	Subscribe() (<-chan struct{}, func())
}

// countdownView is the event plan the dashboard counts down to: the one running, or the next
// one to start within planAhead.
type countdownView struct {
	ID        string            `json:"id"`
	Name      string            `json:"name"`
	Names     map[string]string `json:"names,omitempty"`
	Start     time.Time         `json:"start"`
	End       time.Time         `json:"end"`
	DoorsOpen time.Time         `json:"doors_open"`
	Running   bool              `json:"running"`
	Metered   []string          `json:"metered,omitempty"` // the metered doors
}

// planAhead is how far ahead the dashboard shows a coming plan.
const planAhead = 24 * time.Hour

// drillView puts the drills in force and the plan on the view, and says which zones are
// being drilled (the screens guarding them say DRILL).
func (l *Live) drillView(v *view, status *alerting.Status) map[string]bool {
	now := l.o.Now()
	v.drills = []alerting.Drill{}
	drilling := map[string]bool{}
	if status != nil {
		for _, d := range status.Drills {
			v.drills = append(v.drills, d)
			for _, z := range d.Affected {
				drilling[z] = true
			}
		}
	}
	var best *countdownView
	for _, e := range l.plans() {
		running := !now.Before(e.Start) && now.Before(e.End)
		if !running && (!e.Start.After(now) || e.Start.After(now.Add(planAhead))) {
			continue
		}
		p := &countdownView{ID: e.ID, Name: e.Name, Names: e.Names.ByLanguage(e.Name), Start: e.Start, End: e.End, DoorsOpen: e.DoorsOpen, Running: running}
		for _, m := range e.Metered {
			p.Metered = append(p.Metered, m.Door)
		}
		if best == nil || (p.Running && !best.Running) || (p.Running == best.Running && p.Start.Before(best.Start)) {
			best = p
		}
	}
	v.plan = best
	return drilling
}

// meter applies the admission of the screen's door, when it is metered now.
func (l *Live) meter(g *guidance.Guidance, s configs.Screen, now time.Time) {
	if l.o.Admissions == nil || s.Door == "" {
		return
	}
	a, ok := l.o.Admissions.Admission(s.Door)
	if !ok {
		return
	}
	stale := l.o.Layout.Signage.StaleAfter
	if stale <= 0 {
		stale = 10 * time.Second
	}
	guidance.ApplyAdmission(g, a, now, stale)
}

// sameAdmission compares what a screen or a gate shows of an admission.
func sameAdmission(a, b *guidance.Admission) bool {
	if a == nil || b == nil {
		return a == b
	}
	wa, wb := -1, -1
	if a.WaitSeconds != nil {
		wa = int(*a.WaitSeconds / 60)
	}
	if b.WaitSeconds != nil {
		wb = int(*b.WaitSeconds / 60)
	}
	return a.State == b.State && a.Mode == b.Mode && a.Reason == b.Reason && a.Granted == b.Granted && wa == wb
}

// plans are the promotion plans known now: LiveOptions.Plans, or the store file's.
func (l *Live) plans() []configs.EventPlan {
	if l.o.Plans != nil {
		return l.o.Plans()
	}
	return l.o.Layout.Events
}
