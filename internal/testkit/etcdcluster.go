package testkit

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// EtcdCluster is a three-member etcd on loopback (EtcdMembers).
type EtcdCluster struct {
	Endpoints []string // each member's client URL, in the order of ETCD_INITIAL_CLUSTER
	t         testing.TB
	cmds      []*exec.Cmd
	exited    []chan error
	logs      []*Buffer
}

// etcdAddresses are the variables of an /etc/default/etcd file that name the member and
// where it listens: EtcdMembers gives each member its own.
var etcdAddresses = []string{"ETCD_NAME", "ETCD_DATA_DIR", "ETCD_LISTEN_PEER_URLS", "ETCD_INITIAL_ADVERTISE_PEER_URLS",
	"ETCD_LISTEN_CLIENT_URLS", "ETCD_ADVERTISE_CLIENT_URLS", "ETCD_INITIAL_CLUSTER"}

// EtcdMembers starts the members of the cluster that an /etc/default/etcd file describes
// (the ETCD_* variables Debian's etcd.service hands to etcd), all on loopback: each member
// keeps every variable of the file except its name, data directory and addresses, which
// become its own free ports and a temporary directory; the names are the file's
// ETCD_INITIAL_CLUSTER's. It waits until every member answers healthy and stops them when
// the test ends. A file without one of the variables fails the test.
func EtcdMembers(t testing.TB, defaultsFile string) *EtcdCluster {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("etcd is not installed: apt-get install etcd-server (.ci/install-deps does it)")
		}
		t.Skip("etcd is not installed (apt-get install etcd-server)")
	}
	vars, err := readDefaults(defaultsFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(etcdAddresses, "ETCD_INITIAL_CLUSTER_TOKEN", "ETCD_INITIAL_CLUSTER_STATE") {
		if vars[k] == "" {
			t.Fatalf("%s: no %s", defaultsFile, k)
		}
	}
	var names, peers, cluster []string
	for _, m := range strings.Split(vars["ETCD_INITIAL_CLUSTER"], ",") {
		name, _, ok := strings.Cut(m, "=")
		if !ok {
			t.Fatalf("%s: ETCD_INITIAL_CLUSTER member %q is not name=URL", defaultsFile, m)
		}
		names = append(names, name)
		peers = append(peers, "http://"+freePort(t))
		cluster = append(cluster, name+"="+peers[len(peers)-1])
	}
	c := &EtcdCluster{t: t}
	dir := t.TempDir()
	for i, name := range names {
		client := "http://" + freePort(t)
		c.Endpoints = append(c.Endpoints, client)
		env := []string{"ETCD_LOGGER=zap", "ETCD_LOG_LEVEL=warn"}
		for k, v := range vars {
			env = append(env, k+"="+v)
		}
		env = append(env, "ETCD_NAME="+name, "ETCD_DATA_DIR="+filepath.Join(dir, name),
			"ETCD_LISTEN_PEER_URLS="+peers[i], "ETCD_INITIAL_ADVERTISE_PEER_URLS="+peers[i],
			"ETCD_LISTEN_CLIENT_URLS="+client, "ETCD_ADVERTISE_CLIENT_URLS="+client,
			"ETCD_INITIAL_CLUSTER="+strings.Join(cluster, ","))
		cmd := exec.Command("etcd")
		cmd.Env = append(withoutEtcdVars(os.Environ()), env...) // later entries win
		log := &Buffer{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		c.cmds, c.exited, c.logs = append(c.cmds, cmd), append(c.exited, done), append(c.logs, log)
	}
	t.Cleanup(func() {
		for i := range c.cmds {
			c.Kill(i)
		}
		if t.Failed() {
			for i, l := range c.logs {
				t.Logf("etcd member %d output:\n%s", i, l)
			}
		}
	})
	hc := &http.Client{Timeout: time.Second}
	for i, ep := range c.Endpoints {
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			if resp, err := hc.Get(ep + "/health"); err == nil {
				_ = resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("etcd member %d (%s) not healthy within 30s:\n%s", i, ep, c.logs[i])
			}
		}
	}
	return c
}

func withoutEtcdVars(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "ETCD_") {
			out = append(out, kv)
		}
	}
	return out
}

// readDefaults reads KEY=VALUE lines, skipping comments and blank lines.
func readDefaults(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%s:%d: not KEY=VALUE: %q", path, n, line)
		}
		vars[k] = strings.Trim(v, `"`)
	}
	return vars, sc.Err()
}

// Leader is the index of the member that is the cluster's raft leader now, -1 when none
// answers with one.
func (c *EtcdCluster) Leader() int {
	for i, ep := range c.Endpoints {
		if c.cmds[i] == nil {
			continue
		}
		resp, err := http.Post(ep+"/v3/maintenance/status", "application/json", strings.NewReader("{}"))
		if err != nil {
			continue
		}
		var st struct {
			Header struct {
				MemberID string `json:"member_id"`
			} `json:"header"`
			Leader string `json:"leader"`
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		_ = resp.Body.Close()
		if err == nil && st.Leader != "" && st.Leader != "0" && st.Leader == st.Header.MemberID {
			return i
		}
	}
	return -1
}

// Kill stops member i at once (SIGKILL).
func (c *EtcdCluster) Kill(i int) {
	if c.cmds[i] == nil {
		return
	}
	_ = c.cmds[i].Process.Kill()
	select {
	case <-c.exited[i]:
	case <-time.After(10 * time.Second):
		c.t.Errorf("etcd member %d did not exit after SIGKILL", i)
	}
	c.cmds[i] = nil
}
