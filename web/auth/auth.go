// Package auth signs people and machines in: users with bcrypt password hashes from the store
// file, sessions held on the server (Store) behind a random HttpOnly SameSite cookie, API
// tokens (stored as SHA-256) sent as Authorization: Bearer, and per-screen display tokens
// that read only their own screen. Sign-in is throttled per user and per host. It implements
// web.Authorizer and web.SignIn; its Store is the web.AuditLog.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/security"
	"github.com/crowdwatch/crowdwatch/web"
)

// CookieName is the session cookie.
const CookieName = "cw_session"

// Principal is who a request comes from.
type Principal struct {
	Name   string // username, or "token:<name>" for a token
	Role   string // display, manager, security, admin
	Screen string // for display tokens: the one screen it may read
	Device string // for device tokens: the one device whose reports it may push
}

// ErrActionsDisabled refuses security actions on a service without users.
var ErrActionsDisabled = errors.New("security actions are disabled: no users are configured " +
	"(add auth.users to the store file, see docs/config.md)")

// ErrBadLogin is a wrong username or password (the two are not told apart).
var ErrBadLogin = web.ErrBadLogin

// Authorizer checks requests against the users and tokens of the store file. Its maps are
// built once and never changed, so it needs no lock; sessions and the throttle live in the
// Store.
type Authorizer struct {
	users  map[string]configs.WebUser
	tokens map[[32]byte]configs.APIToken
	// deviceTokens counts the tokens of role device.
	deviceTokens int
	ttl          time.Duration
	secure       bool
	now          func() time.Time
	slots        chan struct{} // bounds concurrent bcrypt checks (each takes ~50 ms of CPU)
	store        *Store
	own          bool // the store was made by New (memory only) and is closed by Close
	events       security.Sink
	// sharer and domain are set before serving (share.go); nil and "": one instance.
	sharer Sharer
	domain string
}

// Options wire an Authorizer.
type Options struct {
	// Secure marks cookies Secure (HTTPS).
	Secure bool
	// Store keeps the sessions and the throttle; nil: a memory-only one (a restart signs
	// everybody out).
	Store *Store
	// Events gets failed, throttled and refused sign-ins and tokens; nil: Discard.
	Events security.Sink
	Now    func() time.Time
}

// New builds an authorizer.
func New(a configs.Auth, o Options) (*Authorizer, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Events == nil {
		o.Events = security.Discard
	}
	z := &Authorizer{users: map[string]configs.WebUser{}, tokens: map[[32]byte]configs.APIToken{},
		ttl: a.SessionTTL, secure: o.Secure, now: o.Now, slots: make(chan struct{}, 2), store: o.Store, events: o.Events}
	if z.ttl <= 0 {
		z.ttl = 12 * time.Hour
	}
	for _, u := range a.Users {
		z.users[u.Username] = u
	}
	for _, t := range a.Tokens {
		var h [32]byte
		b, err := hex.DecodeString(t.SHA256)
		if err != nil || len(b) != 32 {
			return nil, fmt.Errorf("auth: token %q: sha256 must be 64 hex digits", t.Name)
		}
		copy(h[:], b)
		z.tokens[h] = t
		if t.Role == "device" {
			z.deviceTokens++
		}
	}
	if z.store == nil {
		st, err := OpenStore("", StoreOptions{Now: o.Now})
		if err != nil {
			return nil, err
		}
		z.store, z.own = st, true
	}
	return z, nil
}

// Close stops a store New made; a Store passed in Options is its owner's to close.
func (z *Authorizer) Close() {
	if z.own {
		_ = z.store.Close()
	}
}

// Enabled reports whether any user or token other than a device's is configured. Without,
// reads are open and security actions are refused. Device tokens only push their device's
// reports, so they close nothing that was open.
func (z *Authorizer) Enabled() bool { return len(z.users)+len(z.tokens)-z.deviceTokens > 0 }

// HasUsers reports whether anybody can sign in to take security actions.
func (z *Authorizer) HasUsers() bool { return len(z.users) > 0 }

var rank = map[string]int{"display": 1, "manager": 2, "security": 3, "admin": 4}

