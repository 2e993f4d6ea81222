package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/web/assets"
)

// SignIn is what the sign-in endpoints need (web/auth implements it).
type SignIn interface {
	// Login checks a password, throttled per user and per remote host; a throttled attempt
	// answers a *ThrottledError.
	Login(ctx context.Context, username, password, remoteHost string) (*http.Cookie, string, error)
	// Logout revokes the request's session (if any) for good and returns the cookie that
	// clears it and who was signed in.
	Logout(ctx context.Context, r *http.Request) (*http.Cookie, string, error)
	// SignOutEverywhere revokes every session of a user; ErrNoSuchUser for an unknown one.
	SignOutEverywhere(ctx context.Context, user string) (int, error)
	Whoami(r *http.Request) (who, role string, ok bool)
	Enabled() bool
	HasUsers() bool
}

// ErrBadLogin is a wrong username or password (the two are not told apart): 401. Any other
// error of SignIn.Login is the service's fault: 503.
var ErrBadLogin = errors.New("wrong username or password")

// ErrNoSuchUser is a user name the store file does not have.
var ErrNoSuchUser = errors.New("no such user")

// ThrottledError refuses a sign-in attempt until Wait has passed. First marks the first
// refusal of this wait: only it is logged and audited, so that hammering does not flood them.
type ThrottledError struct {
	Wait  time.Duration
	First bool
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("too many sign-in attempts; wait %d s", retryAfterSeconds(e.Wait))
}

func retryAfterSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

// noDirs hides directories: /static/ and its folders list nothing, and answer 404.
type noDirs struct{ fs.FS }

func (n noDirs) Open(name string) (fs.File, error) {
	f, err := n.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return f, nil
}

// routeUI adds the browser side when the service runs the live feed.
func (a *api) routeUI() {
	if a.Live == nil {
		return
	}
	static := http.FileServerFS(noDirs{assets.FS()})
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := fs.ReadFile(assets.FS(), name)
			if err != nil {
				writeError(w, http.StatusInternalServerError, "missing page "+name)
				return
			}
			a.securityHeaders(w)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(b)
		}
	}
	a.route("GET /dashboard", RolePublic, page("dashboard.html"))
	a.route("GET /login", RolePublic, page("login.html"))
	a.route("GET /manager", RolePublic, page("manager.html")) // its data needs the manager role
	a.route("GET /signage/{screen}", RolePublic, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.Live.o.Layout.Screen(r.PathValue("screen")); !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no screen %q", r.PathValue("screen")))
			return
		}
		page("signage.html")(w, r)
	})
	a.route("GET /static/{file...}", RolePublic, func(w http.ResponseWriter, r *http.Request) {
		a.securityHeaders(w)
		w.Header().Set("Cache-Control", "no-cache")
		http.StripPrefix("/static", static).ServeHTTP(w, r)
	})
	a.route("GET /plans/{floor}", RoleManager, a.plan)
	a.route("GET /api/v1/session", RolePublic, a.session)
	a.handle("POST /api/v1/session", routeOpts{selfAudited: true}, a.login)
	a.handle("DELETE /api/v1/session", routeOpts{selfAudited: true}, a.logout)
	a.route("DELETE /api/v1/users/{user}/sessions", RoleAdmin, a.signOutEverywhere)
	a.screenRoute("GET /api/v1/signage/{screen}", func(r *http.Request) string { return r.PathValue("screen") }, a.signage)
	// The feed names its screen in the query: only this route reads it as the screen.
	a.screenRoute("GET /api/v1/live", func(r *http.Request) string { return r.URL.Query().Get("screen") }, a.feed)
}

// securityHeaders keep the pages to their own scripts and out of other sites' frames. The
// pages may connect to their own origin and, with ha.peers, fetch from the store's other
// instances (only their /readyz answers another origin: web/peers.go).
func (a *api) securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src "+
		a.connectSrc()+"; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (a *api) plan(w http.ResponseWriter, r *http.Request) {
	for _, f := range a.Live.o.Layout.Floors {
		if f.ID == r.PathValue("floor") && f.Plan != "" {
			w.Header().Set("Content-Security-Policy", "sandbox") // an SVG plan runs no script
			w.Header().Set("Cache-Control", "no-cache")
			http.ServeFile(w, r, f.Plan)
			return
		}
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no plan for floor %q", r.PathValue("floor")))
}

