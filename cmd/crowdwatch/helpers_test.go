package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/crowdwatch/crowdwatch/app"
	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/internal/testkit"
	paho "github.com/eclipse/paho.mqtt.golang"
)

// binPath is the crowdwatch binary built once for the integration tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "crowdwatch-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	binPath = filepath.Join(dir, "crowdwatch")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building crowdwatch for the integration tests:", err)
		os.Exit(2)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's (or the in-process app's) output for failure messages.
type syncBuffer = testkit.Buffer

// service is a running crowdwatch binary (startService), or the service run in this process
// (startApp: cmd is nil).
type service struct {
	t      *testing.T
	cmd    *exec.Cmd
	HTTP   string // host:port
	MQTT   string // host:port or broker URL
	logs   *syncBuffer
	done   chan error
	cancel context.CancelFunc // in-process: ends the app's Run
	ended  bool               // in-process: Run has returned
	// reloads is the in-process app's app.Reload.Signal: what SIGHUP is to the binary.
	reloads chan struct{}
}

// reload asks the service to reload its store file: SIGHUP to the binary, a value on
// app.Reload.Signal in-process (a burst becomes one, as with the signal).
func (s *service) reload() {
	s.t.Helper()
	if s.cmd != nil {
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	select {
	case s.reloads <- struct{}{}:
	default:
	}
}

var readyLine = regexp.MustCompile(`msg="crowdwatch ready".* http=(\S+) mqtt=(\S+)`)

// startService runs the binary with args and waits until it logs that it is ready.
func startService(t *testing.T, args ...string) *service {
	t.Helper()
	return startCmd(t, exec.Command(binPath, args...))
}

// startCmd is startService for a prepared command (its own environment, say).
func startCmd(t *testing.T, cmd *exec.Cmd) *service {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &service{t: t, cmd: cmd, logs: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stdout = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.logs.Write([]byte(line + "\n"))
			if m := readyLine.FindStringSubmatch(line); m != nil {
				ready <- [2]string{m[1], m[2]}
			}
		}
		_, _ = io.Copy(s.logs, stderr)
		s.done <- cmd.Wait()
	}()
	select {
	case addrs := <-ready:
		s.HTTP, s.MQTT = addrs[0], addrs[1]
	case err := <-s.done:
		t.Fatalf("crowdwatch exited before it was ready (%v):\n%s", err, s.logs)
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("crowdwatch not ready within 60s:\n%s", s.logs)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("crowdwatch output:\n%s", s.logs)
		}
	})
	return s
}

// startApp runs the service in this process, app.New and Run on the store file at cfgPath
// (listening on the ports it names, port 0 for any), and asks the app for its addresses. It is
// for tests that need no SIGKILL, signal or exit status; the others use startService.
func startApp(t *testing.T, cfgPath string) *service {
	t.Helper()
	return startAppWith(t, cfgPath, nil)
}

// startAppWith is startApp with settings overridden as serve's flags would (keys such as
// "storage.path", "http.listen", "mqtt.embedded.listen").
func startAppWith(t *testing.T, cfgPath string, overrides map[string]any) *service {
	t.Helper()
	cfg, err := configs.Load(cfgPath, overrides)
	if err != nil {
		t.Fatal(err)
	}
	s := &service{t: t, logs: &syncBuffer{}, done: make(chan error, 1), reloads: make(chan struct{}, 1)}
	ready := make(chan struct{})
	// As serve does: the store file is reloaded on s.reload() (SIGHUP to serve) and, with
	// alerting.reload.watch_file, on a change to it.
	a, err := app.New(cfg, app.Options{Logger: slog.New(slog.NewTextHandler(s.logs, nil)), Version: "test",
		Reload:  &app.Reload{Path: cfgPath, Overrides: overrides, Signal: s.reloads},
		OnReady: func(*app.App) { close(ready) }})
	if err != nil {
		t.Fatalf("app.New: %v\n%s", err, s.logs)
	}
	s.HTTP, s.MQTT = a.HTTPAddr(), a.MQTTAddr()
	var ctx context.Context
	ctx, s.cancel = context.WithCancel(context.Background())
	go func() { s.done <- a.Run(ctx) }()
	t.Cleanup(func() {
		if !s.ended {
			s.cancel()
			<-s.done
		}
		if t.Failed() {
			t.Logf("crowdwatch output:\n%s", s.logs)
		}
	})
	select {
	case <-ready:
	case err := <-s.done:
		s.ended = true
		t.Fatalf("the app stopped before it was ready (%v):\n%s", err, s.logs)
	case <-time.After(60 * time.Second):
		t.Fatalf("the app was not ready within 60s:\n%s", s.logs)
	}
	return s
}

