package app

import (
	"cmp"
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/zones"
)

// retainedReassert is how often the service publishes its retained topics again unchanged.
const retainedReassert = 10 * time.Second

// mqttConn is the embedded broker or the external-broker client, as the rest of the service
// publishes through it.
type mqttConn interface {
	Connected() bool
	Publish(topic string, payload []byte, retain bool) error
}

// mqttSide is the embedded broker (listening from New, serving from Run) or the external
// broker's client (connecting from Run).
type mqttSide struct {
	mqttConn
	broker  *ingest.Broker
	client  *ingest.Client
	url     string
	run     runner
	serving bool
}

func newMQTT(cfg *configs.Config, engine *zones.Engine, sec security.Sink, reg prometheus.Registerer, log *slog.Logger) (*mqttSide, error) {
	if cfg.MQTT.Broker == "" {
		broker, err := ingest.NewBroker(engine, log, brokerOptions(cfg, engine.Model(), sec, reg))
		if err != nil {
			return nil, err
		}
		return &mqttSide{mqttConn: broker, broker: broker}, nil
	}
	copts := clientOptions(cfg, engine.Model(), sec)
	if cfg.HA.Enabled {
		// Each instance its own persistent session on the shared broker, so each receives
		// every report (docs/ha.md); one client id for both would take the session in turns.
		copts.ClientID = cmp.Or(copts.ClientID, "crowdwatch-"+cfg.Site.ID) + "-" + haInstance(cfg)
	}
	client, err := ingest.NewClient(engine, log.With("component", "mqtt-client"), copts)
	if err != nil {
		return nil, err
	}
	return &mqttSide{mqttConn: client, client: client, url: cfg.MQTT.Broker}, nil
}

// brokerOptions are the embedded broker's inputs from the store file.
func brokerOptions(cfg *configs.Config, model *zones.Model, sec security.Sink, reg prometheus.Registerer) ingest.BrokerOptions {
	return ingest.BrokerOptions{
		Embedded:   cfg.MQTT.Embedded,
		MaxPayload: cfg.MQTT.MaxPayload,
		Site:       cfg.Site.ID,
		Topics:     ingest.TopicsFor(cfg),
		Model:      model,
		Devices:    cfg.Devices.List,
		Warnings:   cfg.EmbeddedBrokerWarnings(),
		Security:   sec,
		Registerer: reg,
	}
}

// clientOptions are the external-broker client's inputs from the store file.
func clientOptions(cfg *configs.Config, model *zones.Model, sec security.Sink) ingest.ClientOptions {
	return ingest.ClientOptions{
		Broker:     cfg.MQTT.Broker,
		Username:   cfg.MQTT.Username,
		Password:   cfg.MQTT.Password,
		ClientID:   cfg.MQTT.ClientID,
		TLS:        cfg.MQTT.TLS,
		Site:       cfg.Site.ID,
		Topics:     ingest.TopicsFor(cfg),
		MaxPayload: cfg.MQTT.MaxPayload,
		// What the engine can hold at once: its queue, twice, and a commit's group.
		AckQueue: 2*cfg.MQTT.QueueSize + cfg.Storage.CommitBatch,
		Model:    model,
		Devices:  cfg.Devices.List,
		Security: sec,
	}
}

// serve starts serving (the broker) or connecting (the client).
func (m *mqttSide) serve() error {
	if m.broker != nil {
		if err := m.broker.Serve(); err != nil {
			return err
		}
	} else {
		// The client's own errors are its reconnects' business; it returns when stopped.
		m.run.start(func(ctx context.Context) error { _ = m.client.Run(ctx); return nil })
	}
	m.serving = true
	return nil
}

// stop closes the broker (served or not) or stops the client (which sends the last
// acknowledgements and its "offline" status).
func (m *mqttSide) stop(ctx context.Context) error {
	if m == nil {
		return nil
	}
	if m.broker != nil {
		m.broker.Close()
		return nil
	}
	return m.run.stop(ctx)
}

func (m *mqttSide) addr() string {
	if m.broker != nil {
		return m.broker.Addr().String()
	}
	return m.url
}

func (m *mqttSide) tlsAddr() string {
	if m.broker != nil {
		if a := m.broker.TLSAddr(); a != nil {
			return a.String()
		}
	}
	return ""
}

// tlsAttrs are the ready log's attributes for the broker's TLS listener.
func (m *mqttSide) tlsAttrs() []any {
	if a := m.tlsAddr(); a != "" {
		return []any{"mqtt_tls", a}
	}
	return nil
}

// retainedPublishers runs the service's own retained topics (service status, zone states),
// re-asserted every retainedReassert so that a retained message someone else put there does
// not last, until ctx ends.
func (a *App) retainedPublishers(ctx context.Context) error {
	retained := a.retained
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); retained.Run(ctx) }()
	_ = retained.Publish(a.topics.Service(), []byte("online"), true)
	go func() {
		defer wg.Done()
		ingest.PublishZones(ctx, a.promo.inForce, retained, a.topics, 250*time.Millisecond, a.alerts.manager, a.log.With("component", "zone-publisher"))
	}()
	wg.Wait()
	return nil
}
