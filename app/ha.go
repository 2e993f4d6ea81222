package app

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ha"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/web"
	"github.com/crowdwatch/crowdwatch/zones"
)

// haSide is the instance's part in a store run as several instances (ha.enabled,
// docs/ha.md): the etcd client, the coordinator (role and term) and the operator action
// log. Nothing reads the role yet: alerting and the commands are wired to it next.
type haSide struct {
	cli      *clientv3.Client
	coord    *ha.Coordinator
	actions  *ha.Log
	coordRun runner
	logRun   runner
	lateRun  runner
	againRun runner
	pruneRun runner
	x        *actions // the operator actions' handler and the API's adapters (haactions.go)
}

// newHA builds the HA side, or nil with ha.enabled off. It connects lazily: an etcd that
// is down at start makes the instance degraded, not refused.
func newHA(cfg *configs.Config, log *slog.Logger) (_ *haSide, err error) {
	if !cfg.HA.Enabled {
		return nil, nil
	}
	instance := haInstance(cfg)
	if instance == "" {
		return nil, errors.New("ha: ha.instance is empty and the host name is unknown")
	}
	log = log.With("component", "ha", "instance", instance)
	h := &haSide{x: newActions(instance, log)}
	if h.cli, err = clientv3.New(clientv3.Config{Endpoints: cfg.HA.Endpoints, DialTimeout: 5 * time.Second,
		Username: cfg.HA.Username, Password: cfg.HA.Password, Logger: zap.NewNop()}); err != nil {
		return nil, fmt.Errorf("ha: etcd client for %v: %w", cfg.HA.Endpoints, err)
	}
	keys := ha.KeysFor(cfg.HA.Prefix, cfg.Site.ID)
	if h.coord, err = ha.New(h.cli, ha.Options{Keys: keys, Instance: instance, Failover: cfg.HA.Failover, Logger: log}); err != nil {
		_ = h.cli.Close()
		return nil, err
	}
	if h.actions, err = ha.OpenLog(h.cli, ha.LogOptions{Keys: keys, Instance: instance, Site: cfg.Site.ID,
		StatePath: cfg.HAStatePath(), Logger: log, Apply: h.x.apply,
		Snapshot: h.x.snapshot, Restore: h.x.restore}); err != nil {
		_ = h.cli.Close()
		return nil, err
	}
	return h, nil
}

// wire gives the action handler the components it applies actions to (before start).
func (h *haSide) wire(alerts *alerting.Manager, engine *zones.Engine, plans *promotion.Service) {
	if h == nil {
		return
	}
	h.x.alerts, h.x.engine, h.x.plans, h.x.appendf = alerts, engine, plans, h.actions.Append
}

// promotion is the event plans as the API uses them: their changes through the log with HA.
func (h *haSide) promotion(p *promotion.Service) web.Promotion {
	if h == nil {
		return p
	}
	return haPromotion{Promotion: p, x: h.x}
}

// alerting is the alert manager as the API uses it: its commands through the log with HA.
func (h *haSide) alerting(m *alerting.Manager) web.Alerting {
	if h == nil {
		return m
	}
	return haAlerting{Manager: m, x: h.x}
}

// drills is the drill commands as the API uses them: through the log with HA.
func (h *haSide) drills(m *alerting.Manager) web.Drills {
	if h == nil {
		return m
	}
	return haDrills{Manager: m, x: h.x}
}

// engine is the engine as the API uses it: corrections through the log with HA.
func (h *haSide) engine(e web.Engine) web.Engine {
	if h == nil {
		return e
	}
	return haEngine{Engine: e, x: h.x}
}

// lead makes the dispatcher send only as leader: degraded for longer than the failover
// time, it sends on its own, marked degraded (docs/ha.md, "Coordinator down").
func (h *haSide) lead(d *alerting.Dispatcher) {
	if h == nil {
		return
	}
	d.Lead(h.coord, h.coord.Failover())
}

