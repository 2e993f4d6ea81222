package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
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
	z, err := New(configs.Auth{Users: []configs.WebUser{{Username: "guard", PasswordHash: string(h), Role: "security"}}, SessionTTL: time.Hour}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return z
}

func TestSessionCookie(t *testing.T) {
	z := testAuthorizer(t)
	if _, _, err := z.Login(context.Background(), "guard", "wrong", "192.0.2.9"); err != ErrBadLogin {
		t.Errorf("wrong password: %v", err)
	}
	if _, _, err := z.Login(context.Background(), "nobody", "secret-pw", "192.0.2.9"); err != ErrBadLogin {
		t.Errorf("unknown user: %v", err)
	}
	c, role, err := z.Login(context.Background(), "guard", "secret-pw", "192.0.2.9")
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
	z.Close() // the store is gone: no session can be found
	if _, ok := z.Identify(req(c.Value)); ok {
		t.Errorf("cookie accepted without its store")
	}
	z = testAuthorizer(t)
	for name, v := range map[string]string{
		"unknown session": c.Value, // another store never made it
		"empty":           "",
		"garbage":         "!!!.???",
		"padded":          c.Value + "=",
		"overlong":        strings.Repeat("a", 600),
		"old HMAC cookie": "djF8Z3VhcmR8MTc5NTQ1ODc4NA.Zeg_4V5wspsFqjpDzjNgHmOAh5yxHoFCkzJpLU2DtHk",
	} {
		if p, ok := z.Identify(req(v)); ok {
			t.Errorf("%s cookie accepted as %+v", name, p)
		}
	}
}

func FuzzParseSession(f *testing.F) {
	f.Add("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
	f.Add("djF8Z3VhcmR8MQ.AAAA")
	f.Add("")
	f.Add(".")
	f.Fuzz(func(t *testing.T, v string) {
		id, ok := parseSession(v)
		if !ok {
			return
		}
		raw, err := base64.RawURLEncoding.Strict().DecodeString(v)
		if err != nil || len(raw) != 32 || id != sha256.Sum256(raw) || base64.RawURLEncoding.EncodeToString(raw) != v {
			t.Errorf("accepted %q, which is not one spelling of 32 bytes", v)
		}
	})
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
