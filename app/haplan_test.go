package app

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/ha"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/promotion"
)

// TestHAPlanChangeJudgedAtTheActionsTime: a change to a running plan without force, taken on
// a 1 ms before the plan ends, is applied by b after the end by b's clock: both judge it at
// the action's time, so both refuse it (409 on a) and keep the plan's capacities alike; a
// change taken just after the end is accepted on both, though a's clock is still before it.
func TestHAPlanChangeJudgedAtTheActionsTime(t *testing.T) {
	e := testkit.Etcd(t)
	end := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	clockA, clockB := &pairClock{}, &pairClock{}
	clockA.set(end.Add(-time.Hour))
	clockB.set(end.Add(-time.Hour))
	a := newPairInst(t, e, clockA, "a", nil)
	b := newPairInst(t, e, clockB, "b", nil)
	ctx := context.Background()
	in := promotion.PlanInput{ID: "sale", Start: "2026-11-27T08:00:00Z", End: "2026-11-27T12:00:00Z", Capacities: map[string]int{"store": 800}}
	if _, err := a.promo.Create(ctx, in, "mia"); err != nil {
		t.Fatal(err)
	}
	capacity := func(in *pairInst) int {
		p, ok := in.plans.Schedule().Plan("sale")
		if !ok {
			return -1
		}
		return p.Capacities["store"]
	}
	pairUntil(t, "b has the plan", func() bool { return capacity(b) == 800 })

	change := func(at time.Time, capacity int) (rev int64) {
		t.Helper()
		in.Capacities = map[string]int{"store": capacity}
		body, _ := json.Marshal(planBody{ID: "sale", Input: &in})
		rev, err := a.log.Append(ctx, ha.Action{Kind: ha.ActionPlan, By: "mia", At: at, Body: body})
		if err != nil {
			t.Fatal(err)
		}
		pairUntil(t, "b applies the change", func() bool { return b.log.Applied() >= rev })
		return rev
	}
	// a takes it 1 ms before the end; b applies it 1 s after the end by its clock.
	clockA.set(end.Add(-time.Millisecond))
	clockB.set(end.Add(time.Second))
	rev := change(end.Add(-time.Millisecond), 600)
	a.x.mu.Lock()
	got, ok := a.x.answers[rev]
	a.x.mu.Unlock()
	if !ok || got.err == nil {
		t.Fatalf("a's answer: %+v, want refused (the plan is running)", got)
	}
	if ca, cb := capacity(a), capacity(b); ca != 800 || cb != 800 {
		t.Fatalf("capacities a %d, b %d after a change refused at its time; want 800 on both", ca, cb)
	}
	// Taken at the end (a's clock says just before it, b's after): accepted on both.
	clockA.set(end.Add(-time.Second))
	change(end, 500)
	if ca, cb := capacity(a), capacity(b); ca != 500 || cb != 500 {
		t.Fatalf("capacities a %d, b %d after a change taken at the end; want 500 on both", ca, cb)
	}
}
