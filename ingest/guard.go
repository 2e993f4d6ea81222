package ingest

import (
	"errors"
	"net"
	"sync"
	"time"
)

// Reasons a connection is refused at accept time (the reason label of
// crowdwatch_mqtt_connections_refused_total).
const (
	RefusedTotal      = "max_connections"
	RefusedPerAddress = "max_connections_per_address"
)

// connGuard counts the broker's open connections, over all its listeners and per remote IP,
// when they are accepted: a connection over a limit is closed before the broker spends a
// goroutine or a buffer on it. Accepted connections must send CONNECT (and finish TLS) within
// the deadline; mochi has no such deadline of its own and would hold an idle socket for ever.
//
// The counts are shared by the listeners' accept loops and every connection's Close, so a
// mutex guards them; each critical section is a few map operations.
type connGuard struct {
	max, perAddress int
	timeout         time.Duration
	onRefuse        func(reason string, remote net.Addr)

	mu     sync.Mutex
	total  int
	byHost map[string]int
}

func newConnGuard(max, perAddress int, timeout time.Duration, onRefuse func(string, net.Addr)) *connGuard {
	return &connGuard{max: max, perAddress: perAddress, timeout: timeout, onRefuse: onRefuse, byHost: map[string]int{}}
}

// admit takes a place for host, or says which limit refuses it.
func (g *connGuard) admit(host string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.byHost[host] >= g.perAddress {
		return RefusedPerAddress
	}
	if g.total >= g.max {
		return RefusedTotal
	}
	g.total++
	g.byHost[host]++
	return ""
}

func (g *connGuard) release(host string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if g.byHost[host]--; g.byHost[host] <= 0 {
		delete(g.byHost, host)
	}
}

// open is the number of connections held now.
func (g *connGuard) open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// wrap returns a listener whose Accept applies the limits and the CONNECT deadline.
func (g *connGuard) wrap(ln net.Listener) net.Listener { return &guardedListener{Listener: ln, g: g} }

type guardedListener struct {
	net.Listener
	g *connGuard
}

// Accept returns the next connection within the limits. It never returns an error for one
// refused connection or a transient failure (out of file descriptors): mochi stops serving a
// listener for good on the first Accept error.
func (l *guardedListener) Accept() (net.Conn, error) {
	var backoff time.Duration
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil, err
			}
			// EMFILE and friends: wait a little, as net/http does, instead of spinning or dying.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		host := remoteHost(c.RemoteAddr())
		if reason := l.g.admit(host); reason != "" {
			// Counted and reported before the close: whoever sees the connection closed
			// (a test, an installer watching /metrics) then finds the refusal already there.
			l.g.onRefuse(reason, c.RemoteAddr())
			_ = c.Close()
			continue
		}
		// Cleared by mochi once the CONNECT is read (it sets the keepalive deadline).
		_ = c.SetDeadline(time.Now().Add(l.g.timeout))
		return &guardedConn{Conn: c, g: l.g, host: host}, nil
	}
}

type guardedConn struct {
	net.Conn
	g    *connGuard
	host string
	once sync.Once
}

func (c *guardedConn) Close() error {
	c.once.Do(func() { c.g.release(c.host) })
	return c.Conn.Close()
}

func remoteHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
