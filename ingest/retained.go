package ingest

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/crowdwatch/crowdwatch/internal/owner"
)

// Retainer is a Publisher that remembers the latest retained message it sent on each topic
// and sends them all again every interval. The service's own retained topics (service
// status, zone states) are thereby re-asserted even when nothing changes: a retained message
// someone else put there (an external broker with loose ACLs, a misconfigured bridge) lasts
// at most one interval. Only use it for topics whose repetition is harmless to readers (a
// sign shows the same state again); alert topics would page again.
//
// Run owns the remembered messages; Publish hands each message to it and waits, so the
// order of publishes on a topic is kept and a re-assertion never overtakes a newer message.
type Retainer struct {
	pub      Publisher
	interval time.Duration
	log      *slog.Logger
	reqs     *owner.Commands[retainReq]
	done     chan struct{}
	again    chan struct{}
}

type retainReq struct {
	topic   string
	payload []byte
	retain  bool
}

// errRetainerStopped is returned by Publish once Run has returned.
var errRetainerStopped = errors.New("mqtt: the retained-message publisher has stopped")

// NewRetainer wraps pub; call Run.
func NewRetainer(pub Publisher, interval time.Duration, log *slog.Logger) *Retainer {
	r := &Retainer{pub: pub, interval: interval, log: log, done: make(chan struct{}), again: make(chan struct{}, 1)}
	r.reqs = owner.NewCommands[retainReq](r.done, errRetainerStopped)
	return r
}

// Publish sends a message through the wrapped publisher; a retained one is remembered (an
// empty retained payload clears the topic and is forgotten).
func (r *Retainer) Publish(topic string, payload []byte, retain bool) error {
	_, err := r.reqs.Do(context.Background(), retainReq{topic: topic, payload: payload, retain: retain})
	return err
}

// Again re-asserts every remembered topic now rather than at the next interval (a new HA
// leader: what it held back as standby reaches the broker at once, with its term).
func (r *Retainer) Again() {
	select {
	case r.again <- struct{}{}:
	default:
	}
}

// Connected is the wrapped publisher's.
func (r *Retainer) Connected() bool { return r.pub.Connected() }

// Run serves Publish and re-asserts every interval until ctx ends.
func (r *Retainer) Run(ctx context.Context) {
	defer close(r.done)
	latest := map[string][]byte{}
	order := []string{} // topics in first-publish order, so re-assertion is deterministic
	tick := time.NewTicker(r.interval)
	defer tick.Stop()
	complain := rate.Sometimes{Interval: time.Minute}
	reassert := func() {
		if !r.pub.Connected() {
			return
		}
		for _, topic := range order {
			if err := r.pub.Publish(topic, latest[topic], true); err != nil {
				complain.Do(func() {
					r.log.Warn("mqtt: re-asserting a retained topic failed; will retry", "topic", topic, "error", err)
				})
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case cmd := <-r.reqs.Requests():
			req := cmd.Req
			err := r.pub.Publish(req.topic, req.payload, req.retain)
			if req.retain {
				if _, ok := latest[req.topic]; !ok {
					order = append(order, req.topic)
				}
				// Remembered even if sending failed: the next re-assertion retries it.
				latest[req.topic] = req.payload
				if len(req.payload) == 0 {
					delete(latest, req.topic)
					order = removeTopic(order, req.topic)
				}
			}
			cmd.Reply(nil, err)
		case <-r.again:
			reassert()
		case <-tick.C:
			reassert()
		}
	}
}

func removeTopic(order []string, topic string) []string {
	for i, t := range order {
		if t == topic {
			return append(order[:i], order[i+1:]...)
		}
	}
	return order
}