func (a *api) signage(w http.ResponseWriter, r *http.Request) {
	g, ok := a.Live.Guidance(r.PathValue("screen"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no screen %q", r.PathValue("screen")))
		return
	}
	writeJSON(w, http.StatusOK, g)
}

// sessionInfo is GET /api/v1/session.
type sessionInfo struct {
	User            string `json:"user,omitempty"`
	Role            string `json:"role,omitempty"`
	SignedIn        bool   `json:"signed_in"`
	AuthEnabled     bool   `json:"auth_enabled"`
	SecurityActions bool   `json:"security_actions"` // false: no users, the service refuses them
}

func (a *api) session(w http.ResponseWriter, r *http.Request) {
	info := sessionInfo{}
	if a.SignIn != nil {
		info.AuthEnabled, info.SecurityActions = a.SignIn.Enabled(), a.SignIn.HasUsers()
		info.User, info.Role, info.SignedIn = a.SignIn.Whoami(r)
	}
	writeJSON(w, http.StatusOK, info)
}

// LoginRequest is the body of POST /api/v1/session.
type LoginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// DecodeLogin reads a sign-in body: one JSON object, at most 4 KiB, no other fields, both
// fields set.
func DecodeLogin(body io.Reader) (LoginRequest, error) {
	var req LoginRequest
	if err := decodeJSON(body, 4<<10, &req); err != nil {
		return LoginRequest{}, fmt.Errorf("body must be JSON {\"username\": \"...\", \"password\": \"...\"}: %w", err)
	}
	req.Username = strings.TrimSpace(req.Username)
	if req.Username == "" || req.Password == "" {
		return LoginRequest{}, fmt.Errorf("username and password are required")
	}
	return req, nil
}

func (a *api) login(w http.ResponseWriter, r *http.Request) {
	if a.SignIn == nil || !a.SignIn.HasUsers() {
		writeError(w, http.StatusForbidden, "sign-in is not possible: no users are configured (see auth.users in docs/config.md)")
		return
	}
	req, err := DecodeLogin(r.Body)
	if err != nil {
		a.audit(r, AuditEntry{Event: AuditSignInFailed, Status: http.StatusBadRequest, Detail: "unreadable sign-in body"})
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cookie, role, err := a.SignIn.Login(r.Context(), req.Username, req.Password, RemoteHost(r))
	// What was tried goes into the log and the audit, but no more of it than a user name has.
	tried := req.Username
	if len(tried) > 100 {
		tried = tried[:100] + "…"
	}
	var throttled *ThrottledError
	switch {
	case errors.As(err, &throttled):
		secs := retryAfterSeconds(throttled.Wait)
		if throttled.First {
			a.Log.Warn("http: sign-in throttled", "user", tried, "remote", r.RemoteAddr, "retry_after_s", secs)
			a.audit(r, AuditEntry{Event: AuditSignInThrottled, Who: tried, Status: http.StatusTooManyRequests,
				Detail: fmt.Sprintf("refused for %d s (later attempts in this wait are only counted)", secs)})
		}
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": throttled.Error(), "retry_after_s": secs})
		return
	case err != nil && r.Context().Err() != nil:
		return // the client went away while waiting for a password check
	case err != nil && !errors.Is(err, ErrBadLogin):
		a.Log.Error("http: sign-in not completed", "user", tried, "remote", r.RemoteAddr, "error", err)
		a.audit(r, AuditEntry{Event: AuditSignInFailed, Who: tried, Status: http.StatusServiceUnavailable, Detail: err.Error()})
		writeError(w, http.StatusServiceUnavailable, "sign-in failed on the service's side: "+err.Error())
		return
	case err != nil:
		a.Log.Warn("http: sign-in failed", "user", tried, "remote", r.RemoteAddr)
		a.audit(r, AuditEntry{Event: AuditSignInFailed, Who: tried, Status: http.StatusUnauthorized})
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	a.Log.Info("http: signed in", "who", req.Username, "role", role, "remote", r.RemoteAddr)
	a.audit(r, AuditEntry{Event: AuditSignIn, Who: req.Username, Role: role, Status: http.StatusOK})
	http.SetCookie(w, cookie)
	writeJSON(w, http.StatusOK, sessionInfo{User: req.Username, Role: role, SignedIn: true, AuthEnabled: true, SecurityActions: true})
}

// logout revokes the session on the server (a copy of the cookie is worthless afterwards)
// and answers the service's real state: signed out, sign-in still on.
func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	if a.SignIn == nil {
		writeJSON(w, http.StatusOK, sessionInfo{})
		return
	}
	cookie, who, err := a.SignIn.Logout(r.Context(), r)
	if err != nil {
		a.Log.Error("http: sign-out not recorded", "who", who, "error", err)
		a.audit(r, AuditEntry{Event: AuditSignOut, Who: who, Status: http.StatusServiceUnavailable, Detail: err.Error()})
		writeError(w, http.StatusServiceUnavailable, "sign-out failed, the session is still valid: "+err.Error())
		return
	}
	a.Log.Info("http: signed out", "who", who, "remote", r.RemoteAddr)
	if who != "" {
		a.audit(r, AuditEntry{Event: AuditSignOut, Who: who, Status: http.StatusOK})
	}
	http.SetCookie(w, cookie)
	writeJSON(w, http.StatusOK, sessionInfo{AuthEnabled: a.SignIn.Enabled(), SecurityActions: a.SignIn.HasUsers()})
}

// signOutEverywhere is DELETE /api/v1/users/{user}/sessions (admin): every session of the
// user ends now, on every device.
func (a *api) signOutEverywhere(w http.ResponseWriter, r *http.Request) {
	user := r.PathValue("user")
	if a.SignIn == nil {
		writeError(w, http.StatusNotFound, "sign-in is not configured")
		return
	}
	n, err := a.SignIn.SignOutEverywhere(r.Context(), user)
	switch {
	case errors.Is(err, ErrNoSuchUser):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no user %q", user))
		return
	case err != nil:
		a.Log.Error("http: revoking sessions", "user", user, "error", err)
		writeError(w, http.StatusServiceUnavailable, "revoking the sessions failed: "+err.Error())
		return
	}
	by, _ := r.Context().Value(whoKey{}).(string)
	a.Log.Info("http: sessions revoked", "user", user, "count", n, "by", by)
	a.audit(r, AuditEntry{Event: AuditRevoke, Who: by, Detail: fmt.Sprintf("signed %s out everywhere (%d sessions)", user, n), Status: http.StatusOK})
	writeJSON(w, http.StatusOK, map[string]any{"user": user, "revoked": n})
}
