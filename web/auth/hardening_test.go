package auth

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// Issue item 7: a display token reads its own screen's routes and nothing else, whatever it
// puts in the query (Authorize used to take ?screen= on routes without {screen}).
func TestDisplayTokenCannotBorrowScreenFromQuery(t *testing.T) {
	a, tokens := fullAuth(t)
	h, _ := newHandler(t, a)
	bearer := func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tokens["display"]) }
	for _, path := range []string{
		"/api/v1/zones?screen=door", "/api/v1/zones/hall?screen=door", "/api/v1/status?screen=door",
		"/api/v1/evacuation?screen=door", "/api/v1/alerts?screen=door", "/api/v1/silences?screen=door",
	} {
		if w := do(h, "GET", path, "", bearer); w.Code != http.StatusForbidden {
			t.Errorf("display token: GET %s: %d %s, want 403", path, w.Code, w.Body)
		}
	}
	if w := do(h, "GET", "/api/v1/signage/door", "", bearer); w.Code != http.StatusOK {
		t.Errorf("display token: own screen: %d %s", w.Code, w.Body)
	}
}

// Issue item 11: sign-out answers the service's real state; a cookie copied before sign-out
// is refused afterwards.
func TestSignOutRevokesTheSession(t *testing.T) {
	a, _ := fullAuth(t)
	h, _ := newHandler(t, a)
	w := do(h, "POST", "/api/v1/session", `{"username":"guard","password":"guard-pw"}`, nil)
	if w.Code != http.StatusOK || len(w.Result().Cookies()) != 1 {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	cookie := w.Result().Cookies()[0]
	withCookie := func(r *http.Request) { r.AddCookie(cookie) }
	if w := do(h, "GET", "/api/v1/zones", "", withCookie); w.Code != http.StatusOK {
		t.Fatalf("signed in: %d", w.Code)
	}
	w = do(h, "DELETE", "/api/v1/session", "", withCookie)
	var info map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &info)
	if w.Code != http.StatusOK || info["auth_enabled"] != true || info["signed_in"] != false {
		t.Errorf("sign-out answer: %d %s, want auth_enabled true, signed_in false", w.Code, w.Body)
	}
	if w := do(h, "GET", "/api/v1/zones", "", withCookie); w.Code != http.StatusUnauthorized {
		t.Errorf("signed-out cookie still reads: %d, want 401", w.Code)
	}
	if w := do(h, "POST", securityActions[0].path, securityActions[0].body, withCookie); w.Code != http.StatusUnauthorized {
		t.Errorf("signed-out cookie still acts: %d, want 401", w.Code)
	}
}

// Issue item 11: repeated wrong passwords are throttled with 429 and Retry-After.
func TestSignInIsThrottled(t *testing.T) {
	a, _ := fullAuth(t)
	h, _ := newHandler(t, a)
	throttled := 0
	for i := 0; i < 50; i++ {
		w := do(h, "POST", "/api/v1/session", `{"username":"guard","password":"wrong-pw"}`, nil)
		if w.Code == http.StatusTooManyRequests {
			throttled++
			if w.Header().Get("Retry-After") == "" || !strings.Contains(w.Body.String(), "too many") {
				t.Fatalf("429 without Retry-After or reason: %v %s", w.Header(), w.Body)
			}
		} else if w.Code != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d %s", i, w.Code, w.Body)
		}
	}
	if throttled < 40 {
		t.Errorf("50 wrong passwords: %d throttled, want most of them", throttled)
	}
}
