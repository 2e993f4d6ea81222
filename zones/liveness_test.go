package zones

import (
	"testing"
	"time"
)

// A device's own offline_after (a vendor device that reports every 10 min and sends no
// heartbeat) keeps it online between its reports, while a device on the store's allowance
// (30 s) goes offline; past its own allowance it goes offline too.
func TestDeviceOwnOfflineAfter(t *testing.T) {
	h := newHarnessFor(t, "", testStore+`
devices:
  offline_after: 30s
  list:
    - {id: dc-02, offline_after: 15m}
`)
	mustApply(t, h.send(counter("dc-01", "b", 1, line("1", 1, 0))))
	mustApply(t, h.send(counter("dc-02", "b", 1, line("1", 1, 0))))
	online := func(id string) bool {
		for _, d := range h.engine.Snapshot().Devices {
			if d.ID == id {
				return d.Online
			}
		}
		t.Fatalf("no device %s", id)
		return false
	}
	if !online("dc-01") || !online("dc-02") {
		t.Fatal("not online after their reports")
	}
	if h.engine.OfflineAfter("dc-02") != 15*time.Minute || h.engine.OfflineAfter("dc-01") != 30*time.Second {
		t.Fatalf("allowances %v %v", h.engine.OfflineAfter("dc-02"), h.engine.OfflineAfter("dc-01"))
	}
	h.advance(10 * time.Minute)
	h.waitFor("dc-01 offline after 30 s of silence", func() bool { return !online("dc-01") })
	if !online("dc-02") {
		t.Fatal("dc-02 offline 10 min after its report, within its own 15 min")
	}
	h.advance(6 * time.Minute)
	h.waitFor("dc-02 offline past its own 15 min", func() bool { return !online("dc-02") })
}
