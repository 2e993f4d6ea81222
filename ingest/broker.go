package ingest

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/security"
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
	server      *mqtt.Server
	listener    net.Listener // plain TCP, or nil
	tlsListener net.Listener // TLS, or nil
	guard       *connGuard
	topics      Topics
	maxPayload  int
	engine      Submitter
	log         *slog.Logger
	sec         security.Sink
	ctx         context.Context
	cancel      context.CancelFunc
	closeOnce   sync.Once
	serving     atomic.Bool
}

// BrokerOptions are what the embedded broker is built from: its part of the store file, the
// store's devices and its dependencies (app.brokerOptions builds them from the store file).
type BrokerOptions struct {
	Embedded   configs.Embedded // mqtt.embedded: listeners, accounts, limits, TLS
	MaxPayload int              // mqtt.max_payload
	Site       string           // site.id (a client id may carry it as a prefix)
	// Devices are the store file's devices[]: each one's format and Axis serial.
	Devices []configs.DeviceSpec
	Topics  Topics
	// Model gives the devices the store file declares; a report from any other is refused
	// and reported.
	Model *zones.Model
	// Warnings are logged once the broker listens (configs.Config.EmbeddedBrokerWarnings).
	Warnings []string
	// Security receives every refusal: bad credentials, ACL and will refusals, client-id
	// collisions, connection limits, unknown devices. Nil means security.Discard.
	Security security.Sink
	// Registerer, when set, gets the broker's metrics (connections open and refused).
	Registerer prometheus.Registerer
}

// maxPendingWrites is the embedded broker's queue of packets waiting to be written to one
// client (NewBroker).
const maxPendingWrites = 2048

// NewBroker listens on opts.Embedded.Listen (plain TCP) and .TLS.Listen (":0" picks a
// free port; "" turns a listener off) and wires the device hook. Call Serve to accept clients.
func NewBroker(engine Submitter, log *slog.Logger, opts BrokerOptions) (*Broker, error) {
	sec := opts.Security
	if sec == nil {
		sec = security.Discard
	}
	e := opts.Embedded
	caps := mqtt.NewDefaultServerCapabilities()
	// Above the largest allowed payload limit, so an oversized report reaches the hook and is
	// refused with a reason, while a hostile multi-megabyte packet is cut off by the broker.
	caps.MaximumPacketSize = configs.MaxPayloadLimit + 4<<10
	// Each client's queue of packets waiting to be written is a channel made at this size
	// when it connects: mochi's 8,192 is 64 KB per counter (13 MB of the heap with 200
	// counters, docs/benchmarks.md). A counter is sent only its PUBACKs; a subscriber's
	// largest burst is the retained topics on subscribing (a zone, screen, device and alert
	// topic each), well under 2,048 for the stores this service is sized for. Over it, mochi
	// drops the packet and counts it (a QoS 1 one stays inflight and is sent again).
	caps.MaximumClientWritesPending = maxPendingWrites
	server := mqtt.New(&mqtt.Options{
		InlineClient: true,
		Capabilities: caps,
		// The broker's own warnings are mostly clients going away; ours say what matters.
		Logger: slog.New(levelFloor{log.With("component", "mqtt-broker").Handler(), slog.LevelError}),
	})
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{server: server, topics: opts.Topics,
		maxPayload: opts.MaxPayload, engine: engine, log: log, sec: sec, ctx: ctx, cancel: cancel}
	fail := func(err error) (*Broker, error) {
		for _, ln := range []net.Listener{b.listener, b.tlsListener} {
			if ln != nil {
				ln.Close()
			}
		}
		cancel()
		return nil, err
	}
	refused := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowdwatch_mqtt_connections_refused_total",
		Help: "Connections the embedded broker closed at once because a connection limit was reached, by limit."}, []string{"reason"})
	for _, r := range []string{RefusedTotal, RefusedPerAddress} {
		refused.WithLabelValues(r)
	}
	limitLog := &rate.Sometimes{First: 5, Interval: 10 * time.Second}
	b.guard = newConnGuard(e.MaxConnections, e.MaxConnectionsPerAddress, e.ConnectTimeout, func(reason string, remote net.Addr) {
		refused.WithLabelValues(reason).Inc()
		src := remote.String()
		b.sec.Record(security.Event{Kind: security.ConnectionLimit, Source: src, Subject: reason,
			Detail: fmt.Sprintf("MQTT connection refused: %s reached", reason), At: now()})
		limitLog.Do(func() {
			log.Warn("mqtt: refused a connection: limit reached", "limit", reason, "remote", src,
				"max_connections", e.MaxConnections, "max_connections_per_address", e.MaxConnectionsPerAddress)
		})
	})
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(refused); err != nil {
			return fail(fmt.Errorf("mqtt: metrics: %w", err))
		}
		if err := opts.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowdwatch_mqtt_connections",
			Help: "Connections the embedded broker holds now (plain and TLS, including those not past CONNECT yet)."},
			func() float64 { return float64(b.guard.open()) })); err != nil {
			return fail(fmt.Errorf("mqtt: metrics: %w", err))
		}
	}
	hook := newDeviceHook(b, opts)
	if len(hook.users) == 0 {
		log.Warn("mqtt: the embedded broker has no users configured and accepts any client; list devices under mqtt.embedded.users for a real store",
			"listen", e.Listen)
	}
	if err := server.AddHook(hook, nil); err != nil {
		return fail(fmt.Errorf("mqtt: %w", err))
	}
	if e.Listen != "" {
		ln, err := net.Listen("tcp", e.Listen)
		if err != nil {
			return fail(fmt.Errorf("mqtt: cannot listen on %s: %w", e.Listen, err))
		}
		b.listener = ln
		if err := server.AddListener(listeners.NewNet("tcp", b.guard.wrap(ln))); err != nil {
			return fail(fmt.Errorf("mqtt: %w", err))
		}
	}
	if e.TLS.Listen != "" {
		tc, err := serverTLS(e.TLS, sec)
		if err != nil {
			return fail(err)
		}
		ln, err := net.Listen("tcp", e.TLS.Listen)
		if err != nil {
			return fail(fmt.Errorf("mqtt: cannot listen on %s (mqtt.embedded.tls.listen): %w", e.TLS.Listen, err))
		}
		b.tlsListener = ln
		// The guard sits under TLS, so the CONNECT deadline covers the handshake too.
		if err := server.AddListener(listeners.NewNet(listenerTLS, tls.NewListener(b.guard.wrap(ln), tc))); err != nil {
			return fail(fmt.Errorf("mqtt: %w", err))
		}
	}
	for _, w := range opts.Warnings {
		log.Warn("mqtt: " + w)
	}
	return b, nil
}

