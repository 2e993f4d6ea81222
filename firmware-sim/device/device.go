// Package device holds what every simulated device does on the wire whatever it counts:
// publish at QoS 1 and keep sending the same report until the broker acknowledges it.
package device

import (
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

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
