// Package web serves the HTTP side of the service: the JSON API, health and readiness checks,
// Prometheus metrics, the security dashboard and guidance screens (embedded from web/assets),
// and their live WebSocket feed (Live).
package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crowdwatch/crowdwatch/zones"
)

// Engine is what the API needs from the occupancy engine.
type Engine interface {
	Snapshot() *zones.Snapshot
	Correct(ctx context.Context, zone string, value int64, by, reason string) (zones.ZoneState, error)
	Healthy() bool
}

// Broker reports whether the MQTT side is up.
type Broker interface {
	Connected() bool
}

// Role is what a caller may do. Each route names the role it needs; the Authorizer decides.
type Role string

const (
	RolePublic   Role = ""         // health checks: anyone
	RoleDisplay  Role = "display"  // one screen's read-only feed
	RoleManager  Role = "manager"  // read everything
	RoleSecurity Role = "security" // read, acknowledge, evacuate, correct
	RoleAdmin    Role = "admin"    // everything
)

// Authorizer checks a request against the role a route needs and returns who is calling.
// An error that wraps ErrUnauthenticated becomes 401, any other 403.
type Authorizer interface {
	Authorize(r *http.Request, need Role) (who string, err error)
}

// ErrUnauthenticated means the request carries no valid identity.
var ErrUnauthenticated = errors.New("sign-in required")

// Open lets every request through (tests; the service uses web/auth).
type Open struct{}

func (Open) Authorize(*http.Request, Role) (string, error) { return "", nil }

// Options wire the handler to the rest of the service.
type Options struct {
	Engine   Engine
	Broker   Broker
	Gatherer prometheus.Gatherer
	Auth     Authorizer
	Alerting Alerting // nil: no alert endpoints
	Log      *slog.Logger
	Version  string
	// Live, when set, serves the dashboard, the guidance screens and their WebSocket feed;
	// SignIn the sign-in endpoints (web/ui.go).
	Live    *Live
	SignIn  SignIn
	History HistoryReader // nil: the history endpoints answer 503
}

type api struct {
	Options
	mux  *http.ServeMux
	csrf *http.CrossOriginProtection
}

type whoKey struct{}

// NewHandler builds the HTTP handler.
func NewHandler(o Options) http.Handler {
	if o.Auth == nil {
		o.Auth = Open{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	a := &api{Options: o, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection()}
	a.route("GET /healthz", RolePublic, a.healthz)
	a.route("GET /readyz", RolePublic, a.readyz)
	a.route("GET /metrics", RoleManager, promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	a.route("GET /api/v1/zones", RoleDisplay, a.listZones)
	a.route("GET /api/v1/zones/{id}", RoleDisplay, a.getZone)
	a.route("POST /api/v1/zones/{id}/correction", RoleSecurity, a.correct)
	a.route("GET /api/v1/doors", RoleManager, a.listDoors)
	a.route("GET /api/v1/devices", RoleManager, a.listDevices)
	// Go's profiler, for diagnosing a live service (memory growth, CPU under load) without a
	// restart; admin only, since a CPU profile costs the service while it runs.
	a.route("GET /debug/pprof/", RoleAdmin, pprof.Index)
	a.route("GET /debug/pprof/profile", RoleAdmin, pprof.Profile)
	a.route("GET /debug/pprof/trace", RoleAdmin, pprof.Trace)
	a.route("GET /debug/pprof/symbol", RoleAdmin, pprof.Symbol)
	a.alertRoutes()
	a.historyRoutes() // history and reports (web/history.go)
	a.route("GET /{$}", RolePublic, a.index)
	a.routeUI() // dashboard, screens, sign-in, live feed: web/ui.go
	return a
}

func (a *api) route(pattern string, need Role, h http.HandlerFunc) {
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		changes := !safeMethod(r.Method)
		// State-changing requests from another site (a page the officer's browser has open
		// elsewhere) are refused whatever cookies they carry.
		if changes {
			if err := a.csrf.Check(r); err != nil {
				a.Log.Warn("http: cross-site request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
				writeError(w, http.StatusForbidden, "cross-site request refused: "+err.Error())
				return
			}
		}
		who := ""
		if need != RolePublic {
			var err error
			who, err = a.Auth.Authorize(r, need)
			if err != nil {
				if changes {
					a.Log.Warn("http: action refused", "method", r.Method, "path", r.URL.Path, "error", err)
				}
				a.refuse(w, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), whoKey{}, who))
		}
		if !changes {
			h(w, r)
			return
		}
		// Every state-changing action is logged with who did it and how it ended.
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		h(rec, r)
		a.Log.Info("http: action", "who", who, "method", r.Method, "path", r.URL.Path, "status", rec.code)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// refuse answers an authorizer's refusal: 401 when nobody is signed in, 403 otherwise.
func (a *api) refuse(w http.ResponseWriter, err error) {
	status := http.StatusForbidden
	if errors.Is(err, ErrUnauthenticated) {
		status = http.StatusUnauthorized
	}
	writeError(w, status, err.Error())
}

// statusRecorder passes a response through and remembers its status.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

// ServeHTTP answers unknown paths and wrong methods with JSON errors like every other.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pattern := a.mux.Handler(r); pattern == "" {
		// The mux answers 404 or 405 (with Allow) in plain text; keep its status and headers,
		// drop its body, and answer in JSON like every other error.
		rec := &statusOnly{header: w.Header()}
		a.mux.ServeHTTP(rec, r)
		msg := "no such endpoint: " + r.URL.Path
		if rec.code == http.StatusMethodNotAllowed {
			msg = fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)
		}
		writeError(w, rec.code, msg)
		return
	}
	a.mux.ServeHTTP(w, r)
}

// statusOnly records a handler's status and headers and discards its body.
type statusOnly struct {
	header http.Header
	code   int
}

func (s *statusOnly) Header() http.Header         { return s.header }
func (s *statusOnly) Write(b []byte) (int, error) { return len(b), nil }
func (s *statusOnly) WriteHeader(code int)        { s.code = code }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

func (a *api) index(w http.ResponseWriter, r *http.Request) {
	if a.Live != nil && strings.Contains(r.Header.Get("Accept"), "text/html") {
		http.Redirect(w, r, "/dashboard", http.StatusSeeOther) // a browser wants the dashboard
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"service": "crowdwatch", "version": a.Version,
		"endpoints": []string{"/api/v1/zones", "/api/v1/doors", "/api/v1/devices", "/healthz", "/readyz", "/metrics"},
	})
}