// Addr is the address of the plain listener, or of the TLS listener when there is no plain one.
func (b *Broker) Addr() net.Addr {
	if b.listener != nil {
		return b.listener.Addr()
	}
	return b.tlsListener.Addr()
}

// TLSAddr is the address of the TLS listener, or nil.
func (b *Broker) TLSAddr() net.Addr {
	if b.tlsListener == nil {
		return nil
	}
	return b.tlsListener.Addr()
}

// Serve starts accepting clients; it returns at once.
func (b *Broker) Serve() error {
	if err := b.server.Serve(); err != nil {
		return fmt.Errorf("mqtt: %w", err)
	}
	b.serving.Store(true)
	attrs := []any{}
	if b.listener != nil {
		attrs = append(attrs, "addr", b.listener.Addr().String())
	}
	if b.tlsListener != nil {
		attrs = append(attrs, "tls_addr", b.tlsListener.Addr().String())
	}
	b.log.Info("mqtt: embedded broker listening", attrs...)
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

// declaredDevices is the set of device ids the store file binds to doors or zones.
func declaredDevices(m *zones.Model) map[string]bool {
	devices := map[string]bool{}
	if m == nil {
		return devices
	}
	for _, d := range m.Devices {
		devices[d.ID] = true
	}
	return devices
}

// now is the clock of security events.
var now = time.Now

// deviceHook authenticates clients, confines every client to its account's topics (for
// publishes and for Last Wills alike), keeps each client id to one account and hands device
// messages to the engine.
type deviceHook struct {
	mqtt.HookBase
	broker  *Broker
	users   map[string]configs.User
	devices map[string]bool // every device the store file declares
	vendors *vendors        // which devices speak a vendor format; Axis serials
	site    string
	maxWill int
	certs   bool // the TLS listener demands client certificates

	// owners remembers which account first used each client id since the start, so that an
	// id cannot change hands while its owner is away. Hooks run on every client's goroutine.
	mu     sync.Mutex
	owners map[string]string

	logs map[security.Kind]*rate.Sometimes // read-only after construction
}

// maxOwners bounds the remembered client ids; past it, only live sessions are compared.
const maxOwners = 10000

func newDeviceHook(b *Broker, opts BrokerOptions) *deviceHook {
	h := &deviceHook{broker: b, users: map[string]configs.User{}, devices: declaredDevices(opts.Model), vendors: newVendors(opts.Model, opts.Devices), site: opts.Site,
		maxWill: min(opts.Embedded.MaxWillPayload, opts.MaxPayload), certs: opts.Embedded.TLS.ClientCAFile != "",
		owners: map[string]string{}, logs: map[security.Kind]*rate.Sometimes{}}
	for _, u := range opts.Embedded.Users {
		h.users[u.Username] = u
	}
	for _, k := range []security.Kind{security.MQTTAuthFailed, security.ACLRefused, security.WillRefused,
		security.ClientIDCollision, security.UnknownDevice} {
		h.logs[k] = &rate.Sometimes{First: 10, Interval: 10 * time.Second}
	}
	return h
}

func (h *deviceHook) ID() string { return "crowdwatch-devices" }

func (h *deviceHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnSubscribe,
		mqtt.OnPublish, mqtt.OnWillSent}, []byte{b})
}

