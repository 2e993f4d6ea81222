package testkit

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// EtcdServer is a one-member etcd the test started on loopback (Etcd).
type EtcdServer struct {
	Endpoint string // http://127.0.0.1:PORT
	t        testing.TB
	cmd      *exec.Cmd
	exited   chan error
	dir      string
	args     []string
	log      *Buffer
}

// Etcd starts a real one-member etcd (Debian's etcd-server) on two free loopback ports with
// its data in a temporary directory, waits until it answers, and stops it when the test
// ends. Without the etcd binary the test is skipped, or fails under CI=true naming the
// package to install.
func Etcd(t testing.TB) *EtcdServer {
	t.Helper()
	_, err := exec.LookPath("etcd")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd is not installed: apt-get install etcd-server (.ci/install-deps does it)")
		}
		t.Skip("etcd is not installed (apt-get install etcd-server)")
	}
	e := &EtcdServer{t: t, dir: t.TempDir(), log: &Buffer{}}
	var lastErr error
	for try := 0; try < 5; try++ {
		client, peer := freePort(t), freePort(t)
		e.Endpoint = "http://" + client
		e.args = []string{"--name", "default", "--data-dir", filepath.Join(e.dir, "data"),
			"--listen-client-urls", e.Endpoint, "--advertise-client-urls", e.Endpoint,
			"--listen-peer-urls", "http://" + peer, "--initial-advertise-peer-urls", "http://" + peer,
			"--initial-cluster", "default=http://" + peer, "--logger", "zap", "--log-level", "warn"}
		if lastErr = e.start(); lastErr == nil {
			t.Cleanup(e.Kill)
			return e
		}
		// Another process took a port between our probe and etcd's bind: try others.
		_ = os.RemoveAll(filepath.Join(e.dir, "data"))
	}
	t.Fatalf("etcd did not start: %v\n%s", lastErr, e.log)
	return nil
}

func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func (e *EtcdServer) start() error {
	cmd := exec.Command("etcd", e.args...)
	cmd.Stdout, cmd.Stderr = e.log, e.log
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("etcd exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := client.Get(e.Endpoint + "/health")
		if err != nil {
			continue
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			e.cmd, e.exited = cmd, exited
			return nil
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	return fmt.Errorf("etcd did not answer on %s within 30s", e.Endpoint)
}

// Pause freezes the server (SIGSTOP): its connections stay open and nothing answers, as
// when the coordinator is cut off. Resume undoes it.
func (e *EtcdServer) Pause() { e.signal(syscall.SIGSTOP) }

// Resume lets a paused server run again (SIGCONT).
func (e *EtcdServer) Resume() { e.signal(syscall.SIGCONT) }

func (e *EtcdServer) signal(s syscall.Signal) {
	e.t.Helper()
	if e.cmd == nil {
		e.t.Fatal("etcd is not running")
	}
	if err := e.cmd.Process.Signal(s); err != nil {
		e.t.Fatalf("etcd: %v: %v", s, err)
	}
}

// Restart kills the server and starts it again on the same ports and data.
func (e *EtcdServer) Restart() {
	e.t.Helper()
	e.Kill()
	var err error
	for try := 0; try < 20; try++ { // the ports may take a moment to be free again
		if err = e.start(); err == nil {
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	e.t.Fatalf("etcd did not restart: %v\n%s", err, e.log)
}

// Kill stops the server at once (SIGKILL, after SIGCONT in case it was paused).
func (e *EtcdServer) Kill() {
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGCONT)
	_ = e.cmd.Process.Kill()
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.t.Errorf("etcd (pid %d) did not exit after SIGKILL", e.cmd.Process.Pid)
	}
	e.cmd = nil
}

// Log is what the server wrote, for a failing test to print.
func (e *EtcdServer) Log() string { return strings.TrimSpace(e.log.String()) }
