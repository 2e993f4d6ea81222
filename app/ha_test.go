package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// haApp runs one instance of a store with HA on in-process and returns its address and a
// function that stops it.
func haApp(t *testing.T, e *testkit.EtcdServer, name, token string) (addr string, stop func()) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	officer := sha256.Sum256([]byte(officerToken))
	extra := fmt.Sprintf("ha: {enabled: true, instance: %s, endpoints: [%q], failover: 3s, prefix: /apptest}\n"+
		"auth:\n  tokens: [{name: boss, sha256: %q, role: manager}, {name: officer, sha256: %q, role: security}]\n",
		name, e.Endpoint, hex.EncodeToString(sum[:]), hex.EncodeToString(officer[:]))
	var logs testkit.Buffer
	ready := make(chan struct{})
	a, err := New(loadStore(t, dir, extra), Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		OnReady: func(*App) { close(ready) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("%s: Run returned: %v\n%s", name, err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("%s: not ready", name)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: Run: %v\n%s", name, err, logs.String())
		}
	}
	t.Cleanup(stop)
	return a.HTTPAddr(), stop
}

type haBody struct {
	Role string `json:"role"`
	Term int64  `json:"term"`
	Lag  struct {
		ActionsApplied int64  `json:"actions_applied"`
		ActionsPending *int64 `json:"actions_pending"`
	} `json:"lag"`
}

func getJSON(t *testing.T, url, token string, into any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		_ = json.NewDecoder(resp.Body).Decode(into)
	}
	return resp.StatusCode
}

// Two instances with ha.enabled on one etcd: GET /api/v1/ha (manager) and /readyz say one
// is leader and the other standby, with the leader's term and the action lag; when the
// leader stops, the standby leads in a higher term. Without ha.enabled there is no
// /api/v1/ha (TestRunServesAndStopsInOrder's store).
func TestHAReportsRoles(t *testing.T) {
	e := testkit.Etcd(t)
	const token = "manager-token-0123456789"
	addrA, stopA := haApp(t, e, "a", token)
	addrB, stopB := haApp(t, e, "b", token)
	role := func(addr string) haBody {
		var b haBody
		if code := getJSON(t, "http://"+addr+"/api/v1/ha", token, &b); code != 200 {
			t.Fatalf("GET /api/v1/ha: %d", code)
		}
		return b
	}
	var a, b haBody
	deadline := time.Now().Add(30 * time.Second)
	for {
		a, b = role(addrA), role(addrB)
		if (a.Role == "leader" && b.Role == "standby") || (a.Role == "standby" && b.Role == "leader") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader and standby: a %+v, b %+v", a, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if code := getJSON(t, "http://"+addrA+"/api/v1/ha", "", nil); code != 401 {
		t.Fatalf("GET /api/v1/ha without a token: %d, want 401", code)
	}
	var ready struct {
		Ready bool   `json:"ready"`
		HA    haBody `json:"ha"`
	}
	getJSON(t, "http://"+addrB+"/readyz", "", &ready)
	if ready.HA.Role != b.Role || ready.HA.Lag.ActionsPending == nil || *ready.HA.Lag.ActionsPending != 0 {
		t.Fatalf("/readyz ha: %+v, want role %s and no pending actions", ready.HA, b.Role)
	}
	if a.Role != "leader" { // name the leader a for the hand-over below
		addrA, addrB, a, b, stopA, stopB = addrB, addrA, b, a, stopB, stopA
	}
	_ = stopB
	term := a.Term
	stopA()
	deadline = time.Now().Add(30 * time.Second)
	for b = role(addrB); b.Role != "leader"; b = role(addrB) {
		if time.Now().After(deadline) {
			t.Fatalf("the standby did not lead after the leader stopped: %+v", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if b.Term <= term {
		t.Fatalf("new term %d not above %d", b.Term, term)
	}
}
