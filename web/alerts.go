package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/levels"
)

// Alerting is what the API needs from the alert manager.
type Alerting interface {
	Status() *alerting.Status
	Alerts(ctx context.Context, f alerting.Filter) ([]alerting.Alert, error)
	Ack(ctx context.Context, id, by, note string) (alerting.Alert, error)
	AckZone(ctx context.Context, zone, by, note string) ([]alerting.Alert, error)
	Declare(ctx context.Context, zone, by, reason string) (alerting.Evacuation, error)
	StandDown(ctx context.Context, zone, by, reason string) error
	Silences(ctx context.Context) ([]alerting.Silence, error)
	AddSilence(ctx context.Context, s alerting.Silence) (alerting.Silence, error)
	DeleteSilence(ctx context.Context, id, by string) error
}

func (a *api) alertRoutes() {
	if a.Alerting == nil {
		return
	}
	a.route("GET /api/v1/status", RoleManager, a.alertStatus)
	a.route("GET /api/v1/alerts", RoleManager, a.listAlerts)
	a.route("POST /api/v1/alerts/{id}/ack", RoleSecurity, a.ackAlert)
	a.route("POST /api/v1/alerts/ack", RoleSecurity, a.ackZone)
	a.route("GET /api/v1/evacuation", RoleManager, a.getEvacuation)
	a.route("POST /api/v1/evacuation", RoleSecurity, a.declareEvacuation)
	a.route("POST /api/v1/evacuation/stand-down", RoleSecurity, a.standDown)
	a.route("GET /api/v1/silences", RoleManager, a.listSilences)
	a.route("POST /api/v1/silences", RoleSecurity, a.addSilence)
	a.route("DELETE /api/v1/silences/{id}", RoleSecurity, a.deleteSilence)
	a.securityRoutes()
}

// actor is who performs a state-changing request: the signed-in user, or, while the API is
// open (no sign-in configured), the name the body gives.
func actor(r *http.Request, given string) string {
	if who, _ := r.Context().Value(whoKey{}).(string); who != "" {
		return who
	}
	return strings.TrimSpace(given)
}

// decodeBody reads a small JSON body strictly.
func decodeBody(r *http.Request, v any, shape string) error {
	if err := decodeJSON(r.Body, maxBody, v); err != nil {
		return fmt.Errorf("body must be JSON %s: %w", shape, err)
	}
	return nil
}

func (a *api) alertError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, alerting.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, alerting.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		a.Log.Error(what+" failed", "error", err)
		writeError(w, http.StatusServiceUnavailable, what+" failed: "+err.Error())
	}
}

func (a *api) alertStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.Alerting.Status())
}

func (a *api) listAlerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("kind") == string(alerting.KindSecurity) {
		writeError(w, http.StatusForbidden, "security alerts are listed for admins at GET /api/v1/security/alerts")
		return
	}
	list, err := a.Alerting.Alerts(r.Context(), alerting.Filter{State: q.Get("state"), Zone: q.Get("zone"), Kind: q.Get("kind")})
	if err != nil {
		a.alertError(w, "listing alerts", err)
		return
	}
	if list == nil {
		list = []alerting.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": list})
}

func (a *api) ackAlert(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.PathValue("id"), string(alerting.KindSecurity)+":") {
		writeError(w, http.StatusForbidden, "security alerts are acknowledged by admins at POST /api/v1/security/alerts/{id}/ack")
		return
	}
	a.ack(w, r)
}

// ack acknowledges the alert the path names, for whoever the request is from.
func (a *api) ack(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Note string `json:"note"`
		By   string `json:"by"`
	}
	if r.ContentLength != 0 {
		if err := decodeBody(r, &body, `{"note": "..."}`); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	by := actor(r, body.By)
	if by == "" {
		writeError(w, http.StatusBadRequest, `acknowledge: say who acknowledges ("by") while the API has no sign-in`)
		return
	}
	al, err := a.Alerting.Ack(r.Context(), r.PathValue("id"), by, strings.TrimSpace(body.Note))
	if err != nil {
		a.alertError(w, "acknowledging", err)
		return
	}
	a.Log.Info("alert acknowledged through the API", "id", al.ID, "by", by)
	writeJSON(w, http.StatusOK, al)
}