// Authorize implements web.Authorizer.
func (z *Authorizer) Authorize(r *http.Request, need web.Role) (string, error) {
	p, ok := z.Identify(r)
	if need == web.RoleDevice {
		return z.authorizeDevice(r, p, ok)
	}
	if !ok {
		if tok := presentedToken(r); tok != "" {
			z.events.Record(security.Event{Kind: security.TokenRefused, Source: web.RemoteHost(r), Subject: "unknown token",
				Detail: fmt.Sprintf("%s %s with a token that matches none", r.Method, r.URL.Path), At: z.now()})
		}
		if !z.HasUsers() && rank[string(need)] >= rank["security"] {
			return "", ErrActionsDisabled
		}
		if !z.Enabled() {
			return "", nil // open reads, as the log says at start
		}
		return "", fmt.Errorf("%w: sign in, or send a token as Authorization: Bearer", web.ErrUnauthenticated)
	}
	var refused error
	switch {
	case p.Role == "device":
		refused = fmt.Errorf("a device token only pushes its own device's reports (%s)", p.Device)
	case p.Role == "display":
		// Only a route about one screen names one (web.RouteScreen); a display token may use
		// such a route for its own screen and nothing else.
		if need != web.RoleDisplay || web.RouteScreen(r) == "" {
			refused = fmt.Errorf("a display token reads only its own screen's guidance and feed (%s)", p.Screen)
		} else if web.RouteScreen(r) != p.Screen {
			refused = fmt.Errorf("a display token reads only its own screen (%s)", p.Screen)
		}
	case rank[p.Role] < rank[string(need)]:
		refused = fmt.Errorf("role %s may not do this (needs %s)", p.Role, need)
	}
	if refused != nil {
		if strings.HasPrefix(p.Name, "token:") {
			z.events.Record(security.Event{Kind: security.TokenRefused, Source: web.RemoteHost(r), Subject: p.Name,
				Detail: fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, refused), At: z.now()})
		}
		return "", refused
	}
	return p.Name, nil
}

// authorizeDevice lets a push through only with the device token of the route's device: any
// other caller, or none (a device push is never open, even with no users or tokens), is
// refused with a security event.
func (z *Authorizer) authorizeDevice(r *http.Request, p Principal, ok bool) (string, error) {
	device := web.RouteDevice(r)
	var refused error
	subject := p.Name
	switch {
	case !ok:
		subject = "no token"
		if presentedToken(r) != "" {
			subject = "unknown token"
		}
		refused = fmt.Errorf("%w: push with the device's token (Authorization: Bearer, the HTTP Basic password, or ?token=)", web.ErrUnauthenticated)
	case p.Role != "device":
		refused = fmt.Errorf("%w: only a device token pushes device reports", web.ErrUnauthenticated)
	case p.Device != device:
		refused = fmt.Errorf("%w: this token is device %q's, not %q's", web.ErrUnauthenticated, p.Device, device)
	}
	if refused != nil {
		z.events.Record(security.Event{Kind: security.TokenRefused, Source: web.RemoteHost(r), Subject: subject,
			Detail: fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, refused), At: z.now()})
		return "", refused
	}
	return p.Name, nil
}

// presentedToken is the token a request carries, if any (to report one that matches none).
func presentedToken(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		return h
	}
	return r.URL.Query().Get("token")
}

// Identify returns the request's principal: a bearer token, a display token in the URL
// (?token=, display tokens only: others must not end up in logs), or a session cookie whose
// session the store still holds.
func (z *Authorizer) Identify(r *http.Request) (Principal, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := ParseBearer(h)
		deviceOnly := false
		if !ok {
			// Many counters can only send HTTP Basic: the password is a device token.
			if _, pw, basic := r.BasicAuth(); basic && pw != "" && len(pw) <= 512 {
				tok, ok, deviceOnly = pw, true, true
			}
		}
		if !ok {
			return Principal{}, false
		}
		t, ok := z.tokens[sha256.Sum256([]byte(tok))]
		if !ok || (deviceOnly && t.Role != "device") {
			return Principal{}, false
		}
		return principalOf(t), true
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		// In the URL only display tokens (screens) and device tokens (counters that can
		// send nothing else): others must not end up in logs.
		t, ok := z.tokens[sha256.Sum256([]byte(tok))]
		if !ok || (t.Role != "display" && t.Role != "device") {
			return Principal{}, false
		}
		return principalOf(t), true
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return Principal{}, false
	}
	id, ok := parseSession(c.Value)
	if !ok {
		return Principal{}, false
	}
	sess, ok := z.store.lookup(r.Context(), id)
	if !ok {
		return Principal{}, false
	}
	u, ok := z.users[sess.User]
	if !ok {
		return Principal{}, false // removed from the store file since
	}
	return Principal{Name: u.Username, Role: u.Role}, true
}

func principalOf(t configs.APIToken) Principal {
	return Principal{Name: "token:" + t.Name, Role: t.Role, Screen: t.Screen, Device: t.Device}
}

// Whoami implements web.SignIn.
func (z *Authorizer) Whoami(r *http.Request) (who, role string, ok bool) {
	p, ok := z.Identify(r)
	return p.Name, p.Role, ok
}

// ParseBearer reads "Bearer <token>" (scheme case-insensitive).
func ParseBearer(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	if tok == "" || len(tok) > 512 || strings.ContainsAny(tok, " \t\r\n") {
		return "", false
	}
	return tok, true
}

