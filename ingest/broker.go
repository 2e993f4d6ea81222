package ingest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Submitter is the engine's input, as ingest sees it.
type Submitter interface {
	Submit(ctx context.Context, m *zones.Message) error
	Stopped() <-chan struct{}
}

// Broker is the embedded MQTT broker. Device reports are handed to the engine from inside the
// broker's publish hook and the device's PUBACK is only sent once the report's effect is
// committed, so an acknowledged crossing is never lost.
type Broker struct {
	server     *mqtt.Server
	listener   net.Listener
	topics     Topics
	maxPayload int
	engine     Submitter
	log        *slog.Logger
	ctx        context.Context
	cancel     context.CancelFunc
	closeOnce  sync.Once
	serving    atomic.Bool
}

// NewBroker listens on cfg.MQTT.Embedded.Listen (":0" picks a free port) and wires the
// device hook. Call Serve to accept clients.
func NewBroker(cfg *configs.Config, engine Submitter, log *slog.Logger) (*Broker, error) {
	ln, err := net.Listen("tcp", cfg.MQTT.Embedded.Listen)
	if err != nil {
		return nil, fmt.Errorf("mqtt: cannot listen on %s: %w", cfg.MQTT.Embedded.Listen, err)
	}
	caps := mqtt.NewDefaultServerCapabilities()
	// Above the largest allowed payload limit, so an oversized report reaches the hook and is
	// refused with a reason, while a hostile multi-megabyte packet is cut off by the broker.
	caps.MaximumPacketSize = configs.MaxPayloadLimit + 4<<10
	server := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		// The broker's own warnings are mostly clients going away; ours say what matters.
		Logger: slog.New(levelFloor{log.With("component", "mqtt-broker").Handler(), slog.LevelError}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{server: server, listener: ln, topics: NewTopics(cfg.MQTT.TopicPrefix, cfg.Site.ID),
		maxPayload: cfg.MQTT.MaxPayload, engine: engine, log: log, ctx: ctx, cancel: cancel}
	hook := &deviceHook{broker: b, users: map[string]configs.User{}}
	for _, u := range cfg.MQTT.Embedded.Users {
		hook.users[u.Username] = u
	}
	if len(hook.users) == 0 {
		log.Warn("mqtt: the embedded broker has no users configured and accepts any client; list devices under mqtt.embedded.users for a real store",
			"listen", ln.Addr().String())
	}
	if err := server.AddHook(hook, nil); err != nil {
		ln.Close()
		cancel()
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	if err := server.AddListener(listeners.NewNet("tcp", ln)); err != nil {
		ln.Close()
		cancel()
		return nil, fmt.Errorf("mqtt: %w", err)
	}
	return b, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.listener.Addr() }

// Serve starts accepting clients; it returns at once.
func (b *Broker) Serve() error {
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	b.serving.Store(true)
	b.log.Info("mqtt: embedded broker listening", "addr", b.listener.Addr().String())
	return nil
}

// Connected reports whether the broker is serving (the readiness check).
func (b *Broker) Connected() bool { return b.serving.Load() }

// Publish sends a message from the service itself.
func (b *Broker) Publish(topic string, payload []byte, retain bool) error {
	return b.server.Publish(topic, payload, retain, 1)
}

// Close disconnects every client and stops listening. Reports waiting for a commit are not
// acknowledged; their devices send them again on reconnecting.
func (b *Broker) Close() {
	b.closeOnce.Do(func() {
		b.serving.Store(false)
		b.cancel()
		_ = b.server.Close()
	})
}

// deviceHook authenticates clients, confines devices to their own topics and hands device
// messages to the engine.
type deviceHook struct {
	mqtt.HookBase
	broker *Broker
	users  map[string]configs.User
}

func (h *deviceHook) ID() string { return "crowdwatch-devices" }

func (h *deviceHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnWillSent}, []byte{b})
}

func (h *deviceHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	u, ok := h.users[string(pk.Connect.Username)]
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), pk.Connect.Password) != 1 {
		h.broker.log.Warn("mqtt: refused a client with unknown credentials",
			"client_id", cl.ID, "username", string(pk.Connect.Username), "remote", cl.Net.Remote)
		return false
	}
	return true
}

// OnACLCheck lets a device publish only on its own counter, occupancy and status topics and
// read the site's zone and guidance topics; a reader may only read the site's topics.
func (h *deviceHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if len(h.users) == 0 || cl.Net.Inline {
		return true
	}
	u := h.users[string(cl.Properties.Username)]
	base := h.broker.topics.Base()
	if !write {
		if u.Role == "reader" {
			return strings.HasPrefix(topic, base) && len(topic) > len(base)
		}
		return strings.HasPrefix(topic, base+KindZone+"/") || strings.HasPrefix(topic, base+"guidance/") ||
			topic == h.broker.topics.Service()
	}
	if u.Role != "device" {
		return false
	}
	_, device, ok := h.broker.topics.Parse(topic)
	return ok && device == u.Username
}

func (h *deviceHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	kind, device, ok := h.broker.topics.Parse(pk.TopicName)
	if !ok {
		return pk, nil // not a device topic: ordinary broker traffic
	}
	m := Decode(kind, device, pk.Payload, h.broker.maxPayload)
	outcome := make(chan zones.Outcome, 1)
	m.Done = func(o zones.Outcome) { outcome <- o }
	if err := h.broker.engine.Submit(h.broker.ctx, m); err != nil {
		return h.refuse(cl, pk, err)
	}
	select {
	case o := <-outcome:
		switch o {
		case zones.Applied, zones.Duplicate:
			return pk, nil
		case zones.Rejected:
			// Acknowledge (so the device does not resend it for ever) but do not forward.
			return pk, packets.CodeSuccessIgnore
		default:
			return h.refuse(cl, pk, errors.New("the report could not be stored"))
		}
	case <-h.broker.engine.Stopped():
		return h.refuse(cl, pk, zones.ErrStopped)
	case <-h.broker.ctx.Done():
		return h.refuse(cl, pk, h.broker.ctx.Err())
	}
}

// refuse leaves a report unacknowledged and drops the connection, so the device's client
// sends it again after reconnecting.
func (h *deviceHook) refuse(cl *mqtt.Client, pk packets.Packet, err error) (packets.Packet, error) {
	h.broker.log.Warn("mqtt: report not acknowledged; disconnecting the device so it resends",
		"client_id", cl.ID, "topic", pk.TopicName, "error", err)
	cl.Stop(fmt.Errorf("crowdwatch: %w", err))
	return pk, packets.ErrRejectPacket
}

func (h *deviceHook) OnWillSent(cl *mqtt.Client, pk packets.Packet) {
	kind, device, ok := h.broker.topics.Parse(pk.TopicName)
	if !ok || kind != KindStatus {
		return
	}
	m := Decode(kind, device, pk.Payload, h.broker.maxPayload)
	_ = h.broker.engine.Submit(h.broker.ctx, m)
}

// levelFloor drops records below a level.
type levelFloor struct {
	slog.Handler
	min slog.Level
}

func (h levelFloor) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h levelFloor) WithAttrs(a []slog.Attr) slog.Handler {
	return levelFloor{h.Handler.WithAttrs(a), h.min}
}
func (h levelFloor) WithGroup(n string) slog.Handler {
	return levelFloor{h.Handler.WithGroup(n), h.min}
}