// ackZone acknowledges every open alert of one zone: {"zone": "...", "note": "..."}.
func (a *api) ackZone(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Zone string `json:"zone"`
		Note string `json:"note"`
		By   string `json:"by"`
	}
	if err := decodeBody(r, &body, `{"zone": "...", "note": "..."}`); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if strings.TrimSpace(body.Zone) == "" {
		writeError(w, http.StatusBadRequest, `acknowledge: say which zone's alerts ("zone")`)
		return
	}
	by := actor(r, body.By)
	if by == "" {
		writeError(w, http.StatusBadRequest, `acknowledge: say who acknowledges ("by") while the API has no sign-in`)
		return
	}
	list, err := a.Alerting.AckZone(r.Context(), strings.TrimSpace(body.Zone), by, strings.TrimSpace(body.Note))
	if err != nil {
		a.alertError(w, "acknowledging", err)
		return
	}
	a.Log.Info("alerts of a zone acknowledged through the API", "zone", body.Zone, "count", len(list), "by", by)
	writeJSON(w, http.StatusOK, map[string]any{"zone": body.Zone, "alerts": list})
}

type evacRequest struct {
	Zone   string `json:"zone"`
	Reason string `json:"reason"`
	By     string `json:"by"`
}

func (a *api) getEvacuation(w http.ResponseWriter, _ *http.Request) {
	s := a.Alerting.Status()
	evs := s.Evacuations
	if evs == nil {
		evs = []alerting.Evacuation{}
	}
	var recommended []string
	for _, z := range s.Zones {
		if z.Level == levels.Evacuate && !z.Evacuating {
			recommended = append(recommended, z.Zone)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"evacuations": evs, "recommended": recommended})
}

func (a *api) declareEvacuation(w http.ResponseWriter, r *http.Request) {
	var req evacRequest
	if err := decodeBody(r, &req, `{"zone": "" (whole site) or a zone id, "reason": "..."}`); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ev, err := a.Alerting.Declare(r.Context(), req.Zone, actor(r, req.By), strings.TrimSpace(req.Reason))
	if err != nil {
		a.alertError(w, "declaring the evacuation", err)
		return
	}
	writeJSON(w, http.StatusOK, ev)
}

func (a *api) standDown(w http.ResponseWriter, r *http.Request) {
	var req evacRequest
	if err := decodeBody(r, &req, `{"zone": "" (whole site) or a zone id, "reason": "..."}`); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := a.Alerting.StandDown(r.Context(), req.Zone, actor(r, req.By), strings.TrimSpace(req.Reason)); err != nil {
		a.alertError(w, "standing down", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"stood_down": req.Zone})
}

func (a *api) listSilences(w http.ResponseWriter, r *http.Request) {
	list, err := a.Alerting.Silences(r.Context())
	if err != nil {
		a.alertError(w, "listing silences", err)
		return
	}
	if list == nil {
		list = []alerting.Silence{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"silences": list})
}

func (a *api) addSilence(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Kind     string    `json:"kind"`
		Zone     string    `json:"zone"`
		Device   string    `json:"device"`
		Start    time.Time `json:"start"`
		End      time.Time `json:"end"`
		Duration string    `json:"duration"`
		Comment  string    `json:"comment"`
		By       string    `json:"by"`
	}
	if err := decodeBody(r, &req, `{"kind", "zone", "device", "end" (RFC 3339) or "duration" ("30m"), "comment"}`); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Duration != "" {
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("duration %q must be like 30m or 2h, at most 168h", req.Duration))
			return
		}
		req.End = time.Now().Add(d)
	}
	s, err := a.Alerting.AddSilence(r.Context(), alerting.Silence{Kind: alerting.Kind(req.Kind), Zone: req.Zone, Device: req.Device,
		Start: req.Start, End: req.End, Comment: strings.TrimSpace(req.Comment), By: actor(r, req.By)})
	if err != nil {
		a.alertError(w, "adding the silence", err)
		return
	}
	writeJSON(w, http.StatusCreated, s)
}

func (a *api) deleteSilence(w http.ResponseWriter, r *http.Request) {
	by := actor(r, r.URL.Query().Get("by"))
	if err := a.Alerting.DeleteSilence(r.Context(), r.PathValue("id"), by); err != nil {
		a.alertError(w, "removing the silence", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": r.PathValue("id")})
}
