// Package replay turns a real door counter's recorded half-hour counts (the CalIt2 data set
// in ../shared/data/calit2) into the cumulative reports a counter device would have sent, so
// the service can be run on real traffic and its daily figures checked against the file.
package replay

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

// HalfHour is one recorded interval. The file stamps each count with the end of the half hour
// it covers.
type HalfHour struct {
	Start, End time.Time
	In, Out    uint64
}

// Flow codes of the CalIt2 file.
const (
	flowOut = "7"
	flowIn  = "9"
)

// Load reads CalIt2-format rows `flow,MM/DD/YY,HH:MM:SS,count` (flow 7 out, 9 in) in loc.
// Each timestamp must have exactly one in row and one out row.
//
// Daylight saving: the file has 48 rows a day on every date, including 2005-10-30 when the
// clocks went back, so its times are wall-clock slots and the repeated hour has no rows of its
// own. A wall time that occurs twice is read as its first occurrence, which keeps the
// half hours in order.
func Load(r io.Reader, loc *time.Location) ([]HalfHour, error) {
	type pair struct {
		end         time.Time
		in, out     uint64
		hasIn, hasO bool
		line        int
	}
	byKey := map[string]*pair{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" {
			continue
		}
		f := strings.Split(text, ",")
		if len(f) != 4 {
			return nil, fmt.Errorf("replay: line %d: want flow,MM/DD/YY,HH:MM:SS,count, got %q", n, text)
		}
		end, err := time.ParseInLocation("01/02/06 15:04:05", f[1]+" "+f[2], loc)
		if err != nil {
			return nil, fmt.Errorf("replay: line %d: bad date or time %q %q", n, f[1], f[2])
		}
		count, err := strconv.ParseUint(f[3], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("replay: line %d: count %q is not a non-negative whole number", n, f[3])
		}
		key := f[1] + " " + f[2]
		p := byKey[key]
		if p == nil {
			p = &pair{end: end, line: n}
			byKey[key] = p
		}
		switch f[0] {
		case flowIn:
			if p.hasIn {
				return nil, fmt.Errorf("replay: line %d: a second in row for %s", n, key)
			}
			p.in, p.hasIn = count, true
		case flowOut:
			if p.hasO {
				return nil, fmt.Errorf("replay: line %d: a second out row for %s", n, key)
			}
			p.out, p.hasO = count, true
		default:
			return nil, fmt.Errorf("replay: line %d: flow %q is neither 7 (out) nor 9 (in)", n, f[0])
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	out := make([]HalfHour, 0, len(byKey))
	for key, p := range byKey {
		if !p.hasIn || !p.hasO {
			return nil, fmt.Errorf("replay: line %d: %s has an in or an out row but not both", p.line, key)
		}
		out = append(out, HalfHour{Start: p.end.Add(-30 * time.Minute), End: p.end, In: p.in, Out: p.out})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].End.Before(out[j].End) })
	return out, nil
}

// LoadFile reads a CalIt2 file; its times are US Pacific.
func LoadFile(path string) ([]HalfHour, error) {
	loc, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	return Load(f, loc)
}

// Point is a counter's cumulative totals at a moment.
type Point struct {
	At      time.Time
	In, Out uint64
}

// Spread turns each half hour into steps cumulative readings at equal spacing inside it, the
// last at its end, sharing the half hour's crossings out as evenly as whole people allow, so
// the reading at every half hour's end equals the running sums of the file exactly.
func Spread(hs []HalfHour, steps int) []Point {
	steps = max(steps, 1)
	out := make([]Point, 0, len(hs)*steps)
	var in, outs uint64
	for _, h := range hs {
		for k := 1; k <= steps; k++ {
			// The share up to step k, rounded down; at k == steps it is the whole count.
			p := Point{At: h.Start.Add(time.Duration(k) * h.End.Sub(h.Start) / time.Duration(steps)),
				In: in + h.In*uint64(k)/uint64(steps), Out: outs + h.Out*uint64(k)/uint64(steps)}
			out = append(out, p)
		}
		in += h.In
		outs += h.Out
	}
	return out
}

// Day is one local date's crossings.
type Day struct {
	Date    string // YYYY-MM-DD, local
	In, Out uint64
}

// DailyTotals sums the half hours by the local date on which each began (the file's 00:00
// row counts the last half hour of the day before).
func DailyTotals(hs []HalfHour) []Day {
	byDate := map[string]*Day{}
	var dates []string
	for _, h := range hs {
		d := h.Start.Format(time.DateOnly)
		if byDate[d] == nil {
			byDate[d] = &Day{Date: d}
			dates = append(dates, d)
		}
		byDate[d].In += h.In
		byDate[d].Out += h.Out
	}
	sort.Strings(dates)
	out := make([]Day, len(dates))
	for i, d := range dates {
		out[i] = *byDate[d]
	}
	return out
}
