package history

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseTime reads a time given by a person or a URL: RFC 3339 (with its offset), or a local
// date "2006-01-02" (midnight), or local "2006-01-02T15:04" / "2006-01-02 15:04" in loc. A
// local time that a clock change skips is refused; one that occurs twice is its first
// occurrence.
func ParseTime(s string, loc *time.Location) (time.Time, error) {
	if len(s) > 64 {
		return time.Time{}, fmt.Errorf("time %.20q… is too long", s)
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.In(loc), nil
	}
	for _, layout := range []string{time.DateOnly, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05"} {
		t, err := time.ParseInLocation(layout, s, loc)
		if err != nil {
			continue
		}
		if t.Year() < 1970 || t.Year() > 9999 {
			break
		}
		// ParseInLocation moves a skipped wall time; refuse it rather than report on an hour
		// the person did not ask for.
		if t.Format(layout) != s {
			return time.Time{}, fmt.Errorf("time %q does not exist in %s (skipped by a clock change)", s, loc)
		}
		return first(t, loc), nil
	}
	return time.Time{}, fmt.Errorf("time %q is not a date (2006-01-02), a local time (2006-01-02T15:04) or RFC 3339", s)
}

// first returns the earlier instant when t's wall time occurs twice in loc.
func first(t time.Time, loc *time.Location) time.Time {
	e := t.Add(-time.Hour)
	if e.In(loc).Format("2006-01-02T15:04:05") == t.Format("2006-01-02T15:04:05") {
		return e
	}
	return t
}

// ParseStep reads a step: a Go duration of at least one second ("5s", "1m", "15m", "1h"), or
// whole local days ("1d", "7d").
func ParseStep(s string) (Step, error) {
	if n, ok := strings.CutSuffix(s, "d"); ok && n != "" && !strings.ContainsAny(n, "hmsµnu.") {
		d, err := strconv.Atoi(n)
		if err != nil || d < 1 || d > 366 {
			return Step{}, fmt.Errorf("step %q: days must be a whole number from 1 to 366", s)
		}
		return Step{Days: d}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return Step{}, fmt.Errorf("step %q must be a duration of at least 1s (5s, 1m, 1h) or days (1d)", s)
	}
	if d > 366*24*time.Hour {
		return Step{}, fmt.Errorf("step %q is longer than a year", s)
	}
	if d%time.Second != 0 {
		return Step{}, fmt.Errorf("step %q must be whole seconds", s)
	}
	return Step{D: d}, nil
}

// Range reads from and to (either may be empty): to defaults to now, from to span before to.
func Range(from, to string, loc *time.Location, now time.Time, span time.Duration) (time.Time, time.Time, error) {
	b := now.In(loc)
	if to != "" {
		t, err := ParseTime(to, loc)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("to: %w", err)
		}
		b = t
	}
	a := b.Add(-span)
	if from != "" {
		t, err := ParseTime(from, loc)
		if err != nil {
			return time.Time{}, time.Time{}, fmt.Errorf("from: %w", err)
		}
		a = t
	}
	if !b.After(a) {
		return time.Time{}, time.Time{}, fmt.Errorf("to (%s) must be after from (%s)", b.Format(time.RFC3339), a.Format(time.RFC3339))
	}
	if b.Sub(a) > 20*366*24*time.Hour {
		return time.Time{}, time.Time{}, fmt.Errorf("the range from %s to %s is longer than 20 years", a.Format(time.DateOnly), b.Format(time.DateOnly))
	}
	return a, b, nil
}
