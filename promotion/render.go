package promotion

import (
	"encoding/csv"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
)

func intOr(p *int) string {
	if p == nil {
		return "–"
	}
	return strconv.Itoa(*p)
}

// WriteAssessment prints the assessment as a table, warnings below it.
func WriteAssessment(w io.Writer, a *Assessment) error {
	fmt.Fprintf(w, "Capacity assessment: density limit = area × %g persons/m²; egress limit = exit width without the widest × %g persons/m/min (stairs %g) × (%gs target − %gs pre-movement)\n",
		a.DensityPerM2, a.FlowPerMetre, a.StairsFlow, a.TargetS, a.PreMovementS)
	if a.Event != "" {
		fmt.Fprintf(w, "Event capacities of plan %s beside the everyday ones.\n", a.Event)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "zone\tcapacity\tevent\tarea m²\tdensity limit\texits m\tusable m\tegress limit\tlimit\t")
	for _, z := range a.Zones {
		area := "–"
		if z.AreaM2 > 0 {
			area = strconv.FormatFloat(z.AreaM2, 'f', -1, 64)
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%g\t%g\t%s\t%s\t\n", z.Zone, z.Capacity, intOr(z.Event), area, intOr(z.Density), z.ExitsM, z.UsableM, intOr(z.Egress), intOr(z.Limit))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if a.Warnings == 0 {
		_, err := fmt.Fprintln(w, "No warnings: every capacity is within both limits.")
		return err
	}
	for _, z := range a.Zones {
		for _, m := range z.Warnings {
			fmt.Fprintf(w, "WARNING %s: %s\n", z.Zone, m)
		}
	}
	return nil
}

func rangeText(r *Range) string {
	if r == nil {
		return "–"
	}
	return fmt.Sprintf("%.0f (%.0f–%.0f)", r.Expected, r.Low, r.High)
}

// WritePlan prints the forecast and the roster.
func WritePlan(w io.Writer, p Plan, f *Forecast, r *Roster, loc *time.Location) error {
	fmt.Fprintf(w, "Plan %s (%s): %s to %s, doors open %s\n", p.ID, p.Name, p.Start.In(loc).Format("2006-01-02 15:04"),
		p.End.In(loc).Format("2006-01-02 15:04"), p.DoorsOpen.In(loc).Format("15:04"))
	switch f.Basis {
	case "none":
		fmt.Fprintln(w, "Forecast: nothing recorded on comparable days; the roster staffs for the capacities in force.")
	default:
		fmt.Fprintf(w, "Forecast from %s (%s), × %g; expected (least–most)\n", f.Basis, strings.Join(f.Days, ", "), f.Scale)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "zone\tcapacity in force\texpected peak\t")
	for _, z := range f.Zones {
		fmt.Fprintf(tw, "%s\t%d\t%s\t\n", z.Zone, z.Capacity, rangeText(z.Peak))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"half hour", "arrivals"}
	for _, z := range r.Zones {
		head = append(head, z.Zone+" staff")
	}
	head = append(head, "total staff")
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for i, s := range f.Slots {
		row := []string{s.In(loc).Format("15:04"), rangeText(f.Arrivals[i])}
		for _, z := range r.Zones {
			row = append(row, strconv.Itoa(z.Staff[i]))
		}
		row = append(row, strconv.Itoa(r.Total[i]))
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nStaffing rules: %d per entrance, %d per exit, %d per metered queue, one more per %d expected (high end).\n",
		r.Rules.EntrancePosts, r.Rules.ExitPosts, r.Rules.QueuePosts, r.Rules.PeoplePerStaff)
	for _, z := range r.Zones {
		fmt.Fprintf(w, "  %s: %d fixed (entrances %v, exits %v, queues %v)\n", z.Zone, z.Fixed, z.Entrances, z.Exits, z.Queues)
	}
	return nil
}

func secs(s float64) string { return (time.Duration(s) * time.Second).String() }

func peakText(p *int64) string {
	if p == nil {
		return "–"
	}
	return strconv.FormatInt(*p, 10)
}

func pct(p *float64) string {
	if p == nil {
		return "–"
	}
	return fmt.Sprintf("%+.0f%%", *p)
}

// WriteReviewMarkdown prints the review, the previous event's figures after the event's.
func WriteReviewMarkdown(w io.Writer, rv *Review, loc *time.Location) error {
	var b strings.Builder
	writeEventMarkdown(&b, &rv.EventReview, loc, "")
	if rv.Previous != nil {
		writeEventMarkdown(&b, rv.Previous, loc, "Previous event of the kind: ")
	} else {
		b.WriteString("\nNo earlier event of this kind to compare with.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeEventMarkdown(b *strings.Builder, e *EventReview, loc *time.Location, prefix string) {
	p := e.Event
	fmt.Fprintf(b, "# %sReview of %s (%s)\n\n%s to %s, doors open %s. Forecast basis: %s", prefix, p.Name, p.ID,
		p.Start.In(loc).Format("2006-01-02 15:04"), p.End.In(loc).Format("2006-01-02 15:04"), p.DoorsOpen.In(loc).Format("15:04"), e.Basis)
	if len(e.Days) > 0 {
		fmt.Fprintf(b, " (%s)", strings.Join(e.Days, ", "))
	}
	b.WriteString(".\n\n## Zones: forecast against actual\n\n| zone | capacity in force | forecast peak | actual peak | at | % of capacity | error | within range |")
	for l := levels.Busy; l <= levels.Evacuate; l++ {
		fmt.Fprintf(b, " at or above %s |", l)
	}
	b.WriteString("\n|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, z := range e.Zones {
		at, ratio, within := "–", "–", "–"
		if z.PeakAt != nil {
			at = z.PeakAt.In(loc).Format("15:04")
		}
		if z.PeakRatio != nil {
			ratio = fmt.Sprintf("%.0f%%", *z.PeakRatio*100)
		}
		if z.WithinRange != nil {
			within = map[bool]string{true: "yes", false: "no"}[*z.WithinRange]
		}
		fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s | %s | %s |", z.Zone, z.Capacity, rangeText(z.ForecastPeak), peakText(z.Peak), at, ratio, pct(z.ErrorPct), within)
		for l := levels.Busy; l <= levels.Evacuate; l++ {
			fmt.Fprintf(b, " %s |", secs(z.SecondsAtOrAbove[l.String()]))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n## Metered doors\n\n")
	if len(e.Metering) == 0 {
		b.WriteString("No door held people back.\n")
	} else {
		b.WriteString("| door | episodes | held (wait shown) | admitted | longest queue | longest wait | mean wait |\n|---|---|---|---|---|---|---|\n")
		for _, d := range e.Metering {
			fmt.Fprintf(b, "| %s | %d | %s | %d | %d | %s | %s |\n", d.Door, len(d.Episodes), secs(d.HeldS), d.Admitted, d.QueueMax, secs(d.WaitMaxS), secs(d.WaitMeanS))
		}
	}
	b.WriteString("\n## Alerts\n\n")
	if e.Alerts == nil {
		b.WriteString("Alert history is not available.\n")
	} else {
		fmt.Fprintf(b, "%d fired, %d acknowledged, %d resolved.\n\n", e.Alerts.Fired, e.Alerts.Acknowledged, e.Alerts.Resolved)
		if len(e.Alerts.Alerts) > 0 {
			b.WriteString("| fired | zone | alert | acknowledged by | time to acknowledge | time to resolve |\n|---|---|---|---|---|---|\n")
			for _, a := range e.Alerts.Alerts {
				ack, res := "–", "–"
				if a.AckS != nil {
					ack = secs(*a.AckS)
				}
				if a.ResolveS != nil {
					res = secs(*a.ResolveS)
				}
				kind := a.Kind
				if a.Level != 0 {
					kind += " " + a.Level.String()
				}
				fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", a.FiredAt.In(loc).Format("15:04:05"), a.Zone, kind, a.AckBy, ack, res)
			}
		}
	}
	b.WriteString("\n## Drills\n\n")
	if len(e.Drills) == 0 {
		b.WriteString("No drill during the event.\n")
	} else {
		b.WriteString("| started | by | zones | estimate | slowest zone empty after | over the estimate | not empty |\n|---|---|---|---|---|---|---|\n")
		for _, d := range e.Drills {
			slow, over := "–", "–"
			if d.SlowestS != nil {
				slow = secs(*d.SlowestS)
			}
			if d.OverBy != nil {
				over = secs(*d.OverBy)
			}
			fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", d.StartedAt.In(loc).Format("15:04:05"), d.By, strings.Join(d.Zones, ", "),
				secs(d.EstimateS), slow, over, strings.Join(d.NotCleared, ", "))
		}
	}
	for _, n := range e.Notes {
		fmt.Fprintf(b, "\nNote: %s\n", n)
	}
	b.WriteString("\n")
}

// WriteReviewCSV prints the review as rows of event, section, subject, figure, value.
func WriteReviewCSV(w io.Writer, rv *Review) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"event", "section", "subject", "figure", "value"})
	for _, e := range []*EventReview{&rv.EventReview, rv.Previous} {
		if e == nil {
			continue
		}
		id := e.Event.ID
		row := func(section, subject, figure, value string) {
			_ = cw.Write([]string{id, section, subject, figure, value})
		}
		for _, z := range e.Zones {
			row("zone", z.Zone, "capacity", strconv.Itoa(z.Capacity))
			if z.ForecastPeak != nil {
				row("zone", z.Zone, "forecast_peak", num(z.ForecastPeak.Expected))
				row("zone", z.Zone, "forecast_peak_low", num(z.ForecastPeak.Low))
				row("zone", z.Zone, "forecast_peak_high", num(z.ForecastPeak.High))
			}
			if z.Peak != nil {
				row("zone", z.Zone, "peak", strconv.FormatInt(*z.Peak, 10))
			}
			if z.PeakAt != nil {
				row("zone", z.Zone, "peak_at", z.PeakAt.Format(time.RFC3339))
			}
			for _, l := range slices.Sorted(maps.Keys(z.SecondsAtOrAbove)) {
				row("zone", z.Zone, "seconds_at_or_above_"+l, num(z.SecondsAtOrAbove[l]))
			}
		}
		for _, d := range e.Metering {
			row("metering", d.Door, "episodes", strconv.Itoa(len(d.Episodes)))
			row("metering", d.Door, "held_s", num(d.HeldS))
			row("metering", d.Door, "admitted", strconv.Itoa(d.Admitted))
			row("metering", d.Door, "queue_max", strconv.Itoa(d.QueueMax))
			row("metering", d.Door, "wait_max_s", num(d.WaitMaxS))
			row("metering", d.Door, "wait_mean_s", num(d.WaitMeanS))
		}
		if e.Alerts != nil {
			for _, a := range e.Alerts.Alerts {
				row("alert", a.ID, "fired_at", a.FiredAt.Format(time.RFC3339))
				if a.AckS != nil {
					row("alert", a.ID, "ack_s", num(*a.AckS))
				}
				if a.ResolveS != nil {
					row("alert", a.ID, "resolve_s", num(*a.ResolveS))
				}
			}
		}
		for _, d := range e.Drills {
			row("drill", d.ID, "estimate_s", num(d.EstimateS))
			for _, z := range slices.Sorted(maps.Keys(d.ClearedS)) {
				row("drill", d.ID, "cleared_s_"+z, num(d.ClearedS[z]))
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }
