package configs

import (
	"fmt"
	"strings"
)

// validateZones checks the zones and their parents; it returns each zone's index by id.
func (c *Config) validateZones(bad func(key, format string, args ...any)) map[string]int {
	zoneIdx := map[string]int{}
	if len(c.Zones) == 0 {
		bad("zones", "at least one zone is required")
	}
	for i, z := range c.Zones {
		key := fmt.Sprintf("zones[%d]", i)
		switch {
		case z.ID == "":
			bad(key+".id", "is required")
		case z.ID == Outside:
			bad(key+".id", "%q is reserved for the world outside the store", Outside)
		case !idPattern.MatchString(z.ID):
			bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", z.ID)
		default:
			if j, dup := zoneIdx[z.ID]; dup {
				bad(key+".id", "duplicate zone %q (also zones[%d])", z.ID, j)
			} else {
				zoneIdx[z.ID] = i
			}
		}
		if z.Capacity < 1 || z.Capacity > MaxCapacity {
			bad(key+".capacity", "%d must be between 1 and %d (zone %q)", z.Capacity, MaxCapacity, z.ID)
		}
		if z.AreaM2 < 0 {
			bad(key+".area_m2", "must be >= 0 (zone %q)", z.ID)
		}
	}
	for i, z := range c.Zones {
		if z.Parent == "" {
			continue
		}
		if _, ok := zoneIdx[z.Parent]; !ok {
			bad(fmt.Sprintf("zones[%d].parent", i), "unknown zone %q", z.Parent)
		}
	}
	for _, cycle := range parentCycles(c.Zones, zoneIdx) {
		bad(fmt.Sprintf("zones[%d].parent", zoneIdx[cycle[0]]), "parent cycle %s", strings.Join(cycle, " -> "))
	}

	return zoneIdx
}

// validateDoors checks the doors and their counters (filling in the default line and width);
// it returns the devices bound as door counters.
func (c *Config) validateDoors(bad func(key, format string, args ...any), zoneIdx map[string]int) map[string]bool {
	knownSide := func(id string) bool {
		_, ok := zoneIdx[id]
		return ok || id == Outside
	}
	doorIDs := map[string]int{}
	type binding struct{ device, line string }
	bound := map[binding]string{}
	widths := map[string]int{}
	counterDevices := map[string]bool{}
	for i := range c.Doors {
		d := &c.Doors[i]
		key := fmt.Sprintf("doors[%d]", i)
		if d.ID == "" {
			bad(key+".id", "is required")
		} else if !idPattern.MatchString(d.ID) {
			bad(key+".id", "%q must be letters, digits, '.', '_' or '-' (at most 64)", d.ID)
		} else if j, dup := doorIDs[d.ID]; dup {
			bad(key+".id", "duplicate door %q (also doors[%d])", d.ID, j)
		} else {
			doorIDs[d.ID] = i
		}
		if !knownSide(d.From) {
			bad(key+".from", "unknown zone %q", d.From)
		}
		if !knownSide(d.To) {
			bad(key+".to", "unknown zone %q", d.To)
		}
		if d.From == d.To {
			bad(key, "door %q leads from %q to itself", d.ID, d.From)
		}
		if d.WidthM < 0 {
			bad(key+".width_m", "must be >= 0")
		}
		if d.Swap != nil {
			if d.Counter.Swap != nil && *d.Counter.Swap != *d.Swap {
				bad(key+".swap", "swap and counter.swap say different things")
			}
			d.Counter.Swap = d.Swap
		}
		if d.Counter.Swap != nil {
			if d.Counter.Reversed && !*d.Counter.Swap {
				bad(key+".counter.swap", "swap: false and reversed: true say different things (they are one setting)")
			}
			d.Counter.Reversed = *d.Counter.Swap
		}
		if d.Counter.Device == "" {
			continue // an uncounted door is allowed; its zones are flagged uncertain (docs/alerting.md)
		}
		if !idPattern.MatchString(d.Counter.Device) {
			bad(key+".counter.device", "%q must be letters, digits, '.', '_' or '-' (at most 64)", d.Counter.Device)
		}
		if d.Counter.Line == "" {
			d.Counter.Line = DefaultLine
		}
		if d.Counter.Width == 0 {
			d.Counter.Width = 32
		}
		if !(d.Counter.Width == 16 || d.Counter.Width == 32 || d.Counter.Width == 64) {
			bad(key+".counter.width", "%d must be 16, 32 or 64 bits", d.Counter.Width)
		}
		b := binding{d.Counter.Device, d.Counter.Line}
		if other, dup := bound[b]; dup {
			bad(key+".counter", "device %q line %q is already bound to door %q", b.device, b.line, other)
		} else {
			bound[b] = d.ID
		}
		if w, seen := widths[d.Counter.Device]; seen && w != d.Counter.Width {
			bad(key+".counter.width", "device %q is declared %d bits on another door", d.Counter.Device, w)
		} else {
			widths[d.Counter.Device] = d.Counter.Width
		}
		counterDevices[d.Counter.Device] = true
	}

	return counterDevices
}

// validateSensors checks the area sensors; it returns each sensor device's index.
func (c *Config) validateSensors(bad func(key, format string, args ...any), zoneIdx map[string]int, counterDevices map[string]bool) map[string]int {
	sensorDevices := map[string]int{}
	for i, s := range c.Sensors {
		key := fmt.Sprintf("sensors[%d]", i)
		if !idPattern.MatchString(s.Device) {
			bad(key+".device", "%q must be letters, digits, '.', '_' or '-' (at most 64)", s.Device)
		}
		if _, ok := zoneIdx[s.Zone]; !ok {
			bad(key+".zone", "unknown zone %q", s.Zone)
		}
		if counterDevices[s.Device] {
			bad(key+".device", "device %q is already bound as a door counter", s.Device)
		}
		if j, dup := sensorDevices[s.Device]; dup {
			bad(key+".device", "device %q is already bound (sensors[%d]); one device measures one zone", s.Device, j)
		} else {
			sensorDevices[s.Device] = i
		}
	}

	return sensorDevices
}

// parentCycles returns each cycle in the parent relation once, as the ids along it.
func parentCycles(zs []Zone, idx map[string]int) [][]string {
	parent := map[string]string{}
	for _, z := range zs {
		if z.Parent != "" {
			parent[z.ID] = z.Parent
		}
	}
	reported := map[string]bool{}
	var cycles [][]string
	for _, z := range zs {
		seen := map[string]int{}
		var path []string
		for id := z.ID; id != ""; id = parent[id] {
			if _, ok := idx[id]; !ok {
				break
			}
			if at, ok := seen[id]; ok {
				cyc := append(path[at:], id)
				if !reported[id] {
					for _, c := range cyc {
						reported[c] = true
					}
					cycles = append(cycles, cyc)
				}
				break
			}
			seen[id] = len(path)
			path = append(path, id)
		}
	}
	return cycles
}