// report records a refusal and logs it (at most a few lines per kind and 10 s under a flood).
func (h *deviceHook) report(kind security.Kind, cl *mqtt.Client, subject, detail string) {
	h.broker.sec.Record(security.Event{Kind: kind, Source: cl.Net.Remote, Subject: subject, Detail: detail, At: now()})
	h.logs[kind].Do(func() {
		h.broker.log.Warn("mqtt: "+detail, "kind", string(kind), "client_id", cl.ID,
			"username", string(cl.Properties.Username), "remote", cl.Net.Remote)
	})
}

// credentialsOK checks the account and password in constant time.
func (h *deviceHook) credentialsOK(pk packets.Packet) (configs.User, bool) {
	u, ok := h.users[string(pk.Connect.Username)]
	return u, ok && subtle.ConstantTimeCompare([]byte(u.Password), pk.Connect.Password) == 1
}

// OnConnect runs before OnConnectAuthenticate and refuses, with "not authorized" or
// "client identifier not valid", a CONNECT whose credentials are good but whose Last Will or
// client id the account may not use. Bad credentials are left to OnConnectAuthenticate.
func (h *deviceHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	if len(h.users) > 0 {
		if _, ok := h.credentialsOK(pk); !ok {
			return nil
		}
	}
	if pk.Connect.WillFlag {
		if reason := h.willRefusal(cl, pk); reason != "" {
			h.report(security.WillRefused, cl, pk.Connect.WillTopic, reason)
			return h.refuseConnect(cl, packets.ErrNotAuthorized)
		}
	}
	if cl.ID == mqtt.InlineClientId {
		// The service's own client: taking its session over would cut the service's publishes.
		h.report(security.ClientIDCollision, cl, cl.ID, fmt.Sprintf("client id %q belongs to the service itself", cl.ID))
		return h.refuseConnect(cl, packets.ErrClientIdentifierNotValid)
	}
	if len(h.users) > 0 {
		if owner := h.claim(cl.ID, string(pk.Connect.Username)); owner != "" {
			h.report(security.ClientIDCollision, cl, cl.ID,
				fmt.Sprintf("client id %q belongs to account %q; refused for account %q", cl.ID, owner, pk.Connect.Username))
			return h.refuseConnect(cl, packets.ErrClientIdentifierNotValid)
		}
	}
	return nil
}

// refuseConnect answers the CONNECT with code (MQTT 5), or its 3.1.1 equivalent, and ends
// the connection. mochi's own table lacks a 3.1.1 "not authorized" for 0x87.
func (h *deviceHook) refuseConnect(cl *mqtt.Client, code packets.Code) error {
	sent := code
	if cl.Properties.ProtocolVersion < 5 {
		if v3, ok := packets.V5CodesToV3[code]; ok {
			sent = v3
		} else if code == packets.ErrNotAuthorized {
			sent = packets.Err3NotAuthorized
		}
	}
	_ = h.broker.server.SendConnack(cl, sent, false, nil)
	return code
}

// willRefusal says why a CONNECT's Last Will may not be published, or "". A will is a publish
// made on the client's behalf later, so it passes the same ACL, and it is held in memory for
// the whole connection, so it is small.
func (h *deviceHook) willRefusal(cl *mqtt.Client, pk packets.Packet) string {
	if n := len(pk.Connect.WillPayload); n > h.maxWill {
		return fmt.Sprintf("Last Will of %d bytes refused (mqtt.embedded.max_will_payload is %d)", n, h.maxWill)
	}
	if !mqtt.IsValidFilter(pk.Connect.WillTopic, true) || !h.mayPublish(string(pk.Connect.Username), pk.Connect.WillTopic) {
		return fmt.Sprintf("Last Will on %q refused: the account may not publish there", pk.Connect.WillTopic)
	}
	return ""
}

