// Package announce speaks to the crowd through a PA gateway: one message per language on
// <prefix>/<site>/announce/<zone> (ingest.Topics.Announce) when a zone's state calls for it
// (busy, full, metering, evacuation, drill), from templates in each language
// (event_day.announcements over the built-in ones), and manual announcements a guard sends
// after reading the text (docs/protocol.md, "Announcements").
package announce

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/owner"
	"github.com/crowdwatch/crowdwatch/levels"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

// States a zone is announced in, most urgent first.
const (
	Evacuation = "evacuation"
	Drill      = "drill"
	Full       = "full"
	Metering   = "metering"
	Busy       = "busy"
)

// Priority of each state for the PA gateway: 1 is the most urgent (it interrupts the rest).
var Priority = map[string]int{Evacuation: 1, Drill: 2, Full: 3, Metering: 4, Busy: 5}

// Builtin are the templates when the store file gives none: state -> language -> text, with
// {zone} (the zone's name in that language) and {wait} (whole minutes).
var Builtin = map[string]map[string]string{
	Busy: {
		"en": "{zone} is busy. Please take your time and keep moving.",
		"zh": "{zone}人流较多，请慢行，注意安全。",
	},
	Full: {
		"en": "{zone} is full. Please wait; entry resumes as people leave.",
		"zh": "{zone}人数已满，请稍候，有人离开后再入场。",
	},
	Metering: {
		"en": "Entry to {zone} is metered for your safety. Please wait until the screen says enter. Expected wait about {wait} minutes.",
		"zh": "为保障安全，{zone}限流入场。请等候屏幕显示“请进入”。预计等候约{wait}分钟。",
	},
	Evacuation: {
		"en": "Attention please. Please leave {zone} now by the nearest exit and follow staff instructions.",
		"zh": "请注意，请立即从最近的出口离开{zone}，听从工作人员指挥。",
	},
	Drill: {
		"en": "This is a drill. This is only a drill. Please leave {zone} by the nearest exit as you would in a real evacuation.",
		"zh": "这是演练，这只是演练。请像真实疏散一样，从最近的出口离开{zone}。",
	},
}

// unknownWait fills {wait} when the queue is not counted.
var unknownWait = map[string]string{"en": "a few", "zh": "几"}

// Message is one announcement in one language, as published (JSON).
type Message struct {
	Zone     string    `json:"zone"`
	State    string    `json:"state"`
	Language string    `json:"language"`
	Text     string    `json:"text"`
	Priority int       `json:"priority"`
	Manual   bool      `json:"manual,omitempty"`
	By       string    `json:"by,omitempty"`
	At       time.Time `json:"at"`
}

// Publisher sends on MQTT (the embedded broker or the external client).
type Publisher interface {
	Publish(topic string, payload []byte, retain bool) error
	Connected() bool
}

// AlertSource gives levels, evacuations and drills (alerting.Manager).
type AlertSource interface {
	Status() *alerting.Status
	Subscribe() (<-chan struct{}, func())
}

// AdmissionSource gives the metered doors' admissions (door.Meter).
type AdmissionSource interface {
	Admissions() map[string]guidance.Admission
	Subscribe() (<-chan struct{}, func())
}

// Options wire an Announcer.
type Options struct {
	Config     *configs.Config
	Engine     zones.Source
	Alerts     AlertSource     // nil: levels by the built-in thresholds, no evacuations
	Admissions AdmissionSource // nil: no metering announcements
	// Capacities are the capacities in force (the plan's while it runs; door.PlanCapacities):
	// a zone at its capacity in force is full whatever its everyday level. nil: levels only.
	Capacities interface {
		CapacityAt(zone string, t time.Time) int
	}
	// Plans are the promotion plans known now (promotion.Plans); nil: Config.Events.
	Plans     func() []configs.EventPlan
	Publisher Publisher // nil: nothing is published (previews still work)
	Topic     func(zone string) string
	// Repeat is the least time between two automatic announcements of the same state in a
	// zone (busy, full, metering; evacuation and drill always go out at once): 2 min.
	Repeat time.Duration
	Now    func() time.Time
	Log    *slog.Logger
}

// ErrInvalid wraps a request that cannot be carried out; ErrUnavailable one that cannot
// reach the PA now.
var (
	ErrInvalid     = errors.New("invalid announcement")
	ErrUnavailable = errors.New("the PA gateway cannot be reached")
	errStopped     = errors.New("announcements stopped")
)

