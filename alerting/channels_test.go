package alerting

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowdwatch/crowdwatch/configs"
)

func TestWebhookTemplates(t *testing.T) {
	n := Notification{What: "fired", Site: "s1", SiteName: "Flagship", Alert: Alert{ID: "level:entrance", Kind: KindLevel,
		Severity: SeverityCritical, Summary: "Entrance critical: 161 people", Action: "Meter the door"}}
	cases := map[string]func(map[string]any) bool{
		"json": func(v map[string]any) bool {
			return v["what"] == "fired" && v["alert"].(map[string]any)["id"] == "level:entrance"
		},
		"slack": func(v map[string]any) bool {
			return strings.HasPrefix(v["text"].(string), "[CRITICAL] Entrance critical")
		},
		"wecom": func(v map[string]any) bool {
			content := v["markdown"].(map[string]any)["content"].(string)
			return v["msgtype"] == "markdown" && strings.Contains(content, "fired · level:entrance · site Flagship") && strings.Contains(content, "Action: Meter the door")
		},
		"dingtalk": func(v map[string]any) bool {
			md := v["markdown"].(map[string]any)
			return v["msgtype"] == "markdown" && md["title"] == "[CRITICAL] Entrance critical: 161 people" && strings.HasPrefix(md["text"].(string), "### ")
		},
		"feishu": func(v map[string]any) bool {
			return v["msg_type"] == "text" && strings.Contains(v["content"].(map[string]any)["text"].(string), "[CRITICAL]")
		},
	}
	for tmpl, ok := range cases {
		body, err := webhookBody(tmpl, n)
		if err != nil {
			t.Fatalf("%s: %v", tmpl, err)
		}
		var v map[string]any
		if err := json.Unmarshal(body, &v); err != nil || !ok(v) {
			t.Errorf("%s: %s (%v)", tmpl, body, err)
		}
	}
	if _, err := webhookBody("teams", n); err == nil {
		t.Error("unknown template accepted")
	}
}

// TestDownChannelBlocksNobody: a webhook that hangs delays neither another channel nor the
// caller of Notify, and its bounded queue drops the oldest notifications.
func TestDownChannelBlocksNobody(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	var mu sync.Mutex
	var got []string
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var n Notification
		_ = json.Unmarshal(b, &n)
		mu.Lock()
		got = append(got, n.Alert.ID)
		mu.Unlock()
	}))
	defer fast.Close()

	cfg := &configs.Config{Site: configs.Site{ID: "s"}, MQTT: configs.MQTT{TopicPrefix: "crowdwatch"},
		Alerting: configs.Alerting{Channels: []configs.AlertChannel{
			{Name: "slow", Type: "webhook", URL: slow.URL, Template: "json", Timeout: time.Minute, QueueSize: 2, MaxAttempts: 1, ResendEvery: time.Minute},
			{Name: "fast", Type: "webhook", URL: fast.URL, Template: "json", Timeout: time.Minute, QueueSize: 16, MaxAttempts: 1, ResendEvery: time.Minute},
		}}}
	metrics := NewMetrics(nil)
	d := NewDispatcher(nil, nil, metrics, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, ConfigOf(cfg)) }()
	defer func() { cancel(); <-done }()
	for d.workerCount() < 2 {
		time.Sleep(time.Millisecond)
	}
	d.Notify(Notification{What: "fired", Alert: Alert{ID: "a"}}, []string{"slow", "fast"})
	for testutil.ToFloat64(metrics.queued.WithLabelValues("slow")) != 0 {
		time.Sleep(time.Millisecond) // until the slow worker holds "a"
	}
	for _, id := range []string{"b", "c", "d", "e"} {
		d.Notify(Notification{What: "fired", Alert: Alert{ID: id}}, []string{"slow", "fast"})
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the fast channel got %d of 5 while the slow one hung", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The slow worker holds "a"; of b..e its queue of 2 keeps the newest.
	if dropped := testutil.ToFloat64(metrics.sent.WithLabelValues("slow", "dropped")); dropped != 2 {
		t.Fatalf("slow channel dropped %v, want 2", dropped)
	}
}

// TestAlertmanagerSiteLabel: the site label is the site id even when mqtt.topic_prefix has
// a "/" in it (a bug once cut it from the topic root at the first "/").
func TestAlertmanagerSiteLabel(t *testing.T) {
	got := make(chan []amAlert, 4)
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var alerts []amAlert
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &alerts); err != nil {
			t.Errorf("alertmanager body: %v", err)
		}
		select {
		case got <- alerts:
		default:
		}
	}))
	defer am.Close()
	for _, prefix := range []string{"crowdwatch", "acme/crowdwatch", "a/b/c"} {
		cfg := &configs.Config{Site: configs.Site{ID: "store-1"}, MQTT: configs.MQTT{TopicPrefix: prefix},
			Alerting: configs.Alerting{Channels: []configs.AlertChannel{
				{Name: "am", Type: "alertmanager", URL: am.URL, Timeout: time.Minute, QueueSize: 4, MaxAttempts: 1, ResendEvery: time.Hour},
			}}}
		d := NewDispatcher(nil, nil, NewMetrics(nil), slog.New(slog.DiscardHandler))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); d.Run(ctx, ConfigOf(cfg)) }()
		for d.workerCount() < 1 {
			time.Sleep(time.Millisecond)
		}
		d.Notify(Notification{What: "fired", Site: "store-1", Alert: Alert{ID: "a", Kind: "level", Severity: "warning", State: StateFiring}}, []string{"am"})
		select {
		case alerts := <-got:
			if len(alerts) != 1 || alerts[0].Labels["site"] != "store-1" {
				t.Errorf("prefix %q: alertmanager got %+v, want one alert with site=store-1", prefix, alerts)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("prefix %q: alertmanager got nothing", prefix)
		}
		cancel()
		<-done
	}
}

// recordingPublisher keeps the topics it is asked to publish on.
type recordingPublisher chan string

func (p recordingPublisher) Publish(topic string, _ []byte, _ bool) error {
	select {
	case p <- topic:
	default:
	}
	return nil
}

// fixedTopics is a topic scheme that is not "<prefix>/<site>/...": the dispatcher must take
// alert topics from it and never spell them from the configuration.
type fixedTopics struct{}

func (fixedTopics) Alert(id string) string { return "scheme/alerts/" + id }

func TestMQTTChannelPublishesOnTheTopicsGiven(t *testing.T) {
	pub := make(recordingPublisher, 4)
	cfg := &configs.Config{Site: configs.Site{ID: "store-1"}, MQTT: configs.MQTT{TopicPrefix: "acme/crowdwatch"},
		Alerting: configs.Alerting{Channels: []configs.AlertChannel{
			{Name: "mqtt", Type: "mqtt", Timeout: time.Minute, QueueSize: 4, MaxAttempts: 1, ResendEvery: time.Hour},
		}}}
	d := NewDispatcher(pub, fixedTopics{}, NewMetrics(nil), slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx, ConfigOf(cfg)) }()
	defer func() { cancel(); <-done }()
	for d.workerCount() < 1 {
		time.Sleep(time.Millisecond)
	}
	d.Notify(Notification{What: "fired", Site: "store-1", Alert: Alert{ID: "level:hall", Kind: KindLevel, Severity: SeverityWarning, State: StateFiring}}, []string{"mqtt"})
	select {
	case topic := <-pub:
		if topic != "scheme/alerts/level:hall" {
			t.Errorf("published on %q, want scheme/alerts/level:hall", topic)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("nothing published")
	}
}