// dummyHash keeps the time of a login for an unknown user like that of a known one.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("crowdwatch-no-such-user"), bcrypt.DefaultCost)

// Login checks a username and password and returns the session cookie to set. Attempts are
// throttled per user name and per remote host (throttle.go): a throttled one answers a
// *web.ThrottledError without checking the password.
func (z *Authorizer) Login(ctx context.Context, username, password, host string) (*http.Cookie, string, error) {
	tried := username // for events: a user name is at most 64 characters, what was tried may be more
	if len(tried) > 100 {
		tried = tried[:100]
	}
	wait, first, err := z.store.attempt(ctx, tried, host)
	if err != nil {
		return nil, "", fmt.Errorf("sign-in: %w", err)
	}
	if wait > 0 {
		z.events.Record(security.Event{Kind: security.SignInThrottled, Source: host, Subject: tried,
			Detail: fmt.Sprintf("sign-in attempt refused for %v by the throttle", wait.Round(time.Second)), At: z.now()})
		return nil, "", &web.ThrottledError{Wait: wait, First: first}
	}
	select {
	case z.slots <- struct{}{}:
		defer func() { <-z.slots }()
	case <-ctx.Done():
		return nil, "", fmt.Errorf("sign-in abandoned: %w", ctx.Err())
	}
	u, known := z.users[username]
	hash := dummyHash
	if known {
		hash = []byte(u.PasswordHash)
	}
	if len(password) > 72 {
		password = password[:72] // bcrypt's limit; GenerateFromPassword refuses longer ones
	}
	if err := bcrypt.CompareHashAndPassword(hash, []byte(password)); err != nil || !known {
		z.events.Record(security.Event{Kind: security.SignInFailed, Source: host, Subject: tried,
			Detail: "wrong username or password", At: z.now()})
		return nil, "", ErrBadLogin
	}
	z.store.succeeded(tried, host)
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, "", fmt.Errorf("auth: no randomness for a session: %w", err)
	}
	now := z.now()
	exp := now.Add(z.ttl)
	id, sess := sha256.Sum256(secret), session{User: u.Username, Created: now, Expires: exp, Remote: host}
	if err := z.store.createSession(ctx, id, sess); err != nil {
		return nil, "", err
	}
	z.shareCreated(ctx, id, sess)
	return &http.Cookie{Name: CookieName, Value: base64.RawURLEncoding.EncodeToString(secret), Path: "/", Expires: exp,
		MaxAge: int(z.ttl / time.Second), HttpOnly: true, Secure: z.secure, SameSite: http.SameSiteStrictMode, Domain: z.domain}, u.Role, nil
}

// Logout revokes the request's session on the server and returns the cookie that clears it
// and who was signed in ("" when nobody was).
func (z *Authorizer) Logout(ctx context.Context, r *http.Request) (*http.Cookie, string, error) {
	clear := &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: z.secure,
		SameSite: http.SameSiteStrictMode, Domain: z.domain}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return clear, "", nil
	}
	id, ok := parseSession(c.Value)
	if !ok {
		return clear, "", nil
	}
	who, err := z.store.revoke(ctx, id)
	if err != nil {
		return nil, who, err
	}
	if who != "" {
		z.shareEnded(ctx, id)
	}
	return clear, who, nil
}

// SignOutEverywhere revokes every session of a user (web.SignIn).
func (z *Authorizer) SignOutEverywhere(ctx context.Context, user string) (int, error) {
	if _, ok := z.users[user]; !ok {
		return 0, web.ErrNoSuchUser
	}
	at := z.now()
	n, err := z.store.revokeUserBefore(ctx, user, at)
	if err == nil && z.sharer != nil {
		z.sharer.UserSignedOut(ctx, user, at)
	}
	return n, err
}

// A session cookie is base64url (no padding) of 32 random bytes; the store keys the session
// by their SHA-256. parseSession accepts exactly that spelling.
func parseSession(v string) ([32]byte, bool) {
	if len(v) != 43 {
		return [32]byte{}, false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	if err != nil || len(b) != 32 {
		return [32]byte{}, false
	}
	return sha256.Sum256(b), true
}

// NewToken makes a random API token and the SHA-256 to put in the store file.
func NewToken() (token, sum string, err error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("no randomness for a token: %w", err)
	}
	token = "cw_" + base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	return token, hex.EncodeToString(h[:]), nil
}

// HashPassword makes the bcrypt hash for auth.users[].password_hash.
func HashPassword(pw string) (string, error) {
	if len(pw) < 8 {
		return "", errors.New("a password needs at least 8 characters")
	}
	if len(pw) > 72 {
		return "", errors.New("a password may have at most 72 bytes (bcrypt's limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("hashing the password: %w", err)
	}
	return string(h), nil
}
