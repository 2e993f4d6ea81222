package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/storage"
	"github.com/crowdwatch/crowdwatch/web"
	"github.com/crowdwatch/crowdwatch/web/assets"
	"github.com/crowdwatch/crowdwatch/web/auth"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

// webSide is sign-in (its file open) and the live feed (dashboard, guidance screens,
// guidance on MQTT).
type webSide struct {
	store *auth.Store
	authz *auth.Authorizer
	live  *web.Live
	run   runner
	// share passes this instance's sessions to the others, with HA (app/hasessions.go).
	share    *sessionShare
	shareRun runner
}

// newWeb opens the sign-in file, builds sign-in and the live feed. events gets refused
// sign-ins and tokens (nil: Discard).
func newWeb(cfg *configs.Config, model *zones.Model, engine zones.Source, alerts web.AlertSource, admissions web.AdmissionSource,
	plans func() []configs.EventPlan, pub web.Publisher, topics ingest.Topics, events security.Sink, log *slog.Logger) (*webSide, error) {
	store, err := auth.OpenStore(cfg.AuthPath(), auth.StoreOptions{AuditRetention: cfg.Auth.AuditRetention,
		Log: log.With("component", "auth")})
	if err != nil {
		return nil, err
	}
	authz, err := auth.New(cfg.Auth, auth.Options{Secure: cfg.HTTP.TLS.CertFile != "", Store: store, Events: events})
	if err != nil {
		store.Close()
		return nil, err
	}
	switch {
	case !authz.Enabled():
		log.Warn("http: no users or tokens configured: reads are open to anyone who can reach http.listen, " +
			"and security actions (correction, acknowledge, evacuation) are refused; add auth.users (docs/config.md)")
	case !authz.HasUsers():
		log.Warn("http: no users configured: security actions (correction, acknowledge, evacuation) are refused; add auth.users (docs/config.md)")
	default:
		log.Info("http: sign-in required", "users", len(cfg.Auth.Users), "tokens", len(cfg.Auth.Tokens))
	}
	cat, err := assets.Messages()
	if err != nil {
		store.Close()
		return nil, err
	}
	live := web.NewLive(liveOptions(cfg, model, engine, alerts, admissions, plans, pub, topics, cat, log))
	return &webSide{store: store, authz: authz, live: live}, nil
}

// liveOptions are the live feed's inputs: the store file's layout (site, zones, floors,
// screens, signage) with the engine's model, its sources (the snapshots with the capacities
// in force, the alerts, the door meter's admissions, the plans known now), and
// http.live_interval and http.feed.
func liveOptions(cfg *configs.Config, model *zones.Model, engine zones.Source, alerts web.AlertSource, admissions web.AdmissionSource,
	plans func() []configs.EventPlan, pub web.Publisher, topics ingest.Topics, cat guidance.Catalogue, log *slog.Logger) web.LiveOptions {
	return web.LiveOptions{
		Layout: web.LayoutOf(cfg, model),
		Engine: engine, Alerts: alerts, Publisher: pub,
		GuidanceTopic: topics.Guidance, Admissions: admissions, Plans: plans,
		Catalogue: cat, Interval: cfg.HTTP.LiveInterval, Log: log.With("component", "live"),
		Limits: web.FeedLimits{PerPrincipal: cfg.HTTP.Feed.MaxPerUser, PerAddress: cfg.HTTP.Feed.MaxPerAddress, Total: cfg.HTTP.Feed.MaxTotal},
	}
}

func (w *webSide) startLive() {
	w.run.start(func(ctx context.Context) error { w.live.Run(ctx); return nil })
	if w.share != nil {
		w.shareRun.start(w.share.run)
	}
}

// stopLive closes the feed's clients with "going away".
func (w *webSide) stopLive(ctx context.Context) error {
	if w == nil {
		return nil
	}
	return errors.Join(w.run.stop(ctx), w.shareRun.stop(ctx))
}

// closeStore closes the sign-in file, once HTTP has stopped: handlers append to its audit log.
func (w *webSide) closeStore() error {
	if w == nil {
		return nil
	}
	if err := w.store.Close(); err != nil {
		return fmt.Errorf("auth: closing the sign-in file: %w", err)
	}
	return nil
}

// httpSide serves the API, the dashboard and the feed's upgrades on the listener New bound.
type httpSide struct {
	ln      net.Listener
	handler http.Handler
	log     *slog.Logger
	run     runner
}

func (h *httpSide) start() {
	h.run.start(func(ctx context.Context) error { return web.Serve(ctx, h.ln, h.handler, h.log) })
}

func (h *httpSide) stop(ctx context.Context) error {
	if h == nil {
		return nil
	}
	return h.run.stop(ctx)
}

// listenHTTP binds http.listen, in TLS when http.tls is set.
func listenHTTP(cfg *configs.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.HTTP.Listen)
	if err != nil {
		return nil, fmt.Errorf("http: cannot listen on %s: %w", cfg.HTTP.Listen, err)
	}
	if cfg.HTTP.TLS.CertFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLS.CertFile, cfg.HTTP.TLS.KeyFile)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("http.tls: cannot load the certificate and key: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// serviceBackups serves GET /api/v1/backup from the running service's open files.
type serviceBackups struct {
	store       *zones.Store
	alerts      *alerting.Manager
	auth        *auth.Store
	historyPath string
	eventsPath  string
}

func (b *serviceBackups) Backup(ctx context.Context, file string, start func(int64) io.Writer) (int64, error) {
	switch file {
	case "occupancy":
		return b.store.Backup(start)
	case "alerts":
		return b.alerts.Backup(start)
	case "history":
		return history.Backup(b.historyPath, 5*time.Second, start)
	case "auth":
		return b.auth.Backup(ctx, start)
	case "events":
		return storage.BackupFile(b.eventsPath, 5*time.Second, start)
	}
	return 0, fmt.Errorf("no file %q (one of %v)", file, web.BackupFiles)
}
