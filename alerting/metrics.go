package alerting

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are alerting's Prometheus series. Labels stay bounded: kind, severity, channel,
// result; never an alert id.
type Metrics struct {
	firing       *prometheus.GaugeVec
	fired        *prometheus.CounterVec
	ackSeconds   prometheus.Histogram
	storeErrors  prometheus.Counter
	sent         *prometheus.CounterVec
	queued       *prometheus.GaugeVec
	reloads      *prometheus.CounterVec
	lastReloadOK prometheus.Gauge
}

// NewMetrics registers on reg (nil: an unregistered set, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		firing: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crowdwatch_alerts_firing",
			Help: "Alerts firing and not acknowledged, by kind and severity."}, []string{"kind", "severity"}),
		fired: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowdwatch_alerts_fired_total",
			Help: "Alerts that started firing, by kind and severity."}, []string{"kind", "severity"}),
		ackSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "crowdwatch_alert_ack_seconds",
			Help:    "Time from an alert firing to its acknowledgement.",
			Buckets: []float64{10, 30, 60, 120, 300, 600, 1800, 3600}}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_alert_store_errors_total",
			Help: "Failed writes of alert transitions to the alert database."}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowdwatch_notifications_total",
			Help: "Notifications by channel and result (sent, failed after every retry, retried, dropped from a full queue)."},
			[]string{"channel", "result"}),
		queued: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "crowdwatch_notifications_queued",
			Help: "Notifications waiting for delivery, by channel."}, []string{"channel"}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowdwatch_config_reloads_total",
			Help: "Configuration reloads by result (success, failure)."}, []string{"result"}),
		lastReloadOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "crowdwatch_config_last_reload_successful",
			Help: "1 if the last configuration reload succeeded (or none was tried), 0 if it was rejected."}),
	}
	m.lastReloadOK.Set(1)
	if reg != nil {
		reg.MustRegister(m.firing, m.fired, m.ackSeconds, m.storeErrors, m.sent, m.queued, m.reloads, m.lastReloadOK)
	}
	return m
}

func (m *Metrics) setFiring(counts map[[2]string]float64) {
	m.firing.Reset()
	for k, v := range counts {
		m.firing.WithLabelValues(k[0], k[1]).Set(v)
	}
}

// Reloaded counts a configuration reload.
func (m *Metrics) Reloaded(ok bool) {
	if ok {
		m.reloads.WithLabelValues("success").Inc()
		m.lastReloadOK.Set(1)
		return
	}
	m.reloads.WithLabelValues("failure").Inc()
	m.lastReloadOK.Set(0)
}
