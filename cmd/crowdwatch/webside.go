package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/web"
	"github.com/crowdwatch/crowdwatch/web/assets"
	"github.com/crowdwatch/crowdwatch/web/auth"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

// startWeb opens the sign-in file, builds sign-in and starts the live feed (dashboard,
// guidance screens, guidance on MQTT). alerts may be nil until alerting is wired: levels then
// come from the built-in thresholds (levels.Instant). The feed's stop is added to stops;
// the caller closes the returned store after HTTP has stopped (handlers append to its audit
// log). events gets refused sign-ins and tokens (nil: Discard).
func startWeb(cfg *configs.Config, engine zones.Source, alerts web.AlertSource, pub web.Publisher, topics ingest.Topics,
	events security.Sink, log *slog.Logger, stops *[]func()) (*auth.Authorizer, *auth.Store, *web.Live, error) {
	store, err := auth.OpenStore(cfg.AuthPath(), auth.StoreOptions{AuditRetention: cfg.Auth.AuditRetention,
		Log: log.With("component", "auth")})
	if err != nil {
		return nil, nil, nil, err
	}
	authz, err := auth.New(cfg.Auth, auth.Options{Secure: cfg.HTTP.TLS.CertFile != "", Store: store, Events: events})
	if err != nil {
		store.Close()
		return nil, nil, nil, err
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
		return nil, nil, nil, err
	}
	var publisher web.Publisher
	if pub != nil {
		publisher = pub
	}
	live := web.NewLive(web.LiveOptions{Config: cfg, Engine: engine, Alerts: alerts, Publisher: publisher,
		GuidanceTopic: topics.Guidance,
		Catalogue:     cat, Interval: cfg.HTTP.LiveInterval, Log: log.With("component", "live"),
		Limits: web.FeedLimits{PerPrincipal: cfg.HTTP.Feed.MaxPerUser, PerAddress: cfg.HTTP.Feed.MaxPerAddress, Total: cfg.HTTP.Feed.MaxTotal}})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); live.Run(ctx) }()
	*stops = append(*stops, func() { stop(); <-done })
	return authz, store, live, nil
}

// listenTLS wraps the HTTP listener in TLS when http.tls is set.
func listenTLS(cfg *configs.Config, ln net.Listener) (net.Listener, error) {
	if cfg.HTTP.TLS.CertFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLS.CertFile, cfg.HTTP.TLS.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("http.tls: cannot load the certificate and key: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
}

// printWebSummary is check-config's account of the floors, screens and sign-in.
func printWebSummary(w io.Writer, cfg *configs.Config) {
	fmt.Fprintf(w, "floors    %d\n", len(cfg.Floors))
	for _, f := range cfg.Floors {
		var zs []string
		for _, z := range f.Zones {
			zs = append(zs, z.Zone)
		}
		plan := ""
		if f.Plan != "" {
			plan = ", plan " + f.Plan
		}
		fmt.Fprintf(w, "  %-20s %s%s\n", f.ID, strings.Join(zs, " "), plan)
	}
	fmt.Fprintf(w, "screens   %d (hold %v, stale after %v)\n", len(cfg.Screens), cfg.Signage.Hold, cfg.Signage.StaleAfter)
	model := zones.NewModel(cfg)
	for _, s := range cfg.Screens {
		// What the screen judges: every zone a person passing it enters.
		r := guidance.RouteFor(s, model)
		var alts []string
		for i, a := range s.Alternatives {
			alts = append(alts, a.Zone+" "+a.Arrow+" (via "+strings.Join(r.Alternatives[i], ", ")+")")
		}
		at := ""
		if s.Door != "" {
			at = " at door " + s.Door
		}
		fmt.Fprintf(w, "  %-20s%s guards %s, alternatives [%s]\n", s.ID, at, strings.Join(r.Guards, " + "), strings.Join(alts, ", "))
	}
	switch {
	case len(cfg.Auth.Users) == 0 && len(cfg.Auth.Tokens) == 0:
		fmt.Fprintf(w, "sign-in   OFF: no users or tokens; reads are open and security actions are refused\n")
	case len(cfg.Auth.Users) == 0:
		fmt.Fprintf(w, "sign-in   %d tokens, no users: security actions are refused\n", len(cfg.Auth.Tokens))
	default:
		fmt.Fprintf(w, "sign-in   %d users, %d tokens\n", len(cfg.Auth.Users), len(cfg.Auth.Tokens))
	}
	fmt.Fprintf(w, "sessions  %s (sessions and the audit log, kept %v)\n", cfg.AuthPath(), cfg.Auth.AuditRetention)
	fmt.Fprintf(w, "feed      at most %d connections per user or token, %d per address, %d in all\n",
		cfg.HTTP.Feed.MaxPerUser, cfg.HTTP.Feed.MaxPerAddress, cfg.HTTP.Feed.MaxTotal)
	if cfg.HTTP.TLS.CertFile != "" {
		fmt.Fprintf(w, "https     certificate %s\n", cfg.HTTP.TLS.CertFile)
	}
}