func (h *haSide) start(retained *ingest.Retainer) {
	if h == nil {
		return
	}
	h.againRun.start(func(ctx context.Context) error {
		// On becoming leader, re-assert the retained topics at once: the screens and signs
		// get the new leader's state and term without waiting for a change or the interval.
		changed, unsubscribe := h.coord.Subscribe()
		defer unsubscribe()
		var led int64
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-changed:
			}
			if st := h.coord.Status(); st.Role == ha.Leader && st.Term != led {
				led = st.Term
				retained.Again()
			}
		}
	})
	h.pruneRun.start(func(ctx context.Context) error {
		// The leader deletes the sent records no takeover needs any more (ha.SentKeep), and
		// the action keys every live instance has applied (ha.PruneActions).
		tick := time.NewTicker(sentPruneEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
			if h.coord.Status().Role != ha.Leader {
				continue
			}
			pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			n, err := h.coord.PruneSent(pctx, time.Now())
			cancel()
			switch {
			case err != nil && !errors.Is(err, ha.ErrNotLeader):
				h.x.log.Warn("ha: pruning the sent records failed; next time", "error", err)
			case n > 0:
				h.x.log.Info("ha: old sent records deleted", "count", n)
			}
			// And the action keys every live instance has applied (ha.ActionsLive).
			pctx, cancel = context.WithTimeout(ctx, 30*time.Second)
			n, bound, err := h.coord.PruneActions(pctx, time.Now(), ha.PruneOptions{})
			cancel()
			switch {
			case err != nil && !errors.Is(err, ha.ErrNotLeader):
				h.x.log.Warn("ha: pruning the action keys failed; next time", "error", err)
			case n > 0:
				h.x.log.Info("ha: applied action keys deleted", "count", n, "at_or_below", bound)
			}
		}
	})
	h.coordRun.start(h.coord.Run)
	h.logRun.start(h.actions.Run)
	h.lateRun.start(h.x.retryLate)
}

// stopLog stops applying operator actions, before the components they are applied to stop:
// what arrives later is applied at the next start (the log catches up), rather than failing
// on a stopped component.
func (h *haSide) stopLog(ctx context.Context) error {
	if h == nil {
		return nil
	}
	return errors.Join(h.lateRun.stop(ctx), h.logRun.stop(ctx))
}

// stop resigns (a standby leads at once), stops the log, closes its file and the client.
func (h *haSide) stop(ctx context.Context) error {
	if h == nil {
		return nil
	}
	err := errors.Join(h.againRun.stop(ctx), h.pruneRun.stop(ctx), h.stopLog(ctx), h.coordRun.stop(ctx))
	if cerr := h.actions.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("ha: closing %w", cerr))
	}
	return errors.Join(err, h.cli.Close())
}

// sentPruneEvery is how often the leader looks for sent records to delete.
const sentPruneEvery = 10 * time.Minute

// haInstance is ha.instance, or the host name when it is empty ("" when that is unknown).
func haInstance(cfg *configs.Config) string {
	if cfg.HA.Instance != "" {
		return cfg.HA.Instance
	}
	name, _ := os.Hostname()
	return name
}

// haReport is GET /api/v1/ha and the "ha" of /readyz (docs/api.md).
type haReport struct {
	ha.Status
	Lag haLag `json:"lag"`
}

type haLag struct {
	// ActionsApplied is the revision of the last operator action applied here.
	ActionsApplied int64 `json:"actions_applied"`
	// ActionsPending counts actions in etcd not applied here yet; null when etcd did not answer.
	ActionsPending *int64 `json:"actions_pending"`
	Error          string `json:"error,omitempty"` // why the action log stopped, or etcd's error
}

// report is the instance's HA state; it asks etcd for the pending count, briefly.
func (h *haSide) report(ctx context.Context) any {
	r := haReport{Status: h.coord.Status(), Lag: haLag{ActionsApplied: h.actions.Applied()}}
	ctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if n, err := h.actions.Pending(ctx); err == nil {
		r.Lag.ActionsPending = &n
	} else {
		r.Lag.Error = err.Error()
	}
	if err := h.actions.Err(); err != nil {
		r.Lag.Error = err.Error()
	}
	return r
}

// haHandler is the web option: nil without HA.
func (h *haSide) handler() func(context.Context) any {
	if h == nil {
		return nil
	}
	return h.report
}

// leaderOnly publishes the service's retained topics (zones, guidance, service status) only
// while this instance leads, each JSON payload carrying the leader's term (docs/ha.md). What
// it drops as standby is not an error: the Retainer above it remembers the latest of each
// topic and re-asserts it once this instance leads.
type leaderOnly struct {
	mqttConn
	coord *ha.Coordinator
}

func (p leaderOnly) Publish(topic string, payload []byte, retain bool) error {
	st := p.coord.Status()
	if st.Role != ha.Leader || p.coord.Fence(st.Term) != nil {
		return nil
	}
	return p.mqttConn.Publish(topic, withTerm(payload, st.Term), retain)
}

// withTerm adds "term" to a JSON object payload; anything else is sent as it is.
func withTerm(payload []byte, term int64) []byte {
	b := bytes.TrimSpace(payload)
	if len(b) < 2 || b[0] != '{' {
		return payload
	}
	out := fmt.Appendf(nil, `{"term":%d`, term)
	if rest := bytes.TrimSpace(b[1:]); len(rest) > 0 && rest[0] != '}' {
		out = append(out, ',')
	}
	return append(out, b[1:]...)
}

// publisher is what the retained publishers send through: the connection itself on a
// single instance, the leader-only gate with HA.
func (h *haSide) publisher(c mqttConn) mqttConn {
	if h == nil {
		return c
	}
	return leaderOnly{mqttConn: c, coord: h.coord}
}
