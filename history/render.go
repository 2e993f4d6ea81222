package history

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
)

// WriteSeriesCSV writes one row per zone and step.
func WriteSeriesCSV(w io.Writer, s *Series) error {
	cw := csv.NewWriter(w)
	head := []string{"zone", "start", "end", "capacity", "covered_s", "min", "max", "peak_at", "mean", "last", "level", "entries", "exits", "clamped", "corrected"}
	for l := range NumLevels {
		head = append(head, levels.Level(l).String()+"_s")
	}
	_ = cw.Write(head)
	for _, z := range s.Zones {
		for _, p := range z.Points {
			row := []string{z.Zone, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339), strconv.Itoa(cmp.Or(p.Capacity, z.Capacity)), num(p.CoveredS),
				optInt(p.Min), optInt(p.Max), optTime(p.PeakAt), optFloat(p.Mean), optInt(p.Last), optLevel(p.Level),
				strconv.FormatInt(p.Entries, 10), strconv.FormatInt(p.Exits, 10), strconv.FormatInt(p.Clamped, 10), strconv.FormatInt(p.Corrected, 10)}
			for l := range NumLevels {
				row = append(row, num(p.SecondsAt[levels.Level(l).String()]))
			}
			_ = cw.Write(row)
		}
	}
	cw.Flush()
	return cw.Error()
}

func num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

func optInt(p *int64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatInt(*p, 10)
}

func optFloat(p *float64) string {
	if p == nil {
		return ""
	}
	return strconv.FormatFloat(*p, 'f', 2, 64)
}

func optTime(p *time.Time) string {
	if p == nil {
		return ""
	}
	return p.Format(time.RFC3339)
}

func optLevel(p *levels.Level) string {
	if p == nil {
		return ""
	}
	return p.String()
}

func dur(s float64) string {
	d := time.Duration(s * float64(time.Second)).Round(time.Second)
	if d == 0 {
		return "0"
	}
	return d.String()
}

func optDur(p *float64) string {
	if p == nil {
		return "–"
	}
	return dur(*p)
}

var aboveLevels = []string{"busy", "warning", "critical", "evacuate"}

// WriteReportCSV writes one row per zone, then a row for the site.
func WriteReportCSV(w io.Writer, r *Report) error {
	cw := csv.NewWriter(w)
	head := []string{"zone", "from", "to", "capacity", "covered_s", "peak", "peak_at", "peak_ratio", "mean", "entries", "exits", "avg_visit_s", "busiest_hour", "busiest_hour_entries", "clamped", "corrected"}
	for _, l := range aboveLevels {
		head = append(head, "at_or_above_"+l+"_s")
	}
	_ = cw.Write(head)
	for _, z := range r.Zones {
		row := []string{z.Zone, r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), strconv.Itoa(z.Capacity), num(z.CoveredS),
			optInt(z.Peak), optTime(z.PeakAt), optFloat(z.PeakRatio), optFloat(z.Mean), strconv.FormatInt(z.Entries, 10),
			strconv.FormatInt(z.Exits, 10), optFloat(z.AvgVisitS), "", "", strconv.FormatInt(z.Clamped, 10), strconv.FormatInt(z.Corrected, 10)}
		if z.BusiestHour != nil {
			row[12], row[13] = z.BusiestHour.Start.Format(time.RFC3339), strconv.FormatInt(z.BusiestHour.Entries, 10)
		}
		for _, l := range aboveLevels {
			row = append(row, num(z.SecondsAtOrAbove[l]))
		}
		_ = cw.Write(row)
	}
	site := []string{"(site visitors)", r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), "", "", "", "", "", "",
		strconv.FormatInt(r.Visitors, 10), strconv.FormatInt(r.Departures, 10), "", "", "", "", ""}
	if r.BusiestHour != nil {
		site[12], site[13] = r.BusiestHour.Start.Format(time.RFC3339), strconv.FormatInt(r.BusiestHour.Entries, 10)
	}
	_ = cw.Write(append(site, "", "", "", ""))
	cw.Flush()
	return cw.Error()
}

