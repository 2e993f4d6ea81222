package ingest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/zones"
)

// Client reads devices through an external broker (mosquitto, EMQX). It keeps a persistent
// session (clean session off, QoS 1, a stable client id) and acknowledges each message only
// after its effect is committed, so a crash between receipt and commit means redelivery.
type Client struct {
	client     paho.Client
	topics     Topics
	maxPayload int
	engine     Submitter
	log        *slog.Logger
	acks       chan paho.Message
	closed     chan struct{}
	ctx        context.Context
	// redeliver asks for a reconnection after a failed commit: a broker resends a session's
	// unacknowledged messages only when the client reconnects.
	redeliver  chan struct{}
	subscribed atomic.Bool
	sec        security.Sink
	devices    map[string]bool // every device the store file declares
	vendors    *vendors        // which devices speak a vendor format; Axis serials
}

// ClientOptions are what the external-broker client is built from: its part of the store
// file, the store's devices and its dependencies (app.clientOptions builds them).
type ClientOptions struct {
	// Devices are the store file's devices[]: each one's format and Axis serial.
	Devices []configs.DeviceSpec
	// Broker is mqtt.broker, the external broker's URL (tcp://, ssl://, mqtt(s)://, ws(s)://).
	Broker             string
	Username, Password string      // mqtt.username, mqtt.password
	ClientID           string      // mqtt.client_id; "" is crowdwatch-<Site>
	TLS                configs.TLS // mqtt.tls
	Site               string      // site.id
	Topics             Topics
	MaxPayload         int // mqtt.max_payload
	// AckQueue bounds the messages waiting for their acknowledgement (app: twice
	// mqtt.queue_size plus storage.commit_batch: what the engine can hold at once); 0 is 1024.
	AckQueue int
	// Model gives the devices the store file declares; a report from any other is refused
	// and reported.
	Model *zones.Model
	// Security receives reports from devices the store file does not declare (the external
	// broker does its own authentication and ACLs). Nil means security.Discard.
	Security security.Sink
}

// NewClient prepares the connection; Run connects and keeps it up.
func NewClient(engine Submitter, log *slog.Logger, copts ClientOptions) (*Client, error) {
	if copts.AckQueue <= 0 {
		copts.AckQueue = 1024
	}
	c := &Client{topics: copts.Topics, maxPayload: copts.MaxPayload,
		engine: engine, log: log, acks: make(chan paho.Message, copts.AckQueue),
		closed: make(chan struct{}), redeliver: make(chan struct{}, 1), sec: copts.Security, devices: declaredDevices(copts.Model),
		vendors: newVendors(copts.Model, copts.Devices)}
	if c.sec == nil {
		c.sec = security.Discard
	}
	broker := copts.Broker
	// paho names the TLS schemes ssl/tls and the plain one tcp; accept the mqtt(s) spellings too.
	if rest, ok := strings.CutPrefix(broker, "mqtts://"); ok {
		broker = "ssl://" + rest
	} else if rest, ok := strings.CutPrefix(broker, "mqtt://"); ok {
		broker = "tcp://" + rest
	}
	clientID := copts.ClientID
	if clientID == "" {
		clientID = "crowdwatch-" + copts.Site
	}
	opts := paho.NewClientOptions().
		AddBroker(broker).
		SetClientID(clientID).
		SetUsername(copts.Username).
		SetPassword(copts.Password).
		SetCleanSession(false).
		SetOrderMatters(true).
		SetAutoAckDisabled(true).
		SetAutoReconnect(true).
		SetMaxReconnectInterval(30*time.Second).
		SetKeepAlive(30*time.Second).
		SetWill(c.topics.Service(), "offline", 1, true).
		SetOnConnectHandler(c.onConnect).
		// A resumed session delivers queued messages before onConnect subscribes; without a
		// default handler paho would leave them unacknowledged.
		SetDefaultPublishHandler(c.onMessage).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			c.subscribed.Store(false)
			log.Warn("mqtt: lost the broker connection; reconnecting", "broker", copts.Broker, "error", err)
		}).
		SetReconnectingHandler(func(paho.Client, *paho.ClientOptions) {
			log.Info("mqtt: reconnecting", "broker", copts.Broker)
		})
	if strings.HasPrefix(broker, "ssl://") || strings.HasPrefix(broker, "tls://") || strings.HasPrefix(broker, "wss://") ||
		copts.TLS.CAFile != "" || copts.TLS.CertFile != "" {
		tc, err := tlsConfig(copts.TLS)
		if err != nil {
			return nil, err
		}
		opts.SetTLSConfig(tc)
	}
	c.client = paho.NewClient(opts)
	return c, nil
}

