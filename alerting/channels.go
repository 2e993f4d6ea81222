package alerting

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ha"
)

// Notification is one message about an alert to one or more channels.
type Notification struct {
	// What happened: fired, worsened, escalated, repeat, acknowledged, resolved.
	What     string `json:"what"`
	Site     string `json:"site"`
	SiteName string `json:"site_name,omitempty"`
	// Group is the escalation group the alert has reached.
	Group string `json:"group,omitempty"`
	Alert Alert  `json:"alert"`
	// Term is the HA leader's term that sent it (docs/ha.md); absent on a single instance.
	Term int64 `json:"term,omitempty"`
	// Degraded: sent without a coordinator to prove a single sender (the other instance may
	// send it too).
	Degraded bool `json:"degraded,omitempty"`
	// key is the recorded transition's name, the webhook's Idempotency-Key.
	key string
	// track: not to be sent (this instance is a standby), only to keep an Alertmanager
	// channel's list of firing alerts, which a new leader goes on resending.
	track bool
}

// Publisher sends MQTT messages from the service (the embedded broker or the client).
type Publisher interface {
	Publish(topic string, payload []byte, retain bool) error
}

// Topics names the MQTT topics alerting publishes on. The service's one scheme of topics,
// ingest.Topics, implements it: alerting does not spell topic names itself.
type Topics interface {
	// Alert is the retained topic of one alert's current state.
	Alert(id string) string
}

// Dispatcher delivers notifications: one worker goroutine and one bounded queue per channel,
// so a channel that is down delays nobody else and never the evaluation or the ingest.
type Dispatcher struct {
	mqtt    Publisher
	topics  Topics
	metrics *Metrics
	log     *slog.Logger
	client  *http.Client

	mu      sync.Mutex
	workers map[string]*worker
	ctx     context.Context
	wg      sync.WaitGroup
	// retry is the first back-off between attempts (tests shorten it).
	retry time.Duration

	// HA (leadership.go): nil lead is a single instance, which always sends.
	lead          Leadership
	degradedAfter time.Duration
	gateIn        chan gated
	repeat        time.Duration // alerting.repeat_interval, for the names of repeats
}

// NewDispatcher prepares the channels of cfg; Run starts them. mqtt and topics (both nil
// when there is no MQTT side) are where MQTT channels publish.
func NewDispatcher(mqtt Publisher, topics Topics, metrics *Metrics, log *slog.Logger) *Dispatcher {
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	return &Dispatcher{mqtt: mqtt, topics: topics, metrics: metrics, log: log, client: &http.Client{}, workers: map[string]*worker{}, retry: time.Second}
}

// Run starts the workers for cfg and stops them when ctx ends, waiting for them.
func (d *Dispatcher) Run(ctx context.Context, cfg *Config) {
	d.mu.Lock()
	d.ctx = ctx
	d.mu.Unlock()
	d.Reload(cfg)
	if d.lead != nil {
		d.wg.Add(1)
		go func() { defer d.wg.Done(); d.gate(ctx) }()
	}
	<-ctx.Done()
	d.wg.Wait()
}

// Reload replaces the channels: a channel whose settings are unchanged keeps its worker and
// queue; a changed one is restarted with what was still queued; a removed one stops.
func (d *Dispatcher) Reload(cfg *Config) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctx == nil {
		return
	}
	d.repeat = cfg.Alerting.RepeatInterval
	next := map[string]*worker{}
	for _, ch := range cfg.Alerting.Channels {
		old := d.workers[ch.Name]
		if old != nil && fmt.Sprint(old.cfg) == fmt.Sprint(ch) {
			next[ch.Name] = old
			delete(d.workers, ch.Name)
			continue
		}
		w := &worker{d: d, cfg: ch, site: cfg.Site.ID, queue: make(chan Notification, ch.QueueSize)}
		if old != nil {
			old.stop()
			for len(old.queue) > 0 {
				select {
				case n := <-old.queue:
					w.enqueue(n)
				default:
				}
			}
			delete(d.workers, ch.Name)
		}
		ctx, cancel := context.WithCancel(d.ctx)
		w.cancel = cancel
		w.done = make(chan struct{})
		d.wg.Add(1)
		go func() { defer d.wg.Done(); w.run(ctx) }()
		next[ch.Name] = w
	}
	for _, old := range d.workers {
		old.stop()
	}
	d.workers = next
}

