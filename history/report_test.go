package history

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/levels"
)

type fakeEvents struct {
	evs []AlertEvent
	err error
}

func (f fakeEvents) AlertEvents(from, to time.Time) ([]AlertEvent, error) { return f.evs, f.err }

func TestReportAlertsSection(t *testing.T) {
	site := testSite(time.UTC)
	h := newHarness(t, site)
	c := newCrowd(site, 1)
	a := time.Date(2026, 11, 11, 10, 0, 0, 0, time.UTC)
	h.run(c, a, a.Add(20*time.Minute), func(time.Time) int { return 3 })
	h.flush(a.Add(20 * time.Minute))
	at := func(m int) time.Time { return a.Add(time.Duration(m) * time.Minute) }
	r := h.reader()
	for _, tc := range []struct {
		name   string
		events Events
		check  func(t *testing.T, rep *Report)
	}{
		{"not wired", nil, func(t *testing.T, rep *Report) {
			if rep.Alerts != nil || !strings.Contains(rep.AlertsNote, "not available") {
				t.Errorf("alerts %+v, note %q", rep.Alerts, rep.AlertsNote)
			}
		}},
		{"unreadable", fakeEvents{err: errors.New("disk gone")}, func(t *testing.T, rep *Report) {
			if rep.Alerts != nil || !strings.Contains(rep.AlertsNote, "disk gone") {
				t.Errorf("alerts %+v, note %q", rep.Alerts, rep.AlertsNote)
			}
		}},
		{"lifecycles", fakeEvents{evs: []AlertEvent{
			{At: at(0), AlertID: "level:entrance", Kind: "level", Zone: "entrance", What: "fired", Level: levels.Warning},
			{At: at(1), AlertID: "level:entrance", What: "escalated"},
			{At: at(2), AlertID: "level:entrance", What: "acknowledged", By: "li"},
			{At: at(3), AlertID: "level:entrance", What: "acknowledged", By: "late"}, // only the first counts
			{At: at(10), AlertID: "level:entrance", What: "resolved"},
			{At: at(12), AlertID: "level:entrance", Kind: "level", What: "fired"}, // fires again: a new alert
			{At: at(13), AlertID: "device_silent:dc-01", What: "resolved"},        // fired before the period
			{At: at(14), Kind: "evacuation", What: "evacuation_declared", By: "guard"},
			{At: at(16), AlertID: "level:floor", Kind: "level", What: "fired"},
			{At: at(20), AlertID: "level:floor", What: "acknowledged", By: "wang"},
			{At: at(19), Kind: "evacuation", What: "evacuation_stood_down"},
		}}, func(t *testing.T, rep *Report) {
			s := rep.Alerts
			if s == nil || s.Fired != 3 || s.Acknowledged != 2 || s.Resolved != 1 {
				t.Fatalf("summary %+v", s)
			}
			if *s.MedianAckS != 180 || *s.MaxAckS != 240 || *s.MedianResolveS != 600 {
				t.Errorf("ack median %v max %v, resolve median %v", *s.MedianAckS, *s.MaxAckS, *s.MedianResolveS)
			}
			if s.Alerts[0].AckBy != "li" || s.Alerts[1].AckAt != nil || len(rep.Evacuations) != 2 || rep.Evacuations[0].By != "guard" {
				t.Errorf("alerts %+v, evacuations %+v", s.Alerts, rep.Evacuations)
			}
			var md strings.Builder
			if err := WriteReportMarkdown(&md, rep); err != nil || !strings.Contains(md.String(), "3 fired, 2 acknowledged (median 3m0s, longest 4m0s)") ||
				!strings.Contains(md.String(), "## Evacuations") {
				t.Errorf("markdown:\n%s", md.String())
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.Events = tc.events
			rep, err := r.Report(context.Background(), a, a.Add(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, rep)
		})
	}
}

func TestCompareZoneByZone(t *testing.T) {
	site := testSite(time.UTC)
	h := newHarness(t, site)
	c := newCrowd(site, 2)
	a := time.Date(2026, 11, 10, 10, 0, 0, 0, time.UTC)
	b := a.AddDate(0, 0, 1)
	h.run(c, a, a.Add(30*time.Minute), func(time.Time) int { return 1 })
	h.stop(a.Add(30 * time.Minute))
	h.restart()
	h.run(c, b, b.Add(30*time.Minute), func(time.Time) int { return 6 })
	h.flush(b.Add(30 * time.Minute))
	cmp, err := h.reader().Compare(context.Background(), a, a.Add(time.Hour), b, b.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if cmp.Visitors.A != float64(cmp.A.Visitors) || cmp.Visitors.B != float64(cmp.B.Visitors) || cmp.Visitors.B <= cmp.Visitors.A {
		t.Fatalf("visitors %+v (A %d, B %d)", cmp.Visitors, cmp.A.Visitors, cmp.B.Visitors)
	}
	if len(cmp.Zones) != 3 || cmp.Zones[1].Entries.A != float64(cmp.A.Zones[1].Entries) || cmp.Zones[1].Entries.Diff != cmp.Zones[1].Entries.B-cmp.Zones[1].Entries.A {
		t.Errorf("zones %+v", cmp.Zones)
	}
	if p := cmp.Visitors.Pct; p == nil || *p <= 0 {
		t.Errorf("pct %v", p)
	}
	var out strings.Builder
	if err := WriteComparisonCSV(&out, cmp); err != nil || !strings.HasPrefix(out.String(), "zone,figure,a,b,diff,pct\n(site),visitors,") {
		t.Errorf("csv:\n%s", out.String())
	}
}