func (a *api) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *api) readyz(w http.ResponseWriter, _ *http.Request) {
	checks := map[string]string{"broker": "ok", "storage": "ok"}
	ready := true
	if a.Broker == nil || !a.Broker.Connected() {
		checks["broker"], ready = "not connected", false
	}
	if !a.Engine.Healthy() {
		checks["storage"], ready = "last commit failed", false
	}
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "checks": checks})
}

type zoneList struct {
	AsOf  time.Time   `json:"as_of"`
	Site  *siteView   `json:"site,omitempty"` // with the time zone the pages show times in
	Zones []zoneNamed `json:"zones"`
}

// zoneNamed is a zone with its name in every language (configs.Names).
type zoneNamed struct {
	zones.ZoneState
	Names map[string]string `json:"names,omitempty"`
}

// named adds each zone's names per language, when the service has its store file.
func (a *api) named(z zones.ZoneState) zoneNamed {
	n := zoneNamed{ZoneState: z}
	if a.Live != nil {
		n.Names = a.Live.namesOf(z)
	}
	return n
}

func (a *api) listZones(w http.ResponseWriter, _ *http.Request) {
	s := a.Engine.Snapshot()
	list := zoneList{AsOf: s.Taken, Zones: make([]zoneNamed, 0, len(s.Zones))}
	for _, z := range s.Zones {
		list.Zones = append(list.Zones, a.named(z))
	}
	if a.Live != nil {
		site := a.Live.o.Config.Site
		list.Site = &siteView{ID: site.ID, Name: site.Name, Names: site.Names.ByLanguage(site.Name), Timezone: site.Timezone}
	}
	writeJSON(w, http.StatusOK, list)
}

func (a *api) getZone(w http.ResponseWriter, r *http.Request) {
	z, ok := a.Engine.Snapshot().Zone(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no zone %q", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, a.named(z))
}

func (a *api) listDoors(w http.ResponseWriter, _ *http.Request) {
	s := a.Engine.Snapshot()
	writeJSON(w, http.StatusOK, map[string]any{"as_of": s.Taken, "doors": s.Doors})
}

func (a *api) listDevices(w http.ResponseWriter, _ *http.Request) {
	s := a.Engine.Snapshot()
	writeJSON(w, http.StatusOK, map[string]any{"as_of": s.Taken, "devices": s.Devices})
}

type correction struct {
	Occupancy *int64 `json:"occupancy"`
	By        string `json:"by"`
	Reason    string `json:"reason"`
}

func (a *api) correct(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := a.Engine.Snapshot().Zone(id); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no zone %q", id))
		return
	}
	var c correction
	dec := json.NewDecoder(io.LimitReader(r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		writeError(w, http.StatusBadRequest, "body must be JSON {\"occupancy\": n, \"by\": \"...\", \"reason\": \"...\"}: "+err.Error())
		return
	}
	if who, _ := r.Context().Value(whoKey{}).(string); who != "" {
		c.By = who // a signed-in user cannot correct in someone else's name
	}
	c.By, c.Reason = strings.TrimSpace(c.By), strings.TrimSpace(c.Reason)
	var problems []string
	if c.Occupancy == nil {
		problems = append(problems, "occupancy is required")
	} else if *c.Occupancy < 0 {
		problems = append(problems, "occupancy must be >= 0")
	}
	if c.By == "" {
		problems = append(problems, "by (who counted) is required")
	}
	if c.Reason == "" {
		problems = append(problems, "reason is required")
	}
	if len(c.By) > 200 || len(c.Reason) > 1000 {
		problems = append(problems, "by and reason must be at most 200 and 1000 characters")
	}
	if len(problems) > 0 {
		writeError(w, http.StatusBadRequest, "correction: "+strings.Join(problems, "; "))
		return
	}
	z, err := a.Engine.Correct(r.Context(), id, *c.Occupancy, c.By, c.Reason)
	switch {
	case errors.Is(err, zones.ErrUnknownZone):
		writeError(w, http.StatusNotFound, err.Error())
	case err != nil:
		a.Log.Error("correction failed", "zone", id, "error", err)
		writeError(w, http.StatusServiceUnavailable, "correction not applied: "+err.Error())
	default:
		writeJSON(w, http.StatusOK, z)
	}
}
