package main

import (
	"fmt"
	"io"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/ingest"
	"github.com/crowdwatch/crowdwatch/ingest/formats"
)

// printDeviceSummary says, per device, its format, what that format expects (topic or push
// address, the semantics it is counted by) and which of its lines or regions are bound.
func printDeviceSummary(w io.Writer, cfg *configs.Config) {
	topics := ingest.TopicsFor(cfg)
	var ids []string
	seen := map[string]bool{}
	bound := map[string][]string{}
	sensor := map[string]bool{}
	for _, d := range cfg.Doors {
		if d.Counter.Device == "" {
			continue
		}
		if !seen[d.Counter.Device] {
			seen[d.Counter.Device] = true
			ids = append(ids, d.Counter.Device)
		}
		b := fmt.Sprintf("line %q -> door %s", d.Counter.Line, d.ID)
		if d.Counter.Reversed {
			b += " (in and out swapped)"
		}
		bound[d.Counter.Device] = append(bound[d.Counter.Device], b)
	}
	for _, s := range cfg.Sensors {
		if !seen[s.Device] {
			seen[s.Device] = true
			ids = append(ids, s.Device)
		}
		sensor[s.Device] = true
		region := "the head count"
		if s.Region != "" {
			region = fmt.Sprintf("region %q", s.Region)
		}
		bound[s.Device] = append(bound[s.Device], region+" -> zone "+s.Zone)
	}
	tokens := map[string]bool{}
	for _, t := range cfg.Auth.Tokens {
		if t.Role == "device" {
			tokens[t.Device] = true
		}
	}
	fmt.Fprintf(w, "devices   %d\n", len(ids))
	for _, id := range ids {
		spec := cfg.Device(id)
		kind := ingest.KindCounter
		if sensor[id] {
			kind = ingest.KindOccupancy
		}
		format := spec.Format
		if spec.Decoded != "" {
			format += " (decoded " + spec.Decoded + ")"
		}
		fmt.Fprintf(w, "  %-20s %s\n", id, format)
		if spec.Native() {
			fmt.Fprintf(w, "    expects  MQTT %s (boot, seq, ts: docs/protocol.md)\n", topics.Device(kind, id))
		} else {
			how := "counted by its " + spec.Semantics().String() + " readings, others ignored"
			if sensor[id] {
				how = "counted by its absolute readings (area counts)"
			}
			fmt.Fprintf(w, "    expects  MQTT %s or %s", topics.Device(ingest.KindCounter, id), topics.Device(ingest.KindOccupancy, id))
			if spec.Serial != "" {
				fmt.Fprintf(w, " or axis/%s/event/...", spec.Serial)
			}
			fmt.Fprintf(w, ", or HTTP POST /ingest/v1/%s", id)
			if !tokens[id] {
				fmt.Fprint(w, " (no device token in auth.tokens: pushes are refused)")
			}
			fmt.Fprintf(w, "\n    counts   %s (docs/devices.md)\n", how)
			if e := formats.Expects(spec.Format); e != "" {
				fmt.Fprintf(w, "    sends    %s\n", e)
			}
		}
		for _, b := range bound[id] {
			fmt.Fprintf(w, "    bound    %s\n", b)
		}
		// Vendor devices send no heartbeat: one that reports less often than this shows
		// offline between its reports (docs/devices.md, "Liveness").
		whose := "devices.offline_after"
		if spec.OfflineAfter != nil {
			whose = "its own offline_after"
		}
		fmt.Fprintf(w, "    offline  after %v of silence (%s)\n", cfg.OfflineAfter(id), whose)
	}
}
