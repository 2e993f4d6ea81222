package web

import (
	"net/http"

	"github.com/crowdwatch/crowdwatch/alerting"
)

// securityRoutes are the admins' view of intrusion detection (docs/security.md): the
// security alerts, kept out of the crowd view that guards and screens read.
func (a *api) securityRoutes() {
	a.route("GET /api/v1/security/alerts", RoleAdmin, a.listSecurityAlerts)
	a.route("POST /api/v1/security/alerts/{id}/ack", RoleAdmin, a.ack)
}

func (a *api) listSecurityAlerts(w http.ResponseWriter, r *http.Request) {
	list, err := a.Alerting.Alerts(r.Context(), alerting.Filter{State: r.URL.Query().Get("state"), Kind: string(alerting.KindSecurity)})
	if err != nil {
		a.alertError(w, "listing security alerts", err)
		return
	}
	if list == nil {
		list = []alerting.Alert{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"alerts": list})
}
