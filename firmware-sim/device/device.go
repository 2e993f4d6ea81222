// Package device holds what every simulated device does on the wire whatever it counts:
// publish at QoS 1 and keep sending the same report until the broker acknowledges it,
// reconnecting itself when the broker goes away.
package device

import (
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Options are the client settings simulated firmware uses: a clean session, and no paho
// auto-reconnect. Firmware resends its own unacknowledged report (PublishAcked), so paho's
// session resume is not needed, and paho v1.5.1's resume races with its own writer (the race
// detector reports it when a broker restarts).
func Options(broker, clientID string) *paho.ClientOptions {
	return paho.NewClientOptions().AddBroker(broker).SetClientID(clientID).
		SetCleanSession(true).SetAutoReconnect(false).SetConnectRetry(false).
		SetConnectTimeout(2 * time.Second)
}

// PublishAcked publishes at QoS 1 and repeats the same payload until the broker acknowledges
// it or ctx ends, connecting the client whenever it is not connected. A token that completes
// across a reconnect is not proof of delivery, so a timeout means "send again", which the
// protocol's (boot, seq) makes harmless.
func PublishAcked(ctx context.Context, cl paho.Client, topic string, payload []byte) error {
	for {
		if !cl.IsConnected() {
			cl.Connect().WaitTimeout(3 * time.Second)
		}
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