// Notify queues n for the named channels without blocking.
func (d *Dispatcher) Notify(n Notification, channels []string) {
	if d.lead != nil {
		d.offer(gated{n: n, routes: channels, at: time.Now()})
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range channels {
		if w := d.workers[name]; w != nil {
			w.enqueue(n)
		}
	}
}

type worker struct {
	d      *Dispatcher
	cfg    configs.AlertChannel
	site   string // site id, for labels (mqtt.topic_prefix may itself contain "/")
	queue  chan Notification
	cancel context.CancelFunc
	done   chan struct{}
	// Alertmanager only: the firing alerts it must keep hearing about.
	open map[string]Alert
}

func (w *worker) stop() {
	w.cancel()
	<-w.done
}

// enqueue drops the oldest waiting notification when the queue is full: the newest state of
// an alert matters more than an old one.
func (w *worker) enqueue(n Notification) {
	for {
		select {
		case w.queue <- n:
			w.d.metrics.queued.WithLabelValues(w.cfg.Name).Set(float64(len(w.queue)))
			return
		default:
		}
		select {
		case <-w.queue:
			w.d.metrics.sent.WithLabelValues(w.cfg.Name, "dropped").Inc()
		default:
		}
	}
}

func (w *worker) run(ctx context.Context) {
	defer close(w.done)
	var resend <-chan time.Time
	if w.cfg.Type == "alertmanager" {
		w.open = map[string]Alert{}
		t := time.NewTicker(w.cfg.ResendEvery)
		defer t.Stop()
		resend = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-resend:
			if len(w.open) > 0 && (w.d.lead == nil || w.d.lead.Status().Role != ha.Standby) {
				w.deliver(ctx, func(ctx context.Context) error { return w.postAlertmanager(ctx, w.firing(), false) }, 1)
			}
		case n := <-w.queue:
			w.d.metrics.queued.WithLabelValues(w.cfg.Name).Set(float64(len(w.queue)))
			if n.track {
				if w.open != nil {
					w.track(n.Alert)
				}
				continue
			}
			w.deliver(ctx, func(ctx context.Context) error { return w.send(ctx, n) }, w.cfg.MaxAttempts)
		}
	}
}

// track keeps the Alertmanager channel's list of firing alerts.
func (w *worker) track(a Alert) {
	if a.Open() {
		w.open[a.ID] = a
	} else {
		delete(w.open, a.ID)
	}
}

func (w *worker) firing() []Notification {
	var out []Notification
	for _, a := range w.open {
		out = append(out, Notification{What: "repeat", Alert: a})
	}
	return out
}

