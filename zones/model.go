// Package zones turns device reports into exact per-zone occupancy. The Engine owns all
// mutable state in one goroutine, commits it to bbolt in groups and publishes immutable
// snapshots for readers.
package zones

import (
	"slices"
	"time"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// Model is the store's fixed topology, derived once from a validated config.
type Model struct {
	Zones   []ZoneInfo
	Doors   []DoorInfo
	zoneIdx map[string]int
	doorIdx map[string]int
	// lines maps a device's counting line to the door it watches.
	lines map[lineKey]int
	// Devices lists every configured device, counters first in config order.
	Devices   []DeviceInfo
	deviceIdx map[string]int
}

type ZoneInfo struct {
	ID, Name, Parent string
	Capacity         int
	AreaM2           float64
	// Ancestors are this zone's index followed by its parent's, up to the root.
	Ancestors []int
	// Devices are the counters whose doors change this zone: the zone's figure is only as
	// current as the latest of their reports.
	Devices []string
}

type DoorInfo struct {
	ID, From, To string
	WidthM       float64
	Device, Line string
	Reversed     bool
	// Gain are the zones that gain a person on an "in" crossing, Lose those that lose one:
	// the enclosing zones of one side that do not also enclose the other.
	Gain, Lose []int
}

// DeviceKind tells a door counter from an area sensor.
type DeviceKind string

const (
	KindCounter DeviceKind = "counter"
	KindSensor  DeviceKind = "sensor"
)

type DeviceInfo struct {
	ID    string
	Kind  DeviceKind
	Width int      // counter width in bits (counters only)
	Doors []string // doors it counts (counters)
	Zone  string   // zone it measures (sensors)
	// Format is the vendor format the device speaks, "" for the native protocol; Counting
	// the semantics its crossings are counted by; Region (sensors) the vendor's region id
	// whose count is the zone's.
	Format   string
	Counting formats.Semantics
	Region   string
	// OfflineAfter is the device's own allowance of silence (devices.list[].offline_after),
	// 0 for the engine's (devices.offline_after).
	OfflineAfter time.Duration
}

type lineKey struct{ device, line string }

// NewModel builds the topology. The config must have passed Validate.
func NewModel(cfg *configs.Config) *Model {
	m := &Model{
		zoneIdx:   map[string]int{},
		doorIdx:   map[string]int{},
		lines:     map[lineKey]int{},
		deviceIdx: map[string]int{},
	}
	for i, z := range cfg.Zones {
		m.zoneIdx[z.ID] = i
		m.Zones = append(m.Zones, ZoneInfo{ID: z.ID, Name: z.Name, Parent: z.Parent, Capacity: z.Capacity, AreaM2: z.AreaM2})
	}
	for i := range m.Zones {
		for j := i; j >= 0; {
			m.Zones[i].Ancestors = append(m.Zones[i].Ancestors, j)
			p := m.Zones[j].Parent
			if p == "" {
				break
			}
			j = m.zoneIdx[p]
		}
	}
	for i, d := range cfg.Doors {
		from, to := m.ancestors(d.From), m.ancestors(d.To)
		di := DoorInfo{ID: d.ID, From: d.From, To: d.To, WidthM: d.WidthM,
			Device: d.Counter.Device, Line: d.Counter.Line, Reversed: d.Counter.Reversed}
		for _, z := range to {
			if !slices.Contains(from, z) {
				di.Gain = append(di.Gain, z)
			}
		}
		for _, z := range from {
			if !slices.Contains(to, z) {
				di.Lose = append(di.Lose, z)
			}
		}
		m.doorIdx[d.ID] = i
		m.Doors = append(m.Doors, di)
		if d.Counter.Device == "" {
			continue
		}
		m.lines[lineKey{d.Counter.Device, d.Counter.Line}] = i
		if k, ok := m.deviceIdx[d.Counter.Device]; ok {
			m.Devices[k].Doors = append(m.Devices[k].Doors, d.ID)
			continue
		}
		m.deviceIdx[d.Counter.Device] = len(m.Devices)
		m.Devices = append(m.Devices, DeviceInfo{ID: d.Counter.Device, Kind: KindCounter, Width: d.Counter.Width, Doors: []string{d.ID}})
	}
	for _, d := range m.Doors {
		if d.Device == "" {
			continue
		}
		for _, z := range append(slices.Clone(d.Gain), d.Lose...) {
			if !slices.Contains(m.Zones[z].Devices, d.Device) {
				m.Zones[z].Devices = append(m.Zones[z].Devices, d.Device)
			}
		}
	}
	for _, s := range cfg.Sensors {
		m.deviceIdx[s.Device] = len(m.Devices)
		m.Devices = append(m.Devices, DeviceInfo{ID: s.Device, Kind: KindSensor, Zone: s.Zone, Region: s.Region})
	}
	for i := range m.Devices {
		spec := cfg.Device(m.Devices[i].ID)
		if !spec.Native() {
			m.Devices[i].Format, m.Devices[i].Counting = spec.Format, spec.Semantics()
		}
		if spec.OfflineAfter != nil {
			m.Devices[i].OfflineAfter = *spec.OfflineAfter
		}
	}
	return m
}

func (m *Model) ancestors(zone string) []int {
	if zone == configs.Outside {
		return nil
	}
	return m.Zones[m.zoneIdx[zone]].Ancestors
}

// Zone returns the index of a zone id.
func (m *Model) Zone(id string) (int, bool) {
	i, ok := m.zoneIdx[id]
	return i, ok
}

// Device returns a configured device.
func (m *Model) Device(id string) (DeviceInfo, bool) {
	i, ok := m.deviceIdx[id]
	if !ok {
		return DeviceInfo{}, false
	}
	return m.Devices[i], true
}

// DoorOf returns the door a device's line is bound to.
func (m *Model) DoorOf(device, line string) (int, bool) {
	i, ok := m.lines[lineKey{device, line}]
	return i, ok
}

// linesOf lists the lines of a counter that doors are bound to, in door order.
func (m *Model) linesOf(info DeviceInfo) []string {
	var lines []string
	for _, id := range info.Doors {
		lines = append(lines, m.Doors[m.doorIdx[id]].Line)
	}
	return lines
}
