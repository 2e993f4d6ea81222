package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/ha"
	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/web"
	"github.com/crowdwatch/crowdwatch/zones"
)

// With HA on, the operator actions the API takes (acknowledgements, evacuations and
// drills, silences, corrections, plan changes) go through the action log (ha.Log) instead of straight to
// the component: Append writes one to etcd, every instance's log applies it in revision
// order through applyAction, which calls the same command the API called before, and the
// instance that took it answers once it applied it here, with the command's own answer.
// The adapters below implement the interfaces the handlers already use, so the handlers do
// not know about HA (docs/ha.md, "Operator action log").

// appendWait bounds how long an action waits for the coordinator before it is refused.
const appendWait = 5 * time.Second

// ErrCoordinator wraps an action refused because the coordinator did not take it.
var ErrCoordinator = errors.New("the coordinator (etcd) is unreachable: the action was not applied on any instance; try again")

type ackBody struct {
	ID   string `json:"id,omitempty"`
	Zone string `json:"zone,omitempty"`
	Note string `json:"note,omitempty"`
	// Open are the alerts the taking instance had open for it, by id with their start: an
	// instance that has not opened one yet keeps the acknowledgement for it until it does.
	Open map[string]time.Time `json:"open,omitempty"`
}

type evacBody struct {
	Zone   string `json:"zone"`
	Reason string `json:"reason"`
	End    bool   `json:"end,omitempty"`
	// Drill: an evacuation drill (started, or ended with End); its id is the taking
	// instance's and its start the action's at, so it is one drill on every instance.
	Drill   bool   `json:"drill,omitempty"`
	DrillID string `json:"drill_id,omitempty"`
}

type silenceBody struct {
	Add    *alerting.Silence `json:"add,omitempty"`
	Delete string            `json:"delete,omitempty"`
}

type planBody struct {
	ID     string               `json:"id,omitempty"` // update and delete
	Input  *promotion.PlanInput `json:"input,omitempty"`
	Force  bool                 `json:"force,omitempty"`
	Delete bool                 `json:"delete,omitempty"`
}

type correctionBody struct {
	Zone   string `json:"zone"`
	Value  int64  `json:"value"`
	Reason string `json:"reason"`
}

// actions applies the log's entries to this instance's components and hands the instance's
// own actions' answers back to the API call that appended them.
type actions struct {
	self    string
	log     *slog.Logger
	alerts  *alerting.Manager
	engine  *zones.Engine
	plans   *promotion.Service
	appendf func(ctx context.Context, a ha.Action) (int64, error)
	// sessions takes the other instances' sign-ins and sign-outs (app/hasessions.go).
	sessions sessionApplier

	mu      sync.Mutex
	answers map[int64]answer // this instance's actions by revision, until their caller reads them
	late    chan ha.Action   // evacuations applied locally while the coordinator was away
}

type answer struct {
	v   any
	err error
}

func newActions(self string, log *slog.Logger) *actions {
	return &actions{self: self, log: log, answers: map[int64]answer{}, late: make(chan ha.Action, 64)}
}

