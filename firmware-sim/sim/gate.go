package sim

import (
	"encoding/json"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/firmware-sim/device"
)

// screenGate is a metered door's gate as a turnstile or a person at the door would work it:
// it reads the screen's retained guidance and lets one person through for each admission
// the meter has granted that it has not seen pass, and nobody while the screen says wait or
// its guidance is stale (the sign's own staleness rule).
type screenGate struct {
	client paho.Client
	mu     sync.Mutex
	// granted is the meter's count of releases; base is the count this gate started from,
	// passed how many it let through since.
	granted, base, passed uint64
	started               bool
	state                 string
	at                    time.Time
	staleAfter            time.Duration
	received              time.Time
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
	if m.Admission == nil {
		return
	}
	if !g.started {
		g.started, g.base = true, m.Admission.Granted-min(m.Admission.Granted, uint64(m.Admission.Allowance))
	}
	g.granted = max(g.granted, m.Admission.Granted)
}

// Allow is how many may pass now: the releases not yet used, while the screen says enter.
func (g *screenGate) Allow() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.state != "enter" || !g.started || time.Since(g.received) > g.staleAfter {
		return 0
	}
	used := g.base + g.passed
	if g.granted <= used {
		return 0
	}
	return int(g.granted - used)
}

func (g *screenGate) Passed(n int) {
	g.mu.Lock()
	g.passed += uint64(n)
	g.mu.Unlock()
}

func (g *screenGate) close() { g.client.Disconnect(100) }
