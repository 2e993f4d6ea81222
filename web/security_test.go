package web

import (
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// Security alerts are the admins': a manager cannot list them through the crowd's alert list,
// and a guard cannot acknowledge one through the crowd's acknowledge route.
func TestSecurityAlertsAreForAdmins(t *testing.T) {
	cases := []struct {
		name, method, path string
		roles              roleAuth
		status             int
		call               string
	}{
		{"manager lists security alerts by kind", "GET", "/api/v1/alerts?kind=security", roleAuth{RoleManager: true}, 403, ""},
		{"manager on the admin route", "GET", "/api/v1/security/alerts", roleAuth{RoleManager: true}, 403, ""},
		{"admin lists them", "GET", "/api/v1/security/alerts", roleAuth{RoleAdmin: true}, 200, "list "},
		{"guard acknowledges one through the crowd route", "POST", "/api/v1/alerts/security:signin_failed@10.0.0.7/ack",
			roleAuth{RoleSecurity: true}, 403, ""},
		{"guard on the admin route", "POST", "/api/v1/security/alerts/security:signin_failed@10.0.0.7/ack",
			roleAuth{RoleSecurity: true}, 403, ""},
		{"admin acknowledges", "POST", "/api/v1/security/alerts/security:signin_failed@10.0.0.7/ack",
			roleAuth{RoleAdmin: true}, 200, "ack security:signin_failed@10.0.0.7 by guard-7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, _ := newTestAPI(true, true, nil)
			al := &fakeAlerting{}
			h := NewHandler(Options{Engine: f, Broker: fakeBroker(true), Gatherer: prometheus.NewRegistry(), Alerting: al,
				Auth: c.roles, Log: slog.New(slog.DiscardHandler)})
			req := httptest.NewRequest(c.method, c.path, nil)
			req.Header.Set("Authorization", "Bearer x")
			if c.method == "POST" {
				req.Header.Set("Sec-Fetch-Site", "same-origin")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != c.status {
				t.Fatalf("%d %s, want %d", rec.Code, rec.Body, c.status)
			}
			if got := strings.Join(al.calls, "; "); got != c.call {
				t.Fatalf("reached the manager as %q, want %q", got, c.call)
			}
		})
	}
}