// kill ends the process with SIGKILL: no clean-up runs, as in a crash or power cut.
func (s *service) kill() {
	if s.cmd == nil {
		s.t.Fatal("kill: an in-process service cannot be SIGKILLed; start it with startService")
	}
	s.cmd.Process.Signal(syscall.SIGKILL)
	<-s.done
}

// stop sends SIGTERM (in-process: ends Run's context) and waits for a clean exit.
func (s *service) stop() {
	s.t.Helper()
	if s.cmd == nil {
		s.cancel()
	} else {
		s.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case err := <-s.done:
		s.ended = true
		if err != nil {
			s.t.Fatalf("crowdwatch did not exit cleanly on SIGTERM: %v\n%s", err, s.logs)
		}
	case <-time.After(30 * time.Second):
		s.t.Fatalf("crowdwatch did not stop within 30s of SIGTERM:\n%s", s.logs)
	}
}

func (s *service) getJSON(path string, v any) error {
	resp, err := http.Get("http://" + s.HTTP + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

func (s *service) occupancy() (map[string]int64, error) {
	var list struct {
		Zones []struct {
			ID        string `json:"id"`
			Occupancy int64  `json:"occupancy"`
		} `json:"zones"`
	}
	if err := s.getJSON("/api/v1/zones", &list); err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, z := range list.Zones {
		out[z.ID] = z.Occupancy
	}
	return out, nil
}

func (s *service) metrics() string {
	resp, err := http.Get("http://" + s.HTTP + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitMetrics polls /metrics until it holds every wanted line.
func (s *service) waitMetrics(want ...string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var missing []string
	for time.Now().Before(deadline) {
		m := s.metrics()
		missing = missing[:0]
		for _, w := range want {
			if !strings.Contains(m, w) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Errorf("metrics lack %q", missing)
}

// waitOccupancy polls the API until every listed zone has its wanted figure.
func (s *service) waitOccupancy(want map[string]int64, within time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	var got map[string]int64
	var err error
	for time.Now().Before(deadline) {
		got, err = s.occupancy()
		if err == nil && matches(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("occupancy %v (err %v), want %v", got, err, want)
}

func matches(got, want map[string]int64) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// writeConfig writes a store file into dir with the storage path inside dir.
func writeConfig(t *testing.T, dir, yaml string) string {
	t.Helper()
	return testkit.WriteStore(t, dir, yaml)
}

// freePort returns a loopback port nobody listens on now, for services that must come back
// on the same address after a restart.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// mqttClient connects a plain client (the test's stand-in for a device or a sign).
func mqttClient(t *testing.T, broker, id, user, pass string) (paho.Client, error) {
	t.Helper()
	return testkit.Connect(t, paho.NewClientOptions().AddBroker(broker).SetClientID(id).SetUsername(user).SetPassword(pass).
		SetConnectTimeout(5*time.Second))
}

func publish(t *testing.T, c paho.Client, topic, payload string) {
	t.Helper()
	testkit.Publish(t, c, topic, payload)
}

func report(boot string, seq int, in, out uint64) string {
	return testkit.CounterReport(boot, seq, in, out)
}
