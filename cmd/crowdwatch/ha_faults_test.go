package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
)

// The failures of docs/ha.md ("Failures considered") on the real binaries: the coordinator
// down, one instance cut off from it, the broker restarted under load.

// haStatus is an instance's /api/v1/ha.
type haStatus struct {
	Role  string    `json:"role"`
	Term  int64     `json:"term"`
	Since time.Time `json:"since"`
}

func (h *haInstance) status() haStatus {
	var v haStatus
	_ = json.Unmarshal([]byte(h.svc.get("/api/v1/ha")), &v)
	return v
}

// code is the status of a GET as the security officer.
func (h *haInstance) code(path string) int {
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.svc.HTTP+path, nil)
	req.Header.Set("Authorization", "Bearer "+securityToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// postCode is a POST as the security officer, for a goroutine (no t.Fatal).
func (h *haInstance) postCode(path, body string) (int, string) {
	req, _ := http.NewRequest(http.MethodPost, "http://"+h.svc.HTTP+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+securityToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *haInstance) evacuations() int {
	var v struct {
		Evacuations []any `json:"evacuations"`
	}
	_ = json.Unmarshal([]byte(h.svc.get("/api/v1/evacuation")), &v)
	return len(v.Evacuations)
}

func (p *pager) count(ok func(page) bool) int {
	n := 0
	for _, pg := range p.all() {
		if ok(pg) {
			n++
		}
	}
	return n
}

// oneSenderAtATime checks the webhook's pages: those not marked degraded came from one
// leader at a time (never a page of an older term after one of a newer), each transition
// once.
func oneSenderAtATime(t *testing.T, pages []page) {
	t.Helper()
	var newest int64
	keys := map[string]int{}
	sender := map[int64]string{} // term → the instance that sent in it
	for _, pg := range pages {
		if pg.degraded {
			continue
		}
		if s, ok := sender[pg.term]; ok && s != pg.from {
			t.Errorf("term %d paged from both %s and %s", pg.term, s, pg.from)
		}
		sender[pg.term] = pg.from
		if pg.term < newest {
			t.Errorf("a page of term %d after one of term %d: two senders at once (%+v)", pg.term, newest, pg)
		}
		newest = max(newest, pg.term)
		if pg.key == "" || pg.term == 0 {
			t.Errorf("a page without its key or term: %+v", pg)
		}
		if keys[pg.key]++; keys[pg.key] == 2 {
			t.Errorf("transition %s paged twice by a leader", pg.key)
		}
	}
}

// TestCoordinatorDownForThePair: etcd dies under a running pair. Both instances keep counting
// and serving, both say degraded; operator actions answer 503 except an evacuation, applied
// at once where declared; after the failover time each instance pages on its own, marked
// degraded (Alertmanager, a channel on both, still shows the alert once); when etcd is back
// exactly one leads in a new term, the evacuation reaches the other instance, the zones equal
// the truth and a single leader pages again.
func TestCoordinatorDownForThePair(t *testing.T) {
	e := testkit.Etcd(t)
	mq := startMosquitto(t)
	am := startAlertmanager(t)
	p := runPair(t, pairOptions{etcd: e.Endpoint, broker: mq.addr, am: am})
	a, b, oldTerm, hook, d := p.a, p.b, p.term, p.hook, p.doors
	if err := d.walk(30, 20, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "before", d.truth(), a, b)

	e.Kill()
	waitFor(t, 20*time.Second, "both degraded", func() bool {
		return a.status().Role == "degraded" && b.status().Role == "degraded"
	})
	degradedAt := time.Now()
	if err := d.walk(45, 30, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "coordinator down", d.truth(), a, b)
	for _, in := range []*haInstance{a, b} {
		for _, path := range []string{"/", "/dashboard", "/api/v1/zones", "/api/v1/alerts"} {
			if c := in.code(path); c != http.StatusOK {
				t.Errorf("coordinator down: %s GET %s answered %d, want 200", in.name, path, c)
			}
		}
	}
	// Each refusal takes the append's timeout (5 s): all six at once.
	var refusals sync.WaitGroup
	for _, in := range []*haInstance{a, b} {
		for path, body := range map[string]string{
			"/api/v1/alerts/ack":            `{"zone": "hall"}`,
			"/api/v1/silences":              `{"kind": "surge", "zone": "annex", "duration": "1h"}`,
			"/api/v1/evacuation/stand-down": `{"zone": "annex", "reason": "no"}`,
		} {
			refusals.Add(1)
			go func() {
				defer refusals.Done()
				if c, v := in.postCode(path, body); c != http.StatusServiceUnavailable {
					t.Errorf("coordinator down: %s POST %s answered %d %s, want 503", in.name, path, c, v)
				}
			}()
		}
	}
	refusals.Wait()
	if c, v := a.svc.post("/api/v1/evacuation", `{"zone": "annex", "reason": "smoke in the annex"}`); c != http.StatusOK {
		t.Fatalf("evacuation with the coordinator down: %d %v, want it applied on a", c, v)
	}
	if na, nb := a.evacuations(), b.evacuations(); na != 1 || nb != 0 {
		t.Fatalf("coordinator down: evacuations a %d, b %d; want 1 on a at once, none on b yet", na, nb)
	}

	// Past the failover time (3s) each degraded instance pages on its own, marked.
	time.Sleep(time.Until(degradedAt.Add(3500 * time.Millisecond)))
	if err := d.walk(75, 30, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	crowded := time.Now()
	degradedFired := func(pg page) bool { return pg.alert == "level:hall" && pg.what == "fired" && pg.degraded }
	waitFor(t, 20*time.Second, "both instances page the hall, degraded", func() bool { return hook.count(degradedFired) >= 2 })
	t.Logf("both paged, degraded, %v after the hall passed warning (warning_for 500ms)", time.Since(crowded).Round(time.Millisecond))
	if n := hook.count(func(pg page) bool { return pg.alert == "level:hall" && pg.what == "fired" }); n != 2 ||
		hook.count(func(pg page) bool { return degradedFired(pg) && pg.from == "a" }) != 1 {
		t.Errorf("the hall's alert paged %d times with the coordinator down, want twice, once by each, degraded: %+v", n, hook.all())
	}
	// Two senders, one alert: Alertmanager keeps one per label set.
	amShowsOnce(t, am, "two degraded senders", "hall")

	e.Restart()
	back := time.Now()
	var st [2]haStatus
	waitFor(t, 30*time.Second, "exactly one leads in a new term", func() bool {
		st = [2]haStatus{a.status(), b.status()}
		roles := st[0].Role + "," + st[1].Role
		return (roles == "leader,standby" || roles == "standby,leader") && st[0].Term == st[1].Term
	})
	t.Logf("one leads %v after etcd's restart", time.Since(back).Round(time.Millisecond))
	if st[0].Term <= oldTerm {
		t.Errorf("term %d after the coordinator came back, want above %d", st[0].Term, oldTerm)
	}
	waitFor(t, 30*time.Second, "the evacuation reaches b", func() bool { return b.evacuations() == 1 })
	t.Logf("the evacuation reached b %v after etcd's restart", time.Since(back).Round(time.Millisecond))
	if n := a.evacuations(); n != 1 {
		t.Errorf("a has %d evacuations after its own came back through the log, want 1", n)
	}
	checkpointPair(t, "coordinator back", d.truth(), a, b)

	// One sender again: the hall resolves, paged once by the leader, not degraded.
	if err := d.walk(10, 10, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "the crowd left", d.truth(), a, b)
	resolved := func(pg page) bool { return pg.alert == "level:hall" && pg.what == "resolved" }
	waitFor(t, 30*time.Second, "the hall's resolution paged", func() bool { return hook.count(resolved) >= 1 })
	time.Sleep(time.Second) // a second sender's page would have arrived
	if n := hook.count(resolved); n != 1 {
		t.Errorf("the hall's resolution paged %d times, want once", n)
	}
	for _, pg := range hook.all() {
		if resolved(pg) && (pg.degraded || pg.term != st[0].Term) {
			t.Errorf("the resolution was paged as %+v, want by the leader of term %d", pg, st[0].Term)
		}
	}
	amShowsOnce(t, am, "resolved by the leader") // none active
	oneSenderAtATime(t, hook.all())
	if t.Failed() {
		t.Logf("pages: %+v", hook.all())
	}
}

// TestPartitionOfTheLeaderFromEtcd cuts the leader (a) off etcd through a proxy while b still
// reaches it. a steps down before b leads (at the moment b leads, a no longer says leader; the
// leaders' pages never interleave by term), b leads and pages the alert that fell due in the
// takeover; a, cut off past the failover time, pages under the degraded policy, marked. An
// acknowledgement on b while a is cut off reaches a when the link is restored: a rejoins as
// standby and agrees exactly.
func TestPartitionOfTheLeaderFromEtcd(t *testing.T) {
	e := testkit.Etcd(t)
	link := testkit.NewProxy(t, strings.TrimPrefix(e.Endpoint, "http://"))
	mq := startMosquitto(t)
	p := runPair(t, pairOptions{etcd: e.Endpoint, etcdOf: map[string]string{"a": "http://" + link.Addr}, broker: mq.addr})
	a, b, oldTerm, hook, d := p.a, p.b, p.term, p.hook, p.doors

	// The hall past warning: a pages it in its term.
	if err := d.walk(72, 20, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "a pages the hall", func() bool {
		return hook.count(func(pg page) bool { return pg.alert == "level:hall" && pg.term == oldTerm }) == 1
	})
	checkpointPair(t, "before the cut", d.truth(), a, b)

	link.Cut()
	cutAt := time.Now()
	// The annex fills during the takeover: its alert falls due while nobody can send.
	filled := make(chan error, 1)
	go func() { filled <- d.annex.walk(d.ctx, 75, 20*time.Millisecond) }()
	var bStatus haStatus
	waitFor(t, 30*time.Second, "b leads", func() bool {
		if bStatus = b.status(); bStatus.Role != "leader" {
			return false
		}
		if ra := a.status().Role; ra == "leader" {
			t.Errorf("b leads in term %d while the cut-off a still says leader", bStatus.Term)
		}
		return true
	})
	t.Logf("b leads %v after the cut", time.Since(cutAt).Round(time.Millisecond))
	if bStatus.Term <= oldTerm {
		t.Fatalf("b leads in term %d, want above a's %d", bStatus.Term, oldTerm)
	}
	aStatus := a.status()
	if aStatus.Role != "degraded" || !aStatus.Since.Before(bStatus.Since) {
		t.Errorf("a is %s since %v, b leader since %v: want a degraded before b led", aStatus.Role, aStatus.Since, bStatus.Since)
	}
	if err := <-filled; err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "cut off", d.truth(), a, b)
	waitFor(t, 20*time.Second, "b pages the annex in its term", func() bool {
		return hook.count(func(pg page) bool {
			return pg.alert == "level:annex" && pg.what == "fired" && !pg.degraded && pg.term == bStatus.Term && pg.from == "b"
		}) == 1
	})
	waitFor(t, 20*time.Second, "the cut-off a pages the annex, degraded", func() bool {
		return hook.count(func(pg page) bool {
			return pg.alert == "level:annex" && pg.what == "fired" && pg.degraded && pg.from == "a"
		}) == 1
	})

	// Actions: refused on the cut-off a, applied on b.
	if c, v := a.svc.post("/api/v1/alerts/level:hall/ack", `{"note": "cut off"}`); c != http.StatusServiceUnavailable {
		t.Errorf("ack on the cut-off a: %d %v, want 503", c, v)
	}
	if c, v := b.svc.post("/api/v1/alerts/level:hall/ack", `{"note": "stewards at the door"}`); c != 200 {
		t.Fatalf("ack on b: %d %v", c, v)
	}

	link.Restore()
	waitFor(t, 60*time.Second, "a rejoins as standby", func() bool {
		s := a.status()
		return s.Role == "standby" && s.Term == bStatus.Term
	})
	var ga, gb string
	waitFor(t, 30*time.Second, "a catches up and agrees", func() bool {
		ga, gb = a.agreement(), b.agreement()
		return ga == gb && strings.Contains(ga, "level:hall:acknowledged")
	})
	// What a applied from the log just before its coordinator saw etcd again it may have
	// paged as degraded (the policy); from here on it is a standby.
	time.Sleep(time.Second)
	degradedPages := hook.count(func(pg page) bool { return pg.degraded })
	if s := b.status(); s.Role != "leader" || s.Term != bStatus.Term {
		t.Errorf("b is %s in term %d after the restore, want leader in %d", s.Role, s.Term, bStatus.Term)
	}

	// The crowd leaves: one sender, b.
	if err := d.walk(5, 5, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "the crowd left", d.truth(), a, b)
	waitFor(t, 30*time.Second, "both resolutions paged", func() bool {
		return hook.count(func(pg page) bool { return pg.what == "resolved" && !pg.degraded }) == 2
	})
	time.Sleep(time.Second)
	if n := hook.count(func(pg page) bool { return pg.degraded }); n != degradedPages {
		t.Errorf("%d degraded pages after a rejoined as standby", n-degradedPages)
	}
	if n := hook.count(func(pg page) bool { return pg.degraded && pg.from != "a" }); n != 0 {
		t.Errorf("%d degraded pages from b, which never lost etcd", n)
	}
	oneSenderAtATime(t, hook.all())
	if t.Failed() {
		t.Logf("pages: %+v\nagreement a: %s\nagreement b: %s", hook.all(), ga, gb)
	}
}

// TestHAPairBrokerRestart restarts the shared mosquitto while the doors count: both instances'
// persistent sessions resume and both equal the truth; leadership is not touched.
func TestHAPairBrokerRestart(t *testing.T) {
	e := testkit.Etcd(t)
	mq := startMosquitto(t)
	p := runPair(t, pairOptions{etcd: e.Endpoint, broker: mq.addr})
	a, b, term, d := p.a, p.b, p.term, p.doors
	if err := d.walk(20, 20, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "before", d.truth(), a, b)

	load := make(chan error, 1)
	go func() { load <- d.walk(60, 50, 25*time.Millisecond) }()
	time.Sleep(400 * time.Millisecond)
	mid := d.truth()
	mq.restart(t)
	if err := <-load; err != nil {
		t.Fatal(err)
	}
	if mid["hall"] >= 60 && mid["annex"] >= 50 {
		t.Fatalf("the load was over (%v) before the broker restarted", mid)
	}
	checkpointPair(t, "across the broker restart", d.truth(), a, b)
	if err := d.walk(35, 65, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "after the broker restart", d.truth(), a, b)
	if r, got := a.role(); r != "leader" || got != term {
		t.Errorf("a is %s in term %d after the broker restart, want leader in %d", r, got, term)
	}
	if r, _ := b.role(); r != "standby" {
		t.Errorf("b is %s after the broker restart, want standby", r)
	}
}

// TestHAPairOnThreeEtcdMembers runs the pair on a three-member etcd configured from
// deploy/ha/etcd.default (addresses on loopback) and kills the etcd member that leads the
// cluster: the coordinator survives it. Afterwards exactly one instance leads (a new term if
// the lease lapsed during etcd's own election), the zones equal the truth, and an operator
// action goes through the two remaining members to both instances.
func TestHAPairOnThreeEtcdMembers(t *testing.T) {
	c := testkit.EtcdMembers(t, "../../deploy/ha/etcd.default")
	mq := startMosquitto(t)
	// ha.endpoints lists every member.
	p := runPair(t, pairOptions{etcd: strings.Join(c.Endpoints, `", "`), broker: mq.addr})
	a, b, oldTerm, hook, d := p.a, p.b, p.term, p.hook, p.doors
	if err := d.walk(72, 20, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkpointPair(t, "three members", d.truth(), a, b)
	waitFor(t, 20*time.Second, "the hall paged", func() bool { return hook.count(func(pg page) bool { return pg.alert == "level:hall" }) == 1 })

	var leader int
	waitFor(t, 10*time.Second, "etcd has a leader", func() bool { leader = c.Leader(); return leader >= 0 })
	c.Kill(leader)
	killed := time.Now()
	if err := d.walk(80, 30, 5*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the two members left elect a leader", func() bool { return c.Leader() >= 0 })
	// etcd's own election may cost the lease a renewal (docs/ha.md, "Timing"): the pair may
	// go degraded for a moment and lead again in a new term. Settled: one leader, the same
	// term on both, for two seconds.
	var st [2]haStatus
	var settled time.Time
	waitFor(t, 30*time.Second, "exactly one leads on the two members left, settled", func() bool {
		prev := st
		st = [2]haStatus{a.status(), b.status()}
		roles := st[0].Role + "," + st[1].Role
		if !(roles == "leader,standby" || roles == "standby,leader") || st[0].Term != st[1].Term || st != prev {
			settled = time.Time{}
			return false
		}
		if settled.IsZero() {
			settled = time.Now()
		}
		return time.Since(settled) >= 2*time.Second
	})
	t.Logf("etcd member %d (its leader) killed: %s leads in term %d (was %d) %v after", leader,
		map[bool]string{true: "a", false: "b"}[st[0].Role == "leader"], st[0].Term, oldTerm, time.Since(killed).Round(time.Millisecond))
	checkpointPair(t, "two members", d.truth(), a, b)
	if code, v := b.svc.post("/api/v1/alerts/level:hall/ack", `{"note": "on two members"}`); code != 200 {
		t.Fatalf("ack with two members: %d %v", code, v)
	}
	waitFor(t, 20*time.Second, "the ack on both", func() bool {
		return strings.Contains(a.agreement(), "level:hall:acknowledged") && a.agreement() == b.agreement()
	})
	waitFor(t, 20*time.Second, "the ack paged", func() bool {
		return hook.count(func(pg page) bool { return pg.alert == "level:hall" && pg.what == "acknowledged" }) == 1
	})
	time.Sleep(time.Second)
	oneSenderAtATime(t, hook.all())
	if t.Failed() {
		t.Logf("pages: %+v", hook.all())
	}
}
