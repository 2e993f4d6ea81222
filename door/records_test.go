package door

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/promotion"
	"github.com/crowdwatch/crowdwatch/zones"
)

// The episodes and drills the review reads come back from the alert file as they were kept,
// also after a restart.
func TestRecordsRoundTripThroughTheAlertFile(t *testing.T) {
	dir := t.TempDir()
	yaml := strings.ReplaceAll(meterStore, "/nonexistent/cw.db", filepath.Join(dir, "cw.db"))
	cfg, err := configs.Parse([]byte(yaml), nil)
	if err != nil {
		t.Fatal(err)
	}
	model := zones.NewModel(cfg)
	eng := &fakeEngine{snap: &zones.Snapshot{}}
	for _, z := range model.Zones {
		eng.snap.Zones = append(eng.snap.Zones, zones.ZoneState{ID: z.ID, Capacity: z.Capacity, Occupancy: 30})
	}
	for _, d := range model.Doors {
		eng.snap.Doors = append(eng.snap.Doors, zones.DoorState{ID: d.ID})
	}
	open := func() (*alerting.Manager, func()) {
		m, err := alerting.New(alerting.Options{Config: alerting.ConfigOf(cfg), Path: cfg.AlertsPath(), Model: model, Source: eng})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = m.Run(ctx) }()
		return m, func() { cancel(); <-done; _ = m.Close() }
	}
	m, stop := open()
	r := Records{Store: m}
	from := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	ep := promotion.MeteringEpisode{Door: "main", From: from, To: from.Add(40 * time.Minute), Admitted: 812,
		HeldFor: 31 * time.Minute, QueueMax: 240, WaitMax: 9 * time.Minute, WaitMean: 4 * time.Minute}
	if err := r.KeepEpisode(context.Background(), ep); err != nil {
		t.Fatal(err)
	}
	if _, err := m.StartDrill(context.Background(), "entrance", "guard-li"); err != nil {
		t.Fatal(err)
	}
	stop()

	m, stop = open()
	defer stop()
	r = Records{Store: m}
	got, err := r.MeteringEpisodes(from.Add(-time.Hour), from.Add(time.Hour))
	if err != nil || len(got) != 1 || got[0] != ep {
		t.Fatalf("episodes %+v %v, want %+v", got, err, ep)
	}
	if got, _ := r.MeteringEpisodes(from.Add(time.Second), time.Time{}); len(got) != 0 {
		t.Fatalf("an episode that began before the range: %+v", got)
	}
	drills, err := r.Drills(time.Time{}, time.Time{})
	if err != nil || len(drills) != 1 || drills[0].By != "guard-li" || drills[0].StartCount["entrance"] != 30 || len(drills[0].Zones) != 1 {
		t.Fatalf("drills %+v %v", drills, err)
	}
}
