package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web/guidance"
	"github.com/crowdwatch/crowdwatch/zones"
)

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
