package alerting

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/security"
)

func securityHarness(t *testing.T) *harness {
	// The test store's routes plus one made for security alerts.
	y := strings.Replace(testStore, "    - {channel: everyone, group: all_staff}\n",
		"    - {channel: everyone, group: all_staff}\n    - {channel: admins, kinds: [security]}\n", 1)
	y = strings.Replace(y, "    - {name: everyone, type: webhook, url: \"http://127.0.0.1:1/all\"}\n",
		"    - {name: everyone, type: webhook, url: \"http://127.0.0.1:1/all\"}\n    - {name: admins, type: webhook, url: \"http://127.0.0.1:1/admins\"}\n", 1)
	y = strings.Replace(y, "  repeat_interval: 5m\n", "  repeat_interval: 5m\n  security: {quiet: 10m}\n", 1)
	return newHarness(t, y)
}

func TestSecurityFindingBecomesAlertOnItsOwnRoute(t *testing.T) {
	h := securityHarness(t)
	h.at(0)
	h.notes.take()
	f := security.Finding{Kind: security.SignInFailed, Source: "10.0.0.7", Subjects: []string{"guard1", "admin"}, Count: 5,
		First: h.now, Last: h.now}
	h.run(func() {
		if err := h.m.ReportSecurity(context.Background(), f); err != nil {
			t.Fatal(err)
		}
	})
	id := "security:signin_failed@10.0.0.7"
	st := h.m.Status()
	if len(st.Security) != 1 || st.Security[0].ID != id || st.Security[0].Source != "10.0.0.7" || st.Security[0].Value != 5 {
		t.Fatalf("security alerts %+v, want one %s", st.Security, id)
	}
	if !strings.Contains(st.Security[0].Summary, "5 failed sign-ins from 10.0.0.7 (guard1, admin)") {
		t.Fatalf("summary %q", st.Security[0].Summary)
	}
	for _, a := range st.Alerts {
		if a.Kind == KindSecurity {
			t.Fatalf("a security alert in the crowd view that screens and guards read: %+v", a)
		}
	}
	if got := whats(h.notes.take(), id); !slices.Equal(got, []string{"fired->admins"}) {
		t.Fatalf("notified %v, want fired to the security route only", got)
	}
	// Not listed with the crowd's alerts; listed when asked for by kind.
	var all, sec []Alert
	h.run(func() { all, _ = h.m.Alerts(context.Background(), Filter{}) })
	h.run(func() { sec, _ = h.m.Alerts(context.Background(), Filter{Kind: "security"}) })
	if len(all) != 0 || len(sec) != 1 {
		t.Fatalf("Alerts() listed %d (want 0) and kind=security %d (want 1)", len(all), len(sec))
	}

	// The same source again: the same alert, refreshed, nobody paged again; no escalation to
	// the duty manager or all staff however long nobody acknowledges.
	f.Count, f.Last = 9, h.now.Add(time.Minute)
	h.at(60)
	h.run(func() { _ = h.m.ReportSecurity(context.Background(), f) })
	h.at(200)
	h.at(400)
	if got := whats(h.notes.take(), id); len(got) != 0 {
		t.Fatalf("notified again %v: a refreshed finding is the same alert and security alerts do not escalate", got)
	}
	if st := h.m.Status(); len(st.Security) != 1 || st.Security[0].Value != 9 {
		t.Fatalf("refreshed alert %+v, want count 9", st.Security)
	}
	// Quiet for alerting.security.quiet after the last event: resolved.
	h.at(60 + 599)
	if len(h.m.Status().Security) != 1 {
		t.Fatal("resolved before the quiet time")
	}
	h.at(60 + 600)
	if st := h.m.Status(); len(st.Security) != 0 {
		t.Fatalf("still open after the quiet time: %+v", st.Security)
	}
	if got := whats(h.notes.take(), id); !slices.Equal(got, []string{"resolved->admins"}) {
		t.Fatalf("resolution notified %v", got)
	}
}

func TestSecurityAlertSurvivesRestartUntilQuiet(t *testing.T) {
	h := securityHarness(t)
	h.at(0)
	h.run(func() {
		_ = h.m.ReportSecurity(context.Background(), security.Finding{Kind: security.ClientIDCollision, Source: "10.0.0.9",
			Subjects: []string{"store-042-dc-02"}, Count: 1, First: h.now, Last: h.now})
	})
	if st := h.m.Status(); len(st.Security) != 1 || st.Security[0].Severity != SeverityCritical {
		t.Fatalf("client-id collision: %+v, want one critical security alert", st.Security)
	}
	h.notes.take()
	_ = h.m.Close()
	h.open()
	h.at(30)
	if st := h.m.Status(); len(st.Security) != 1 {
		t.Fatalf("after a restart: %+v, want the alert still open until its source is quiet", st.Security)
	}
	if got := h.notes.take(); len(got) != 0 {
		t.Fatalf("a restart paged again: %+v", got)
	}
	h.at(600)
	if st := h.m.Status(); len(st.Security) != 0 {
		t.Fatalf("not resolved after the quiet time following a restart: %+v", st.Security)
	}
}
