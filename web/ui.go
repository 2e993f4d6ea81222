package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"

	"github.com/crowdwatch/crowdwatch/web/assets"
)

// SignIn is what the sign-in endpoints need (web/auth implements it).
type SignIn interface {
	Login(ctx context.Context, username, password string) (*http.Cookie, string, error)
	Logout() *http.Cookie
	Whoami(r *http.Request) (who, role string, ok bool)
	Enabled() bool
	HasUsers() bool
}

// routeUI adds the browser side when the service runs the live feed.
func (a *api) routeUI() {
	if a.Live == nil {
		return
	}
	static := http.FileServerFS(assets.FS())
	page := func(name string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			b, err := fs.ReadFile(assets.FS(), name)
			if err != nil {
				writeError(w, http.StatusInternalServerError, "missing page "+name)
				return
			}
			securityHeaders(w)
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write(b)
		}
	}
	a.route("GET /dashboard", RolePublic, page("dashboard.html"))
	a.route("GET /login", RolePublic, page("login.html"))
	a.route("GET /manager", RolePublic, page("manager.html")) // its data needs the manager role
	a.route("GET /signage/{screen}", RolePublic, func(w http.ResponseWriter, r *http.Request) {
		if _, ok := a.Live.o.Config.Screen(r.PathValue("screen")); !ok {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no screen %q", r.PathValue("screen")))
			return
		}
		page("signage.html")(w, r)
	})
	a.route("GET /static/{file...}", RolePublic, func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Cache-Control", "no-cache")
		http.StripPrefix("/static", static).ServeHTTP(w, r)
	})
	a.route("GET /plans/{floor}", RoleManager, a.plan)
	a.route("GET /api/v1/session", RolePublic, a.session)
	a.route("POST /api/v1/session", RolePublic, a.login)
	a.route("DELETE /api/v1/session", RolePublic, a.logout)
	a.route("GET /api/v1/signage/{screen}", RoleDisplay, a.signage)
	a.route("GET /api/v1/live", RoleDisplay, a.feed)
}

// securityHeaders keep the pages to their own scripts and out of other sites' frames.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

func (a *api) plan(w http.ResponseWriter, r *http.Request) {
	for _, f := range a.Live.o.Config.Floors {
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

// DecodeLogin reads a sign-in body: JSON, at most 4 KiB, no other fields, both fields set.
func DecodeLogin(body io.Reader) (LoginRequest, error) {
	var req LoginRequest
	dec := json.NewDecoder(io.LimitReader(body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
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
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	cookie, role, err := a.SignIn.Login(r.Context(), req.Username, req.Password)
	if err != nil {
		a.Log.Warn("http: sign-in failed", "user", req.Username, "remote", r.RemoteAddr)
		writeError(w, http.StatusUnauthorized, err.Error())
		return
	}
	a.Log.Info("http: signed in", "who", req.Username, "role", role, "remote", r.RemoteAddr)
	http.SetCookie(w, cookie)
	writeJSON(w, http.StatusOK, sessionInfo{User: req.Username, Role: role, SignedIn: true, AuthEnabled: true, SecurityActions: true})
}

func (a *api) logout(w http.ResponseWriter, r *http.Request) {
	if a.SignIn != nil {
		who, _, _ := a.SignIn.Whoami(r)
		a.Log.Info("http: signed out", "who", who)
		http.SetCookie(w, a.SignIn.Logout())
	}
	writeJSON(w, http.StatusOK, sessionInfo{})
}
