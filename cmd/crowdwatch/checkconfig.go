package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/levels"
)

func newCheckConfigCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check-config FILE",
		Short: "Validate a store file and print what it describes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := configs.Load(args[0], nil)
			if err != nil {
				return err
			}
			// Zone thresholds merged over the defaults must stay ordered; only the merge shows it.
			if err := alerting.CheckLimits(cfg); err != nil {
				return fmt.Errorf("config %s: %w", args[0], err)
			}
			printSummary(cmd.OutOrStdout(), args[0], cfg)
			return nil
		},
	}
}

func printSummary(w io.Writer, path string, cfg *configs.Config) {
	fmt.Fprintf(w, "%s: ok\n", path)
	fmt.Fprintf(w, "site      %s (%s), time zone %s\n", cfg.Site.ID, cfg.Site.Name, cfg.Site.Timezone)
	fmt.Fprintf(w, "http      %s\n", cfg.HTTP.Listen)
	fmt.Fprintf(w, "storage   %s\n", cfg.Storage.Path)
	if cfg.MQTT.Broker != "" {
		fmt.Fprintf(w, "mqtt      external broker %s, topics %s...\n", cfg.MQTT.Broker, ingest.TopicsFor(cfg).Base())
	} else {
		access := fmt.Sprintf("%d accounts", len(cfg.MQTT.Embedded.Users))
		if len(cfg.MQTT.Embedded.Users) == 0 {
			access = "OPEN: no accounts, anyone who can reach it may publish"
		}
		e := cfg.MQTT.Embedded
		on := []string{}
		if e.Listen != "" {
			on = append(on, "plain TCP "+e.Listen)
		}
		if e.TLS.Listen != "" {
			tlsOn := "TLS " + e.TLS.Listen
			if e.TLS.ClientCAFile != "" {
				tlsOn += " with device certificates"
			}
			on = append(on, tlsOn)
		}
		fmt.Fprintf(w, "mqtt      embedded broker on %s (%s), topics %s...\n", strings.Join(on, " and "), access, ingest.TopicsFor(cfg).Base())
		fmt.Fprintf(w, "          limits: %d connections, %d per address, CONNECT within %s, wills up to %d bytes\n",
			e.MaxConnections, e.MaxConnectionsPerAddress, e.ConnectTimeout, e.MaxWillPayload)
	}
	for _, warning := range cfg.EmbeddedBrokerWarnings() {
		fmt.Fprintf(w, "WARNING   %s\n", warning)
	}
	if h, _, _ := cfg.Occupancy.ResetClock(); h < 0 {
		fmt.Fprintf(w, "reset     off (no daily reset)\n")
	} else {
		fmt.Fprintf(w, "reset     daily at %s, %s\n", cfg.Occupancy.DailyReset, cfg.Site.Timezone)
	}
	fmt.Fprintf(w, "zones     %d\n", len(cfg.Zones))
	children := map[string][]configs.Zone{}
	for _, z := range cfg.Zones {
		children[z.Parent] = append(children[z.Parent], z)
	}
	var walk func(parent string, depth int)
	walk = func(parent string, depth int) {
		for _, z := range children[parent] {
			area := ""
			if z.AreaM2 > 0 {
				area = fmt.Sprintf("  %.0f m²", z.AreaM2)
			}
			fmt.Fprintf(w, "  %-28s capacity %5d%s\n", strings.Repeat("  ", depth)+z.ID, z.Capacity, area)
			walk(z.ID, depth+1)
		}
	}
	walk("", 0)
	fmt.Fprintf(w, "doors     %d\n", len(cfg.Doors))
	for _, d := range cfg.Doors {
		counter := "no counter"
		if d.Counter.Device != "" {
			counter = fmt.Sprintf("%s line %s (%d-bit)", d.Counter.Device, d.Counter.Line, d.Counter.Width)
			if d.Counter.Reversed {
				counter += ", reversed"
			}
		}
		fmt.Fprintf(w, "  %-20s %s -> %s, %.1f m, %s\n", d.ID, d.From, d.To, d.WidthM, counter)
	}
	fmt.Fprintf(w, "sensors   %d\n", len(cfg.Sensors))
	for _, s := range cfg.Sensors {
		fmt.Fprintf(w, "  %-20s head count for %s\n", s.Device, s.Zone)
	}
	printDeviceSummary(w, cfg)
	printWebSummary(w, cfg) // floors, screens, sign-in: webside.go
	printAlertSummary(w, cfg)
}

func printAlertSummary(w io.Writer, cfg *configs.Config) {
	a := cfg.Alerting
	fmt.Fprintf(w, "alerting  %s; escalation every %s through %s; repeat %s\n", cfg.AlertsPath(), a.Escalation.After,
		strings.Join(a.Escalation.Groups, " -> "), a.RepeatInterval)
	for _, z := range cfg.Zones {
		l, err := alerting.ResolveLimits(z.Alerts, &a.Defaults)
		if err != nil {
			continue // Validate reported it
		}
		fmt.Fprintf(w, "  %-20s warning %.2f / %.1f/m² for %s, critical %.2f / %.1f/m² for %s, evacuate %.1f/m²", z.ID,
			l.Ratio[levels.Warning], l.Density[levels.Warning], l.For[levels.Warning],
			l.Ratio[levels.Critical], l.Density[levels.Critical], l.For[levels.Critical], l.Density[levels.Evacuate])
		if l.SurgePerMin > 0 {
			fmt.Fprintf(w, ", surge %.0f/min", l.SurgePerMin)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  playbook: %d store actions before the built-in ones, action texts in %s\n", len(a.Playbook.Actions), a.Playbook.Language)
	for _, r := range a.Playbook.Actions {
		what := r.Key
		if what == "" {
			what = fmt.Sprintf("%q", r.Text[a.Playbook.Language])
		}
		fmt.Fprintf(w, "    %s %s %s %s -> %s\n", cmpOr(r.Kind, "any kind"), cmpOr(r.Level, "any level"), cmpOr(r.Where, "anywhere"),
			cmpOr(strings.Join(r.Zones, ","), "any zone"), what)
	}
	if len(a.Channels) == 0 {
		fmt.Fprintln(w, "  no channels: alerts show on the dashboard and the API only")
	}
	for _, ch := range a.Channels {
		fmt.Fprintf(w, "  channel %-12s %s %s\n", ch.Name, ch.Type, ch.URL)
	}
	for _, r := range a.Routes {
		fmt.Fprintf(w, "  route -> %-12s group %q, from %s, zones %v, kinds %v\n", r.Channel, r.Group, cmpOr(r.MinSeverity, "info"), r.Zones, r.Kinds)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
