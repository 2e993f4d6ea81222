package zones

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// Metrics are the engine's Prometheus series. State figures (occupancy, door totals, device
// health) are read from the current snapshot at scrape time, so they survive restarts and cost
// nothing on the hot path.
type Metrics struct {
	messages      *prometheus.CounterVec
	latency       prometheus.Histogram
	commitSeconds prometheus.Histogram
	commitSize    prometheus.Histogram
	commitErrors  prometheus.Counter
	anchors       *prometheus.HistogramVec
	unbound       *prometheus.CounterVec
	ignored       *prometheus.CounterVec
	untrusted     *prometheus.CounterVec
	state         *stateCollector
}

// NewMetrics registers the engine's metrics on reg (nil: a private registry).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowdwatch_ingest_messages_total",
			Help: "Device messages by outcome (applied, duplicate, rejected, failed) and rejection reason.",
		}, []string{"outcome", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crowdwatch_ingest_latency_seconds",
			Help:    "Time from receiving a device message to its effect being committed.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crowdwatch_storage_commit_seconds",
			Help:    "Duration of one group commit to bbolt.",
			Buckets: prometheus.ExponentialBuckets(0.0002, 2.5, 10),
		}),
		commitSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "crowdwatch_storage_commit_messages",
			Help:    "Messages covered by one group commit.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 7),
		}),
		commitErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crowdwatch_storage_commit_errors_total",
			Help: "Group commits that failed; their messages were not acknowledged.",
		}),
		anchors: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "crowdwatch_zone_anchor_correction_persons",
			Help:    "Size (absolute) of each correction an area sensor's head count made to a zone.",
			Buckets: []float64{1, 2, 5, 10, 20, 50, 100, 200},
		}, []string{"zone"}),
		unbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowdwatch_ingest_unbound_lines_total",
			Help: "Counting lines in device reports that no door is bound to: ignored and not stored.",
		}, []string{"device"}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowdwatch_ingest_ignored_readings_total",
			Help: "Vendor readings of another semantics than the device is counted by (devices[].counting): ignored.",
		}, []string{"device", "semantics"}),
		untrusted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "crowdwatch_ingest_untrusted_clock_total",
			Help: "Vendor readings whose device time was more than occupancy.max_clock_skew from the receive time: timed by receive time.",
		}, []string{"device"}),
		state: &stateCollector{},
	}
	reg.MustRegister(m.messages, m.latency, m.commitSeconds, m.commitSize, m.commitErrors, m.anchors, m.unbound, m.ignored, m.untrusted, m.state)
	return m
}

func (m *Metrics) attach(e *Engine) { m.state.engine = e }

func (m *Metrics) observeMessage(o Outcome, reason string, latency time.Duration) {
	m.messages.WithLabelValues(o.String(), reason).Inc()
	if o == Applied || o == Duplicate {
		m.latency.Observe(latency.Seconds())
	}
}

func (m *Metrics) observeCommit(d time.Duration, n int, err error) {
	if err != nil {
		m.commitErrors.Inc()
		return
	}
	m.commitSeconds.Observe(d.Seconds())
	m.commitSize.Observe(float64(n))
}

// observeUnbound counts a report's lines that no door is bound to. The device label is
// bounded: only configured devices get this far.
func (m *Metrics) observeUnbound(device string, lines int) {
	m.unbound.WithLabelValues(device).Add(float64(lines))
}

func (m *Metrics) observeIgnored(device string, s formats.Semantics) {
	m.ignored.WithLabelValues(device, s.String()).Inc()
}

func (m *Metrics) observeUntrustedClock(device string) { m.untrusted.WithLabelValues(device).Inc() }

func (m *Metrics) observeAnchor(zone string, diff int64) {
	m.anchors.WithLabelValues(zone).Observe(float64(abs(diff)))
}

