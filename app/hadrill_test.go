package app

import (
	"context"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// TestHADrillReachesBoth: a drill started on a through the action log is the same drill on
// b (its id and start), goes on on b across b's restart, and ended on b ends on both.
func TestHADrillReachesBoth(t *testing.T) {
	e := testkit.Etcd(t)
	clock := &pairClock{}
	clock.set(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	a := newPairInst(t, e, clock, "a", nil)
	b := newPairInst(t, e, clock, "b", nil)
	for _, in := range []*pairInst{a, b} {
		in.src.setOcc("store", 300)
		in.src.setOcc("entrance", 40)
		in.eval()
	}
	ctx := context.Background()
	d, err := a.drills.StartDrill(ctx, "store", "guard-li")
	if err != nil || d.ID == "" {
		t.Fatalf("start on a: %+v %v", d, err)
	}
	inForce := func(in *pairInst) string {
		if ds := in.m.Status().Drills; len(ds) == 1 && ds[0].At.Equal(d.At) {
			return ds[0].ID
		}
		return ""
	}
	pairUntil(t, "b runs the same drill", func() bool { return inForce(b) == d.ID })
	if inForce(a) != d.ID {
		t.Fatalf("a answered before applying its drill: %+v", a.m.Status().Drills)
	}
	b.restart()
	b.eval()
	if inForce(b) != d.ID {
		t.Fatalf("b's drill after its restart: %+v", b.m.Status().Drills)
	}
	ended, err := b.drills.EndDrill(ctx, "store", "guard-li")
	if err != nil || ended.ID != d.ID || ended.EndedAt == nil {
		t.Fatalf("end on b: %+v %v", ended, err)
	}
	pairUntil(t, "a ends it", func() bool { return len(a.m.Status().Drills) == 0 })
	for _, in := range []*pairInst{a, b} {
		r, err := in.m.DrillReports(time.Time{}, time.Time{})
		if err != nil || len(r) != 1 || r[0].ID != d.ID || r[0].EndReason != "ended by hand" || !r[0].EndedAt.Equal(*ended.EndedAt) {
			t.Fatalf("%s's report: %+v %v", in.name, r, err)
		}
	}
}

// TestHADrillThroughTheAPI: POST /api/v1/drills on one instance of a pair reaches the other
// (the API's drill commands are wired through the log).
func TestHADrillThroughTheAPI(t *testing.T) {
	e := testkit.Etcd(t)
	const manager = "manager-token-0123456789"
	addrA, _ := haApp(t, e, "a", manager)
	addrB, _ := haApp(t, e, "b", manager)
	if code, body := post(t, "http://"+addrA+"/api/v1/drills", `{"zone": "store"}`); code != 200 || body["id"] == nil {
		t.Fatalf("drill on a: %d %v", code, body)
	}
	until(t, "b has the drill", func() bool {
		var v struct {
			Drills []struct {
				ID string `json:"id"`
			} `json:"drills"`
		}
		getJSON(t, "http://"+addrB+"/api/v1/drills", manager, &v)
		return len(v.Drills) == 1
	})
}
