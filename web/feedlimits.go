package web

import "github.com/prometheus/client_golang/prometheus"

// Admission to the live feed: the limits Run checks before a connection is upgraded
// (docs/security.md, "Live feed connections").

// FeedLimits bound the live feed's connections: per signed-in user or token, per remote
// host, and in all. Zero means the default.
type FeedLimits struct {
	PerPrincipal int // default 20
	PerAddress   int // default 50
	Total        int // default 1000
}

// Default feed limits (docs/security.md).
const (
	DefaultFeedPerPrincipal = 20
	DefaultFeedPerAddress   = 50
	DefaultFeedTotal        = 1000
)

// Why the feed refuses a connection: the label of crowdwatch_http_feed_refused_total.
const (
	refusedPerPrincipal = "per_principal"
	refusedPerAddress   = "per_address"
	refusedTotal        = "total"
)

// admissions counts the clients per principal and per host. Only Run touches it.
type admissions struct {
	limits  FeedLimits
	perWho  map[string]int
	perHost map[string]int
	total   int
}

func (a *admissions) admit(c *client) string {
	switch {
	case a.total >= a.limits.Total:
		return refusedTotal
	case c.principal != "" && a.perWho[c.principal] >= a.limits.PerPrincipal:
		return refusedPerPrincipal
	case a.perHost[c.host] >= a.limits.PerAddress:
		return refusedPerAddress
	}
	a.total++
	if c.principal != "" {
		a.perWho[c.principal]++
	}
	a.perHost[c.host]++
	return ""
}

func (a *admissions) release(c *client) {
	a.total--
	if c.principal != "" {
		if a.perWho[c.principal]--; a.perWho[c.principal] <= 0 {
			delete(a.perWho, c.principal)
		}
	}
	if a.perHost[c.host]--; a.perHost[c.host] <= 0 {
		delete(a.perHost, c.host)
	}
}

func (l *Live) registerMetrics(reg prometheus.Registerer) {
	reg.MustRegister(l.refused, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "crowdwatch_http_feed_connections",
		Help: "Live feed (WebSocket) connections open now."}, func() float64 { return float64(l.clients.Load()) }))
}

func (f FeedLimits) withDefaults() FeedLimits {
	if f.PerPrincipal <= 0 {
		f.PerPrincipal = DefaultFeedPerPrincipal
	}
	if f.PerAddress <= 0 {
		f.PerAddress = DefaultFeedPerAddress
	}
	if f.Total <= 0 {
		f.Total = DefaultFeedTotal
	}
	return f
}

func newRefusedCounter() *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "crowdwatch_http_feed_refused_total",
		Help: "Live feed (WebSocket) connections refused by a limit (per_principal, per_address, total)."}, []string{"limit"})
	for _, why := range []string{refusedPerPrincipal, refusedPerAddress, refusedTotal} {
		c.WithLabelValues(why)
	}
	return c
}
