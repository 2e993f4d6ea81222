package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
	"github.com/crowdwatch/crowdwatch/zones"
)

// historySide is the history recorder on the engine's snapshots and the reader the API uses.
// A history that cannot be recorded is logged, not fatal: the live figures matter more than
// their history.
type historySide struct {
	reader *history.Reader
	rec    *history.Recorder // nil: not recorded
	path   string
	log    *slog.Logger
	run    runner
}

// newHistory builds the recorder and the reader. alerts is the alert manager, built (not yet
// run) before history: see New.
func newHistory(cfg *configs.Config, engine *zones.Engine, alerts *alerting.Manager, reg prometheus.Registerer, log *slog.Logger) *historySide {
	log = log.With("component", "history")
	site := history.SiteFromConfig(cfg)
	path := cfg.HistoryPath()
	rec, err := history.NewRecorder(engine, reg, history.Options{
		Path:           path,
		Site:           site,
		SampleInterval: cfg.History.SampleInterval,
		FlushInterval:  cfg.History.FlushInterval,
		BufferBytes:    cfg.History.BufferBytes,
		Retention: history.Retention{Raw: cfg.History.RetainRaw, Minute: cfg.History.RetainMinutes,
			Hour: cfg.History.RetainHours},
		Log:    log,
		Levels: historyAlerts{alerts},
	})
	reader := history.NewReader(path, &site, 5*time.Second)
	reader.DamagedBlocks = prometheus.NewCounter(prometheus.CounterOpts{Name: "crowdwatch_history_damaged_blocks_total",
		Help: "Stored history blocks that reads left out because they did not decode (each read that meets one counts it)."})
	reg.MustRegister(reader.DamagedBlocks)
	reader.Events = historyAlerts{alerts}
	reader.BandsOf = BandsFromConfig(cfg)
	if err != nil {
		log.Error("history: not recorded", "error", err)
		rec = nil
	}
	return &historySide{reader: reader, rec: rec, path: path, log: log}
}

func (h *historySide) start() {
	if h.rec == nil {
		return
	}
	h.run.start(func(ctx context.Context) error {
		if err := h.rec.Run(ctx); err != nil && ctx.Err() == nil {
			h.log.Error("history: the recorder stopped; live figures are not affected", "path", h.path, "error", err)
		}
		return nil
	})
}

// stop stops the recorder (after the engine, so that the last state is recorded).
func (h *historySide) stop(ctx context.Context) error {
	if h == nil {
		return nil
	}
	return h.run.stop(ctx)
}

// historyAlerts adapts the alert manager to what history reads from it (history.Levels and
// history.Events). history declares those in its own words so that it does not depend on
// alerting; the adapter binds nothing late, since the manager exists before history starts.
type historyAlerts struct{ m *alerting.Manager }

func (h historyAlerts) LevelView() history.LevelView {
	if st := h.m.Status(); st != nil {
		return st
	}
	return nil // not a typed nil: history falls back on its own levels
}

func (h historyAlerts) AlertEvents(from, to time.Time) ([]history.AlertEvent, error) {
	evs, err := h.m.Events(from, to)
	if err != nil {
		return nil, err
	}
	return HistoryEvents(evs), nil
}

// HistoryEvents are alert events as history's reports read them.
func HistoryEvents(evs []alerting.Event) []history.AlertEvent {
	out := make([]history.AlertEvent, len(evs))
	for i, e := range evs {
		out[i] = history.AlertEvent{At: e.At, AlertID: e.AlertID, Kind: string(e.Kind), Zone: e.Zone, What: e.What,
			Severity: string(e.Severity), Level: e.Level, By: e.By, Note: e.Note}
	}
	return out
}

// BandsFromConfig gives charts each zone's own level thresholds in persons, with its
// overrides (zones[].alerts) over alerting.defaults.
func BandsFromConfig(cfg *configs.Config) func(history.ZoneInfo) []history.Band {
	limits := map[string]alerting.Limits{}
	for _, z := range cfg.Zones {
		if l, err := alerting.ResolveLimits(z.Alerts, &cfg.Alerting.Defaults); err == nil {
			limits[z.ID] = l
		}
	}
	return func(z history.ZoneInfo) []history.Band {
		l, ok := limits[z.ID]
		if !ok {
			return history.DefaultBands(z.Capacity, z.AreaM2)
		}
		return history.Bands(l.Triggers, z.Capacity, z.AreaM2)
	}
}
