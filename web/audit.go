package web

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"
)

// AuditEntry is one line of the audit log: a sign-in (ok, failed or throttled), a sign-out,
// a revocation, or a state-changing call, with who made it and how it ended.
type AuditEntry struct {
	Seq    uint64    `json:"seq"` // set by the log, increasing
	At     time.Time `json:"at"`
	Event  string    `json:"event"` // one of the Audit* constants
	Who    string    `json:"who,omitempty"`
	Role   string    `json:"role,omitempty"`
	Remote string    `json:"remote,omitempty"`
	Method string    `json:"method,omitempty"`
	Path   string    `json:"path,omitempty"`
	Status int       `json:"status,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

// Audit events.
const (
	AuditSignIn          = "signin"
	AuditSignInFailed    = "signin_failed"
	AuditSignInThrottled = "signin_throttled"
	AuditSignOut         = "signout"
	AuditRevoke          = "revoke_sessions"
	AuditAction          = "action" // any other state-changing call
)

// AuditQuery selects entries, newest first: at or after Since, before Until, with a
// sequence below Before (the cursor of the previous page), at most Limit.
type AuditQuery struct {
	Since, Until time.Time
	Before       uint64
	Limit        int
	Event, Who   string
}

// AuditLog keeps the audit entries (web/auth's Store implements it). Append must not wait
// for the disk: it queues.
type AuditLog interface {
	Append(AuditEntry)
	Query(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// Bounds of GET /api/v1/audit.
const (
	auditDefaultLimit = 100
	auditMaxLimit     = 1000
)

// audit appends e (with the request's remote address and time) when there is a log.
func (a *api) audit(r *http.Request, e AuditEntry) {
	if a.Audit == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.Remote = r.RemoteAddr
	if e.Method == "" {
		e.Method, e.Path = r.Method, r.URL.Path
	}
	a.Audit.Append(e)
}

// Refused calls from nobody (no valid session or token) cost an attacker nothing, so they may
// fill at most this much of the audit log: a burst of anonAuditBurst, then anonAuditRate a
// second; the ones left out are counted in the next entry that is written.
const (
	anonAuditRate  = 20
	anonAuditBurst = 100
)

// auditCall records a state-changing call. who and role are the caller's, also when the call
// was refused (a valid token used outside its role is worth knowing).
func (a *api) auditCall(r *http.Request, status int) {
	if a.Audit == nil {
		return
	}
	e := AuditEntry{Event: AuditAction, Status: status}
	e.Who, _ = r.Context().Value(whoKey{}).(string)
	if d, ok := r.Context().Value(auditDetailKey{}).(*string); ok {
		e.Detail = *d // what the call did, when its handler says (web/events.go)
	}
	if a.SignIn != nil {
		if who, role, ok := a.SignIn.Whoami(r); ok {
			e.Who, e.Role = who, role
		}
	}
	if e.Who == "" && status >= 400 {
		if !a.anonAudit.Allow() {
			a.anonSuppressed.Add(1)
			return
		}
		if n := a.anonSuppressed.Swap(0); n > 0 {
			e.Detail = fmt.Sprintf("%d more refused calls from nobody were left out of the log", n)
		}
	}
	a.audit(r, e)
}

// listAudit is GET /api/v1/audit?since=&until=&before=&limit=&event=&who=.
func (a *api) listAudit(w http.ResponseWriter, r *http.Request) {
	if a.Audit == nil {
		writeError(w, http.StatusServiceUnavailable, "this service keeps no audit log")
		return
	}
	q, err := parseAuditQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	list, err := a.Audit.Query(r.Context(), q)
	if err != nil {
		a.Log.Error("http: reading the audit log", "error", err)
		writeError(w, http.StatusServiceUnavailable, "reading the audit log failed: "+err.Error())
		return
	}
	if list == nil {
		list = []AuditEntry{}
	}
	out := map[string]any{"entries": list}
	if len(list) == q.Limit {
		out["next"] = strconv.FormatUint(list[len(list)-1].Seq, 10) // ?before= for the next page
	}
	writeJSON(w, http.StatusOK, out)
}

func parseAuditQuery(r *http.Request) (AuditQuery, error) {
	v := r.URL.Query()
	q := AuditQuery{Limit: auditDefaultLimit, Event: v.Get("event"), Who: v.Get("who")}
	for _, f := range []struct {
		key string
		to  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(f.key); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return q, fmt.Errorf("%s=%q must be an RFC 3339 time like 2026-11-27T08:00:00Z", f.key, s)
			}
			*f.to = t
		}
	}
	if s := v.Get("before"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return q, fmt.Errorf("before=%q must be the \"next\" of the previous page (a positive number)", s)
		}
		q.Before = n
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > auditMaxLimit {
			return q, fmt.Errorf("limit=%q must be between 1 and %d", s, auditMaxLimit)
		}
		q.Limit = n
	}
	if len(q.Who) > 200 || len(q.Event) > 64 {
		return q, fmt.Errorf("who and event are at most 200 and 64 characters")
	}
	return q, nil
}

// RemoteHost is who a request comes from, for limits and throttles: the IP of the TCP peer,
// or for IPv6 its /64 (one host usually holds a whole /64, and could otherwise step through
// it). A reverse proxy in front makes every client one address (docs/security.md).
func RemoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
