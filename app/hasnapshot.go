package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/promotion"
)

// The state the operator actions make, as a current instance writes it to etcd for one whose
// log was compacted (ha.Log's Snapshot and Restore, docs/ha.md "Full resync"). Corrections
// are not in it: a correction sets a zone's figure at a moment, and the compacted instance
// has gone on counting since; setting that figure again later would be a stale figure. Its
// zone converges at the next head count or correction (the resync logs it).

// haState is the snapshot: sorted, so that an unchanged state encodes alike (the log writes
// it again only when it changed).
type haState struct {
	Acks        []ackState            `json:"acks,omitempty"`
	Evacuations []alerting.Evacuation `json:"evacuations,omitempty"`
	Drills      []drillState          `json:"drills,omitempty"`
	Silences    []alerting.Silence    `json:"silences,omitempty"`
	Plans       []promotion.APIPlan   `json:"plans,omitempty"`
}

// ackState is an acknowledged open alert: its occurrence (start) and the acknowledgement.
type ackState struct {
	ID    string    `json:"id"`
	Start time.Time `json:"start"`
	By    string    `json:"by"`
	Note  string    `json:"note,omitempty"`
	At    time.Time `json:"at"`
}

// drillState is a drill in force, as far as it is an operator's action: who started which.
type drillState struct {
	ID   string    `json:"id"`
	Zone string    `json:"zone"`
	By   string    `json:"by"`
	At   time.Time `json:"at"`
}

// snapshot is the log's Snapshot: called between entries, so it reflects every one applied.
func (x *actions) snapshot(ctx context.Context) (json.RawMessage, error) {
	var s haState
	st := x.alerts.Status()
	for _, a := range append(slices.Clone(st.Alerts), st.Security...) {
		if a.State == alerting.StateAcknowledged && a.AckAt != nil {
			s.Acks = append(s.Acks, ackState{ID: a.ID, Start: a.StartsAt, By: a.AckBy, Note: a.AckNote, At: *a.AckAt})
		}
	}
	slices.SortFunc(s.Acks, func(a, b ackState) int { return cmp.Compare(a.ID, b.ID) })
	s.Evacuations = slices.Clone(st.Evacuations) // sorted by zone
	for _, d := range st.Drills {
		s.Drills = append(s.Drills, drillState{ID: d.ID, Zone: d.Zone, By: d.By, At: d.At})
	}
	var err error
	if s.Silences, err = x.alerts.Silences(ctx); err != nil {
		return nil, err
	}
	slices.SortFunc(s.Silences, func(a, b alerting.Silence) int { return cmp.Compare(a.ID, b.ID) })
	if x.plans != nil {
		if s.Plans, err = x.plans.APIPlans(ctx); err != nil {
			return nil, err
		}
	}
	return json.Marshal(s)
}

// resyncBy names the resync in what it changes (events, logs).
const resyncBy = "ha-resync"

// restore is the log's Restore: it brings this instance's action-made state to the
// snapshot through the same commands the actions use, each idempotent, so that restoring
// twice, or over a state that already has part of it, gives the same.
func (x *actions) restore(ctx context.Context, rev int64, raw json.RawMessage) error {
	var s haState
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("the snapshot of revision %d is not readable: %w", rev, err)
	}
	var errs []error
	// keep notes a refusal (the same as the other instance's would be, or a state moved on
	// by this instance's own evaluation) and stops only for a stopped component.
	keep := func(what string, err error) {
		if err == nil {
			return
		}
		if errors.Is(err, alerting.ErrStopped) || errors.Is(err, promotion.ErrStopped) || ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return
		}
		x.log.Info("ha: resync: left as it is", "what", what, "error", err)
	}
	st := x.alerts.Status()

	// Ended there: end here (evacuations, then drills), before anything is started.
	for _, ev := range st.Evacuations {
		if !slices.ContainsFunc(s.Evacuations, func(o alerting.Evacuation) bool { return o.Zone == ev.Zone }) {
			keep("stand down "+cmpOrSite(ev.Zone), x.alerts.StandDown(ctx, ev.Zone, resyncBy, "stood down on the other instances while this one was behind"))
		}
	}
	for _, d := range st.Drills {
		if !slices.ContainsFunc(s.Drills, func(o drillState) bool { return o.ID == d.ID }) {
			_, err := x.alerts.EndDrillAt(ctx, d.Zone, resyncBy, time.Time{})
			keep("end drill "+d.ID, err)
		}
	}
	for _, ev := range s.Evacuations {
		_, err := x.alerts.DeclareAt(ctx, ev.Zone, ev.By, ev.Reason, ev.At)
		keep("declare "+cmpOrSite(ev.Zone), err)
	}
	for _, d := range s.Drills {
		_, err := x.alerts.StartDrillAs(ctx, alerting.DrillStart{Zone: d.Zone, By: d.By, ID: d.ID, At: d.At})
		keep("start drill "+d.ID, err)
	}

	cur, err := x.alerts.Silences(ctx)
	keep("silences", err)
	for _, si := range cur {
		if !slices.ContainsFunc(s.Silences, func(o alerting.Silence) bool { return o.ID == si.ID }) {
			keep("delete silence "+si.ID, x.alerts.DeleteSilence(ctx, si.ID, resyncBy))
		}
	}
	for _, si := range s.Silences {
		_, err := x.alerts.AddSilence(ctx, si) // the same id: a no-op where it is
		keep("silence "+si.ID, err)
	}

	for _, a := range s.Acks {
		_, err := x.alerts.ApplyAck(ctx, alerting.AckAction{ID: a.ID, By: a.By, Note: a.Note, At: a.At,
			Occurrences: map[string]time.Time{a.ID: a.Start}, Keep: true})
		keep("acknowledge "+a.ID, err)
	}

	if x.plans != nil {
		have, err := x.plans.APIPlans(ctx)
		keep("plans", err)
		for _, p := range have {
			if !slices.ContainsFunc(s.Plans, func(o promotion.APIPlan) bool { return o.Input.ID == p.Input.ID }) {
				keep("delete plan "+p.Input.ID, x.plans.DeleteAsOf(ctx, p.Input.ID, resyncBy, true, time.Time{}))
			}
		}
		for _, p := range s.Plans {
			i := slices.IndexFunc(have, func(o promotion.APIPlan) bool { return o.Input.ID == p.Input.ID })
			switch {
			case i < 0:
				_, err := x.plans.CreateAsOf(ctx, p.Input, p.UpdatedBy, p.UpdatedAt)
				keep("create plan "+p.Input.ID, err)
			case !reflect.DeepEqual(have[i].Input, p.Input):
				_, err := x.plans.UpdateAsOf(ctx, p.Input.ID, p.Input, p.UpdatedBy, true, p.UpdatedAt)
				keep("update plan "+p.Input.ID, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	x.log.Warn("ha: resynced the operator actions' state from a snapshot; corrections made meanwhile are not replayed (a zone converges at its next head count or correction)",
		"rev", rev, "acks", len(s.Acks), "evacuations", len(s.Evacuations), "drills", len(s.Drills), "silences", len(s.Silences), "plans", len(s.Plans))
	return nil
}

func cmpOrSite(zone string) string { return cmp.Or(zone, "the whole site") }
