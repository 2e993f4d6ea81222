package web

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/promotion"
)

// Promotion is what the event endpoints need (promotion.Service): the plans, the capacity
// assessment, the forecast and roster, and the review (docs/events.md).
type Promotion interface {
	Schedule() *promotion.Schedule
	Create(ctx context.Context, in promotion.PlanInput, by string) (promotion.Plan, error)
	Update(ctx context.Context, id string, in promotion.PlanInput, by string, force bool) (promotion.Plan, error)
	Delete(ctx context.Context, id, by string, force bool) error
	Assess(id string) (*promotion.Assessment, error)
	DayPlan(ctx context.Context, id string) (*promotion.DayPlan, error)
	Review(ctx context.Context, id string) (*promotion.Review, error)
	Location() *time.Location
}

// eventRoutes registers the event plan endpoints (manager role; docs/api.md, "Events").
func (a *api) eventRoutes() {
	a.route("GET /api/v1/events", RoleManager, a.listEvents)
	a.route("POST /api/v1/events", RoleManager, a.createEvent)
	a.route("GET /api/v1/events/{id}", RoleManager, a.getEvent)
	a.route("PUT /api/v1/events/{id}", RoleManager, a.updateEvent)
	a.route("DELETE /api/v1/events/{id}", RoleManager, a.deleteEvent)
	a.route("GET /api/v1/events/{id}/plan", RoleManager, a.eventPlan)
	a.route("GET /api/v1/events/{id}/review", RoleManager, a.eventReview)
	a.route("GET /api/v1/assessment", RoleManager, a.assessment)
}

// planView is a plan as the API shows it.
type planView struct {
	promotion.PlanInput
	Name      string            `json:"name"` // the default-language name; names has each language's
	Names     map[string]string `json:"names,omitempty"`
	Origin    string            `json:"origin"`
	UpdatedBy string            `json:"updated_by,omitempty"`
	UpdatedAt *time.Time        `json:"updated_at,omitempty"`
	Running   bool              `json:"running"`
}

func viewOf(p promotion.Plan, now time.Time) planView {
	v := planView{PlanInput: promotion.InputOf(p.EventPlan), Name: p.Name, Names: p.Names.ByLanguage(p.Name), Origin: p.Origin, UpdatedBy: p.UpdatedBy,
		Running: !now.Before(p.Start) && now.Before(p.End)}
	if !p.UpdatedAt.IsZero() {
		t := p.UpdatedAt
		v.UpdatedAt = &t
	}
	return v
}

func (a *api) promotionOr503(w http.ResponseWriter) bool {
	if a.Promotion == nil {
		writeError(w, http.StatusServiceUnavailable, "event plans are not kept by this service")
		return false
	}
	return true
}

// promotionError answers a refusal of the plans with its status.
func promotionError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, promotion.ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, promotion.ErrExists), errors.Is(err, promotion.ErrFromFile), errors.Is(err, promotion.ErrRunning):
		status = http.StatusConflict
	case errors.Is(err, promotion.ErrInvalid):
		status = http.StatusBadRequest
	case errors.Is(err, promotion.ErrStopped), errors.Is(err, promotion.ErrNoHistory), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	var ve *configs.ValidationError
	if errors.As(err, &ve) {
		status = http.StatusBadRequest
	}
	writeError(w, status, err.Error())
}

func (a *api) listEvents(w http.ResponseWriter, r *http.Request) {
	if !a.promotionOr503(w) {
		return
	}
	now := time.Now()
	sched := a.Promotion.Schedule()
	out := struct {
		Now      time.Time  `json:"now"`
		TimeZone string     `json:"timezone"`
		Running  *string    `json:"running"`
		Plans    []planView `json:"plans"`
	}{Now: now, TimeZone: a.Promotion.Location().String(), Plans: []planView{}}
	if p := sched.Running(now); p != nil {
		out.Running = &p.ID
	}
	for _, p := range sched.Plans() {
		out.Plans = append(out.Plans, viewOf(p, now))
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *api) getEvent(w http.ResponseWriter, r *http.Request) {
	if !a.promotionOr503(w) {
		return
	}
	p, ok := a.Promotion.Schedule().Plan(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no event plan %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, viewOf(p, time.Now()))
}

func who(r *http.Request) string {
	s, _ := r.Context().Value(whoKey{}).(string)
	return s
}

// force reads ?force=true: the caller means to change a running plan's capacities.
func force(r *http.Request) (bool, error) {
	switch v := r.URL.Query().Get("force"); v {
	case "", "false", "0":
		return false, nil
	case "true", "1":
		return true, nil
	default:
		return false, fmt.Errorf("force=%q must be true or false", v)
	}
}

func (a *api) createEvent(w http.ResponseWriter, r *http.Request) {
	if !a.promotionOr503(w) {
		return
	}
	in, ok := decodePlan(w, r)
	if !ok {
		return
	}
	p, err := a.Promotion.Create(r.Context(), in, who(r))
	if err != nil {
		promotionError(w, err)
		return
	}
	planSaved(w, r, http.StatusCreated, "created", p, false)
}

func (a *api) updateEvent(w http.ResponseWriter, r *http.Request) {
	f, ok := a.planForce(w, r)
	if !ok {
		return
	}
	in, ok := decodePlan(w, r)
	if !ok {
		return
	}
	if in.ID != "" && in.ID != r.PathValue("id") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("the body's id %q is not the path's %q", in.ID, r.PathValue("id")))
		return
	}
	p, err := a.Promotion.Update(r.Context(), r.PathValue("id"), in, who(r), f)
	if err != nil {
		planRefused(w, r, err)
		return
	}
	planSaved(w, r, http.StatusOK, "changed", p, f)
}

