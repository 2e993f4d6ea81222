package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// The service keeps sessions and the audit log in its sign-in file beside the database: a
// sign-out holds across a restart, a session that was not signed out survives it, and the
// audit log remembers both sign-ins and the sign-out.
func TestSignOutHoldsAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	hash, _ := bcrypt.GenerateFromPassword([]byte("guard-password"), bcrypt.MinCost)
	yaml := openStore + fmt.Sprintf("auth: {users: [{username: guard, password_hash: %q, role: security}]}\n", hash)
	cfg := writeConfig(t, dir, yaml)
	client := &http.Client{Timeout: 10 * time.Second}
	call := func(svc *service, method, path, body string, c *http.Cookie) (int, string) {
		req, _ := http.NewRequest(method, "http://"+svc.HTTP+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if c != nil {
			req.AddCookie(c)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if method == "POST" && path == "/api/v1/session" && resp.StatusCode == 200 {
			return 200, resp.Cookies()[0].Value
		}
		return resp.StatusCode, string(b)
	}
	svc := startApp(t, cfg)
	_, kept := call(svc, "POST", "/api/v1/session", `{"username":"guard","password":"guard-password"}`, nil)
	_, gone := call(svc, "POST", "/api/v1/session", `{"username":"guard","password":"guard-password"}`, nil)
	keptC, goneC := &http.Cookie{Name: "cw_session", Value: kept}, &http.Cookie{Name: "cw_session", Value: gone}
	if code, body := call(svc, "DELETE", "/api/v1/session", "", goneC); code != 200 || !strings.Contains(body, `"auth_enabled":true`) {
		t.Errorf("sign-out: %d %s", code, body)
	}
	svc.stop()
	if _, err := os.Stat(filepath.Join(dir, "cw.auth.db")); err != nil {
		t.Errorf("no sign-in file beside the database: %v", err)
	}

	svc = startApp(t, cfg)
	if code, _ := call(svc, "GET", "/api/v1/zones", "", goneC); code != http.StatusUnauthorized {
		t.Errorf("signed-out cookie after a restart: %d, want 401", code)
	}
	if code, body := call(svc, "GET", "/api/v1/zones", "", keptC); code != 200 {
		t.Errorf("kept session after a restart: %d %s", code, body)
	}
	code, body := call(svc, "GET", "/api/v1/audit", "", keptC)
	if code != 200 || strings.Count(body, `"event":"signin"`) != 2 || strings.Count(body, `"event":"signout"`) != 1 {
		t.Errorf("audit after a restart: %d %s", code, body)
	}
	svc.stop()
}
