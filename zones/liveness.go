package zones

import "time"

// devicesLive reports whether every device feeding zone z is online now.
func (e *Engine) devicesLive(z int, now time.Time) bool {
	for _, id := range e.model.Zones[z].Devices {
		if !e.online(e.devices[id], now) {
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
		if dev.Online != e.online(e.devices[dev.ID], now) {
			return true
		}
	}
	return false
}

// online: the device said it is online and has been heard from within OfflineAfter.
func (e *Engine) online(d *deviceState, now time.Time) bool {
	return d != nil && d.Online && now.Sub(d.LastSeen) < e.opts.OfflineAfter
}
