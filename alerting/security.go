package alerting

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/crowdwatch/crowdwatch/security"
)

// KindSecurity alerts are repeated refused attempts from one source (docs/security.md). They
// have a route of their own: only routes whose kinds name "security" receive them, they do
// not escalate to duty managers and all staff, and they are kept out of the crowd view
// (Status.Alerts, which display screens and guards read); admins list them.
const KindSecurity Kind = "security"

// maxSecurityFindings bounds the sources with an open security alert; beyond it the finding
// heard from longest ago is dropped (its alert resolves), so an attack from many addresses
// cannot grow the manager's state without bound.
const maxSecurityFindings = 500

// ReportSecurity opens or refreshes the security alert for a finding of the monitor.
func (m *Manager) ReportSecurity(ctx context.Context, f security.Finding) error {
	_, err := m.do(ctx, func(time.Time) (any, error) {
		if m.security == nil {
			m.security = map[string]security.Finding{}
		}
		id := securityAlertID(string(f.Kind), f.Source)
		if _, ok := m.security[id]; !ok && len(m.security) >= maxSecurityFindings {
			oldest := ""
			for k, g := range m.security {
				if oldest == "" || g.Last.Before(m.security[oldest].Last) {
					oldest = k
				}
			}
			delete(m.security, oldest)
		}
		m.security[id] = f
		return nil, nil
	})
	return err
}

func securityAlertID(kind, source string) string {
	return string(KindSecurity) + ":" + kind + "@" + source
}

// securityCandidates are the open findings, each active until its source has been quiet for
// alerting.security.quiet.
func (m *Manager) securityCandidates(now time.Time) []candidate {
	quiet := m.set.cfg.Alerting.Security.Quiet
	var out []candidate
	for id, f := range m.security {
		if now.Sub(f.Last) >= quiet {
			delete(m.security, id) // no candidate: reconcile resolves the alert
			continue
		}
		sev := SeverityWarning
		if f.Kind == security.ClientIDCollision || f.Kind == security.WillRefused {
			sev = SeverityCritical // somebody tried to take a device's place or a topic
		}
		out = append(out, candidate{alert: Alert{Kind: KindSecurity, SecurityKind: string(f.Kind), Source: f.Source,
			Severity: sev, Value: float64(f.Count), Summary: securitySummary(f), Detail: f.Detail},
			active: true, held: true})
	}
	return out
}

var securityWhat = map[security.Kind]string{
	security.SignInFailed:      "failed sign-ins",
	security.SignInThrottled:   "sign-in attempts refused by the throttle",
	security.MQTTAuthFailed:    "refused MQTT logins",
	security.ACLRefused:        "MQTT publishes or subscriptions outside the account's topics",
	security.WillRefused:       "MQTT Last Wills outside the account's topics",
	security.UnknownDevice:     "reports from undeclared devices",
	security.ClientIDCollision: "MQTT connections with another account's client id",
	security.ConnectionLimit:   "connections refused by a limit",
	security.TokenRefused:      "refused tokens",
}

func securitySummary(f security.Finding) string {
	what := securityWhat[f.Kind]
	if what == "" {
		what = string(f.Kind) + " events"
	}
	s := fmt.Sprintf("%d %s from %s", f.Count, what, f.Source)
	if len(f.Subjects) > 0 {
		s += " (" + strings.Join(f.Subjects, ", ") + ")"
	}
	return s
}

// restoreSecurity brings back, after a restart, the findings of security alerts still open,
// so that they resolve after their quiet time rather than at the first evaluation.
func (m *Manager) restoreSecurity(a *Alert) {
	if a.Kind != KindSecurity {
		return
	}
	if m.security == nil {
		m.security = map[string]security.Finding{}
	}
	m.security[a.ID] = security.Finding{Kind: security.Kind(a.SecurityKind), Source: a.Source, Count: int(a.Value),
		Detail: a.Detail, First: a.StartsAt, Last: a.UpdatedAt}
}
