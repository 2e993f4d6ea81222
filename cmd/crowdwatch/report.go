package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/app"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
	"github.com/crowdwatch/crowdwatch/promotion"
)

// newReportCmd is `crowdwatch report`: the after-event report from the history file, read-only,
// while the service runs or not.
func newReportCmd() *cobra.Command {
	var (
		configPath, dbPath, site, from, to, date, format string
		cmpFrom, cmpTo                                   string
		event                                            string
		timeout                                          time.Duration
	)
	cmd := &cobra.Command{
		Use:   "report (--config FILE | --db FILE) (--date DAY | --from T --to T) [--format md|csv|json]",
		Short: "Print the crowd report of a day or period from the history file (works while the service runs)",
		Long: `Print the crowd report of a day or a period: per zone peak occupancy and when, time at
or above each level, entries, average visit, busiest hour, drift and corrections; visitors
through the outside doors; unusual half hours. With --compare-from and --compare-to, compare
the period (A) with another (B) zone by zone. With --event ID (and --config), the review of
that promotion instead: its forecast against the actual peaks, time at each level, alerts,
and the same for the previous event of its kind (docs/events.md). Peaks are judged against
the capacity in force when they were reached.

Times are in the site's time zone: a date (2026-11-11, midnight), a local time
(2026-11-11T10:00) or RFC 3339. The history file is opened read-only and shares it with a
running service, which writes to it every few seconds.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st *history.Site
			var alertsPath string
			var bands func(history.ZoneInfo) []history.Band
			var cfg *configs.Config
			var sched *promotion.Schedule
			if configPath != "" {
				var err error
				if cfg, err = configs.Load(configPath, nil); err != nil {
					return err
				}
				if sched, err = promotion.LoadSchedule(cfg); err != nil {
					return err
				}
				s := history.SiteFromConfig(cfg)
				st = &s
				alertsPath = cfg.AlertsPath()
				bands = app.BandsFromConfig(cfg)
				if dbPath == "" {
					dbPath = cfg.HistoryPath()
				}
			}
			if dbPath == "" {
				return errors.New("give --config (the store file) or --db (the history file)")
			}
			if format != "md" && format != "csv" && format != "json" {
				return fmt.Errorf("--format %q must be md, csv or json", format)
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			r := history.NewReader(dbPath, st, timeout)
			if alertsPath != "" {
				r.Events = alertFile(alertsPath)
				r.BandsOf = bands
			}
			if sched != nil {
				r.CapacityAt = func(zone string, at time.Time) int { c, _ := sched.Capacity(zone, at); return c }
			}
			out := cmd.OutOrStdout()
			if event != "" {
				if cfg == nil {
					return errors.New("--event needs --config (the store file holds the plans)")
				}
				if date != "" || from != "" || to != "" || cmpFrom != "" || cmpTo != "" {
					return errors.New("--event reviews the plan's own times: give no --date, --from, --to or --compare-*")
				}
				// The door metering and drill records are the running service's; the command
				// reviews what the history and alert files hold (GET /api/v1/events/{id}/review
				// has it all).
				rv, err := promotion.BuildReview(ctx, cfg, sched, r, nil, event)
				if err != nil {
					return err
				}
				return writeOut(out, format, rv, func() error { return promotion.WriteReviewCSV(out, rv) },
					func() error { return promotion.WriteReviewMarkdown(out, rv, cfg.Location) })
			}
			s, err := r.Site(ctx)
			if err != nil {
				return err
			}
			if site != "" && s.ID != site {
				return fmt.Errorf("%s is the history of site %q, not %q", dbPath, s.ID, site)
			}
			a, b, err := period(date, from, to, s.Loc)
			if err != nil {
				return err
			}
			if cmpFrom != "" || cmpTo != "" {
				ca, cb, err := period("", cmpFrom, cmpTo, s.Loc)
				if err != nil {
					return fmt.Errorf("compare: %w", err)
				}
				c, err := r.Compare(ctx, a, b, ca, cb)
				if err != nil {
					return err
				}
				return writeOut(out, format, c, func() error { return history.WriteComparisonCSV(out, c) },
					func() error { return history.WriteComparisonMarkdown(out, c) })
			}
			rep, err := r.Report(ctx, a, b)
			if err != nil {
				return err
			}
			return writeOut(out, format, rep, func() error { return history.WriteReportCSV(out, rep) },
				func() error { return history.WriteReportMarkdown(out, rep) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&configPath, "config", "", "store file (YAML); the history file is history.path or beside storage.path")
	f.StringVar(&dbPath, "db", "", "history file (overrides the one the store file names)")
	f.StringVar(&site, "site", "", "refuse a history file of another site")
	f.StringVar(&date, "date", "", "one local day, YYYY-MM-DD")
	f.StringVar(&from, "from", "", "start of the period")
	f.StringVar(&to, "to", "", "end of the period (exclusive)")
	f.StringVar(&cmpFrom, "compare-from", "", "start of a period B to compare with")
	f.StringVar(&cmpTo, "compare-to", "", "end of period B")
	f.StringVar(&format, "format", "md", "md, csv or json")
	f.StringVar(&event, "event", "", "review this event plan (needs --config)")
	f.DurationVar(&timeout, "timeout", 30*time.Second, "give up when the file stays busy this long")
	return cmd
}

// period reads --date or --from/--to.
func period(date, from, to string, loc *time.Location) (time.Time, time.Time, error) {
	if date != "" {
		if from != "" || to != "" {
			return time.Time{}, time.Time{}, errors.New("give --date or --from and --to, not both")
		}
		d, err := time.ParseInLocation(time.DateOnly, date, loc)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("--date %q must be YYYY-MM-DD", date)
		}
		return d, time.Date(d.Year(), d.Month(), d.Day()+1, 0, 0, 0, 0, loc), nil
	}
	if from == "" || to == "" {
		return time.Time{}, time.Time{}, errors.New("give --date, or --from and --to")
	}
	return history.Range(from, to, loc, time.Now(), 0)
}

func writeOut(w io.Writer, format string, v any, csv, md func() error) error {
	switch format {
	case "csv":
		return csv()
	case "md":
		return md()
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// alertFile reads alert history from the alert database. A running service holds that file
// exclusively, so while it runs the report says the alert section is not available and the
// service's own /api/v1/reports endpoints carry it.
type alertFile string

func (f alertFile) AlertEvents(from, to time.Time) ([]history.AlertEvent, error) {
	evs, err := alerting.ReadEvents(string(f), from, to)
	if err != nil {
		return nil, fmt.Errorf("%w (while the service runs, GET /api/v1/reports/daily includes the alerts)", err)
	}
	return app.HistoryEvents(evs), nil
}
