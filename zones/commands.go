package zones

import (
	"context"
	"errors"
	"fmt"
)

// do runs fn in the engine goroutine and waits for its commit.
func (e *Engine) do(ctx context.Context, fn func() (any, error)) (any, error) {
	return e.cmds.Do(ctx, fn)
}

// ErrUnknownZone is returned for a zone id that is not in the config.
var ErrUnknownZone = errors.New("unknown zone")

// ErrCorrectionRange is returned for a corrected figure outside [0, MaxCorrection].
var ErrCorrectionRange = errors.New("correction out of range")

// MaxCorrectionFactor bounds a correction: a head count may find a zone over its capacity,
// but not by more than this many times. The bound keeps every figure derived from a
// correction (the enclosing zones, the corrected total, the history) far from overflowing.
const MaxCorrectionFactor = 10

// MaxCorrection is the largest figure a zone of this capacity can be corrected to.
func MaxCorrection(capacity int) int64 { return MaxCorrectionFactor * int64(max(capacity, 1)) }

// Correct sets a zone to a counted figure (after a head count by staff), moving its enclosing
// zones by the same difference. The correction is kept in the audit log with who and why,
// beside the raw figure it replaced.
func (e *Engine) Correct(ctx context.Context, zone string, value int64, by, reason string) (ZoneState, error) {
	z, ok := e.model.Zone(zone)
	if !ok {
		return ZoneState{}, fmt.Errorf("%w %q", ErrUnknownZone, zone)
	}
	if limit := MaxCorrection(e.model.Zones[z].Capacity); value < 0 || value > limit {
		return ZoneState{}, fmt.Errorf("%w: occupancy %d of zone %q must be between 0 and %d (%d × its capacity of %d)",
			ErrCorrectionRange, value, zone, limit, MaxCorrectionFactor, e.model.Zones[z].Capacity)
	}
	v, err := e.do(ctx, func() (any, error) {
		now := e.opts.Now()
		entry := &LogEntry{At: now, Kind: EntryCorrection, Zone: zone, Value: value,
			Before: e.occ.zones[z].Occupancy, By: by, Reason: reason}
		if err := e.occ.replay(entry); err != nil {
			return nil, fmt.Errorf("occupancy %d for zone %q: %w", value, zone, err)
		}
		e.stageZones(entry)
		e.pending.log = append(e.pending.log, entry)
		e.pending.audit = append(e.pending.audit, entry)
		e.log.Info("occupancy corrected", "zone", zone, "from", entry.Before, "to", value, "by", by, "reason", reason)
		return nil, nil
	})
	if err != nil {
		return ZoneState{}, err
	}
	_ = v
	return e.Snapshot().Zones[z], nil
}

// ResetAll empties every zone now, as the daily reset does.
func (e *Engine) ResetAll(ctx context.Context, by, reason string) error {
	_, err := e.do(ctx, func() (any, error) {
		e.resetNow(by, reason)
		return nil, nil
	})
	return err
}
