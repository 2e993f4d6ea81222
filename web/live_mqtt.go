package web

import (
	"context"
	"encoding/json"
	"maps"
	"time"

	"github.com/crowdwatch/crowdwatch/web/guidance"
)

// Publisher publishes the guidance on MQTT (the embedded broker or the external client).
type Publisher interface {
	Publish(topic string, payload []byte, retain bool) error
	Connected() bool
}

// offer hands the guidance that changed since prev (all of it when prev is nil) to the MQTT
// publisher, replacing anything it has not taken yet (only the latest matters).
func (l *Live) offer(ch chan map[string][]byte, v view, prev map[string]guidance.Guidance) {
	if l.o.Publisher == nil || l.o.GuidanceTopic == nil {
		return
	}
	out := map[string][]byte{}
	for id, g := range v.screens {
		if p, ok := prev[id]; ok && prev != nil && p.State == g.State && p.Target == g.Target && p.PlacesLeft == g.PlacesLeft &&
			p.LimitingZone == g.LimitingZone && sameAdmission(p.Admission, g.Admission) {
			continue
		}
		b, _ := json.Marshal(g)
		out[id] = b
	}
	if len(out) == 0 {
		return
	}
	select {
	case old := <-ch: // not taken yet: merge, newer wins
		for id, b := range old {
			if _, ok := out[id]; !ok {
				out[id] = b
			}
		}
	default:
	}
	ch <- out // cannot block: this goroutine is the only sender and the slot is empty
}

// publish sends guidance to the broker, retained; while it is away the latest waits.
func (l *Live) publish(ctx context.Context, ch chan map[string][]byte) {
	pending := map[string][]byte{}
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-ch:
			maps.Copy(pending, m)
		case <-retry.C:
		}
		if !l.o.Publisher.Connected() {
			continue
		}
		for id, b := range pending {
			if err := l.o.Publisher.Publish(l.o.GuidanceTopic(id), b, true); err != nil {
				l.o.Log.Warn("mqtt: guidance not published; will retry", "screen", id, "error", err)
				continue
			}
			delete(pending, id)
		}
	}
}
