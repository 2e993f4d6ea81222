// Package web serves the HTTP side of the service: the JSON API, health and readiness checks,
// Prometheus metrics, the security dashboard and guidance screens (embedded from web/assets),
// and their live WebSocket feed (Live).
package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/crowdwatch/crowdwatch/alerting"
	"github.com/crowdwatch/crowdwatch/security"
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
	// RoleDevice is a device's own push route (POST /ingest/v1/{device}): only a device token
	// bound to that device may use it, and a device token may use nothing else.
	RoleDevice Role = "device"
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
	Backups Backups       // nil: GET /api/v1/backup answers 503 (web/backup.go)
	// Audit keeps every sign-in, sign-out and state-changing call (web/auth's Store); nil:
	// they are only logged, and GET /api/v1/audit answers 503.
	Audit AuditLog
	// Events receives what the HTTP side refuses (feed connection limits); nil: Discard.
	Events security.Sink
	// Registerer, when set, gets the HTTP side's metrics (feed refusals, audit drops).
	Registerer prometheus.Registerer
	// Promotion serves the event plans, the capacity assessment, the forecast and roster
	// and the review (web/events.go); nil: those endpoints answer 503.
	Promotion Promotion
	// HA, with ha.enabled, reports this instance's role, term and lag (app/ha.go): GET
	// /api/v1/ha answers it (manager role) and /readyz adds it as "ha". nil: one instance.
	HA func(ctx context.Context) any
	// Promotion day (web/door.go); nil: those endpoints are not served.
	DrillControl  Drills
	Announcements Announcer
	Metering      Admissions
	// Ingest, when set, takes devices' pushes on POST /ingest/v1/{device} (ingest.HTTPIngest),
	// behind RoleDevice.
	Ingest http.Handler
}

type api struct {
	Options
	mux  *http.ServeMux
	csrf *http.CrossOriginProtection
	// anonAudit bounds the audit entries of refused calls from nobody (web/audit.go).
	anonAudit      *rate.Limiter
	anonSuppressed atomic.Int64
	feedLog        *rate.Limiter // log lines of refused feed connections
}

type whoKey struct{}

type screenKey struct{}

type deviceKey struct{}

// RouteDevice is the device a device route is about (the {device} of /ingest/v1/{device});
// "" on every other route. An Authorizer lets a device token through only where this is its
// own device.
func RouteDevice(r *http.Request) string {
	s, _ := r.Context().Value(deviceKey{}).(string)
	return s
}

// RouteScreen is the screen the request's route is about, as the route itself declares it
// (the {screen} of /api/v1/signage/{screen}, the ?screen= of the live feed); "" on every other
// route. An Authorizer lets a display token through only where this is its own screen, so a
// display token cannot borrow a screen from the query string of a route about something else.
func RouteScreen(r *http.Request) string {
	s, _ := r.Context().Value(screenKey{}).(string)
	return s
}

// routeOpts say how a route is guarded.
type routeOpts struct {
	need Role
	// screen, for routes about one screen (the only ones a display token may use), says
	// which screen a request is about.
	screen func(*http.Request) string
	// selfAudited routes (sign-in, sign-out) write their own, more telling, audit entries.
	selfAudited bool
	// device, for device routes, says which device a request is about; such routes are not
	// audited or logged per request (devices push every few seconds; refusals are counted).
	device func(*http.Request) string
}

// NewHandler builds the HTTP handler.
func NewHandler(o Options) http.Handler {
	if o.Auth == nil {
		o.Auth = Open{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Events == nil {
		o.Events = security.Discard
	}
	a := &api{Options: o, mux: http.NewServeMux(), csrf: http.NewCrossOriginProtection(),
		anonAudit: rate.NewLimiter(anonAuditRate, anonAuditBurst), feedLog: rate.NewLimiter(1, 10)}
	if o.Registerer != nil && o.Live != nil {
		o.Live.registerMetrics(o.Registerer)
	}
	a.route("GET /healthz", RolePublic, a.healthz)
	a.route("GET /readyz", RolePublic, a.readyz)
	a.route("GET /metrics", RoleManager, promhttp.HandlerFor(o.Gatherer, promhttp.HandlerOpts{}).ServeHTTP)
	a.route("GET /api/v1/zones", RoleManager, a.listZones)
	a.route("GET /api/v1/zones/{id}", RoleManager, a.getZone)
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
	a.backupRoutes()  // consistent copies of the files, admin only (web/backup.go)
	a.eventRoutes()   // event plans, assessment, forecast, review (web/events.go)
	a.doorRoutes()    // drills, announcements, metered doors (web/door.go)
	// The audit log: sign-ins, sign-outs and every state-changing call (web/audit.go).
	a.route("GET /api/v1/audit", RoleManager, a.listAudit)
	if o.HA != nil {
		a.route("GET /api/v1/ha", RoleManager, func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, o.HA(r.Context())) })
	}
	if o.Ingest != nil {
		a.handle("POST /ingest/v1/{device}", routeOpts{need: RoleDevice, device: func(r *http.Request) string { return r.PathValue("device") }},
			o.Ingest.ServeHTTP)
	}
	a.route("GET /{$}", RolePublic, a.index)
	a.routeUI() // dashboard, screens, sign-in, live feed: web/ui.go
	return a
}

