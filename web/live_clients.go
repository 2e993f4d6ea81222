package web

import (
	"context"
	"errors"
	"time"

	"github.com/gorilla/websocket"
)

// client is one WebSocket connection. screen is "" for the dashboard feed; principal (the
// user or token, "" while sign-in is off) and host are what its limits count.
type client struct {
	screen    string
	principal string
	host      string
	send      chan *websocket.PreparedMessage
}

// join adds a client to the feed if its limits allow: refused is "" when it joined, else the
// limit that refused it; ok is false when the feed has stopped.
func (l *Live) join(c *client) (refused string, ok bool) {
	why, err := l.joins.Do(context.Background(), c)
	if err != nil {
		return "", false
	}
	return why.(string), true
}

var errFeedStopped = errors.New("live feed stopped")

// leave removes a client (its queue is closed, which ends its writer).
func (l *Live) leave(c *client) {
	select {
	case l.unregister <- c:
	case <-l.done:
	}
}

// clientRegistry is the feed's connected clients and what their limits count. Only Run
// touches it.
type clientRegistry struct {
	l        *Live
	clients  map[*client]bool
	admitted *admissions
}

func newClientRegistry(l *Live) *clientRegistry {
	return &clientRegistry{l: l, clients: map[*client]bool{},
		admitted: &admissions{limits: l.o.Limits, perWho: map[string]int{}, perHost: map[string]int{}}}
}

// add registers c if its limits allow; else it returns the limit that refused it (counted in
// crowdwatch_http_feed_refused_total).
func (r *clientRegistry) add(c *client) (refused string) {
	if why := r.admitted.admit(c); why != "" {
		r.l.refused.WithLabelValues(why).Inc()
		return why
	}
	r.clients[c] = true
	r.l.clients.Store(int64(len(r.clients)))
	return ""
}

// drop removes c and closes its queue, which ends its writer (ws.go).
func (r *clientRegistry) drop(c *client) {
	if r.clients[c] {
		delete(r.clients, c)
		r.admitted.release(c)
		close(c.send)
		r.l.clients.Store(int64(len(r.clients)))
	}
}

// deliver queues msg for c, dropping c when its queue is full.
func (r *clientRegistry) deliver(c *client, msg *websocket.PreparedMessage) {
	select {
	case c.send <- msg:
	default:
		r.l.drops.Add(1)
		r.l.o.Log.Warn("live feed: client too slow; dropped", "screen", c.screen)
		r.drop(c)
	}
}

// broadcast sends dash to every dashboard client and each screen's message to its clients;
// a nil message sends nothing.
func (r *clientRegistry) broadcast(dash *websocket.PreparedMessage, screens map[string]*websocket.PreparedMessage) {
	for c := range r.clients {
		if c.screen == "" {
			if dash != nil {
				r.deliver(c, dash)
			}
		} else if m := screens[c.screen]; m != nil {
			r.deliver(c, m)
		}
	}
}

// idle reports whether every client's writer has taken everything it was sent: the feed is
// not behind, so the next change need not wait for the pacing interval (Run's pacer).
func (r *clientRegistry) idle() bool {
	for c := range r.clients {
		if len(c.send) > 0 {
			return false
		}
	}
	return true
}

// feedWriteBudget is how many WebSocket messages a second the feed's fast path may write
// (clientRegistry.gap). An update costs a write per client: at 1,000 clients the fast path's
// extra updates took more CPU than they saved and raised the 99th percentile from 81-88 to
// 98-103 ms on 2 cores (docs/benchmarks.md, issue 16's table).
const feedWriteBudget = 10_000

// gap is the least time between two updates now: the interval while any client has not
// written what it was sent; otherwise the client count over feedWriteBudget, at least a tenth
// of the interval and at most the interval. With the 50 ms default: 5 ms up to 50 clients,
// 20 ms at 200, the interval from 500.
func (r *clientRegistry) gap(interval time.Duration) time.Duration {
	if !r.idle() {
		return interval
	}
	g := time.Duration(len(r.clients)) * time.Second / feedWriteBudget
	return min(max(g, interval/10), interval)
}

// closeAll closes every client's queue when the feed stops.
func (r *clientRegistry) closeAll() {
	for c := range r.clients {
		close(c.send)
	}
	r.l.clients.Store(0)
}
