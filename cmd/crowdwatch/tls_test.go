package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestPKI writes a CA and a server certificate for 127.0.0.1 into dir.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crowdwatch test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	caCert, _ := x509.ParseCertificate(caDER)
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "EC PRIVATE KEY", keyDER)
}

// TestMosquittoTLSAndPassword connects the service to a mosquitto that demands TLS and a
// password, as a store's IT department would run it.
func TestMosquittoTLSAndPassword(t *testing.T) {
	bin := need(t, "mosquitto", "mosquitto")
	passwd := need(t, "mosquitto_passwd", "mosquitto")
	pub := need(t, "mosquitto_pub", "mosquitto-clients")
	dir := t.TempDir()
	ca, cert, key := writeTestPKI(t, dir)
	pwFile := filepath.Join(dir, "passwd")
	for _, u := range [][2]string{{"crowdwatch", "svc-pass"}, {"dc-01", "dev-pass"}} {
		args := []string{"-b", pwFile, u[0], u[1]}
		if _, err := os.Stat(pwFile); err != nil {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v %s", err, out)
		}
	}
	addr := freePort(t)
	_, port, _ := net.SplitHostPort(addr)
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("user root\nlistener %s 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nallow_anonymous false\npassword_file %s\npersistence false\n",
		port, ca, cert, key, pwFile)), 0o600)
	mq := exec.Command(bin, "-c", conf)
	logs := &syncBuffer{}
	mq.Stdout, mq.Stderr = logs, logs
	if err := mq.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mq.Process.Kill(); mq.Wait() })
	waitListening(t, addr, logs)

	store := strings.ReplaceAll(mosquittoStore, `mqtt: {broker: "tcp://$BROKER", client_id: crowdwatch-mq-test}`,
		fmt.Sprintf(`mqtt: {broker: "ssl://%s", username: crowdwatch, tls: {ca_file: %s}}`, addr, ca))
	svcDir := t.TempDir()
	cfg := writeConfig(t, svcDir, store)

	// A wrong password keeps the service unready, and it says so.
	bad := exec.Command(binPath, "serve", "--config", cfg)
	bad.Env = append(os.Environ(), "CROWDWATCH_MQTT_PASSWORD=wrong")
	badSvc := startCmd(t, bad)
	time.Sleep(time.Second)
	var ready map[string]any
	if err := badSvc.getJSON("/readyz", &ready); err == nil {
		t.Fatalf("ready with a wrong broker password: %v", ready)
	}
	if !strings.Contains(badSvc.logs.String(), "cannot connect to the broker") {
		t.Errorf("the log does not say why the broker refused:\n%s", badSvc.logs)
	}
	badSvc.stop()

	// The password comes from the environment, as the example config advises.
	good := exec.Command(binPath, "serve", "--config", cfg)
	good.Env = append(os.Environ(), "CROWDWATCH_MQTT_PASSWORD=svc-pass")
	svc := startCmd(t, good)
	waitReady(t, svc)
	out, err := exec.Command(pub, "-h", "127.0.0.1", "-p", port, "--cafile", ca, "-u", "dc-01", "-P", "dev-pass", "-q", "1",
		"-t", "crowdwatch/mq-store/counter/dc-01", "-m", report("b", 1, 9, 1)).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub over TLS: %v %s\n%s", err, out, logs)
	}
	svc.waitOccupancy(map[string]int64{"entrance": 8, "store": 8}, 15*time.Second)
}

func waitListening(t *testing.T, addr string, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %s:\n%s", addr, logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
