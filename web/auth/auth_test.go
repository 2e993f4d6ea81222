package auth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/crowdwatch/crowdwatch/configs"
)

func TestParseBearer(t *testing.T) {
	cases := []struct {
		in, tok string
		ok      bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"Bearer  abc ", "abc", true},
		{"Basic abc", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Bearer a b", "", false},
		{"Bearer " + strings.Repeat("x", 513), "", false},
	}
	for _, c := range cases {
		tok, ok := ParseBearer(c.in)
		if tok != c.tok || ok != c.ok {
			t.Errorf("ParseBearer(%q) = %q, %v; want %q, %v", c.in, tok, ok, c.tok, c.ok)
		}
	}
}

func testAuthorizer(t testing.TB) *Authorizer {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte("secret-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	z, err := New(configs.Auth{Users: []configs.WebUser{{Username: "guard", PasswordHash: string(h), Role: "security"}}, SessionTTL: time.Hour}, false)
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestSessionCookie(t *testing.T) {
	z := testAuthorizer(t)
	if _, _, err := z.Login(context.Background(), "guard", "wrong"); err != ErrBadLogin {
		t.Errorf("wrong password: %v", err)
	}
	if _, _, err := z.Login(context.Background(), "nobody", "secret-pw"); err != ErrBadLogin {
		t.Errorf("unknown user: %v", err)
	}
	c, role, err := z.Login(context.Background(), "guard", "secret-pw")
	if err != nil || role != "security" || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %v %q %+v", err, role, c)
	}
	req := func(v string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.AddCookie(&http.Cookie{Name: CookieName, Value: v})
		return r
	}
	if p, ok := z.Identify(req(c.Value)); !ok || p.Name != "guard" || p.Role != "security" {
		t.Errorf("own cookie: %+v %v", p, ok)
	}
	payload, mac, _ := strings.Cut(c.Value, ".")
	forged := z.signSessionWithKey([]byte("another key"), "guard", time.Now().Add(time.Hour))
	for name, v := range map[string]string{
		"tampered mac": payload + "." + strings.Repeat("A", len(mac)),
		"no mac":       payload,
		"other key":    forged,
		"empty":        "",
		"garbage":      "!!!.???",
		"other user":   z.signSession("admin", time.Now().Add(time.Hour)),
		"expired":      z.signSession("guard", time.Now().Add(-time.Second)),
		"overlong":     strings.Repeat("a", 600),
	} {
		if p, ok := z.Identify(req(v)); ok {
			t.Errorf("%s cookie accepted as %+v", name, p)
		}
	}
}

// signSessionWithKey signs as another process would.
func (z *Authorizer) signSessionWithKey(key []byte, user string, exp time.Time) string {
	other := *z
	other.key = key
	return other.signSession(user, exp)
}

func FuzzParseSession(f *testing.F) {
	z, _ := New(configs.Auth{}, false)
	f.Add(z.signSession("guard", time.Unix(1e9, 0)))
	f.Add("djF8Z3VhcmR8MQ.AAAA")
	f.Add("")
	f.Add(".")
	f.Fuzz(func(t *testing.T, v string) {
		user, _, ok := z.parseSession(v)
		if ok && user == "" {
			t.Errorf("accepted %q with no user", v)
		}
		if ok && v != z.signSession(user, time.Unix(mustExp(z, v), 0)) {
			t.Errorf("accepted %q which this key did not sign", v)
		}
	})
}

func mustExp(z *Authorizer, v string) int64 {
	_, exp, _ := z.parseSession(v)
	return exp.Unix()
}

func FuzzParseBearer(f *testing.F) {
	f.Add("Bearer abc")
	f.Add("bearer  x y")
	f.Add("Basic Zm9v")
	f.Fuzz(func(t *testing.T, h string) {
		tok, ok := ParseBearer(h)
		if ok && (tok == "" || strings.ContainsAny(tok, " \t\r\n") || len(tok) > 512) {
			t.Errorf("ParseBearer(%q) = %q", h, tok)
		}
	})
}
