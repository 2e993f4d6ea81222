package auth

import "time"

// The sign-in throttle (docs/security.md). Every attempt counts against the user name and
// the remote host until it proves right; past a few free ones, the next attempt must wait,
// twice as long after each: 1 s, 2 s, 4 s ... An attempt that arrives too early is refused
// with 429 and does not count, so the wait never grows beyond its cap while an attacker
// keeps knocking: a guard whose name is being guessed waits at most userCap, and a right
// password clears the user's count.
const (
	userFree = 5
	userBase = time.Second
	userCap  = 15 * time.Second
	hostFree = 10
	hostBase = time.Second
	hostCap  = 60 * time.Second
	// forgetAfter: a name or host with no attempt for this long starts afresh.
	forgetAfter = 15 * time.Minute
	// throttleMax bounds each table; when full, the quietest entries go first.
	throttleMax = 10_000
)

type strikes struct {
	failures int
	last     time.Time
	until    time.Time
	told     bool // an attempt was refused since until was set
}

type table struct {
	m          map[string]*strikes
	free       int
	base, cap_ time.Duration
}

func (t *table) get(key string, now time.Time) *strikes {
	s, ok := t.m[key]
	if ok && now.Sub(s.last) >= forgetAfter {
		delete(t.m, key)
		ok = false
	}
	if !ok {
		if len(t.m) >= throttleMax {
			t.evict(now)
		}
		s = &strikes{}
		t.m[key] = s
	}
	return s
}

func (t *table) evict(now time.Time) {
	t.forgetOld(now)
	for len(t.m) >= throttleMax {
		var oldest string
		var at time.Time
		for k, s := range t.m {
			if oldest == "" || s.last.Before(at) {
				oldest, at = k, s.last
			}
		}
		delete(t.m, oldest)
	}
}

func (t *table) forgetOld(now time.Time) {
	for k, s := range t.m {
		if now.Sub(s.last) >= forgetAfter {
			delete(t.m, k)
		}
	}
}

// delay after n counted attempts.
func (t *table) delay(n int) time.Duration {
	if n <= t.free {
		return 0
	}
	d := t.base << min(n-t.free-1, 20)
	return min(d, t.cap_)
}

func (t *table) count(s *strikes, now time.Time) {
	s.failures++
	s.last = now
	s.until = now.Add(t.delay(s.failures))
	s.told = false
}

// throttle holds the counts per user name and per remote host. Only the Store's goroutine
// uses it.
type throttle struct {
	users, hosts table
}

func newThrottle() *throttle {
	return &throttle{
		users: table{m: map[string]*strikes{}, free: userFree, base: userBase, cap_: userCap},
		hosts: table{m: map[string]*strikes{}, free: hostFree, base: hostBase, cap_: hostCap},
	}
}

// attempt returns how long the caller must wait (0: go ahead), and whether this is the first
// refusal of that wait (the one worth a line in the log and the audit: the rest of an
// attacker's hammering is only counted). A permitted attempt is counted at once, as if it
// failed, so that parallel guesses cannot all slip in before the first result; succeeded
// takes it back.
func (t *throttle) attempt(user, host string, now time.Time) (time.Duration, bool) {
	u, h := t.users.get(user, now), t.hosts.get(host, now)
	if wait := max(u.until.Sub(now), h.until.Sub(now)); wait > 0 {
		s := u
		if h.until.After(u.until) {
			s = h
		}
		first := !s.told
		s.told = true
		return wait, first
	}
	t.users.count(u, now)
	t.hosts.count(h, now)
	return 0, false
}

// succeeded clears the user's count and takes the attempt back from the host's.
func (t *throttle) succeeded(user, host string, now time.Time) {
	delete(t.users.m, user)
	if h, ok := t.hosts.m[host]; ok {
		h.failures = max(h.failures-1, 0)
		h.until = h.last.Add(t.hosts.delay(h.failures))
	}
}

func (t *throttle) forgetOld(now time.Time) {
	t.users.forgetOld(now)
	t.hosts.forgetOld(now)
}
