package main

import (
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// The load tool on a small load: the bare broker delivers everything it acknowledged, the
// service loses nothing, and the WebSocket clients measure latency.
func TestBenchCommandMeasuresWholePath(t *testing.T) {
	out, err := exec.Command(binPath, "bench", "--devices", "3", "--rate", "20", "--clients", "3", "--measure-clients", "2",
		"--zones", "5", "--duration", "2s").CombinedOutput()
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, out)
	}
	bare := regexp.MustCompile(`bare embedded: (\d+) acknowledged .* delivered (\d+);`).FindSubmatch(out)
	svc := regexp.MustCompile(`service on embedded: (\d+) acknowledged .* crossings applied (\d+) \(lost (-?\d+)\); publish-to-WebSocket .*\((\d+) samples\); (\d+) WebSocket messages \(([\d.]+) KB each on average\), (\d+) clients dropped`).FindSubmatch(out)
	// Where the service's memory went, from its /metrics at the end of the load.
	mem := regexp.MustCompile(`service memory at the end of the load: heap in use \d+ MB, goroutine stacks \d+ MB \((\d+) goroutines\), from the OS (\d+) MB`).FindSubmatch(out)
	if bare == nil || svc == nil || mem == nil {
		t.Fatalf("bench output lacks its result lines:\n%s", out)
	}
	n := func(b []byte) int { v, _ := strconv.Atoi(string(b)); return v }
	if n(bare[1]) == 0 || n(bare[1]) != n(bare[2]) {
		t.Errorf("bare broker: %s acknowledged, %s delivered; want equal and > 0", bare[1], bare[2])
	}
	if n(svc[1]) == 0 || n(svc[3]) != 0 || n(svc[1]) != n(svc[2]) {
		t.Errorf("service: %s acknowledged, %s applied, lost %s; want all applied", svc[1], svc[2], svc[3])
	}
	if n(svc[4]) == 0 || n(svc[5]) == 0 || n(svc[7]) != 0 {
		t.Errorf("service: %s latency samples, %s WebSocket messages, %s clients dropped; want samples and messages, no drops", svc[4], svc[5], svc[7])
	}
	if kb, _ := strconv.ParseFloat(string(svc[6]), 64); kb <= 0 {
		t.Errorf("service: WebSocket messages of %s KB on average; want their size", svc[6])
	}
	if n(mem[1]) == 0 || n(mem[2]) == 0 {
		t.Errorf("service memory: %s goroutines, %s MB from the OS; want both read from /metrics", mem[1], mem[2])
	}
}
