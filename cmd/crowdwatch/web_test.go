package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"
)

const openStore = `
site: {id: open-store, timezone: UTC}
http: {listen: "127.0.0.1:0"}
storage: {path: $DIR/cw.db}
mqtt: {embedded: {listen: "127.0.0.1:0"}}
zones:
  - {id: entrance, capacity: 10}
  - {id: hall, capacity: 100}
doors:
  - {id: main-door, from: outside, to: entrance, counter: {device: dc-01}}
screens:
  - {id: door, zone: entrance, languages: [en], alternatives: [{zone: hall, arrow: left}]}
`

// serve without users: reads open, security actions refused with the reason, and the start
// log says so; the guidance is retained on MQTT.
func TestServeWithoutUsers(t *testing.T) {
	dir := t.TempDir()
	svc := startApp(t, writeConfig(t, dir, openStore))
	if !strings.Contains(svc.logs.String(), "security actions (correction, acknowledge, evacuation) are refused") {
		t.Errorf("the start log does not say security actions are refused:\n%s", svc.logs)
	}
	if _, err := svc.occupancy(); err != nil {
		t.Errorf("open read: %v", err)
	}
	resp, err := http.Post("http://"+svc.HTTP+"/api/v1/zones/hall/correction", "application/json",
		strings.NewReader(`{"occupancy": 3, "by": "x", "reason": "y"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "no users are configured") {
		t.Errorf("correction without users: %s %s", resp.Status, body)
	}

	c, err := mqttClient(t, "tcp://"+svc.MQTT, "sign-1", "", "")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 10)
	tok := c.Subscribe("crowdwatch/open-store/guidance/door", 1, func(_ paho.Client, m paho.Message) {
		if m.Retained() {
			got <- m.Payload()
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	select {
	case b := <-got:
		var g struct {
			State string `json:"state"`
			At    string `json:"at"`
		}
		if err := json.Unmarshal(b, &g); err != nil || g.State != "welcome" || g.At == "" {
			t.Errorf("retained guidance %s (%v), want welcome with its time", b, err)
		}
	case <-time.After(15 * time.Second):
		t.Error("no retained guidance on crowdwatch/open-store/guidance/door")
	}
}

func TestHashPasswordAndNewToken(t *testing.T) {
	cmd := exec.Command(binPath, "hash-password")
	cmd.Stdin = strings.NewReader("correct horse battery\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hash-password: %v", err)
	}
	hash := strings.TrimSpace(string(out))
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte("correct horse battery")) != nil {
		t.Errorf("hash-password printed %q, which does not match the password", hash)
	}
	cmd = exec.Command(binPath, "hash-password")
	cmd.Stdin = strings.NewReader("short\n")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "at least 8") {
		t.Errorf("short password accepted: %s", out)
	}
	out, err = exec.Command(binPath, "new-token").Output()
	if err != nil {
		t.Fatal(err)
	}
	var token, sum string
	if _, err := fmt.Sscanf(string(out), "token:  %s\nsha256: %s", &token, &sum); err != nil {
		t.Fatalf("new-token printed %q: %v", out, err)
	}
	h := sha256.Sum256([]byte(token))
	if hex.EncodeToString(h[:]) != sum {
		t.Errorf("sha256 %s is not the token's", sum)
	}
}

// With http.tls the service speaks HTTPS only, and the session cookie is Secure.
func TestServeHTTPS(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	hash, _ := bcrypt.GenerateFromPassword([]byte("guard-password"), bcrypt.MinCost)
	yaml := openStore + fmt.Sprintf(`
auth: {users: [{username: guard, password_hash: "%s", role: security}]}
`, hash)
	yaml = strings.Replace(yaml, `http: {listen: "127.0.0.1:0"}`, fmt.Sprintf(`http: {listen: "127.0.0.1:0", tls: {cert_file: %s, key_file: %s}}`, cert, key), 1)
	svc := startApp(t, writeConfig(t, dir, yaml))
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Post("https://"+svc.HTTP+"/api/v1/session", "application/json", strings.NewReader(`{"username":"guard","password":"guard-password"}`))
	if err != nil {
		t.Fatalf("HTTPS sign-in: %v", err)
	}
	resp.Body.Close()
	cookies := resp.Cookies()
	if resp.StatusCode != 200 || len(cookies) != 1 || !cookies[0].Secure || !cookies[0].HttpOnly {
		t.Errorf("HTTPS sign-in: %s %v", resp.Status, cookies)
	}
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + svc.HTTP + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP answered 200 on an HTTPS listener")
		}
	}
}