// apply is the log's handler. A command's refusal (unknown alert, bad request) is the same on
// every instance and is not an error of the log; a stopped component is, so the entry stays
// pending and comes again after the restart.
func (x *actions) apply(ctx context.Context, e ha.Entry) error {
	v, err := x.run(ctx, e.Action)
	if errors.Is(err, alerting.ErrStopped) || errors.Is(err, zones.ErrStopped) || errors.Is(err, promotion.ErrStopped) || ctx.Err() != nil {
		return fmt.Errorf("%s action at revision %d: %w", e.Kind, e.Rev, cmpErr(err, ctx.Err()))
	}
	if err != nil {
		x.log.Info("ha: an operator action was refused (the same on every instance)", "kind", e.Kind, "rev", e.Rev, "by", e.By, "error", err)
	}
	if e.Instance == x.self && e.Kind != actionSession { // nobody waits for a session's answer (hasessions.go)
		x.mu.Lock()
		if len(x.answers) > 1000 { // callers that gave up; their answers are not read any more
			clear(x.answers)
		}
		x.answers[e.Rev] = answer{v: v, err: err}
		x.mu.Unlock()
	}
	return nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// run calls the command an action stands for.
func (x *actions) run(ctx context.Context, a ha.Action) (any, error) {
	switch a.Kind {
	case actionSession: // sign-in sessions: app/hasessions.go
		return x.applySession(ctx, a)
	case ha.ActionAcknowledge:
		var b ackBody
		if err := json.Unmarshal(a.Body, &b); err != nil {
			return nil, fmt.Errorf("%w: %v", alerting.ErrInvalid, err)
		}
		// The taking instance's answer decides: it appended only what it had open, so the
		// others keep an acknowledgement for an alert they have not opened yet (earlyack.go).
		got, err := x.alerts.ApplyAck(ctx, alerting.AckAction{ID: b.ID, Zone: b.Zone, By: a.By, Note: b.Note, At: a.At,
			Occurrences: b.Open, Keep: a.Instance != x.self})
		if err != nil || b.ID == "" {
			return got, err
		}
		if len(got) == 0 { // kept pending here; only the taking instance's answer is read
			return alerting.Alert{}, nil
		}
		return got[0], nil
	case ha.ActionEvacuation:
		var b evacBody
		if err := json.Unmarshal(a.Body, &b); err != nil {
			return nil, fmt.Errorf("%w: %v", alerting.ErrInvalid, err)
		}
		switch {
		case b.Drill && b.End:
			return x.alerts.EndDrillAt(ctx, b.Zone, a.By, a.At)
		case b.Drill:
			return x.alerts.StartDrillAs(ctx, alerting.DrillStart{Zone: b.Zone, By: a.By, ID: b.DrillID, At: a.At})
		case b.End:
			return nil, x.alerts.StandDown(ctx, b.Zone, a.By, b.Reason)
		}
		return x.alerts.DeclareAt(ctx, b.Zone, a.By, b.Reason, a.At)
	case ha.ActionSilence:
		var b silenceBody
		if err := json.Unmarshal(a.Body, &b); err != nil {
			return nil, fmt.Errorf("%w: %v", alerting.ErrInvalid, err)
		}
		if b.Add != nil {
			return x.alerts.AddSilence(ctx, *b.Add)
		}
		return nil, x.alerts.DeleteSilence(ctx, b.Delete, a.By)
	case ha.ActionPlan:
		var b planBody
		if err := json.Unmarshal(a.Body, &b); err != nil {
			return nil, fmt.Errorf("%w: %v", promotion.ErrInvalid, err)
		}
		// Whether a plan is running is judged at the action's time, the taking instance's,
		// so that every instance decides alike even at a plan's very start or end.
		switch {
		case b.Delete:
			return nil, x.plans.DeleteAsOf(ctx, b.ID, a.By, b.Force, a.At)
		case b.Input == nil:
			return nil, fmt.Errorf("%w: the plan action has no plan", promotion.ErrInvalid)
		case b.ID != "":
			return x.plans.UpdateAsOf(ctx, b.ID, *b.Input, a.By, b.Force, a.At)
		}
		return x.plans.CreateAsOf(ctx, *b.Input, a.By, a.At)
	case ha.ActionCorrection:
		var b correctionBody
		if err := json.Unmarshal(a.Body, &b); err != nil {
			return nil, fmt.Errorf("%w: %v", zones.ErrCorrectionRange, err)
		}
		return x.engine.Correct(ctx, b.Zone, b.Value, a.By, b.Reason)
	}
	return nil, fmt.Errorf("%w: action kind %q is not known to this version", alerting.ErrInvalid, a.Kind)
}

// take appends an action and returns this instance's answer to it.
func (x *actions) take(ctx context.Context, kind, by string, body any) (any, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	actx, cancel := context.WithTimeout(ctx, appendWait)
	defer cancel()
	rev, err := x.appendf(actx, ha.Action{Kind: kind, By: by, Body: raw})
	if err != nil {
		if rev == 0 {
			return nil, fmt.Errorf("%w (%w)", ErrCoordinator, err)
		}
		return nil, fmt.Errorf("the action is in the log (revision %d) but not applied here yet: %w", rev, err)
	}
	x.mu.Lock()
	ans, ok := x.answers[rev]
	delete(x.answers, rev)
	x.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("the action at revision %d was applied but its answer is lost", rev)
	}
	return ans.v, ans.err
}

