package zones

import (
	"time"
)

// Source is the engine's read side, as the alert manager, the live feed, the zone publisher
// and the history recorder consume it: the latest committed snapshot (it never blocks), and
// a coalesced signal after each new one with a function that cancels it (internal/owner).
type Source interface {
	Snapshot() *Snapshot
	Subscribe() (<-chan struct{}, func())
}

var _ Source = (*Engine)(nil)

// Snapshot is an immutable view of committed state, replaced after every commit.
type Snapshot struct {
	Version uint64
	Taken   time.Time
	Zones   []ZoneState
	Doors   []DoorState
	Devices []DeviceStatus
}

// ZoneState is one zone as the API and the zone topic show it.
type ZoneState struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Parent    string    `json:"parent,omitempty"`
	Occupancy int64     `json:"occupancy"`
	Capacity  int       `json:"capacity"`
	Ratio     float64   `json:"ratio"`
	AreaM2    float64   `json:"area_m2,omitempty"`
	Density   *float64  `json:"density,omitempty"` // persons per m², only for zones with an area
	Updated   time.Time `json:"updated,omitzero"`
	// Deficit is how far below zero the reported crossings put the zone now (shown as 0):
	// a late counter, or drift until it is clamped.
	Deficit int64 `json:"deficit,omitempty"`
	// Clamped counts people added to bring a persistently negative zone back to zero (drift).
	Clamped int64 `json:"clamped"`
	// Anchored and LastAnchor are the sizes of area-sensor corrections (sum of absolute
	// values, and the latest signed one); Corrected sums manual corrections and resets.
	Anchored   int64 `json:"anchored"`
	LastAnchor int64 `json:"last_anchor"`
	Corrected  int64 `json:"corrected"`
}

// DoorState is a door's crossings since the database was created.
type DoorState struct {
	ID     string `json:"id"`
	From   string `json:"from"`
	To     string `json:"to"`
	Device string `json:"device,omitempty"`
	In     uint64 `json:"in"`
	Out    uint64 `json:"out"`
}

// DeviceStatus is one configured device's health.
type DeviceStatus struct {
	ID       string     `json:"id"`
	Kind     DeviceKind `json:"kind"`
	Doors    []string   `json:"doors,omitempty"`
	Zone     string     `json:"zone,omitempty"`
	LastSeen *time.Time `json:"last_seen"`
	Online   bool       `json:"online"`
	Boot     string     `json:"boot,omitempty"`
	Seq      uint64     `json:"seq"`
	Reports  uint64     `json:"reports"`
	// Format is the device's format ("native" or a vendor's) and Counting the semantics its
	// crossings are counted by (vendor formats); Lines are the device's lines bound to doors,
	// Region the region a sensor's zone is bound to, Seen the bound lines and regions that
	// have reported ("region:N" for regions), Unbound those it sent that nothing is bound
	// to, latest last. LastReading and
	// LastSemantics are the time and kind of its latest reading (vendor formats): how to check
	// a device is bound right (docs/devices.md).
	Format        string     `json:"format"`
	Counting      string     `json:"counting,omitempty"`
	Lines         []string   `json:"lines,omitempty"`
	Region        *string    `json:"region,omitempty"`
	Seen          []string   `json:"seen,omitempty"`
	Unbound       []string   `json:"unbound,omitempty"`
	LastReading   *time.Time `json:"last_reading,omitempty"`
	LastSemantics string     `json:"last_semantics,omitempty"`
}

func (e *Engine) buildSnapshot() *Snapshot {
	now := e.opts.Now()
	s := &Snapshot{Version: e.version, Taken: now,
		Zones:   make([]ZoneState, len(e.model.Zones)),
		Doors:   make([]DoorState, len(e.model.Doors)),
		Devices: make([]DeviceStatus, len(e.model.Devices)),
	}
	for i, z := range e.model.Zones {
		r := e.occ.zones[i]
		shown := max(r.Occupancy, 0)
		zs := ZoneState{ID: z.ID, Name: z.Name, Parent: z.Parent, Occupancy: shown, Deficit: shown - r.Occupancy,
			Capacity: z.Capacity, Ratio: float64(shown) / float64(z.Capacity), AreaM2: z.AreaM2, Updated: r.Updated,
			Clamped: r.Clamped, Anchored: r.Anchored, LastAnchor: r.LastAnchor, Corrected: r.Corrected}
		if z.AreaM2 > 0 {
			d := float64(shown) / z.AreaM2
			zs.Density = &d
		}
		s.Zones[i] = zs
	}
	for i, d := range e.model.Doors {
		s.Doors[i] = DoorState{ID: d.ID, From: d.From, To: d.To, Device: d.Device, In: e.occ.doors[i].In, Out: e.occ.doors[i].Out}
	}
	for i, info := range e.model.Devices {
		ds := DeviceStatus{ID: info.ID, Kind: info.Kind, Doors: info.Doors, Zone: info.Zone, Format: "native", Lines: e.model.linesOf(info)}
		if info.Format != "" {
			ds.Format, ds.Counting = info.Format, info.Counting.String()
			if info.Kind == KindSensor {
				region := info.Region
				ds.Region = &region
			}
		}
		if d := e.devices[info.ID]; d != nil {
			if v := d.Vendor; v != nil {
				ds.Unbound, ds.Seen = v.Unbound, v.Reported
				if !v.LastReading.IsZero() {
					t := v.LastReading
					ds.LastReading = &t
				}
				ds.LastSemantics = v.LastSemantics
			}
			if !d.LastSeen.IsZero() {
				t := d.LastSeen
				ds.LastSeen = &t
			}
			ds.Online = e.online(info.ID, d, now)
			ds.Reports = d.Reports
			if b := d.current(); b != nil {
				ds.Boot, ds.Seq = b.Boot, b.Seq
			}
		}
		s.Devices[i] = ds
	}
	return s
}

// Zone returns a zone's state by id.
func (s *Snapshot) Zone(id string) (ZoneState, bool) {
	for _, z := range s.Zones {
		if z.ID == id {
			return z, true
		}
	}
	return ZoneState{}, false
}
