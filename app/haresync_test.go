package app

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/promotion"
)

// actionState is what the operator actions made on an instance, in the snapshot's form.
func actionState(t *testing.T, p *pairInst) haState {
	t.Helper()
	raw, err := p.x.snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var s haState
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

func sameState(a, b haState) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// TestHAResyncAfterCompaction: b is down while a takes actions of every kind that ends up
// in the state (acknowledgement, evacuations declared and stood down, a drill started and
// one ended, silences added and deleted, plans created, changed and deleted); etcd compacts
// them away. On its restart b restores a's snapshot through the same commands and follows
// the log from its revision: both have the same state, and b's next action reaches a.
func TestHAResyncAfterCompaction(t *testing.T) {
	e := testkit.Etcd(t)
	clock := &pairClock{}
	clock.set(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	a := newPairInst(t, e, clock, "a", nil)
	b := newPairInst(t, e, clock, "b", nil)
	ctx := context.Background()
	for _, in := range []*pairInst{a, b} {
		in.src.setOcc("entrance", 104)
		in.src.setOcc("store", 300)
		in.eval()
	}
	clock.add(15 * time.Second)
	a.eval()
	b.eval()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// Before b goes down: an evacuation of the store, a silence, two plans.
	_, err := a.api.Declare(ctx, "store", "guard-li", "smoke")
	must(err)
	s1, err := a.api.AddSilence(ctx, alerting.Silence{Start: clock.now(), By: "mia", Comment: "works", Kind: alerting.KindDeviceSilent, End: clock.now().Add(time.Hour)})
	must(err)
	plan := promotion.PlanInput{ID: "sale", Start: "2026-11-28T08:00:00Z", End: "2026-11-28T20:00:00Z", Capacities: map[string]int{"store": 800}}
	_, err = a.promo.Create(ctx, plan, "mia")
	must(err)
	_, err = a.promo.Create(ctx, promotion.PlanInput{ID: "old", Start: "2026-12-01T08:00:00Z", End: "2026-12-01T20:00:00Z"}, "mia")
	must(err)
	pairUntil(t, "b has it all", func() bool {
		return b.log.Applied() == a.log.Applied() && sameState(actionState(t, a), actionState(t, b))
	})
	b.stop()

	// While b is down.
	must(a.api.StandDown(ctx, "store", "guard-li", "false alarm"))
	_, err = a.api.Declare(ctx, "", "guard-li", "fire")
	must(err)
	must(a.api.StandDown(ctx, "", "guard-li", "out"))
	_, err = a.api.Ack(ctx, "level:entrance", "officer-li", "two guards")
	must(err)
	_, err = a.drills.StartDrill(ctx, "entrance", "guard-li")
	must(err)
	must(a.api.DeleteSilence(ctx, s1.ID, "mia"))
	_, err = a.api.AddSilence(ctx, alerting.Silence{Start: clock.now(), By: "mia", Comment: "ladder", Zone: "entrance", End: clock.now().Add(2 * time.Hour)})
	must(err)
	plan.Capacities = map[string]int{"store": 700}
	_, err = a.promo.Update(ctx, "sale", plan, "mia", false)
	must(err)
	must(a.promo.Delete(ctx, "old", "mia", false))
	_, err = a.promo.Create(ctx, promotion.PlanInput{ID: "new", Start: "2026-12-02T08:00:00Z", End: "2026-12-02T20:00:00Z"}, "mia")
	must(err)
	last := a.log.Applied()
	var snapRev int64
	pairUntil(t, "a's snapshot has it all", func() bool {
		snaps, err := a.log.Snapshots(ctx)
		if err != nil || len(snaps) == 0 || snaps[0].Rev < last {
			return false
		}
		snapRev = snaps[0].Rev
		return true
	})
	if _, err := pairClient(t, e).Compact(ctx, snapRev); err != nil {
		t.Fatal(err)
	}

	b.restart()
	pairUntil(t, "b resyncs", func() bool { return b.log.Applied() >= snapRev && b.log.Err() == nil })
	sa, sb := actionState(t, a), actionState(t, b)
	if !sameState(sa, sb) {
		ja, _ := json.MarshalIndent(sa, "", " ")
		jb, _ := json.MarshalIndent(sb, "", " ")
		t.Fatalf("after the resync:\na %s\nb %s", ja, jb)
	}
	// Restoring the same snapshot again changes nothing (idempotent).
	snaps, err := a.log.Snapshots(ctx)
	must(err)
	t.Logf("a's snapshot: %d bytes of state at revision %d", len(snaps[0].State), snaps[0].Rev)
	must(b.x.restore(ctx, snaps[0].Rev, snaps[0].State))
	if !sameState(sa, actionState(t, b)) {
		t.Fatal("a second restore of the same snapshot changed b's state")
	}
	if len(sa.Acks) != 1 || len(sa.Drills) != 1 || len(sa.Silences) != 1 || len(sa.Evacuations) != 0 || len(sa.Plans) != 2 {
		t.Fatalf("the state is not what the actions made: %+v", sa)
	}
	// b's own actions go through the log again and reach a.
	_, err = b.drills.EndDrill(ctx, "entrance", "guard-li")
	must(err)
	pairUntil(t, "a ends the drill", func() bool { return len(a.m.Status().Drills) == 0 })
	if !slices.Equal([]int{len(a.m.Status().Drills)}, []int{len(b.m.Status().Drills)}) {
		t.Fatal("drills differ")
	}
}
