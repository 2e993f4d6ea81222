// Package replay turns a real door counter's recorded half-hour counts, the CalIt2 data set
// (UCI Machine Learning Repository; the main door of the CalIt2 building, 2005-07-24 to
// 2005-11-05), into the cumulative totals a counter device would have reported. Replaying them
// through MQTT runs the service on real traffic, with its real drift, and lets a test compare
// the service's figures with sums computed directly from the file.
//
// The file has one row per direction and half hour:
//
//	flow,MM/DD/YY,HH:MM:SS,count
//
// flow 7 is out of the building and 9 is in; count is the number of crossings in the half hour
// BEFORE the stamped time, so a row stamped 00:00:00 counts 23:30-24:00 of the previous day.
// Times are local wall-clock times in US Pacific.
package replay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"sort"
	"strconv"
	"time"

	// The data set's times are US Pacific; embed the zone database so LoadFile works on a
	// host without /usr/share/zoneinfo (the service embeds it too).
	_ "time/tzdata"
)

// Zone is the time zone of the CalIt2 file's stamps.
const Zone = "America/Los_Angeles"

// Slot is the length of one interval of the file.
const Slot = 30 * time.Minute

// HalfHour is one recorded interval: In crossings into the building and Out crossings out of
// it between Start and End. The file stamps each count with the end of the half hour it
// covers; Start is End minus 30 minutes of real time. Both are in the location given to Load.
type HalfHour struct {
	Start, End time.Time
	In, Out    uint64
}

// Flow codes of the CalIt2 file.
const (
	flowOut = "7"
	flowIn  = "9"
)

// Load reads CalIt2 rows `flow,MM/DD/YY,HH:MM:SS,count` with wall-clock times in loc and
// returns one HalfHour per timestamp, sorted by time.
//
// It decodes outside input, so it is strict, and any error names the line (counted from 1):
//   - a line has exactly four comma-separated fields, with no spaces and no carriage return;
//     an empty line is an error, except that the input may end with one newline;
//   - flow is 7 or 9;
//   - the date is MM/DD/YY (two digits each, a real calendar date; YY is 20YY) and the time
//     HH:MM:SS on a half-hour mark (MM 00 or 30, SS 00), because each row is one half-hour slot;
//   - the count is a whole number of decimal digits that fits 64 bits; "-1", "+1", "1.5",
//     "1e3" and "" are refused;
//   - every timestamp has exactly one in row and exactly one out row (in either order, not
//     necessarily adjacent); a second row of the same flow, or a row whose other half is
//     missing, is an error naming that row's line;
//   - the running totals must fit 64 bits, so Spread and DailyTotals cannot overflow;
//   - the input has at least one row.
//
// Daylight saving. CalIt2.data has exactly 48 stamps on every date, 00:00:00 to 23:30:00,
// including 2005-10-30, the day US Pacific clocks went back from 02:00 PDT to 01:00 PST.
// That day lasted 25 hours, yet 10/30/05 01:00:00 and 01:30:00 appear once each (one in and
// one out row, like every other stamp) and nothing is summed or repeated: the repeated hour has
// no rows of its own. Decision: a wall time that occurs twice is read as its FIRST occurrence
// (the daylight-time reading, the earlier instant). Every half hour then stays 30 real minutes
// long and the series stays in order; the file simply has no data for the real hour from
// 01:30 PDT to 01:30 PST (08:30-09:30 UTC). The rows there are near zero (Sunday night:
// 0 in, 0 out at 01:30; 0 in, 2 out at 02:00), so the choice cannot move a day's totals.
// A wall time that does not exist in loc (skipped by a spring-forward change) is an error:
// the file cannot have been stamped in that zone.
//
// Note on the CalIt2 clock: the weekday traffic profile (morning arrivals, the lunch peak out
// and back) sits at the same stamps in every week through 2005-10-28 and one hour LATER in the
// week after 2005-10-30. The recording clock most likely never fell back, i.e. the stamps are
// UTC-7 throughout. Load still reads them as America/Los_Angeles wall time (LoadFile): this
// only moves the last week's half hours by an hour; totals and the count of half hours are
// unchanged. To read them as a fixed UTC-7 clock instead, pass time.FixedZone("PDT", -7*3600).
func Load(r io.Reader, loc *time.Location) ([]HalfHour, error) {
	if loc == nil {
		return nil, errors.New("replay: nil location")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	data = bytes.TrimSuffix(data, []byte("\n")) // the one final newline a file may end with
	if len(data) == 0 {
		return nil, errors.New("replay: no rows")
	}

	type slot struct {
		wall            wallTime
		in, out         uint64
		inLine, outLine int // 0: no such row yet
		firstLine       int
	}
	var (
		slots         []*slot
		byWall        = map[wallTime]*slot{}
		totIn, totOut uint64
	)
	for i, text := range bytes.Split(data, []byte("\n")) {
		line := i + 1
		flow, wall, count, err := parseRow(string(text))
		if err != nil {
			return nil, fmt.Errorf("replay: line %d: %w", line, err)
		}
		s := byWall[wall]
		if s == nil {
			s = &slot{wall: wall, firstLine: line}
			byWall[wall] = s
			slots = append(slots, s)
		}
		var ok bool
		switch flow {
		case flowIn:
			if s.inLine != 0 {
				return nil, fmt.Errorf("replay: line %d: a second in row for %s (the first is on line %d)", line, wall, s.inLine)
			}
			s.in, s.inLine = count, line
			totIn, ok = add(totIn, count)
		case flowOut:
			if s.outLine != 0 {
				return nil, fmt.Errorf("replay: line %d: a second out row for %s (the first is on line %d)", line, wall, s.outLine)
			}
			s.out, s.outLine = count, line
			totOut, ok = add(totOut, count)
		}
		if !ok {
			return nil, fmt.Errorf("replay: line %d: the running total passes 2^64-1", line)
		}
	}

	hs := make([]HalfHour, 0, len(slots))
	lines := make([]int, 0, len(slots)) // first line of each half hour, for errors after sorting
	for _, s := range slots {           // in file order, so the first bad row is the one named
		switch {
		case s.outLine == 0:
			return nil, fmt.Errorf("replay: line %d: in row for %s has no out row", s.inLine, s.wall)
		case s.inLine == 0:
			return nil, fmt.Errorf("replay: line %d: out row for %s has no in row", s.outLine, s.wall)
		}
		end, err := s.wall.in(loc)
		if err != nil {
			return nil, fmt.Errorf("replay: line %d: %w", s.firstLine, err)
		}
		hs = append(hs, HalfHour{Start: end.Add(-Slot), End: end, In: s.in, Out: s.out})
		lines = append(lines, s.firstLine)
	}
	idx := make([]int, len(hs))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return hs[idx[a]].End.Before(hs[idx[b]].End) })
	sorted := make([]HalfHour, len(hs))
	for i, j := range idx {
		sorted[i] = hs[j]
		// Distinct wall times are distinct instants, but a zone change by other than whole
		// half hours could still make two slots overlap in real time.
		if i > 0 && sorted[i].Start.Before(sorted[i-1].End) {
			return nil, fmt.Errorf("replay: line %d: the half hour ending %s overlaps the one ending %s",
				lines[j], sorted[i].End.Format(time.RFC3339), sorted[i-1].End.Format(time.RFC3339))
		}
	}
	return sorted, nil
}

