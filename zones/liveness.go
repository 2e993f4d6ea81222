package zones

import "time"

// devicesLive reports whether every device feeding zone z is online now.
func (e *Engine) devicesLive(z int, now time.Time) bool {
	for _, id := range e.model.Zones[z].Devices {
		if !e.online(id, e.devices[id], now) {
			return false
		}
	}
	return true
}

// livenessChanged reports whether any device has crossed its offline_after allowance since
// the last snapshot.
func (e *Engine) livenessChanged() bool {
	snap := e.snap.Load()
	now := e.opts.Now()
	for _, dev := range snap.Devices {
		if dev.Online != e.online(dev.ID, e.devices[dev.ID], now) {
			return true
		}
	}
	return false
}

// online: the device said it is online and has been heard from within its allowance.
func (e *Engine) online(id string, d *deviceState, now time.Time) bool {
	return d != nil && d.Online && now.Sub(d.LastSeen) < e.OfflineAfter(id)
}

// OfflineAfter is how long device id may be silent before it counts as offline: its own
// offline_after (a vendor device that sends no heartbeat and reports every 15 min), else
// the engine's (devices.offline_after).
func (e *Engine) OfflineAfter(id string) time.Duration {
	if d, ok := e.model.Device(id); ok && d.OfflineAfter > 0 {
		return d.OfflineAfter
	}
	return e.opts.OfflineAfter
}
