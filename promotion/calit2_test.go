package promotion

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/firmware-sim/replay"
)

// TestCalIt2ForecastError forecasts every day of the CalIt2 door counts (a building's main
// door, July to November 2005, half-hourly) from the four same weekdays before it, as
// `crowdwatch plan` does with no earlier event, and reports the error of the expected
// arrivals per half hour of the day (docs/accuracy.md quotes its output:
// go test -run TestCalIt2ForecastError -v ./promotion). It checks the weekday forecast beats
// the naive one (the day before), and that the range holds most actual half hours.
func TestCalIt2ForecastError(t *testing.T) {
	hs, err := replay.LoadFile("../testdata/calit2/CalIt2.data")
	if err != nil {
		t.Fatalf("CalIt2 data (part of the repository): %v", err)
	}
	loc, _ := time.LoadLocation(replay.Zone)
	cfg := &configs.Config{Location: loc, Zones: []configs.Zone{{ID: "building", Capacity: 5000}}}
	// Each local day of 48 half hours (the two daylight-saving days are left out).
	type dayIn struct {
		start time.Time
		in    [48]float64
		n     int
	}
	var days []*dayIn
	byDate := map[string]*dayIn{}
	for _, h := range hs {
		lt := h.Start.In(loc)
		date := lt.Format(time.DateOnly)
		d := byDate[date]
		if d == nil {
			mid := time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, loc)
			d = &dayIn{start: mid}
			byDate[date] = d
			days = append(days, d)
		}
		i := lt.Hour()*2 + lt.Minute()/30
		d.in[i] += float64(h.In)
		d.n++
	}
	whole := func(d *dayIn) bool {
		return d != nil && d.n == 48 && d.start.AddDate(0, 0, 1).Sub(d.start) == 24*time.Hour
	}
	asDay := func(d *dayIn) Day {
		s := make([]Slot, 48)
		for i := range s {
			s[i] = Slot{Entries: int64(d.in[i]), Known: true}
		}
		return Day{Label: d.start.Format(time.DateOnly), Start: d.start, Zones: map[string][]Slot{"building": s}}
	}
	var absErr, absNaive, actual, within, count [48]float64
	forecastDays := 0
	for _, d := range days {
		if !whole(d) {
			continue
		}
		var comp []Day
		for k := 1; k <= 4; k++ {
			if p := byDate[d.start.AddDate(0, 0, -7*k).Format(time.DateOnly)]; whole(p) {
				comp = append(comp, asDay(p))
			}
		}
		prev := byDate[d.start.AddDate(0, 0, -1).Format(time.DateOnly)]
		if len(comp) < 4 || !whole(prev) {
			continue
		}
		plan := configs.EventPlan{ID: d.start.Format(time.DateOnly), Start: d.start, End: d.start.Add(24 * time.Hour)}
		f := BuildForecast(cfg, plan, "weekday", comp)
		forecastDays++
		for i := range 48 {
			a := d.in[i]
			absErr[i] += math.Abs(f.Arrivals[i].Expected - a)
			absNaive[i] += math.Abs(prev.in[i] - a)
			actual[i] += a
			if a >= f.Arrivals[i].Low && a <= f.Arrivals[i].High {
				within[i]++
			}
			count[i]++
		}
	}
	if forecastDays < 50 {
		t.Fatalf("only %d days forecast", forecastDays)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d days forecast from the 4 same weekdays before each\n\n", forecastDays)
	b.WriteString("| half hour | mean arrivals | mean abs. error | error, day before | actual within range |\n|---|---|---|---|---|\n")
	var sumErr, sumNaive, sumAct, sumWithin, sumN float64
	for i := range 48 {
		fmt.Fprintf(&b, "| %02d:%02d | %.1f | %.1f | %.1f | %.0f%% |\n", i/2, i%2*30, actual[i]/count[i], absErr[i]/count[i], absNaive[i]/count[i], 100*within[i]/count[i])
		sumErr += absErr[i]
		sumNaive += absNaive[i]
		sumAct += actual[i]
		sumWithin += within[i]
		sumN += count[i]
	}
	fmt.Fprintf(&b, "| all | %.1f | %.1f | %.1f | %.0f%% |\n", sumAct/sumN, sumErr/sumN, sumNaive/sumN, 100*sumWithin/sumN)
	t.Log("\n" + b.String())
	if sumErr >= sumNaive {
		t.Errorf("the weekday forecast (mean abs. error %.2f) is no better than the day before (%.2f)", sumErr/sumN, sumNaive/sumN)
	}
	if sumWithin/sumN < 0.5 {
		t.Errorf("only %.0f%% of half hours within the range", 100*sumWithin/sumN)
	}
}