// deliver tries up to attempts times with exponential back-off.
func (w *worker) deliver(ctx context.Context, send func(context.Context) error, attempts int) {
	wait := w.d.retry
	for i := 1; ; i++ {
		err := send(ctx)
		if err == nil {
			w.d.metrics.sent.WithLabelValues(w.cfg.Name, "sent").Inc()
			return
		}
		var perm permanentError
		if i >= attempts || ctx.Err() != nil || errorAs(err, &perm) {
			w.d.metrics.sent.WithLabelValues(w.cfg.Name, "failed").Inc()
			w.d.log.Error("alerting: notification not delivered", "channel", w.cfg.Name, "attempts", i, "error", err)
			return
		}
		w.d.metrics.sent.WithLabelValues(w.cfg.Name, "retried").Inc()
		w.d.log.Warn("alerting: notification failed; retrying", "channel", w.cfg.Name, "attempt", i, "retry_in", wait, "error", err)
		select {
		case <-ctx.Done():
			w.d.metrics.sent.WithLabelValues(w.cfg.Name, "failed").Inc()
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

type permanentError struct{ error }

func errorAs(err error, target *permanentError) bool {
	p, ok := err.(permanentError)
	if ok {
		*target = p
	}
	return ok
}

func (w *worker) send(ctx context.Context, n Notification) error {
	if err := w.d.fenced(&n); err != nil {
		return err
	}
	switch w.cfg.Type {
	case "mqtt":
		if w.d.mqtt == nil || w.d.topics == nil {
			return permanentError{fmt.Errorf("no MQTT side to publish on")}
		}
		body, _ := json.Marshal(n)
		// Retained, so a handheld that connects later sees every alert's current state.
		return w.d.mqtt.Publish(w.d.topics.Alert(n.Alert.ID), body, true)
	case "webhook":
		body, err := webhookBody(w.cfg.Template, n)
		if err != nil {
			return permanentError{err}
		}
		return w.post(ctx, w.cfg.URL, body, n.key)
	case "alertmanager":
		w.track(n.Alert)
		return w.postAlertmanager(ctx, []Notification{n}, true)
	}
	return permanentError{fmt.Errorf("unknown channel type %q", w.cfg.Type)}
}

// post sends body, signed when the channel has a secret: the receiver recomputes
// HMAC-SHA256(secret, timestamp + "." + body) and compares it with the signature header.
func (w *worker) post(ctx context.Context, url string, body []byte, key string) error {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return permanentError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "crowdwatch-alerting")
	if key != "" {
		// With HA: the recorded transition, so a receiver can drop the rare repeat.
		req.Header.Set("Idempotency-Key", key)
	}
	if w.cfg.Secret != "" {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req.Header.Set("X-Crowdwatch-Timestamp", ts)
		req.Header.Set("X-Crowdwatch-Signature", "sha256="+Sign(w.cfg.Secret, ts, body))
	}
	resp, err := w.d.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	switch {
	case resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return fmt.Errorf("%s answered %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))
	}
	return permanentError{fmt.Errorf("%s refused the notification with %s: %s", url, resp.Status, strings.TrimSpace(string(msg)))}
}

// Sign is the webhook signature: hex HMAC-SHA256 of timestamp + "." + body.
func Sign(secret, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(timestamp + "."))
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// amAlert is Alertmanager's API v2 postable alert.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

func (w *worker) postAlertmanager(ctx context.Context, ns []Notification, _ bool) error {
	var out []amAlert
	for _, n := range ns {
		a := n.Alert
		labels := map[string]string{"alertname": "crowdwatch_" + string(a.Kind), "site": w.site, "severity": string(a.Severity), "kind": string(a.Kind)}
		if a.Zone != "" {
			labels["zone"] = a.Zone
		}
		if a.Device != "" {
			labels["device"] = a.Device
		}
		desc := a.Detail
		if a.State == StateAcknowledged {
			desc = strings.TrimSpace(fmt.Sprintf("%s acknowledged by %s %s", desc, a.AckBy, a.AckNote))
		}
		am := amAlert{Labels: labels, Annotations: map[string]string{"summary": a.Summary, "description": desc}, StartsAt: a.StartsAt}
		if a.Action != "" {
			am.Annotations["action"] = a.Action
		}
		if a.EndsAt != nil {
			am.EndsAt = *a.EndsAt
		}
		out = append(out, am)
	}
	body, _ := json.Marshal(out)
	return w.post(ctx, strings.TrimSuffix(w.cfg.URL, "/")+"/api/v2/alerts", body, "")
}

// webhookBody shapes a notification for a receiver: plain JSON, or the message format of a
// group-chat robot.
func webhookBody(template string, n Notification) ([]byte, error) {
	a := n.Alert
	title := fmt.Sprintf("[%s] %s", strings.ToUpper(string(a.Severity)), a.Summary)
	lines := []string{title, fmt.Sprintf("%s · %s · site %s", n.What, a.ID, cmpOr(n.SiteName, n.Site))}
	if a.Action != "" && n.What != "resolved" {
		lines = append(lines, "Action: "+a.Action) // the playbook's, in its language
	}
	if a.Detail != "" {
		lines = append(lines, a.Detail)
	}
	if a.State == StateAcknowledged {
		lines = append(lines, fmt.Sprintf("acknowledged by %s %s", a.AckBy, a.AckNote))
	}
	if n.What == "escalated" {
		lines = append(lines, "not acknowledged: escalated to "+n.Group)
	}
	text := strings.Join(lines, "\n")
	var v any
	switch template {
	case "", "json":
		v = n
	case "slack":
		v = map[string]any{"text": text}
	case "wecom":
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": "**" + title + "**\n" + strings.Join(lines[1:], "\n")}}
	case "dingtalk":
		v = map[string]any{"msgtype": "markdown", "markdown": map[string]any{"title": title, "text": "### " + title + "\n\n" + strings.Join(lines[1:], "\n\n")}}
	case "feishu":
		v = map[string]any{"msg_type": "text", "content": map[string]any{"text": text}}
	default:
		return nil, fmt.Errorf("unknown webhook template %q", template)
	}
	return json.Marshal(v)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (d *Dispatcher) workerCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.workers)
}
