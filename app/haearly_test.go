package app

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// TestEarlyAckReachesBoth: an alert acknowledged on a, through the action log on a real
// etcd, before b has opened it (b's figures lag): b keeps the acknowledgement and applies it
// when the alert opens there, so both end acknowledged by the same person with the same note
// and time, and b pages nobody again for it. An ack of an alert that the taking instance
// does not have open is refused there (404) and appended nowhere.
func TestEarlyAckReachesBoth(t *testing.T) {
	e := testkit.Etcd(t)
	clock := &pairClock{}
	clock.set(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	a := newPairInst(t, e, clock, "a", nil)
	b := newPairInst(t, e, clock, "b", nil)
	ctx := context.Background()
	const id = "level:entrance"

	a.src.setOcc("entrance", 104)
	a.src.setOcc("store", 104)
	a.eval()
	clock.add(15 * time.Second) // critical's hold-down
	a.eval()
	b.eval()
	if a.alert(id) == nil || b.alert(id) != nil {
		t.Fatalf("set-up: a %v, b %v; want the alert open on a only", a.alert(id), b.alert(id))
	}

	// On b the alert is unknown: refused there, nothing appended.
	before := b.log.Applied()
	if _, err := b.api.Ack(ctx, id, "officer-li", "x"); !errors.Is(err, alerting.ErrNotFound) {
		t.Fatalf("ack on b without the alert: %v, want not found", err)
	}
	if b.log.Applied() != before || a.log.Applied() != before {
		t.Fatal("a refused ack was appended")
	}

	got, err := a.api.Ack(ctx, id, "officer-li", "two guards")
	if err != nil || got.State != alerting.StateAcknowledged {
		t.Fatalf("ack on a: %+v %v", got, err)
	}
	pairUntil(t, "b keeps the ack", func() bool {
		p, err := b.m.PendingAcks(ctx)
		return err == nil && len(p) == 1
	})

	// b's figures catch up: the alert opens there a moment later, acknowledged at once.
	clock.add(300 * time.Millisecond)
	b.src.setOcc("entrance", 104)
	b.src.setOcc("store", 104)
	b.eval()
	clock.add(15 * time.Second)
	b.eval()
	ga, gb := a.alert(id), b.alert(id)
	if gb == nil || gb.State != alerting.StateAcknowledged || gb.AckBy != ga.AckBy || gb.AckNote != ga.AckNote ||
		gb.AckAt == nil || !gb.AckAt.Equal(*ga.AckAt) {
		t.Fatalf("after it opened on b:\na %+v\nb %+v\nwant the same acknowledgement", ga, gb)
	}
	clock.add(10 * time.Minute) // past the escalation and the repeats
	a.eval()
	b.eval()
	for _, in := range []*pairInst{a, b} {
		if w := in.notes.whats(id); !slices.Equal(w, []string{"fired", "acknowledged"}) {
			t.Fatalf("%s notified %v, want fired and acknowledged only", in.name, w)
		}
	}
}