// wallTime is a stamp as written in the file, before any time zone is applied.
type wallTime struct {
	year, month, day, hour, min int
}

func (w wallTime) String() string {
	return fmt.Sprintf("%02d/%02d/%02d %02d:%02d:00", w.month, w.day, w.year%100, w.hour, w.min)
}

// in returns the instant the wall time names in loc: its first occurrence when a clock change
// makes it occur twice, an error when a clock change skips it. time.Date does not promise which
// reading it picks for an ambiguous time, so the candidates are worked out here: the offsets in
// force a day before and a day after are the only ones a single change can give.
func (w wallTime) in(loc *time.Location) (time.Time, error) {
	naive := time.Date(w.year, time.Month(w.month), w.day, w.hour, w.min, 0, 0, time.UTC)
	var best time.Time
	found := false
	for _, probe := range []time.Duration{-26 * time.Hour, 0, 26 * time.Hour} {
		_, off := naive.Add(probe).In(loc).Zone()
		t := naive.Add(-time.Duration(off) * time.Second).In(loc)
		if t.Year() == w.year && int(t.Month()) == w.month && t.Day() == w.day &&
			t.Hour() == w.hour && t.Minute() == w.min && (!found || t.Before(best)) {
			best, found = t, true
		}
	}
	if !found {
		return time.Time{}, fmt.Errorf("%s does not exist in %s (skipped by a clock change)", w, loc)
	}
	return best, nil
}

// parseRow checks one line's four fields.
func parseRow(text string) (flow string, w wallTime, count uint64, err error) {
	if text == "" {
		return "", w, 0, errors.New("empty line")
	}
	f := splitComma(text)
	if len(f) != 4 {
		return "", w, 0, fmt.Errorf("want 4 fields flow,MM/DD/YY,HH:MM:SS,count, got %d in %q", len(f), clip(text))
	}
	flow = f[0]
	if flow != flowIn && flow != flowOut {
		return "", w, 0, fmt.Errorf("flow %q is neither 7 (out) nor 9 (in)", clip(flow))
	}
	mo, okMo := twoDigits(f[1], 0, '/')
	d, okD := twoDigits(f[1], 3, '/')
	y, okY := twoDigits(f[1], 6, 0)
	if len(f[1]) != 8 || !okMo || !okD || !okY || mo < 1 || mo > 12 || d < 1 ||
		d > daysIn(2000+y, mo) {
		return "", w, 0, fmt.Errorf("date %q is not a calendar date MM/DD/YY", clip(f[1]))
	}
	h, okH := twoDigits(f[2], 0, ':')
	mi, okMi := twoDigits(f[2], 3, ':')
	s, okS := twoDigits(f[2], 6, 0)
	if len(f[2]) != 8 || !okH || !okMi || !okS || h > 23 || mi > 59 || s > 59 {
		return "", w, 0, fmt.Errorf("time %q is not HH:MM:SS", clip(f[2]))
	}
	if (mi != 0 && mi != 30) || s != 0 {
		return "", w, 0, fmt.Errorf("time %q is not on a half-hour mark (HH:00:00 or HH:30:00)", f[2])
	}
	c := f[3]
	if c == "" {
		return "", w, 0, errors.New("count is empty")
	}
	if c[0] == '-' {
		return "", w, 0, fmt.Errorf("count %q is negative", clip(c))
	}
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return "", w, 0, fmt.Errorf("count %q is not a whole number", clip(c))
		}
	}
	count, err = strconv.ParseUint(c, 10, 64)
	if err != nil {
		return "", w, 0, fmt.Errorf("count %q does not fit 64 bits", clip(c))
	}
	return flow, wallTime{2000 + y, mo, d, h, mi}, count, nil
}