var (
	descOccupancy = prometheus.NewDesc("crowdwatch_zone_occupancy", "People in the zone now.", []string{"zone"}, nil)
	descCapacity  = prometheus.NewDesc("crowdwatch_zone_capacity", "Configured capacity of the zone.", []string{"zone"}, nil)
	descClamped   = prometheus.NewDesc("crowdwatch_zone_clamped_total", "People added when a zone that stayed below zero was clamped back to zero (counting drift).", []string{"zone"}, nil)
	descCorrected = prometheus.NewDesc("crowdwatch_zone_corrected_persons_total", "Sum of the sizes of manual corrections and resets.", []string{"zone"}, nil)
	descCrossings = prometheus.NewDesc("crowdwatch_door_crossings_total", "Crossings counted through the door since the database was created.", []string{"door", "direction"}, nil)
	descOnline    = prometheus.NewDesc("crowdwatch_device_online", "1 if the device reported within its allowance.", []string{"device"}, nil)
	descLastSeen  = prometheus.NewDesc("crowdwatch_device_last_seen_timestamp_seconds", "When the device was last heard from.", []string{"device"}, nil)
)

// descInForce is the capacity in force: a running plan's (promotion.InForce) where it names
// the zone, else the configured one. A second series rather than a changed
// crowdwatch_zone_capacity, so that a dashboard that plots the configured capacity, or
// compares a plan's against it, keeps its meaning (docs/events.md, "Metrics").
var descInForce = prometheus.NewDesc("crowdwatch_zone_capacity_in_force",
	"Capacity of the zone in force now: a running event plan's where it names the zone, else the configured capacity.", []string{"zone"}, nil)

// CapacityInForce collects crowdwatch_zone_capacity_in_force from src, the engine's
// snapshots with the capacities in force (promotion.InForce), at scrape time.
func CapacityInForce(src Source) prometheus.Collector { return inForceCollector{src} }

type inForceCollector struct{ src Source }

func (inForceCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descInForce }

func (c inForceCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.src.Snapshot()
	if s == nil {
		return
	}
	for _, z := range s.Zones {
		ch <- prometheus.MustNewConstMetric(descInForce, prometheus.GaugeValue, float64(z.Capacity), z.ID)
	}
}

type stateCollector struct{ engine *Engine }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descOccupancy, descCapacity, descClamped, descCorrected, descCrossings, descOnline, descLastSeen} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	if c.engine == nil {
		return
	}
	s := c.engine.Snapshot()
	for _, z := range s.Zones {
		ch <- prometheus.MustNewConstMetric(descOccupancy, prometheus.GaugeValue, float64(z.Occupancy), z.ID)
		ch <- prometheus.MustNewConstMetric(descCapacity, prometheus.GaugeValue, float64(z.Capacity), z.ID)
		ch <- prometheus.MustNewConstMetric(descClamped, prometheus.CounterValue, float64(z.Clamped), z.ID)
		ch <- prometheus.MustNewConstMetric(descCorrected, prometheus.CounterValue, float64(z.Corrected), z.ID)
	}
	for _, d := range s.Doors {
		ch <- prometheus.MustNewConstMetric(descCrossings, prometheus.CounterValue, float64(d.In), d.ID, "in")
		ch <- prometheus.MustNewConstMetric(descCrossings, prometheus.CounterValue, float64(d.Out), d.ID, "out")
	}
	now := time.Now()
	for _, d := range s.Devices {
		online := 0.0
		if d.Online && (d.LastSeen == nil || now.Sub(*d.LastSeen) < c.engine.OfflineAfter(d.ID)) {
			online = 1
		}
		ch <- prometheus.MustNewConstMetric(descOnline, prometheus.GaugeValue, online, d.ID)
		if d.LastSeen != nil {
			ch <- prometheus.MustNewConstMetric(descLastSeen, prometheus.GaugeValue, float64(d.LastSeen.UnixNano())/1e9, d.ID)
		}
	}
}
