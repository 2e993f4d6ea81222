package web

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/announce"
	"github.com/crowdwatch/crowdwatch/web/guidance"
)

// Drills is what the API needs to run evacuation drills (alerting.Manager).
type Drills interface {
	StartDrill(ctx context.Context, zone, by string) (alerting.Drill, error)
	EndDrill(ctx context.Context, zone, by string) (alerting.Drill, error)
	DrillReports(from, to time.Time) ([]alerting.Drill, error)
}

// Announcer previews and sends PA announcements (announce.Announcer).
type Announcer interface {
	Preview(zone, state string) ([]announce.Message, error)
	Announce(ctx context.Context, zone, state, by string) ([]announce.Message, error)
}

// Admissions lists the metered doors' admissions (door.Meter).
type Admissions interface {
	Admissions() map[string]guidance.Admission
}

// doorRoutes are the promotion-day endpoints: drills, announcements, metered doors
// (docs/api.md, "Promotion day"). Each group is there only when its component is wired.
func (a *api) doorRoutes() {
	if a.DrillControl != nil {
		a.route("GET /api/v1/drills", RoleManager, a.listDrills)
		a.route("POST /api/v1/drills", RoleSecurity, a.startDrill)
		a.route("POST /api/v1/drills/end", RoleSecurity, a.endDrill)
	}
	if a.Announcements != nil {
		a.route("GET /api/v1/announcements/{zone}", RoleSecurity, a.previewAnnouncement)
		a.route("POST /api/v1/announcements/{zone}", RoleSecurity, a.sendAnnouncement)
	}
	if a.Metering != nil {
		a.route("GET /api/v1/admissions", RoleManager, a.listAdmissions)
	}
}

type drillRequest struct {
	Zone string `json:"zone"` // "" = the whole site
	By   string `json:"by"`   // only while the API has no sign-in
}

func (a *api) startDrill(w http.ResponseWriter, r *http.Request) {
	var req drillRequest
	if err := decodeBody(r, &req, `{"zone": "" (whole site) or a zone id}`); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := a.DrillControl.StartDrill(r.Context(), req.Zone, actor(r, req.By))
	if err != nil {
		a.alertError(w, "starting the drill", err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *api) endDrill(w http.ResponseWriter, r *http.Request) {
	var req drillRequest
	if err := decodeBody(r, &req, `{"zone": "" (whole site) or a zone id}`); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	d, err := a.DrillControl.EndDrill(r.Context(), req.Zone, actor(r, req.By))
	if err != nil {
		a.alertError(w, "ending the drill", err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (a *api) listDrills(w http.ResponseWriter, r *http.Request) {
	from, to, err := timeRange(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, err := a.DrillControl.DrillReports(from, to)
	if err != nil {
		a.alertError(w, "listing drills", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"drills": list})
}

// timeRange reads ?from= and ?to= (RFC 3339, both optional).
func timeRange(r *http.Request) (from, to time.Time, err error) {
	q := r.URL.Query()
	for _, p := range []struct {
		name string
		t    *time.Time
	}{{"from", &from}, {"to", &to}} {
		if v := q.Get(p.name); v != "" {
			if *p.t, err = time.Parse(time.RFC3339, v); err != nil {
				return from, to, errors.New(p.name + " must be an RFC 3339 time, e.g. 2026-11-27T08:00:00+08:00")
			}
		}
	}
	return from, to, nil
}

func (a *api) announceError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, announce.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, announce.ErrUnavailable):
		writeError(w, http.StatusServiceUnavailable, err.Error()+": MQTT is not connected; announce by radio")
	default:
		a.Log.Error("announcement failed", "error", err)
		writeError(w, http.StatusServiceUnavailable, "announcement failed: "+err.Error())
	}
}

// previewAnnouncement is what the guard reads before sending: ?state= or the zone's state now.
func (a *api) previewAnnouncement(w http.ResponseWriter, r *http.Request) {
	msgs, err := a.Announcements.Preview(r.PathValue("zone"), r.URL.Query().Get("state"))
	if err != nil {
		a.announceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (a *api) sendAnnouncement(w http.ResponseWriter, r *http.Request) {
	var req struct {
		State string `json:"state"` // "" = the zone's state now
		By    string `json:"by"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &req, `{"state": "busy|full|metering|evacuation|drill" or ""}`); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	by := actor(r, req.By)
	msgs, err := a.Announcements.Announce(r.Context(), r.PathValue("zone"), strings.TrimSpace(req.State), by)
	if err != nil {
		a.announceError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"messages": msgs})
}

func (a *api) listAdmissions(w http.ResponseWriter, _ *http.Request) {
	list := []guidance.Admission{}
	for _, ad := range a.Metering.Admissions() {
		list = append(list, ad)
	}
	slices.SortFunc(list, func(x, y guidance.Admission) int { return strings.Compare(x.Door, y.Door) })
	writeJSON(w, http.StatusOK, map[string]any{"admissions": list})
}