// claim binds a client id to an account and returns the other account that owns it, or "".
// An id is owned by a device account when it is that device's id or the documented
// <site>-<device>; else by the account of a session that holds it (connected or kept), or by
// the first account that used it since the start.
func (h *deviceHook) claim(id, username string) string {
	for _, name := range []string{id, strings.TrimPrefix(id, h.site+"-")} {
		if u, ok := h.users[name]; ok && u.Role == "device" && name != username {
			return name
		}
	}
	if existing, ok := h.broker.server.Clients.Get(id); ok && !existing.Net.Inline &&
		existing.Properties.Username != nil && string(existing.Properties.Username) != username {
		return string(existing.Properties.Username)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if owner, ok := h.owners[id]; ok {
		if owner != username {
			return owner
		}
		return ""
	}
	if len(h.owners) < maxOwners {
		h.owners[id] = username
	}
	return ""
}

func (h *deviceHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if len(h.users) == 0 {
		return true
	}
	username := string(pk.Connect.Username)
	if _, ok := h.credentialsOK(pk); !ok {
		h.report(security.MQTTAuthFailed, cl, username, "refused a client with unknown credentials")
		return false
	}
	if h.certs && cl.Net.Listener == listenerTLS && !certificateMatches(cl, username) {
		h.report(security.MQTTAuthFailed, cl, username,
			fmt.Sprintf("refused account %q: its TLS client certificate names %q", username, certificateNames(cl)))
		return false
	}
	return true
}

// serviceTopic tells whether a topic is one the service itself publishes: nobody else may,
// even on an open broker, or a sign could be made to show anything.
func (h *deviceHook) serviceTopic(topic string) bool { return h.broker.topics.Own(topic) }

// mayPublish is the write ACL: a device account publishes only on its own counter, occupancy
// and status topics (and an Axis camera on axis/<its serial>/event/...); a reader publishes
// nothing; on an open broker anything but the service's own topics.
func (h *deviceHook) mayPublish(username, topic string) bool {
	if h.serviceTopic(topic) {
		return false
	}
	if len(h.users) == 0 {
		return true
	}
	u := h.users[username]
	if u.Role != "device" {
		return false
	}
	if allowed, axis := h.vendors.mayPublishAxis(u.Username, topic); axis {
		return allowed
	}
	_, device, ok := h.broker.topics.Parse(topic)
	return ok && device == u.Username
}

// OnACLCheck applies mayPublish to publishes and mayRead to subscriptions and deliveries.
func (h *deviceHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.Net.Inline {
		return true
	}
	if write {
		if !h.mayPublish(string(cl.Properties.Username), topic) {
			h.report(security.ACLRefused, cl, topic, fmt.Sprintf("publish on %q refused: outside the account's topics", topic))
			return false
		}
		return true
	}
	return h.mayRead(string(cl.Properties.Username), topic)
}

// mayRead is the read ACL: a device reads the site's zone and guidance topics and the
// service status; a reader any topic of the site; on an open broker anything.
func (h *deviceHook) mayRead(username, filter string) bool {
	if len(h.users) == 0 {
		return true
	}
	u := h.users[username]
	base := h.broker.topics.Base()
	if u.Role == "reader" {
		return strings.HasPrefix(filter, base) && len(filter) > len(base)
	}
	return h.broker.topics.ForSigns(filter)
}

// OnSubscribe reports the filters the read ACL will refuse; OnACLCheck's read check also runs
// for every delivery, where a refusal is no attempt, so subscriptions are reported here.
func (h *deviceHook) OnSubscribe(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	if !cl.Net.Inline {
		for _, f := range pk.Filters {
			if !h.mayRead(string(cl.Properties.Username), f.Filter) {
				h.report(security.ACLRefused, cl, f.Filter, fmt.Sprintf("subscription to %q refused: outside the account's topics", f.Filter))
			}
		}
	}
	return pk
}

func (h *deviceHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	// A native device's topic by the native protocol, a vendor device's by its format, an
	// Axis event topic by the device of its serial (ingest/vendor.go).
	m, device, ok := h.vendors.route(h.broker.topics, pk.TopicName, pk.Payload, h.broker.maxPayload)
	if !ok {
		return pk, nil // not a device topic: ordinary broker traffic
	}
	if !h.devices[device] {
		// Only on an open broker: with accounts, the ACL keeps devices to their own id. The
		// engine refuses the report as unknown_device.
		h.report(security.UnknownDevice, cl, device, fmt.Sprintf("report on %q from a device the store file does not declare", pk.TopicName))
	}
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