// splitComma splits on commas; unlike strings.Split it stops early, so a hostile line of
// millions of commas costs no more than its length.
func splitComma(s string) []string {
	var f []string
	for len(f) < 5 {
		i := 0
		for i < len(s) && s[i] != ',' {
			i++
		}
		f = append(f, s[:i])
		if i == len(s) {
			break
		}
		s = s[i+1:]
	}
	return f
}

// twoDigits reads s[at:at+2] as a two-digit number, and checks that sep (if not 0) follows.
func twoDigits(s string, at int, sep byte) (int, bool) {
	if len(s) < at+2 || s[at] < '0' || s[at] > '9' || s[at+1] < '0' || s[at+1] > '9' {
		return 0, false
	}
	if sep != 0 && (len(s) < at+3 || s[at+2] != sep) {
		return 0, false
	}
	return int(s[at]-'0')*10 + int(s[at+1]-'0'), true
}

func daysIn(year, month int) int {
	return time.Date(year, time.Month(month)+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// clip shortens a field quoted in an error, so a long hostile line makes a short message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

func add(a, b uint64) (uint64, bool) {
	s, carry := bits.Add64(a, b, 0)
	return s, carry == 0
}

// LoadFile reads a CalIt2 file, its stamps read as America/Los_Angeles wall time (see Load).
func LoadFile(path string) ([]HalfHour, error) {
	loc, err := time.LoadLocation(Zone)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	defer f.Close()
	hs, err := Load(f, loc)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return hs, nil
}

// Point is what a counter that keeps totals since boot would report at At: the cumulative
// crossings in and out.
type Point struct {
	At      time.Time
	In, Out uint64
}

// Spread turns each half hour into steps cumulative points at equal spacing inside it, the
// last exactly at End, so that a replay sends several reports per half hour as a real counter
// does. The half hour's crossings are shared out as evenly as whole people allow: up to step
// k of n the share is floor(count*k/n), computed in 128 bits, so consecutive steps differ by
// at most one person and the point at End carries the whole count. The totals at every End are
// therefore exactly the running sums of the half hours (the property the replay test relies
// on), and the points never go down. steps below 1 counts as 1.
//
// hs must come from Load, or at least be in order with each Start not after its End and
// totals that fit 64 bits.
func Spread(hs []HalfHour, steps int) []Point {
	n := uint64(max(steps, 1))
	pts := make([]Point, 0, len(hs)*int(n))
	var in, out uint64
	for _, h := range hs {
		span := h.End.Sub(h.Start)
		for k := uint64(1); k <= n; k++ {
			p := Point{At: h.End, In: in + share(h.In, k, n), Out: out + share(h.Out, k, n)}
			if k < n && span > 0 {
				p.At = h.Start.Add(time.Duration(share(uint64(span), k, n)))
			}
			pts = append(pts, p)
		}
		in += h.In
		out += h.Out
	}
	return pts
}

// share is floor(c*k/n) for k <= n, without overflow.
func share(c, k, n uint64) uint64 {
	hi, lo := bits.Mul64(c, k)
	q, _ := bits.Div64(hi, lo, n) // hi < n because k <= n
	return q
}

// Day is one local date's crossings.
type Day struct {
	Date    string // YYYY-MM-DD, local to the half hours' location
	In, Out uint64
}

// DailyTotals sums the half hours by the local date of their Start, sorted by date. Start,
// not the stamp: the file's 00:00:00 row counts 23:30-24:00 and belongs to the day before.
// So the CalIt2 file yields 2005-07-23 (its first row, one half hour) through 2005-11-05
// (47 half hours; its last half hour would be stamped 11/06/05 00:00:00, which the file lacks).
func DailyTotals(hs []HalfHour) []Day {
	byDate := map[string]*Day{}
	for _, h := range hs {
		date := h.Start.Format(time.DateOnly)
		d := byDate[date]
		if d == nil {
			d = &Day{Date: date}
			byDate[date] = d
		}
		d.In += h.In
		d.Out += h.Out
	}
	days := make([]Day, 0, len(byDate))
	for _, d := range byDate {
		days = append(days, *d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Date < days[j].Date })
	return days
}