// WriteReportMarkdown writes the report as a review document.
func WriteReportMarkdown(w io.Writer, r *Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Crowd report: %s\n\n", r.Site)
	fmt.Fprintf(&b, "%s to %s (%s).", r.From.Format("Mon 2006-01-02 15:04"), r.To.Format("Mon 2006-01-02 15:04"), r.TimeZone)
	if r.RecordedTo.Before(r.To) {
		fmt.Fprintf(&b, " History is recorded up to %s.", r.RecordedTo.Format("2006-01-02 15:04:05"))
	}
	if r.DamagedBlocks > 0 {
		fmt.Fprintf(&b, "\n\n**%d damaged block(s) of the history file were left out:** the hours they held show as not recorded, and the figures below miss them (see docs/operations.md).", r.DamagedBlocks)
	}
	fmt.Fprintf(&b, "\n\n**Visitors:** %d in, %d out through the outside doors.", r.Visitors, r.Departures)
	if r.BusiestHour != nil {
		fmt.Fprintf(&b, " Busiest hour: %s (%d visitors).", r.BusiestHour.Start.Format("15:04"), r.BusiestHour.Entries)
	}
	b.WriteString("\n\n## Zones\n\n")
	b.WriteString("| zone | capacity | peak | peak at | mean | entries | avg visit | busiest hour | busy+ | warning+ | critical+ | evacuate | drift (clamped) | corrected |\n")
	b.WriteString("|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n")
	for _, z := range r.Zones {
		peak, at := "–", "–"
		if z.Peak != nil {
			peak = strconv.FormatInt(*z.Peak, 10)
			if z.PeakRatio != nil {
				peak += fmt.Sprintf(" (%.0f%%)", *z.PeakRatio*100)
			}
			at = z.PeakAt.Format("01-02 15:04:05")
		}
		mean := "–"
		if z.Mean != nil {
			mean = fmt.Sprintf("%.1f", *z.Mean)
		}
		bh := "–"
		if z.BusiestHour != nil {
			bh = fmt.Sprintf("%s (%d)", z.BusiestHour.Start.Format("15:04"), z.BusiestHour.Entries)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %d | %d |\n", z.Zone, z.Capacity, peak, at, mean,
			z.Entries, optDur(z.AvgVisitS), bh, dur(z.SecondsAtOrAbove["busy"]), dur(z.SecondsAtOrAbove["warning"]),
			dur(z.SecondsAtOrAbove["critical"]), dur(z.SecondsAtOrAbove["evacuate"]), z.Clamped, z.Corrected)
	}
	b.WriteString("\n## Doors\n\n| door | from | to | in | out |\n|---|---|---|---:|---:|\n")
	for _, d := range r.Doors {
		fmt.Fprintf(&b, "| %s | %s | %s | %d | %d |\n", d.Door, d.From, d.To, d.In, d.Out)
	}
	b.WriteString("\n## Alerts\n\n")
	switch {
	case r.Alerts == nil:
		fmt.Fprintf(&b, "No alert data: %s.\n", r.AlertsNote)
	case r.Alerts.Fired == 0:
		b.WriteString("No alert fired.\n")
	default:
		a := r.Alerts
		fmt.Fprintf(&b, "%d fired, %d acknowledged (median %s, longest %s), %d resolved (median %s, longest %s).\n\n",
			a.Fired, a.Acknowledged, optDur(a.MedianAckS), optDur(a.MaxAckS), a.Resolved, optDur(a.MedianResolveS), optDur(a.MaxResolveS))
		b.WriteString("| alert | fired | acknowledged after | by | resolved after |\n|---|---|---:|---|---:|\n")
		for _, l := range a.Alerts {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", l.ID, l.FiredAt.Format("01-02 15:04:05"), optDur(l.AckS), l.AckBy, optDur(l.ResolveS))
		}
	}
	if len(r.Evacuations) > 0 {
		b.WriteString("\n## Evacuations\n\n| at | zone | what | by |\n|---|---|---|---|\n")
		for _, e := range r.Evacuations {
			zone := e.Zone
			if zone == "" {
				zone = "(whole site)"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", e.At.Format("01-02 15:04:05"), zone, e.What, e.By)
		}
	}
	b.WriteString("\n## Unusual traffic\n\n")
	if len(r.Unusual) == 0 {
		b.WriteString("No half hour far above the same weekday and time in past weeks.\n")
	} else {
		b.WriteString("| half hour | visitors | usual (median of past weeks) |\n|---|---:|---:|\n")
		for _, u := range r.Unusual {
			fmt.Fprintf(&b, "| %s | %d | %.1f (%d weeks) |\n", u.Start.Format("Mon 01-02 15:04"), u.Visitors, u.Baseline, u.Weeks)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteComparisonMarkdown writes two periods side by side.
func WriteComparisonMarkdown(w io.Writer, c *Comparison) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Comparison: %s\n\nA: %s to %s. B: %s to %s (%s).\n\n", c.A.Site,
		c.A.From.Format("2006-01-02 15:04"), c.A.To.Format("2006-01-02 15:04"), c.B.From.Format("2006-01-02 15:04"), c.B.To.Format("2006-01-02 15:04"), c.A.TimeZone)
	fmt.Fprintf(&b, "Visitors: A %.0f, B %.0f (%s).\n\n", c.Visitors.A, c.Visitors.B, pct(c.Visitors))
	b.WriteString("| zone | entries A | entries B | change | peak A | peak B | mean A | mean B | warning+ A | warning+ B | avg visit A | avg visit B |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, z := range c.Zones {
		fmt.Fprintf(&b, "| %s | %.0f | %.0f | %s | %.0f | %.0f | %.1f | %.1f | %s | %s | %s | %s |\n", z.Zone, z.Entries.A, z.Entries.B, pct(z.Entries),
			z.Peak.A, z.Peak.B, z.Mean.A, z.Mean.B, dur(z.WarningS.A), dur(z.WarningS.B), dur(z.AvgVisit.A), dur(z.AvgVisit.B))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func pct(d Delta) string {
	if d.Pct == nil {
		return "–"
	}
	return fmt.Sprintf("%+.1f%%", *d.Pct)
}

// WriteComparisonCSV writes one row per zone and figure.
func WriteComparisonCSV(w io.Writer, c *Comparison) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"zone", "figure", "a", "b", "diff", "pct"})
	row := func(zone, fig string, d Delta) {
		p := ""
		if d.Pct != nil {
			p = num(*d.Pct)
		}
		_ = cw.Write([]string{zone, fig, num(d.A), num(d.B), num(d.Diff), p})
	}
	row("(site)", "visitors", c.Visitors)
	for _, z := range c.Zones {
		row(z.Zone, "entries", z.Entries)
		row(z.Zone, "peak", z.Peak)
		row(z.Zone, "mean", z.Mean)
		row(z.Zone, "seconds_at_or_above_warning", z.WarningS)
		row(z.Zone, "avg_visit_s", z.AvgVisit)
	}
	cw.Flush()
	return cw.Error()
}
