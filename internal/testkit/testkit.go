// Package testkit holds the set-up that the tests of several packages repeat: a store file in
// a temporary directory, a log buffer goroutines write to, an MQTT client standing in for a
// door counter and the counter report it publishes, a security sink that keeps what it is
// told and a reader of one metric. It is imported by tests only.
package testkit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/security"
)

// Buffer collects log output written by several goroutines (a service's slog handler or a
// child process) for a test to search and print on failure.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WriteStore writes the store file yaml into dir as store.yaml, with every $DIR replaced by dir
// (so the storage paths the file names are inside the test's directory), and returns its path.
func WriteStore(t testing.TB, dir, yaml string) string {
	t.Helper()
	path := filepath.Join(dir, "store.yaml")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(yaml, "$DIR", dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Connect connects an MQTT client with opts (auto-reconnect off, so that a refused or lost
// connection shows) and disconnects it when the test ends. The error is returned rather than
// fatal because some tests expect the broker to refuse.
func Connect(t testing.TB, opts *paho.ClientOptions) (paho.Client, error) {
	t.Helper()
	opts.SetAutoReconnect(false)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		servers := make([]string, 0, len(opts.Servers))
		for _, s := range opts.Servers {
			servers = append(servers, s.String())
		}
		return nil, fmt.Errorf("connect %s as %q (user %q): %v", strings.Join(servers, ","), opts.ClientID, opts.Username, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// Publish publishes payload at QoS 1 and waits for the broker's acknowledgement.
func Publish(t testing.TB, c paho.Client, topic, payload string) {
	t.Helper()
	tok := c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish %s: %v", topic, tok.Error())
	}
}

// CounterReport is a door counter's report (docs/protocol.md): running totals in and out
// since boot, stamped now.
func CounterReport(boot string, seq int, in, out uint64) string {
	return fmt.Sprintf(`{"boot":%q,"seq":%d,"ts":%q,"in":%d,"out":%d}`, boot, seq, time.Now().UTC().Format(time.RFC3339), in, out)
}

// Events is a security.Sink that keeps every event, for a test to look at what a component
// refused. Record never blocks for long, as the Sink contract asks.
type Events struct {
	mu  sync.Mutex
	all []security.Event
}

func (e *Events) Record(ev security.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, ev)
}

// All is every event recorded so far, in order.
func (e *Events) All() []security.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]security.Event(nil), e.all...)
}

// Of is the events of one kind recorded so far, in order.
func (e *Events) Of(kind security.Kind) []security.Event {
	var out []security.Event
	for _, ev := range e.All() {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// Metric reads one sample, counter or gauge, of the metric name from g: the first whose label
// values begin with labels (any sample when none are given). A metric not there fails the test.
func Metric(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	samples:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) < len(labels) {
				continue
			}
			for i, v := range labels {
				if m.GetLabel()[i].GetValue() != v {
					continue samples
				}
			}
			if m.Counter != nil {
				return m.Counter.GetValue()
			}
			return m.Gauge.GetValue()
		}
	}
	t.Fatalf("no metric %s %v", name, labels)
	return 0
}
