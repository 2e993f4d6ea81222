package web

import (
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/crowdwatch/crowdwatch/security"
)

// Feed connection timing: a client that does not answer a ping within pongWait is gone; a
// write that takes longer than writeWait means a stalled client.
const (
	writeWait  = 10 * time.Second
	pongWait   = 30 * time.Second
	pingPeriod = 20 * time.Second
	// maxClientMessage: the server reads nothing from clients but control frames and ignores
	// other messages; anything longer closes the connection.
	maxClientMessage = 1024
)

// upgrader leaves CheckOrigin nil: gorilla then accepts only a browser Origin equal to the
// Host (same origin), so another site's page cannot open the feed with our cookies.
// Write buffers come from a pool and go back after each message: a connection holds one only
// while its writer writes, not for its whole life (8 KB per idle client).
var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 8192, WriteBufferPool: &sync.Pool{},
	HandshakeTimeout: 10 * time.Second}

// feed upgrades to the live feed: ?screen=<id> for one screen's guidance (display tokens
// reach only their own), none for the dashboard feed (manager and above).
func (a *api) feed(w http.ResponseWriter, r *http.Request) {
	screen := r.URL.Query().Get("screen")
	who, _ := r.Context().Value(whoKey{}).(string)
	if screen != "" {
		if _, ok := a.Live.o.Layout.Screen(screen); !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no screen %q", screen))
			return
		}
	} else {
		var err error
		if who, err = a.Auth.Authorize(r, RoleManager); err != nil {
			a.refuse(w, err)
			return
		}
	}
	// The place is taken before the upgrade, so a refusal is a plain HTTP answer the client
	// (and its log) can read.
	c := &client{screen: screen, principal: who, host: RemoteHost(r), send: make(chan *websocket.PreparedMessage, a.Live.o.SendBuffer)}
	refused, ok := a.Live.join(c)
	if !ok {
		writeError(w, http.StatusServiceUnavailable, "the live feed is shutting down")
		return
	}
	if refused != "" {
		a.refuseFeed(w, r, c, refused)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		a.Live.leave(c)
		return // the upgrader has answered (400 or 403 for a foreign origin)
	}
	go writeLoop(conn, c)
	readLoop(conn)
	a.Live.leave(c)
}

// refuseFeed answers a connection over a limit: 429 for one user's or host's limit, 503 when
// the feed is full, with the limit and the key that sets it.
func (a *api) refuseFeed(w http.ResponseWriter, r *http.Request, c *client, why string) {
	lim := a.Live.o.Limits
	status, msg := http.StatusTooManyRequests, ""
	switch why {
	case refusedPerPrincipal:
		msg = fmt.Sprintf("too many live feed connections for %s (at most %d, http.feed.max_per_user); close other tabs or screens", c.principal, lim.PerPrincipal)
	case refusedPerAddress:
		msg = fmt.Sprintf("too many live feed connections from %s (at most %d, http.feed.max_per_address)", c.host, lim.PerAddress)
	default:
		status = http.StatusServiceUnavailable
		msg = fmt.Sprintf("the live feed is full (%d connections, http.feed.max_total); try again later", lim.Total)
	}
	if a.feedLog.Allow() { // a client retrying in a loop must not flood the log; the metric counts all
		a.Log.Warn("http: live feed connection refused", "limit", why, "who", c.principal, "remote", r.RemoteAddr)
	}
	a.Events.Record(security.Event{Kind: security.ConnectionLimit, Source: c.host, Subject: c.principal,
		Detail: "live feed: " + msg, At: time.Now()})
	w.Header().Set("Retry-After", "10")
	writeError(w, status, msg)
}

// writeLoop is the connection's only writer: queued messages and pings, each with a deadline.
func writeLoop(conn *websocket.Conn, c *client) {
	ping := time.NewTicker(pingPeriod)
	defer func() {
		ping.Stop()
		conn.Close()
	}()
	for {
		select {
		case m, ok := <-c.send:
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok { // dropped, or the service is stopping
				_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""))
				return
			}
			if err := conn.WritePreparedMessage(m); err != nil {
				return
			}
		case <-ping.C:
			_ = conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// readLoop reads until the connection fails: pongs push the deadline on, anything else the
// client sends is ignored.
func readLoop(conn *websocket.Conn) {
	defer conn.Close()
	conn.SetReadLimit(maxClientMessage)
	_ = conn.SetReadDeadline(time.Now().Add(pongWait))
	conn.SetPongHandler(func(string) error { return conn.SetReadDeadline(time.Now().Add(pongWait)) })
	for {
		if _, _, err := conn.NextReader(); err != nil {
			return
		}
	}
}
