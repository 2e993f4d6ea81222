// Package device behaves like the firmware of a door counter or an area sensor on the wire:
// cumulative totals per line since boot, a boot id, a rising seq, a retained will on the status
// topic, and reports that keep being sent until the broker acknowledges them.
package device

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Config describes one simulated device.
type Config struct {
	Broker   string // tcp://127.0.0.1:1883
	Prefix   string // topic prefix, "crowdwatch"
	Site     string
	ID       string
	Username string
	Password string
	Interval time.Duration // report period, default 1s
	// IntervalReports makes a counter send period_in/period_out instead of totals.
	IntervalReports bool
}

// Counter is a door counter device.
type Counter struct {
	cfg    Config
	client paho.Client
	boot   string

	mu     sync.Mutex
	seq    uint64
	totals map[string][2]uint64 // since boot
	sent   map[string][2]uint64 // what the last acknowledged interval report covered
}

// NewCounter connects a counter device (retrying in the background until ctx in Run ends).
func NewCounter(cfg Config, lines ...string) *Counter {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	c := &Counter{cfg: cfg, boot: newBootID(), totals: map[string][2]uint64{}, sent: map[string][2]uint64{}}
	for _, l := range lines {
		c.totals[l] = [2]uint64{}
	}
	c.client = connect(cfg, "counter")
	return c
}

func newBootID() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func topic(cfg Config, kind string) string {
	return cfg.Prefix + "/" + cfg.Site + "/" + kind + "/" + cfg.ID
}

func connect(cfg Config, kind string) paho.Client {
	status := topic(cfg, "status")
	opts := paho.NewClientOptions().AddBroker(cfg.Broker).
		SetClientID(cfg.Site+"-"+cfg.ID).
		SetUsername(cfg.Username).SetPassword(cfg.Password).
		SetCleanSession(false).
		SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(200*time.Millisecond).
		SetMaxReconnectInterval(2*time.Second).
		SetWill(status, "offline", 1, true).
		SetOnConnectHandler(func(cl paho.Client) { cl.Publish(status, 1, true, "online") })
	cl := paho.NewClient(opts)
	cl.Connect()
	return cl
}

// Cross records crossings on a line, as the sensor would.
func (c *Counter) Cross(line string, in, out uint64) {
	c.mu.Lock()
	t := c.totals[line]
	t[0] += in
	t[1] += out
	c.totals[line] = t
	c.mu.Unlock()
}

// Reboot starts a new boot: totals back to zero and a new boot id. Crossings not yet
// reported are lost, as on a real device.
func (c *Counter) Reboot() {
	c.mu.Lock()
	c.boot = newBootID()
	c.seq = 0
	for l := range c.totals {
		c.totals[l] = [2]uint64{}
		c.sent[l] = [2]uint64{}
	}
	c.mu.Unlock()
}

// Report builds the next report's payload and advances seq.
func (c *Counter) Report(now time.Time) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	msg := map[string]any{"boot": c.boot, "seq": c.seq, "ts": now.UTC().Format(time.RFC3339Nano)}
	lines := map[string]map[string]uint64{}
	for _, l := range slices.Sorted(maps.Keys(c.totals)) {
		t := c.totals[l]
		if c.cfg.IntervalReports {
			s := c.sent[l]
			lines[l] = map[string]uint64{"period_in": t[0] - s[0], "period_out": t[1] - s[1]}
			c.sent[l] = t
		} else {
			lines[l] = map[string]uint64{"in": t[0], "out": t[1]}
		}
	}
	if len(lines) == 1 && lines["1"] != nil {
		for k, v := range lines["1"] {
			msg[k] = v
		}
	} else {
		msg["lines"] = lines
	}
	b, _ := json.Marshal(msg)
	return b
}

// Run publishes a report every interval until ctx ends. Each report is re-sent until the
// broker acknowledges it, so a report is only ever lost if the device itself dies.
func (c *Counter) Run(ctx context.Context) {
	runLoop(ctx, c.cfg, c.client, "counter", c.Report)
}

// Close disconnects cleanly (the service sees the retained "offline" only on an unclean end).
func (c *Counter) Close() { c.client.Disconnect(250) }

func runLoop(ctx context.Context, cfg Config, cl paho.Client, kind string, next func(time.Time) []byte) {
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := PublishAcked(ctx, cl, topic(cfg, kind), next(time.Now())); err != nil {
				return
			}
		}
	}
}

// PublishAcked publishes at QoS 1 and repeats the same payload until the broker acknowledges
// it or ctx ends. A token that completes across a reconnect is not proof of delivery, so a
// timeout means "send again", which the protocol's (boot, seq) makes harmless.
func PublishAcked(ctx context.Context, cl paho.Client, topic string, payload []byte) error {
	for {
		if cl.IsConnectionOpen() {
			tok := cl.Publish(topic, 1, false, payload)
			if tok.WaitTimeout(2*time.Second) && tok.Error() == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("report not acknowledged: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Sensor is an area sensor reporting an absolute head count.
type Sensor struct {
	cfg    Config
	client paho.Client
	boot   string
	mu     sync.Mutex
	seq    uint64
	count  int64
}

// NewSensor connects an area sensor.
func NewSensor(cfg Config) *Sensor {
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	return &Sensor{cfg: cfg, boot: newBootID(), client: connect(cfg, "occupancy")}
}

// Set is what the sensor sees now.
func (s *Sensor) Set(n int64) { s.mu.Lock(); s.count = n; s.mu.Unlock() }

// Report builds the next head-count payload.
func (s *Sensor) Report(now time.Time) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	b, _ := json.Marshal(map[string]any{"boot": s.boot, "seq": s.seq, "ts": now.UTC().Format(time.RFC3339Nano), "count": s.count})
	return b
}

// Run publishes the head count every interval until ctx ends.
func (s *Sensor) Run(ctx context.Context) { runLoop(ctx, s.cfg, s.client, "occupancy", s.Report) }

// Close disconnects.
func (s *Sensor) Close() { s.client.Disconnect(250) }
