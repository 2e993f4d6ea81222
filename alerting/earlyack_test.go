package alerting

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// An acknowledgement that reaches an instance (through the HA action log) before that
// instance has its alert open is kept, survives a restart, and is applied the moment the
// same occurrence opens, with the action's by, note and time; nobody is paged again for it.
func TestEarlyAckAppliedWhenTheAlertOpens(t *testing.T) {
	h := newHarness(t, testStore)
	ctx := context.Background()
	start := time.Date(2026, 11, 27, 7, 0, 15, 0, time.UTC) // the other instance's start of it
	at := start.Add(800 * time.Millisecond)                 // when it was acknowledged there
	x := AckAction{ID: "level:entrance", By: "officer-li", Note: "two guards", At: at,
		Occurrences: map[string]time.Time{"level:entrance": start}}

	// Without Keep (the instance that took it): refused as before, nothing kept.
	h.run(func() {
		if _, err := h.m.ApplyAck(ctx, x); !errors.Is(err, ErrNotFound) {
			t.Errorf("an ack of an alert not open on the taking instance: %v, want ErrNotFound", err)
		}
	})
	x.Keep = true
	h.run(func() {
		got, err := h.m.ApplyAck(ctx, x)
		if err != nil || len(got) != 0 {
			t.Errorf("early ack: %v %v, want kept", got, err)
		}
	})
	var pend []PendingAck
	h.run(func() { pend, _ = h.m.PendingAcks(ctx) })
	if len(pend) != 1 || pend[0].ID != "level:entrance" || !pend[0].At.Equal(at) {
		t.Fatalf("pending: %+v", pend)
	}

	// A restart keeps it (the alert file).
	_ = h.m.Close()
	h.open()
	h.run(func() { pend, _ = h.m.PendingAcks(ctx) })
	if len(pend) != 1 {
		t.Fatalf("pending after a restart: %+v", pend)
	}

	h.occ["entrance"], h.occ["store"] = 104, 104
	h.at(1)
	h.at(16) // fires here, 1 s after the other instance: the same occurrence
	a := h.alert("level:entrance")
	if a == nil || a.State != StateAcknowledged || a.AckBy != "officer-li" || a.AckNote != "two guards" || a.AckAt == nil || !a.AckAt.Equal(at) {
		t.Fatalf("after it opened: %+v, want acknowledged by officer-li at %v", a, at)
	}
	if got := whats(h.notes.take(), "level:entrance"); !slices.Equal(got, []string{"fired->radio", "acknowledged->radio"}) {
		t.Fatalf("notified %v", got)
	}
	h.at(16 + 600) // past every escalation and repeat
	if got := whats(h.notes.take(), "level:entrance"); len(got) != 0 {
		t.Fatalf("paged again after the early ack: %v", got)
	}
	h.run(func() { pend, _ = h.m.PendingAcks(ctx) })
	if len(pend) != 0 {
		t.Fatalf("still pending after it was applied: %+v", pend)
	}
}

// A pending acknowledgement is not applied to another occurrence, nor after it expired, and
// there are never more than maxPendingAcks.
func TestEarlyAckBounds(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		occ   time.Duration // the other instance's start, after 07:00
		fires int           // seconds after 07:00 when the occupancy goes up (fires 15 s later)
		acked bool
	}{
		{"same occurrence", 15 * time.Second, 0, true},
		{"the other started it 40 s before: another occurrence", -25 * time.Second, 0, false},
		{"opens after the pending ack expired", 60 * time.Second, 50, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, testStore)
			start := time.Date(2026, 11, 27, 7, 0, 0, 0, time.UTC).Add(c.occ)
			h.run(func() {
				if _, err := h.m.ApplyAck(ctx, AckAction{ID: "level:entrance", By: "li", At: start, Keep: true,
					Occurrences: map[string]time.Time{"level:entrance": start}}); err != nil {
					t.Error(err)
				}
			})
			h.occ["entrance"], h.occ["store"] = 104, 104
			h.at(c.fires)
			h.at(c.fires + 15)
			a := h.alert("level:entrance")
			if a == nil || (a.State == StateAcknowledged) != c.acked {
				t.Fatalf("alert %+v, want acknowledged %v", a, c.acked)
			}
		})
	}
	t.Run("bounded", func(t *testing.T) {
		h := newHarness(t, testStore)
		occ := map[string]time.Time{}
		for i := range maxPendingAcks + 40 {
			occ["device_silent:dc-"+string(rune('a'+i/26))+string(rune('a'+i%26))] = h.now
		}
		h.run(func() {
			if _, err := h.m.ApplyAck(ctx, AckAction{Zone: "entrance", By: "li", Keep: true, Occurrences: occ}); err != nil {
				t.Error(err)
			}
		})
		var pend []PendingAck
		h.run(func() { pend, _ = h.m.PendingAcks(ctx) })
		if len(pend) != maxPendingAcks {
			t.Fatalf("%d pending, want the bound %d", len(pend), maxPendingAcks)
		}
	})
}
