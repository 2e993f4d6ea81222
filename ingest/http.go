package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/zones"
)

// HTTPSubmitter is the engine as the HTTP ingest needs it: a queue that refuses at once when
// full, so a device is told to come back instead of holding a request open.
type HTTPSubmitter interface {
	TrySubmit(m *zones.Message) error
	Stopped() <-chan struct{}
}

// HTTPIngest takes devices' HTTP pushes (POST /ingest/v1/{device}; web routes it there after
// checking the device's token). A push is answered 2xx only once its effect is committed,
// 4xx when it is refused (nothing changed; sending it again will not help), 503 when the
// engine's queue is full or the commit failed (send it again).
type HTTPIngest struct {
	vendors *vendors
	engine  HTTPSubmitter
	maxBody int
	log     *slog.Logger
	logs    *rate.Sometimes
	pushes  *prometheus.CounterVec
	// inflight bounds the pushes read or waiting for their commit at once, so that bodies
	// of up to maxBody bytes cannot pile up in memory behind a slow disk.
	inflight chan struct{}
}

// MaxPushesInFlight is how many pushes may be read or wait for their commit at once; more
// are answered 503 at once.
const MaxPushesInFlight = 256

// HTTPOptions are the HTTP ingest's inputs.
type HTTPOptions struct {
	// Registerer, when set, gets crowdwatch_ingest_http_pushes_total{code}.
	Registerer prometheus.Registerer
	// Model is the store's topology (which device is a counter or a sensor); Devices the store
	// file's devices[] (each one's format); MaxBody http.ingest.max_body (0: 256 KiB).
	Model   *zones.Model
	Devices []configs.DeviceSpec
	MaxBody int
}

// NewHTTP builds the push handler.
func NewHTTP(engine HTTPSubmitter, log *slog.Logger, o HTTPOptions) (*HTTPIngest, error) {
	if log == nil {
		log = slog.Default()
	}
	h := &HTTPIngest{vendors: newVendors(o.Model, o.Devices), engine: engine, maxBody: o.MaxBody, log: log,
		logs: &rate.Sometimes{First: 10, Interval: 10 * time.Second}, inflight: make(chan struct{}, MaxPushesInFlight),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowdwatch_ingest_http_pushes_total",
			Help: "Devices' HTTP pushes by answer (200 committed, 4xx refused, 503 busy or not stored). Refusals are also in crowdwatch_ingest_messages_total."},
			[]string{"code"})}
	if h.maxBody <= 0 {
		h.maxBody = 256 << 10
	}
	if o.Registerer != nil {
		if err := o.Registerer.Register(h.pushes); err != nil {
			return nil, fmt.Errorf("ingest: metrics: %w", err)
		}
	}
	return h, nil
}

// pushAnswer is the JSON body of every answer.
type pushAnswer struct {
	Outcome string `json:"outcome"`
	Reason  string `json:"reason,omitempty"`
	Error   string `json:"error,omitempty"`
}

func (h *HTTPIngest) answer(w http.ResponseWriter, code int, a pushAnswer) {
	h.pushes.WithLabelValues(strconv.Itoa(code)).Inc()
	if code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}

// ServeHTTP takes one push for the device of the path's {device}.
func (h *HTTPIngest) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case h.inflight <- struct{}{}:
		defer func() { <-h.inflight }()
	default:
		h.answer(w, http.StatusServiceUnavailable, pushAnswer{Outcome: "failed", Error: "too many pushes at once; send it again"})
		return
	}
	device := r.PathValue("device")
	var m *zones.Message
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(h.maxBody)+1))
	switch {
	case err != nil:
		h.answer(w, http.StatusBadRequest, pushAnswer{Outcome: "rejected", Reason: "malformed", Error: "reading the body: " + err.Error()})
		return
	case len(body) > h.maxBody:
		m = &zones.Message{Received: time.Now(),
			Reject: zones.Reject("oversized", "device %q: a push of more than %d bytes (http.ingest.max_body)", device, h.maxBody)}
	default:
		if spec, ok := h.vendors.vendor(device); ok {
			m = h.vendors.decode(spec, TransportHTTP, "", r.Header.Get("Content-Type"), body, h.maxBody)
		} else if kind, ok := h.vendors.kinds[device]; ok {
			m = Decode(kind, device, body, h.maxBody) // a native device may push its own JSON too
		} else {
			m = &zones.Message{Received: time.Now(), Reject: zones.Reject("unknown_device", "push for unconfigured device %q", device)}
		}
	}
	decodeRefusal := m.Reject
	done := make(chan zones.Outcome, 1)
	m.Done = func(o zones.Outcome) { done <- o }
	// Refusals go through the engine too, so they are counted with the MQTT ones.
	if err := h.engine.TrySubmit(m); err != nil {
		msg := "the service is busy; send it again"
		if errors.Is(err, zones.ErrStopped) {
			msg = "the service is stopping; send it again"
		}
		h.answer(w, http.StatusServiceUnavailable, pushAnswer{Outcome: "failed", Error: msg})
		return
	}
	var o zones.Outcome
	select {
	case o = <-done:
	case <-h.engine.Stopped():
		h.answer(w, http.StatusServiceUnavailable, pushAnswer{Outcome: "failed", Error: "the service stopped before the push was stored; send it again"})
		return
	case <-r.Context().Done():
		return // the device is gone; it sends again, and the push, if committed, is a duplicate
	}
	switch o {
	case zones.Applied, zones.Duplicate:
		h.answer(w, http.StatusOK, pushAnswer{Outcome: o.String()})
	case zones.Rejected:
		rej := m.Refusal
		if rej == nil {
			rej = decodeRefusal
		}
		if rej == nil {
			rej = zones.Reject("invalid", "refused")
		}
		code := http.StatusUnprocessableEntity // well formed, but not countable (a jump, a stale window)
		switch {
		case rej.Reason == "oversized":
			code = http.StatusRequestEntityTooLarge
		case rej.Reason == "unknown_device":
			code = http.StatusNotFound
		case rej.Reason == "unsupported":
			code = http.StatusUnsupportedMediaType
		case decodeRefusal != nil:
			code = http.StatusBadRequest
		}
		h.logs.Do(func() {
			h.log.Warn("http ingest: push refused", "device", device, "reason", rej.Reason, "error", rej.Err, "remote", r.RemoteAddr)
		})
		h.answer(w, code, pushAnswer{Outcome: "rejected", Reason: rej.Reason, Error: rej.Error()})
	default:
		h.answer(w, http.StatusServiceUnavailable, pushAnswer{Outcome: "failed", Error: "the push could not be stored; send it again"})
	}
}
