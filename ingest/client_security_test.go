package ingest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/zones"
)

type nullEngine struct{}

func (nullEngine) Submit(context.Context, *zones.Message) error { return nil }
func (nullEngine) Stopped() <-chan struct{}                     { return nil }

type fakeMessage struct{ topic string }

func (m fakeMessage) Duplicate() bool   { return false }
func (m fakeMessage) Qos() byte         { return 1 }
func (m fakeMessage) Retained() bool    { return false }
func (m fakeMessage) Topic() string     { return m.topic }
func (m fakeMessage) MessageID() uint16 { return 1 }
func (m fakeMessage) Payload() []byte   { return []byte("{}") }
func (m fakeMessage) Ack()              {}

// The external-broker path reports a report from an undeclared device as security.UnknownDevice.
func TestClientReportsUnknownDevices(t *testing.T) {
	cfg, err := configs.Parse([]byte(benchStore(1)), map[string]any{"mqtt.broker": "tcp://127.0.0.1:1", "mqtt.embedded.users": nil})
	if err != nil {
		t.Fatal(err)
	}
	ev := &testkit.Events{}
	c, err := NewClient(nullEngine{}, slog.New(slog.NewTextHandler(io.Discard, nil)), ClientOptions{Broker: cfg.MQTT.Broker,
		Site: cfg.Site.ID, Topics: TopicsFor(cfg), MaxPayload: cfg.MQTT.MaxPayload, Model: zones.NewModel(cfg), Security: ev})
	if err != nil {
		t.Fatal(err)
	}
	c.onMessage(nil, fakeMessage{"crowdwatch/bench/counter/dc-0"})
	c.onMessage(nil, fakeMessage{"crowdwatch/bench/counter/ghost"})
	if got := ev.Of(security.UnknownDevice); len(got) != 1 || got[0].Subject != "ghost" {
		t.Fatalf("unknown-device events: %+v", got)
	}
}
