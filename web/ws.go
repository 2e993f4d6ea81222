package web

import (
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
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
var upgrader = websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 8192, HandshakeTimeout: 10 * time.Second}

// feed upgrades to the live feed: ?screen=<id> for one screen's guidance (display tokens
// reach only their own), none for the dashboard feed (manager and above).
func (a *api) feed(w http.ResponseWriter, r *http.Request) {
	screen := r.URL.Query().Get("screen")
	if screen != "" {
		if _, ok := a.Live.o.Config.Screen(screen); !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no screen %q", screen))
			return
		}
	} else if _, err := a.Auth.Authorize(r, RoleManager); err != nil {
		a.refuse(w, err)
		return
	}
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered (400 or 403 for a foreign origin)
	}
	c := &client{screen: screen, send: make(chan *websocket.PreparedMessage, a.Live.o.SendBuffer)}
	if !a.Live.join(c) {
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "shutting down"), time.Now().Add(time.Second))
		conn.Close()
		return
	}
	go writeLoop(conn, c)
	readLoop(conn)
	a.Live.leave(c)
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
