package main

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// damages are ways a file is broken in the field (a cut copy, a full disk, bit rot). Each
// leaves the meta pages (which carry checksums) for last: truncation cuts the pages after them, scrambling writes
// random bytes over every other page's header.
var damages = []struct {
	name string
	do   func(t *testing.T, path string)
}{
	{"truncated to 8192 bytes", func(t *testing.T, p string) {
		if err := os.Truncate(p, 8192); err != nil {
			t.Fatal(err)
		}
	}},
	{"random bytes in page headers", func(t *testing.T, p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		r := rand.New(rand.NewPCG(7, 7))
		for off := 2 * 4096; off+16 <= len(b); off += 4096 {
			for i := range 16 {
				b[off+i] = byte(r.Uint32())
			}
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}},
	{"0 bytes", func(t *testing.T, p string) {
		if err := os.Truncate(p, 0); err != nil {
			t.Fatal(err)
		}
	}},
}

// copyDir copies the flat folder of files a service left.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// checkRefusal: the command failed with one line that names the file and the operations
// guide, and no Go trace.
func checkRefusal(t *testing.T, out []byte, err error, file string) {
	t.Helper()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
		t.Fatalf("exit %v, want a failure\n%s", err, out)
	}
	for _, trace := range []string{"goroutine ", "panic:", "fatal error", "SIGBUS", "SIGSEGV", ".go:"} {
		if bytes.Contains(out, []byte(trace)) {
			t.Fatalf("output has a Go trace (%q):\n%s", trace, out)
		}
	}
	var lines []string
	for l := range strings.SplitSeq(string(out), "\n") {
		if strings.Contains(l, file) && strings.Contains(l, "docs/operations.md") && strings.Contains(l, "damaged") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want one line naming %s as damaged and pointing to docs/operations.md, got %d:\n%s", file, len(lines), out)
	}
}

// TestDamagedFilesAreRefused: each of the four files, damaged each way, is
// refused with one clear line, non-zero exit and no trace: the occupancy, alert and sign-in files by
// serve, the history file by `crowdwatch report` (serve keeps running without history, as
// the live figures matter more, and logs the same line).
func TestDamagedFilesAreRefused(t *testing.T) {
	pristine := t.TempDir()
	cfgPath := writeConfig(t, pristine, embeddedStore)
	svc := startApp(t, cfgPath)
	dev, err := mqttClient(t, "tcp://"+svc.MQTT, "dc-01", "", "")
	if err != nil {
		t.Fatal(err)
	}
	publish(t, dev, "crowdwatch/it-store/counter/dc-01", report("b1", 1, 30, 2))
	svc.waitOccupancy(map[string]int64{"entrance": 28}, 10*time.Second)
	dev.Disconnect(100)
	svc.stop()
	for _, name := range []string{"cw.db", "alerts.db", "cw.history.db", "cw.auth.db"} {
		if _, err := os.Stat(filepath.Join(pristine, name)); err != nil {
			t.Fatalf("the service left no %s: %v", name, err)
		}
	}
	for _, file := range []string{"cw.db", "alerts.db", "cw.history.db", "cw.auth.db"} {
		for _, d := range damages {
			t.Run(file+" "+d.name, func(t *testing.T) {
				dir := t.TempDir()
				copyDir(t, pristine, dir)
				cfg := writeConfig(t, dir, embeddedStore)
				path := filepath.Join(dir, file)
				d.do(t, path)
				if file == "cw.history.db" {
					out, err := exec.Command(binPath, "report", "--config", cfg, "--date", "2026-11-11").CombinedOutput()
					checkRefusal(t, out, err, path)
					// The service itself runs on, without history, and says why.
					svc := startApp(t, cfg)
					deadline := time.Now().Add(20 * time.Second)
					for !strings.Contains(svc.logs.String(), path+" is damaged") {
						if time.Now().After(deadline) {
							t.Fatalf("serve with a damaged history file does not say so:\n%s", svc.logs)
						}
						time.Sleep(50 * time.Millisecond)
					}
					svc.stop()
					return
				}
				cmd := exec.Command(binPath, "serve", "--config", cfg)
				done := make(chan struct{})
				var out []byte
				go func() { defer close(done); out, err = cmd.CombinedOutput() }()
				select {
				case <-done:
				case <-time.After(60 * time.Second):
					cmd.Process.Kill()
					<-done
					t.Fatalf("serve started on a damaged %s:\n%s", file, out)
				}
				checkRefusal(t, out, err, path)
			})
		}
	}
}

// TestBadListenAddressWritesNothing: check-config refuses a listen address
// with a port out of range, and serve fails the same way without creating any file.
func TestBadListenAddressWritesNothing(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{strings.Replace(embeddedStore, `http: {listen: "127.0.0.1:0"}`, `http: {listen: "127.0.0.1:99999"}`, 1),
			`http.listen: "127.0.0.1:99999": port 99999 is out of range: 0 to 65535`},
		{strings.Replace(embeddedStore, `mqtt: {embedded: {listen: "127.0.0.1:0"}}`, `mqtt: {embedded: {listen: "127.0.0.1"}}`, 1),
			`mqtt.embedded.listen: "127.0.0.1" is not host:port`},
		{strings.Replace(embeddedStore, `capacity: 150,`, `capacity: 10.7,`, 1), `zones[1].capacity: 10.7 is not a whole number`},
		{strings.Replace(embeddedStore, `capacity: 150,`, `capacity: 9223372036854775808,`, 1),
			`zones[1].capacity: 9223372036854775808 is out of range`},
	} {
		dir := t.TempDir()
		cfg := writeConfig(t, dir, tc.yaml)
		for _, args := range [][]string{{"check-config", cfg}, {"serve", "--config", cfg}} {
			out, err := exec.Command(binPath, args...).CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
				t.Fatalf("%v: exit %v, want 1\n%s", args, err, out)
			}
			if !strings.Contains(string(out), tc.want) {
				t.Errorf("%v: output lacks %q:\n%s", args, tc.want, out)
			}
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.Name() != "store.yaml" {
				t.Errorf("a refused start created %s", e.Name())
			}
		}
	}
	// A well-formed address another program holds: check-config cannot know, serve fails
	// binding it before it opens any file.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	cfg := writeConfig(t, dir, strings.Replace(embeddedStore, `http: {listen: "127.0.0.1:0"}`, `http: {listen: "`+ln.Addr().String()+`"}`, 1))
	out, err := exec.Command(binPath, "serve", "--config", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "http: cannot listen on "+ln.Addr().String()) {
		t.Fatalf("serve on a busy port: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("serve on a busy port left %d entries in its folder, want only store.yaml", len(ents))
	}
}
