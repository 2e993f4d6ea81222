package sim

import (
	"encoding/json"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
)

// screenGate is a metered door's gate as a turnstile or a person at the door would work it:
// it reads the screen's retained guidance and lets one person through for each release the
// meter shows now (the admission's allowance) that it has not let through already, and
// nobody while the screen says wait or its guidance is stale (the sign's own staleness rule).
// A release it did not use while shown is forfeited, as the meter forfeits it.
type screenGate struct {
	client paho.Client
	mu     sync.Mutex
	// seen is the highest release count seen; avail the releases shown and not used yet.
	seen       uint64
	avail      int
	state      string
	staleAfter time.Duration
	received   time.Time
}

// guidanceMessage is the part of the retained guidance a gate reads (docs/protocol.md).
type guidanceMessage struct {
	State        string `json:"state"`
	StaleAfterMS int64  `json:"stale_after_ms"`
	Admission    *struct {
		State     string `json:"state"`
		Granted   uint64 `json:"granted"`
		Allowance int    `json:"allowance"`
	} `json:"admission"`
}

// newScreenGate subscribes to topic (the screen's retained guidance) on broker.
func newScreenGate(broker, clientID, user, pass, topic string) (*screenGate, error) {
	g := &screenGate{staleAfter: 10 * time.Second}
	opts := device.Options(broker, clientID).SetUsername(user).SetPassword(pass).SetAutoReconnect(true)
	opts.SetOnConnectHandler(func(cl paho.Client) {
		cl.Subscribe(topic, 1, func(_ paho.Client, m paho.Message) { g.take(m.Payload()) })
	})
	g.client = paho.NewClient(opts)
	if t := g.client.Connect(); !t.WaitTimeout(3*time.Second) || t.Error() != nil {
		return nil, t.Error()
	}
	return g, nil
}

func (g *screenGate) take(b []byte) {
	var m guidanceMessage
	if json.Unmarshal(b, &m) != nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.received = time.Now()
	if m.StaleAfterMS > 0 {
		g.staleAfter = time.Duration(m.StaleAfterMS) * time.Millisecond
	}
	g.state = m.State
	a := m.Admission
	if a == nil || m.State != "enter" {
		g.avail = 0
		if a != nil {
			g.seen = max(g.seen, a.Granted)
		}
		return
	}
	// New releases are those above both what was seen and what the meter no longer shows;
	// a message repeated (the retained topic is re-sent) adds nothing.
	fresh := a.Granted - min(a.Granted, max(g.seen, a.Granted-min(a.Granted, uint64(a.Allowance))))
	g.seen = max(g.seen, a.Granted)
	g.avail = min(g.avail+int(fresh), a.Allowance)
}

// Allow is how many may pass now.
func (g *screenGate) Allow() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != "enter" || time.Since(g.received) > g.staleAfter {
		return 0
	}
	return g.avail
}

func (g *screenGate) Passed(n int) {
	g.mu.Lock()
	g.avail = max(0, g.avail-n)
	g.mu.Unlock()
}

func (g *screenGate) close() { g.client.Disconnect(100) }