func (a *api) route(pattern string, need Role, h http.HandlerFunc) {
	a.handle(pattern, routeOpts{need: need}, h)
}

// screenRoute adds a route about one screen: display tokens of that screen may read it.
func (a *api) screenRoute(pattern string, screen func(*http.Request) string, h http.HandlerFunc) {
	a.handle(pattern, routeOpts{need: RoleDisplay, screen: screen}, h)
}

func (a *api) handle(pattern string, o routeOpts, h http.HandlerFunc) {
	need := o.need
	a.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		changes := !safeMethod(r.Method)
		if o.screen != nil {
			r = r.WithContext(context.WithValue(r.Context(), screenKey{}, o.screen(r)))
		}
		if o.device != nil {
			r = r.WithContext(context.WithValue(r.Context(), deviceKey{}, o.device(r)))
			changes = false // a device's report, not a person's action: counted, not audited
		}
		// Every state-changing call ends up in the audit log, refused or not, with who made
		// it and how it ended.
		var rec *statusRecorder
		if changes {
			// The handler may say what its call did (setAuditDetail) for the audit entry.
			r = r.WithContext(context.WithValue(r.Context(), auditDetailKey{}, new(string)))
			rec = &statusRecorder{ResponseWriter: w, code: http.StatusOK}
			w = rec
			if !o.selfAudited {
				defer func() { a.auditCall(r, rec.code) }()
			}
		}
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
					a.Log.Warn("http: action refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "error", err)
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
		h(w, r)
		a.Log.Info("http: action", "who", who, "method", r.Method, "path", r.URL.Path, "status", rec.code, "remote", r.RemoteAddr)
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

// Unwrap lets http.ResponseController reach the connection (the WebSocket upgrade).
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// ServeHTTP answers unknown paths and wrong methods with JSON errors like every other.
func (a *api) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// No answer of this service is to be content-sniffed: JSON stays JSON, a script a script.
	w.Header().Set("X-Content-Type-Options", "nosniff")
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
	w.Header().Set("X-Content-Type-Options", "nosniff")
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

func (a *api) readyz(w http.ResponseWriter, r *http.Request) {
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
	body := map[string]any{"ready": ready, "checks": checks}
	if a.HA != nil {
		body["ha"] = a.HA(r.Context()) // a standby or a degraded instance is ready: it serves pages
	}
	if p := a.peers(); len(p) > 0 {
		body["peers"] = p // where the pages may move (web/peers.go)
	}
	a.allowPeer(w, r)
	writeJSON(w, status, body)
}

type zoneList struct {
	AsOf  time.Time  `json:"as_of"`
	Site  *siteView  `json:"site,omitempty"` // with the time zone the pages show times in
	Zones []zoneInfo `json:"zones"`
}

// zoneInfo is a zone's figures with the level it is shown at (level, pending, pending_since,
// uncertain): the same as the live feed's and the retained zone topic's; and its name in
// every language (configs.Names).
type zoneInfo struct {
	zones.ZoneState
	alerting.ZoneLevel
	Names map[string]string `json:"names,omitempty"`
}

// status is the alert manager's latest status, nil without alerting (levels then come from
// the built-in thresholds, as on the live feed).
func (a *api) status() *alerting.Status {
	if a.Alerting == nil {
		return nil
	}
	return a.Alerting.Status()
}

// info is what the API says of a zone: its figures, shown level and names.
func (a *api) info(z zones.ZoneState, st *alerting.Status) zoneInfo {
	n := zoneInfo{ZoneState: z, ZoneLevel: st.Show(z)}
	if a.Live != nil {
		n.Names = a.Live.namesOf(z)
	}
	return n
}

func (a *api) listZones(w http.ResponseWriter, _ *http.Request) {
	s := a.Engine.Snapshot()
	st := a.status()
	list := zoneList{AsOf: s.Taken, Zones: make([]zoneInfo, 0, len(s.Zones))}
	for _, z := range s.Zones {
		list.Zones = append(list.Zones, a.info(z, st))
	}
	if a.Live != nil {
		site := a.Live.o.Layout.Site
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
	writeJSON(w, http.StatusOK, a.info(z, a.status()))
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
	if err := decodeBody(r, &c, `{"occupancy": n, "by": "...", "reason": "..."}`); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
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
	case errors.Is(err, zones.ErrCorrectionRange):
		writeError(w, http.StatusBadRequest, "correction: "+err.Error())
	case err != nil:
		a.Log.Error("correction failed", "zone", id, "error", err)
		writeError(w, http.StatusServiceUnavailable, "correction not applied: "+err.Error())
	default:
		writeJSON(w, http.StatusOK, z)
	}
}

// maxBody is the largest JSON body an endpoint reads.
const maxBody = 16 << 10

// decodeJSON reads exactly one JSON value of at most limit bytes into v, with no unknown
// fields and nothing but white space after it: `{...}{...}` or `{...} x` is refused, so what a
// client sent is what the service acted on. Every JSON body goes through here.
func decodeJSON(body io.Reader, limit int64, v any) error {
	b, err := io.ReadAll(io.LimitReader(body, limit+1))
	if err != nil {
		return fmt.Errorf("reading the body: %w", err)
	}
	if int64(len(b)) > limit {
		return fmt.Errorf("the body is larger than %d bytes", limit)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON value (send one JSON object)")
	}
	return nil
}
