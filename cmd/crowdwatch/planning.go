package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/history"
	"github.com/crowdwatch/crowdwatch/promotion"
)

// newAssessCmd is `crowdwatch assess`: the capacity assessment of the store file's zones.
func newAssessCmd() *cobra.Command {
	var configPath, event, format string
	cmd := &cobra.Command{
		Use:   "assess --config FILE [--event ID] [--format text|json]",
		Short: "Assess each zone's capacity against its area and its exits",
		Long: `Print each zone's density limit (area × assessment.density_per_m2) and egress limit
(exit width with the widest exit removed × alerting.evacuation.flow_per_metre × (target −
pre_movement)) beside its configured capacity, and warn where the capacity, or the event
capacity of --event, exceeds either (docs/events.md). The exit status is 0 either way: the
warnings are for the person planning, not for a script.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, sched, err := loadPlans(configPath)
			if err != nil {
				return err
			}
			var plan *configs.EventPlan
			if event != "" {
				p, ok := sched.Plan(event)
				if !ok {
					return fmt.Errorf("no event plan %q in %s or its events file", event, configPath)
				}
				plan = &p.EventPlan
			}
			a := promotion.Assess(cfg, plan)
			if format == "json" {
				return writeJSONOut(cmd, a)
			}
			return promotion.WriteAssessment(cmd.OutOrStdout(), a)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "store file (YAML)")
	cmd.Flags().StringVar(&event, "event", "", "assess this event plan's capacities too")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	return cmd
}

// newPlanCmd is `crowdwatch plan`: the forecast and staffing roster of an event plan.
func newPlanCmd() *cobra.Command {
	var (
		configPath, event, format string
		timeout                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "plan --config FILE [--event ID] [--format text|json]",
		Short: "Print an event plan's forecast and staffing roster from the history of comparable days",
		Long: `Forecast the expected arrivals per half hour and each zone's expected peak, with the range
of the comparable days (earlier events of the plan's kind, else the same weekday of the
staffing.weeks weeks before), times the plan's forecast_scale; and the staff needed per zone
and half hour by the staffing rules. Without --event, the next plan (or the running one).
The history file is read-only and shared with a running service.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, sched, err := loadPlans(configPath)
			if err != nil {
				return err
			}
			p, err := choosePlan(sched, event, time.Now())
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			var h promotion.SeriesReader
			if _, err := os.Stat(cfg.HistoryPath()); err == nil {
				site := history.SiteFromConfig(cfg)
				h = history.NewReader(cfg.HistoryPath(), &site, timeout)
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "no history file at %s: the roster staffs for the capacities in force\n", cfg.HistoryPath())
			}
			dp, err := promotion.MakeDayPlan(ctx, cfg, sched, h, p)
			if err != nil {
				return err
			}
			if format == "json" {
				return writeJSONOut(cmd, dp)
			}
			return promotion.WritePlan(cmd.OutOrStdout(), dp.Plan, dp.Forecast, dp.Roster, cfg.Location)
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "store file (YAML)")
	cmd.Flags().StringVar(&event, "event", "", "the event plan (default: the running or next one)")
	cmd.Flags().StringVar(&format, "format", "text", "text or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "give up when the history file stays busy this long")
	return cmd
}

func loadPlans(path string) (*configs.Config, *promotion.Schedule, error) {
	if path == "" {
		return nil, nil, errors.New("give --config (the store file)")
	}
	cfg, err := configs.Load(path, nil)
	if err != nil {
		return nil, nil, err
	}
	sched, err := promotion.LoadSchedule(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, sched, nil
}

// choosePlan is the plan id, or the one running at now, or the next one.
func choosePlan(sched *promotion.Schedule, id string, now time.Time) (promotion.Plan, error) {
	if id != "" {
		p, ok := sched.Plan(id)
		if !ok {
			return promotion.Plan{}, fmt.Errorf("no event plan %q", id)
		}
		return p, nil
	}
	if p := sched.Running(now); p != nil {
		return *p, nil
	}
	for _, p := range sched.Plans() {
		if p.Start.After(now) {
			return p, nil
		}
	}
	return promotion.Plan{}, errors.New("no event plan is running or ahead: give --event ID")
}

func writeJSONOut(cmd *cobra.Command, v any) error {
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
