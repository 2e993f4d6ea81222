// Package auth signs people and machines in: users with bcrypt password hashes from the store
// file, sessions in signed HttpOnly SameSite cookies, API tokens (stored as SHA-256) sent as
// Authorization: Bearer, and per-screen display tokens that read only their own screen. It
// implements web.Authorizer and web.SignIn.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/web"
)

// CookieName is the session cookie.
const CookieName = "cw_session"

// Principal is who a request comes from.
type Principal struct {
	Name   string // username, or "token:<name>" for a token
	Role   string // display, manager, security, admin
	Screen string // for display tokens: the one screen it may read
}

// ErrActionsDisabled refuses security actions on a service without users.
var ErrActionsDisabled = errors.New("security actions are disabled: no users are configured " +
	"(add auth.users to the store file, see docs/config.md)")

// ErrBadLogin is a wrong username or password (the two are not told apart).
var ErrBadLogin = errors.New("wrong username or password")

// Authorizer checks requests against the users and tokens of the store file. Its maps are
// built once and never changed, so it needs no lock.
type Authorizer struct {
	users  map[string]configs.WebUser
	tokens map[[32]byte]configs.APIToken
	key    []byte
	ttl    time.Duration
	secure bool
	now    func() time.Time
	slots  chan struct{} // bounds concurrent bcrypt checks (each takes ~50 ms of CPU)
}

// New builds an authorizer. secure marks cookies Secure (HTTPS). The session key is random per
// process: a restart signs everybody out.
func New(a configs.Auth, secure bool) (*Authorizer, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("auth: no random session key: %w", err)
	}
	z := &Authorizer{users: map[string]configs.WebUser{}, tokens: map[[32]byte]configs.APIToken{}, key: key,
		ttl: a.SessionTTL, secure: secure, now: time.Now, slots: make(chan struct{}, 2)}
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
	}
	return z, nil
}

// Enabled reports whether any user or token is configured. Without, reads are open and
// security actions are refused.
func (z *Authorizer) Enabled() bool { return len(z.users)+len(z.tokens) > 0 }

// HasUsers reports whether anybody can sign in to take security actions.
func (z *Authorizer) HasUsers() bool { return len(z.users) > 0 }

var rank = map[string]int{"display": 1, "manager": 2, "security": 3, "admin": 4}

// Authorize implements web.Authorizer.
func (z *Authorizer) Authorize(r *http.Request, need web.Role) (string, error) {
	p, ok := z.Identify(r)
	if !ok {
		if !z.HasUsers() && rank[string(need)] >= rank["security"] {
			return "", ErrActionsDisabled
		}
		if !z.Enabled() {
			return "", nil // open reads, as the log says at start
		}
		return "", fmt.Errorf("%w: sign in, or send a token as Authorization: Bearer", web.ErrUnauthenticated)
	}
	if p.Role == "display" {
		if need != web.RoleDisplay {
			return "", fmt.Errorf("a display token may only read its screen's guidance")
		}
		if screen := ScreenOf(r); screen != p.Screen {
			return "", fmt.Errorf("a display token reads only its own screen (%s)", p.Screen)
		}
		return p.Name, nil
	}
	if rank[p.Role] < rank[string(need)] {
		return "", fmt.Errorf("role %s may not do this (needs %s)", p.Role, need)
	}
	return p.Name, nil
}

// ScreenOf is the screen a request is about: the {screen} path value or the screen query
// parameter.
func ScreenOf(r *http.Request) string {
	if s := r.PathValue("screen"); s != "" {
		return s
	}
	return r.URL.Query().Get("screen")
}

// Identify returns the request's principal: a bearer token, a display token in the URL
// (?token=, display tokens only: others must not end up in logs), or a session cookie.
func (z *Authorizer) Identify(r *http.Request) (Principal, bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := ParseBearer(h)
		if !ok {
			return Principal{}, false
		}
		t, ok := z.tokens[sha256.Sum256([]byte(tok))]
		if !ok {
			return Principal{}, false
		}
		return Principal{Name: "token:" + t.Name, Role: t.Role, Screen: t.Screen}, true
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		t, ok := z.tokens[sha256.Sum256([]byte(tok))]
		if !ok || t.Role != "display" {
			return Principal{}, false
		}
		return Principal{Name: "token:" + t.Name, Role: t.Role, Screen: t.Screen}, true
	}
	c, err := r.Cookie(CookieName)
	if err != nil {
		return Principal{}, false
	}
	user, exp, ok := z.parseSession(c.Value)
	if !ok || !z.now().Before(exp) {
		return Principal{}, false
	}
	u, ok := z.users[user]
	if !ok {
		return Principal{}, false
	}
	return Principal{Name: u.Username, Role: u.Role}, true
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

// Login checks a username and password and returns the session cookie to set.
func (z *Authorizer) Login(ctx context.Context, username, password string) (*http.Cookie, string, error) {
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
		return nil, "", ErrBadLogin
	}
	exp := z.now().Add(z.ttl)
	return &http.Cookie{Name: CookieName, Value: z.signSession(u.Username, exp), Path: "/", Expires: exp,
		MaxAge: int(z.ttl / time.Second), HttpOnly: true, Secure: z.secure, SameSite: http.SameSiteStrictMode}, u.Role, nil
}

// Logout returns the cookie that clears the session.
func (z *Authorizer) Logout() *http.Cookie {
	return &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: z.secure,
		SameSite: http.SameSiteStrictMode}
}

// A session cookie is base64url("v1|user|unix expiry") "." base64url(HMAC-SHA256).
func (z *Authorizer) signSession(user string, exp time.Time) string {
	payload := "v1|" + user + "|" + strconv.FormatInt(exp.Unix(), 10)
	m := hmac.New(sha256.New, z.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (z *Authorizer) parseSession(v string) (user string, exp time.Time, ok bool) {
	if len(v) > 512 {
		return "", time.Time{}, false
	}
	p64, mac64, found := strings.Cut(v, ".")
	if !found {
		return "", time.Time{}, false
	}
	strict := base64.RawURLEncoding.Strict() // one spelling per cookie
	payload, err1 := strict.DecodeString(p64)
	mac, err2 := strict.DecodeString(mac64)
	if err1 != nil || err2 != nil {
		return "", time.Time{}, false
	}
	m := hmac.New(sha256.New, z.key)
	m.Write(payload)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return "", time.Time{}, false
	}
	parts := strings.Split(string(payload), "|")
	if len(parts) != 3 || parts[0] != "v1" || parts[1] == "" {
		return "", time.Time{}, false
	}
	unix, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return "", time.Time{}, false
	}
	return parts[1], time.Unix(unix, 0), true
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
