package ingest

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
)

// recordingPub is a Publisher that keeps what it was asked to send.
type recordingPub struct {
	mu   sync.Mutex
	sent []string
}

func (p *recordingPub) Publish(topic string, payload []byte, retain bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sent = append(p.sent, topic+"="+string(payload))
	return nil
}

func (p *recordingPub) Connected() bool { return true }

func (p *recordingPub) count(msg string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, s := range p.sent {
		if s == msg {
			n++
		}
	}
	return n
}

// The service's retained topics are re-asserted periodically, not only on change.
func TestRetainerReassertsTheLatestRetainedMessages(t *testing.T) {
	pub := &recordingPub{}
	r := NewRetainer(pub, 1e6, slog.New(slog.NewTextHandler(io.Discard, nil))) // 1 ms
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	for _, m := range []struct {
		topic, payload string
		retain         bool
	}{
		{"s/service/status", "online", true},
		{"s/zone/a", `{"occupancy":1}`, true},
		{"s/zone/a", `{"occupancy":2}`, true},
		{"s/event", "once", false},
		{"s/zone/gone", "x", true},
		{"s/zone/gone", "", true}, // cleared
	} {
		if err := r.Publish(m.topic, []byte(m.payload), m.retain); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two re-assertions", func() bool {
		return pub.count("s/service/status=online") >= 3 && pub.count(`s/zone/a={"occupancy":2}`) >= 3
	})
	cancel()
	<-done
	if n := pub.count(`s/zone/a={"occupancy":1}`); n != 1 {
		t.Errorf("an old zone state was re-asserted (%d sends)", n)
	}
	if n := pub.count("s/event=once"); n != 1 {
		t.Errorf("a non-retained message was repeated (%d sends)", n)
	}
	if n := pub.count("s/zone/gone=x"); n != 1 {
		t.Errorf("a cleared topic was re-asserted (%d sends)", n)
	}
	if err := r.Publish("s/zone/a", nil, true); err != errRetainerStopped {
		t.Errorf("publish after stop: %v", err)
	}
}