func tlsConfig(t configs.TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // an explicit, documented choice of the operator
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("mqtt.tls.ca_file: %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("mqtt.tls: client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Run connects (retrying with back-off) and serves until ctx ends, then sends the
// acknowledgements already committed and disconnects. Stop the engine first, so that what it
// commits while stopping is acknowledged here.
func (c *Client) Run(ctx context.Context) error {
	c.ctx = ctx
	acksDone := make(chan struct{})
	go c.ackLoop(acksDone)
	c.connect(ctx)
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-c.redeliver:
			c.reconnect(ctx)
		}
	}
	close(c.closed)
	<-acksDone
	_ = c.client.Publish(c.topics.Service(), 1, true, "offline").WaitTimeout(time.Second)
	c.client.Disconnect(500)
	return nil
}

// connect makes the first connection, retrying with back-off and saying why each attempt
// failed (paho's own retry is silent); after that, paho's auto-reconnect keeps it up.
func (c *Client) connect(ctx context.Context) {
	wait := time.Second
	for {
		tok := c.client.Connect()
		select {
		case <-tok.Done():
		case <-ctx.Done():
			return
		}
		if tok.Error() == nil {
			return
		}
		c.log.Error("mqtt: cannot connect to the broker; retrying", "error", tok.Error(), "retry_in", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// reconnect drops and re-makes the connection so that the broker redelivers what a failed
// commit left unacknowledged; it waits a little first so a full disk is not hammered.
func (c *Client) reconnect(ctx context.Context) {
	c.log.Warn("mqtt: a commit failed; reconnecting so the broker redelivers the unacknowledged messages")
	select {
	case <-time.After(2 * time.Second):
	case <-ctx.Done():
		return
	}
	c.subscribed.Store(false)
	c.client.Disconnect(250)
	c.connect(ctx)
}

// Connected reports whether the broker connection is up and the subscriptions are in place
// (the readiness check). Before the first subscription of a new session a broker drops what
// devices publish, so "connected" alone would be reported too early.
func (c *Client) Connected() bool { return c.client.IsConnectionOpen() && c.subscribed.Load() }

// Publish sends a message from the service itself without waiting for the broker.
func (c *Client) Publish(topic string, payload []byte, retain bool) error {
	if !c.client.IsConnectionOpen() {
		return fmt.Errorf("mqtt: not connected")
	}
	c.client.Publish(topic, 1, retain, payload)
	return nil
}

// onConnect subscribes on every (re)connection: a restored session keeps subscriptions, but
// subscribing again is harmless and covers a broker that lost its state.
func (c *Client) onConnect(cl paho.Client) {
	filters := map[string]byte{}
	for _, f := range c.subscriptions() {
		filters[f] = 1
	}
	tok := cl.SubscribeMultiple(filters, c.onMessage)
	go func() {
		if tok.WaitTimeout(10*time.Second) && tok.Error() == nil {
			c.subscribed.Store(true)
			c.log.Info("mqtt: connected and subscribed", "filters", c.subscriptions())
			cl.Publish(c.topics.Service(), 1, true, "online")
			return
		}
		c.log.Error("mqtt: subscribing failed; devices are not being read", "error", tok.Error())
	}()
}

// onMessage runs on paho's router goroutine, one message at a time in arrival order. It only
// decodes and queues; blocking here is back-pressure when the engine's queue is full.
func (c *Client) onMessage(_ paho.Client, msg paho.Message) {
	m, device, ok := c.vendors.route(c.topics, msg.Topic(), msg.Payload(), c.maxPayload)
	if ok {
		if !c.devices[device] {
			// The external broker knows the address; the service only knows the device id.
			c.sec.Record(security.Event{Kind: security.UnknownDevice, Subject: device, At: now(),
				Detail: fmt.Sprintf("report on %q, through the external broker, from a device the store file does not declare", msg.Topic())})
		}
	} else {
		m = &zones.Message{Received: time.Now(), Reject: zones.Reject("bad_topic", "topic %q is not a device topic", msg.Topic())}
	}
	m.Retained = msg.Retained()
	m.Done = func(o zones.Outcome) {
		if o == zones.Failed {
			select {
			case c.redeliver <- struct{}{}:
			default:
			}
			return
		}
		select {
		case c.acks <- msg:
		case <-c.closed: // shutting down: the broker redelivers it to the next session
		}
	}
	if err := c.engine.Submit(c.ctx, m); err != nil {
		c.log.Warn("mqtt: message not queued; the broker will redeliver it", "topic", msg.Topic(), "error", err)
	}
}

// subscriptions are the site's device topics, and the Axis cameras' event topics when a
// device is mapped to an Axis serial.
func (c *Client) subscriptions() []string {
	f := c.topics.Subscriptions()
	if c.vendors.hasAxis() {
		f = append(f, AxisSubscription)
	}
	return f
}

// ackLoop sends acknowledgements in commit order, off the engine goroutine, because paho's
// Ack can block on the connection.
func (c *Client) ackLoop(done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case msg := <-c.acks:
			msg.Ack()
		case <-c.closed:
			for {
				select {
				case msg := <-c.acks:
					msg.Ack()
				default:
					return
				}
			}
		}
	}
}