func (a *api) deleteEvent(w http.ResponseWriter, r *http.Request) {
	f, ok := a.planForce(w, r)
	if !ok {
		return
	}
	if err := a.Promotion.Delete(r.Context(), r.PathValue("id"), who(r), f); err != nil {
		planRefused(w, r, err)
		return
	}
	d := "deleted plan " + r.PathValue("id")
	if f {
		d += " (forced)"
	}
	setAuditDetail(r, d)
	w.WriteHeader(http.StatusNoContent)
}

// planForce begins a change of a stored plan: 503 without plans, 400 for a ?force that is
// not a boolean.
func (a *api) planForce(w http.ResponseWriter, r *http.Request) (forced, ok bool) {
	if !a.promotionOr503(w) {
		return false, false
	}
	f, err := force(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return false, false
	}
	return f, true
}

// decodePlan reads the plan in the body, a 400 when it is not one.
func decodePlan(w http.ResponseWriter, r *http.Request) (promotion.PlanInput, bool) {
	in, err := promotion.DecodePlanInput(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return promotion.PlanInput{}, false
	}
	return in, true
}

// planRefused answers a change the plans refused; the refusal to change a running plan
// without force is also said in the audit log, as the manager may retry with force.
func planRefused(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, promotion.ErrRunning) {
		setAuditDetail(r, "refused: the plan is running and force was not given")
	}
	promotionError(w, err)
}

// planSaved answers a plan created or changed with the plan, and says in the audit log what
// it now holds.
func planSaved(w http.ResponseWriter, r *http.Request, status int, what string, p promotion.Plan, forced bool) {
	setAuditDetail(r, planDetail(what, p, forced))
	writeJSON(w, status, viewOf(p, time.Now()))
}

// planDetail says in the audit log what a plan now holds.
func planDetail(what string, p promotion.Plan, forced bool) string {
	var caps []string
	for _, z := range slices.Sorted(maps.Keys(p.Capacities)) {
		caps = append(caps, fmt.Sprintf("%s=%d", z, p.Capacities[z]))
	}
	d := fmt.Sprintf("%s plan %s: %s to %s, capacities %s", what, p.ID, p.Start.Format(time.RFC3339), p.End.Format(time.RFC3339), strings.Join(caps, " "))
	if forced {
		d += " (forced while running)"
	}
	return d
}

func (a *api) assessment(w http.ResponseWriter, r *http.Request) {
	if !a.promotionOr503(w) {
		return
	}
	as, err := a.Promotion.Assess(r.URL.Query().Get("event"))
	if err != nil {
		promotionError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, as)
}

func (a *api) eventPlan(w http.ResponseWriter, r *http.Request) {
	if !a.promotionOr503(w) {
		return
	}
	dp, err := a.Promotion.DayPlan(r.Context(), r.PathValue("id"))
	if err != nil {
		promotionError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, dp)
}

// eventReview is GET /api/v1/events/{id}/review[?format=json|md|csv].
func (a *api) eventReview(w http.ResponseWriter, r *http.Request) {
	if !a.promotionOr503(w) {
		return
	}
	format := r.URL.Query().Get("format")
	if format != "" && format != "json" && format != "md" && format != "csv" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("format %q must be json, md or csv", format))
		return
	}
	rv, err := a.Promotion.Review(r.Context(), r.PathValue("id"))
	if err != nil {
		promotionError(w, err)
		return
	}
	switch format {
	case "md":
		w.Header().Set("Content-Type", "text/markdown; charset=utf-8")
		_ = promotion.WriteReviewMarkdown(w, rv, a.Promotion.Location())
	case "csv":
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "review-"+rv.Event.ID+".csv"))
		_ = promotion.WriteReviewCSV(w, rv)
	default:
		writeJSON(w, http.StatusOK, rv)
	}
}

// auditDetailKey carries a slot the handler fills with what its call did, for the audit
// entry handle writes after it (web/audit.go).
type auditDetailKey struct{}

func setAuditDetail(r *http.Request, d string) {
	if p, ok := r.Context().Value(auditDetailKey{}).(*string); ok {
		*p = d
	}
}