// Announcer owns the zones' announced states (one goroutine, Run) and the queue to MQTT.
type Announcer struct {
	o         Options
	templates map[string]map[string]string
	names     map[string]map[string]string // zone -> language -> name
	queues    map[string]string            // metered door -> its queue zone, while a plan meters it
	cmds      *owner.Commands[manual]
	done      chan struct{}
	out       chan []Message
}

type manual struct {
	zone, state, by string
}

// New builds an Announcer; Run starts it.
func New(o Options) *Announcer {
	if o.Repeat <= 0 {
		o.Repeat = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	a := &Announcer{o: o, templates: map[string]map[string]string{}, names: map[string]map[string]string{},
		done: make(chan struct{}), out: make(chan []Message, 64)}
	for state, byLang := range Builtin {
		a.templates[state] = map[string]string{}
		for lang, t := range byLang {
			a.templates[state][lang] = t
		}
		for lang, t := range o.Config.EventDay.Announcements[state] {
			a.templates[state][lang] = t
		}
	}
	for _, z := range o.Config.Zones {
		a.names[z.ID] = z.Names.ByLanguage(z.Name)
	}
	a.cmds = owner.NewCommands[manual](a.done, errStopped)
	return a
}

// Templates are the texts in force: state -> language -> template.
func (a *Announcer) Templates() map[string]map[string]string { return a.templates }

// StateOf is what zone should be announced as now ("" for nothing to say).
func (a *Announcer) StateOf(zone string) string {
	return a.states()[zone]
}

// states works out every zone's state from the latest figures.
func (a *Announcer) states() map[string]string {
	out := map[string]string{}
	snap := a.o.Engine.Snapshot()
	var status *alerting.Status
	if a.o.Alerts != nil {
		status = a.o.Alerts.Status()
	}
	set := func(z, s string) {
		if cur, ok := out[z]; !ok || Priority[s] < Priority[cur] {
			out[z] = s
		}
	}
	if snap != nil {
		now := a.o.Now()
		for _, z := range snap.Zones {
			atCap := a.o.Capacities != nil && z.Occupancy >= int64(a.o.Capacities.CapacityAt(z.ID, now))
			switch lv := status.Show(z).Level; {
			case lv >= levels.Critical || atCap:
				set(z.ID, Full)
			case lv >= levels.Busy:
				set(z.ID, Busy)
			}
		}
	}
	if status != nil {
		for _, ev := range status.Evacuations {
			for _, z := range ev.Affected {
				set(z, Evacuation)
			}
		}
		for _, d := range status.Drills {
			for _, z := range d.Affected {
				set(z, Drill)
			}
		}
	}
	if a.o.Admissions != nil {
		for door, ad := range a.o.Admissions.Admissions() {
			if q := a.queueOf(door); q != "" && ad.State == guidance.Wait {
				set(q, Metering)
			}
		}
	}
	return out
}

// queueOf is the queue zone of a metered door in the plan running now.
func (a *Announcer) queueOf(door string) string {
	now := a.o.Now()
	plans := a.o.Config.Events
	if a.o.Plans != nil {
		plans = a.o.Plans()
	}
	for _, e := range plans {
		if now.Before(e.Start) || !now.Before(e.End) {
			continue
		}
		for _, m := range e.Metered {
			if m.Door == door {
				return m.Queue
			}
		}
	}
	return ""
}

// Preview is what an announcement of zone in state would say now, in each language; state
// "" takes the zone's state now (busy when there is nothing else to say).
func (a *Announcer) Preview(zone, state string) ([]Message, error) {
	if _, ok := a.names[zone]; !ok {
		return nil, fmt.Errorf("%w: unknown zone %q", ErrInvalid, zone)
	}
	if state == "" {
		state = a.StateOf(zone)
	}
	if state == "" {
		state = Busy
	}
	if _, ok := a.templates[state]; !ok {
		return nil, fmt.Errorf("%w: state %q must be one of %v", ErrInvalid, state, configs.AnnouncementStates)
	}
	return a.render(zone, state, a.o.Now()), nil
}

func (a *Announcer) render(zone, state string, now time.Time) []Message {
	wait := a.waitMinutes(zone)
	var out []Message
	for _, lang := range configs.Languages {
		t := a.templates[state][lang]
		if t == "" {
			t = a.templates[state]["en"]
		}
		w := unknownWait[lang]
		if wait > 0 {
			w = strconv.Itoa(wait)
		}
		name := a.names[zone][lang]
		if name == "" {
			name = zone
		}
		text := strings.NewReplacer("{zone}", name, "{wait}", w).Replace(t)
		out = append(out, Message{Zone: zone, State: state, Language: lang, Text: text, Priority: Priority[state], At: now})
	}
	return out
}

// waitMinutes is the longest expected wait of the metered doors whose queue is zone.
func (a *Announcer) waitMinutes(zone string) int {
	if a.o.Admissions == nil {
		return 0
	}
	best := 0
	for door, ad := range a.o.Admissions.Admissions() {
		if a.queueOf(door) == zone && ad.WaitSeconds != nil {
			best = max(best, int((*ad.WaitSeconds+59)/60))
		}
	}
	return best
}

// Announce sends a manual announcement of zone in state ("" for its state now) and returns
// what was sent. It is refused when the PA cannot be reached (MQTT down), so the guard knows.
func (a *Announcer) Announce(ctx context.Context, zone, state, by string) ([]Message, error) {
	if strings.TrimSpace(by) == "" {
		return nil, fmt.Errorf("%w: an announcement needs the name of who sends it", ErrInvalid)
	}
	if _, err := a.Preview(zone, state); err != nil {
		return nil, err
	}
	if a.o.Publisher == nil || !a.o.Publisher.Connected() {
		return nil, ErrUnavailable
	}
	v, err := a.cmds.Do(ctx, manual{zone: zone, state: state, by: by})
	if err != nil {
		return nil, err
	}
	return v.([]Message), nil
}

// Run announces state changes until ctx ends.
func (a *Announcer) Run(ctx context.Context) {
	defer close(a.done)
	pubDone := make(chan struct{})
	go func() { defer close(pubDone); a.publish(ctx) }()
	defer func() { <-pubDone }()
	engineCh, cancel := a.o.Engine.Subscribe()
	defer cancel()
	var alertCh, admitCh <-chan struct{}
	if a.o.Alerts != nil {
		ch, c := a.o.Alerts.Subscribe()
		defer c()
		alertCh = ch
	}
	if a.o.Admissions != nil {
		ch, c := a.o.Admissions.Subscribe()
		defer c()
		admitCh = ch
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	said := map[string]string{}  // zone -> state last announced ("" none)
	at := map[string]time.Time{} // zone+state -> when
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-a.cmds.Requests():
			state := r.Req.state
			if state == "" {
				state = cmpOr(a.StateOf(r.Req.zone), Busy)
			}
			msgs := a.render(r.Req.zone, state, a.o.Now())
			for i := range msgs {
				msgs[i].Manual, msgs[i].By = true, r.Req.by
			}
			a.send(msgs)
			a.o.Log.Info("announcement sent", "zone", r.Req.zone, "state", state, "by", r.Req.by)
			r.Reply(msgs, nil)
			continue
		case <-engineCh:
		case <-alertCh:
		case <-admitCh:
		case <-tick.C:
		}
		now := a.o.Now()
		states := a.states()
		zonesSorted := make([]string, 0, len(a.names))
		for z := range a.names {
			zonesSorted = append(zonesSorted, z)
		}
		slices.Sort(zonesSorted)
		for _, z := range zonesSorted {
			s := states[z]
			if s == said[z] {
				continue
			}
			said[z] = s
			if s == "" || first && (s == Busy) {
				continue // a start-up in a busy store does not announce it again
			}
			urgent := s == Evacuation || s == Drill
			if last, ok := at[z+"/"+s]; ok && !urgent && now.Sub(last) < a.o.Repeat {
				continue
			}
			at[z+"/"+s] = now
			a.send(a.render(z, s, now))
		}
		first = false
	}
}

// send queues messages for the publisher without waiting; when 64 batches are waiting the
// oldest is dropped (the newest state matters most) and the drop logged.
func (a *Announcer) send(msgs []Message) {
	if a.o.Publisher == nil || a.o.Topic == nil {
		return
	}
	for {
		select {
		case a.out <- msgs:
			return
		default:
		}
		select {
		case old := <-a.out:
			a.o.Log.Warn("announcement dropped, the PA publisher is behind", "zone", old[0].Zone, "state", old[0].State)
		default:
		}
	}
}

func (a *Announcer) publish(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case msgs := <-a.out:
			for _, m := range msgs {
				b, _ := json.Marshal(m)
				if err := a.o.Publisher.Publish(a.o.Topic(m.Zone), b, false); err != nil {
					a.o.Log.Warn("mqtt: announcement not published", "zone", m.Zone, "state", m.State, "error", err)
				}
			}
		}
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