// retryLate appends the evacuations applied locally while the coordinator was away, as soon
// as it answers, so that every instance applies them too (Declare is idempotent here), each
// with its declaration's time as the action's at (set by Declare; Append keeps a set at).
func (x *actions) retryLate(ctx context.Context) error {
	var queue []ha.Action
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case a := <-x.late:
			queue = append(queue, a)
		case <-tick.C:
		}
		for len(queue) > 0 {
			actx, cancel := context.WithTimeout(ctx, appendWait)
			_, err := x.appendf(actx, queue[0])
			cancel()
			if err != nil {
				break
			}
			x.log.Warn("ha: an evacuation declared while the coordinator was away is now in the action log", "by", queue[0].By)
			queue = queue[1:]
		}
	}
}

// haAlerting is the alert manager as the API uses it, with its commands through the log.
type haAlerting struct {
	*alerting.Manager
	x *actions
}

// Ack is refused here, before it is appended, when this instance does not have the alert
// open (404 as on a single instance); what it appends, every instance applies or keeps.
func (h haAlerting) Ack(ctx context.Context, id, by, note string) (alerting.Alert, error) {
	if by == "" {
		return alerting.Alert{}, fmt.Errorf("%w: an acknowledgement needs the name of who acknowledges", alerting.ErrInvalid)
	}
	open, err := h.Manager.OpenOccurrences(ctx, id, "")
	if err != nil {
		return alerting.Alert{}, err
	}
	v, err := h.x.take(ctx, ha.ActionAcknowledge, by, ackBody{ID: id, Note: note, Open: open})
	if err != nil {
		return alerting.Alert{}, err
	}
	return v.(alerting.Alert), nil
}

func (h haAlerting) AckZone(ctx context.Context, zone, by, note string) ([]alerting.Alert, error) {
	if by == "" || zone == "" {
		return h.Manager.AckZone(ctx, zone, by, note) // the command's own refusal, nothing appended
	}
	open, err := h.Manager.OpenOccurrences(ctx, "", zone)
	if err != nil {
		return nil, err
	}
	v, err := h.x.take(ctx, ha.ActionAcknowledge, by, ackBody{Zone: zone, Note: note, Open: open})
	if err != nil {
		return nil, err
	}
	return v.([]alerting.Alert), nil
}

// Declare goes through the log; when the coordinator does not take it, the evacuation is
// applied here at once (safety before order) and appended when the coordinator answers.
func (h haAlerting) Declare(ctx context.Context, zone, by, reason string) (alerting.Evacuation, error) {
	body := evacBody{Zone: zone, Reason: reason}
	v, err := h.x.take(ctx, ha.ActionEvacuation, by, body)
	if errors.Is(err, ErrCoordinator) {
		ev, lerr := h.Manager.Declare(ctx, zone, by, reason)
		if lerr != nil {
			return ev, lerr
		}
		raw, _ := json.Marshal(body)
		// At: the declaration's own time, not the late append's, so that every instance
		// shows the start this one shows (the log's handler declares it as of a.At).
		select {
		case h.x.late <- ha.Action{Kind: ha.ActionEvacuation, By: by, At: ev.At, Body: raw}:
		default:
		}
		h.x.log.Warn("ha: coordinator unreachable: evacuation applied on this instance only, until it answers", "zone", zone, "by", by)
		return ev, nil
	}
	if err != nil {
		return alerting.Evacuation{}, err
	}
	return v.(alerting.Evacuation), nil
}

func (h haAlerting) StandDown(ctx context.Context, zone, by, reason string) error {
	_, err := h.x.take(ctx, ha.ActionEvacuation, by, evacBody{Zone: zone, Reason: reason, End: true})
	return err
}

func (h haAlerting) AddSilence(ctx context.Context, s alerting.Silence) (alerting.Silence, error) {
	// One id and start for every instance (each would draw its own).
	var id [8]byte
	_, _ = rand.Read(id[:])
	s.ID = hex.EncodeToString(id[:])
	if s.Start.IsZero() {
		s.Start = time.Now().UTC()
	}
	v, err := h.x.take(ctx, ha.ActionSilence, s.By, silenceBody{Add: &s})
	if err != nil {
		return alerting.Silence{}, err
	}
	return v.(alerting.Silence), nil
}

func (h haAlerting) DeleteSilence(ctx context.Context, id, by string) error {
	_, err := h.x.take(ctx, ha.ActionSilence, by, silenceBody{Delete: id})
	return err
}

// haDrills is the drill commands as the API uses them (web.Drills), through the log: a drill
// is an evacuation action with drill set, started with an id drawn here, so every instance
// runs the same drill (a replay of the start returns it, ended or not).
type haDrills struct {
	*alerting.Manager
	x *actions
}

func (h haDrills) StartDrill(ctx context.Context, zone, by string) (alerting.Drill, error) {
	var id [4]byte
	_, _ = rand.Read(id[:])
	v, err := h.x.take(ctx, ha.ActionEvacuation, by, evacBody{Zone: zone, Drill: true,
		DrillID: "drill-" + time.Now().UTC().Format("20060102T150405") + "-" + hex.EncodeToString(id[:])})
	if err != nil {
		return alerting.Drill{}, err
	}
	return v.(alerting.Drill), nil
}

func (h haDrills) EndDrill(ctx context.Context, zone, by string) (alerting.Drill, error) {
	v, err := h.x.take(ctx, ha.ActionEvacuation, by, evacBody{Zone: zone, Drill: true, End: true})
	if err != nil {
		return alerting.Drill{}, err
	}
	return v.(alerting.Drill), nil
}

// haPromotion is the event plans as the API uses them, with their changes through the log.
// Whether a plan is running (a change without force refused) is judged at the action's time
// on every instance (docs/ha.md).
type haPromotion struct {
	web.Promotion
	x *actions
}

func (h haPromotion) Create(ctx context.Context, in promotion.PlanInput, by string) (promotion.Plan, error) {
	v, err := h.x.take(ctx, ha.ActionPlan, by, planBody{Input: &in})
	if err != nil {
		return promotion.Plan{}, err
	}
	return v.(promotion.Plan), nil
}

func (h haPromotion) Update(ctx context.Context, id string, in promotion.PlanInput, by string, force bool) (promotion.Plan, error) {
	v, err := h.x.take(ctx, ha.ActionPlan, by, planBody{ID: id, Input: &in, Force: force})
	if err != nil {
		return promotion.Plan{}, err
	}
	return v.(promotion.Plan), nil
}

func (h haPromotion) Delete(ctx context.Context, id, by string, force bool) error {
	_, err := h.x.take(ctx, ha.ActionPlan, by, planBody{ID: id, Delete: true, Force: force})
	return err
}

// haEngine is the engine as the API uses it, with corrections through the log.
type haEngine struct {
	web.Engine
	x *actions
}

func (h haEngine) Correct(ctx context.Context, zone string, value int64, by, reason string) (zones.ZoneState, error) {
	v, err := h.x.take(ctx, ha.ActionCorrection, by, correctionBody{Zone: zone, Value: value, Reason: reason})
	if err != nil {
		return zones.ZoneState{}, err
	}
	return v.(zones.ZoneState), nil
}
