package ingest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/crowdwatch/crowdwatch/internal/testkit"
	"github.com/crowdwatch/crowdwatch/security"
)

// testCA is a certificate authority made for one test; nothing is committed.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns a PEM certificate and key for a server (127.0.0.1) or a client (cn).
func (ca *testCA) issue(t *testing.T, cn string, server bool) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// The embedded broker's TLS listener, with device certificates from a store CA.
func TestTLSListenerWithDeviceCertificates(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t, "store CA")
	srvCert, srvKey := ca.issue(t, "127.0.0.1", true)
	store := strings.Replace(fmt.Sprintf(securedStore, 100, 100), `listen: "127.0.0.1:0"`, fmt.Sprintf(
		"listen: \"\"\n    tls: {listen: \"127.0.0.1:0\", cert_file: %s, key_file: %s, client_ca_file: %s}",
		writeFile(t, dir, "server.pem", srvCert), writeFile(t, dir, "server.key", srvKey), writeFile(t, dir, "ca.pem", ca.pem)), 1)
	ev := &testkit.Events{}
	svc := startStoreService(t, store, BrokerOptions{Security: ev})
	defer svc.stop()
	if svc.broker.TLSAddr() == nil || svc.broker.Addr().String() != svc.broker.TLSAddr().String() {
		t.Fatalf("TLS-only broker: addr %v, TLS addr %v", svc.broker.Addr(), svc.broker.TLSAddr())
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.pem)
	connect := func(id, user, pass string, cert *tls.Certificate) (paho.Client, error) {
		tc := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		if cert != nil {
			tc.Certificates = []tls.Certificate{*cert}
		}
		o := paho.NewClientOptions().AddBroker("ssl://" + svc.broker.TLSAddr().String()).SetClientID(id).
			SetUsername(user).SetPassword(pass).SetTLSConfig(tc).SetProtocolVersion(4).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
		c := paho.NewClient(o)
		tok := c.Connect()
		if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			return nil, fmt.Errorf("connect: %v", tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(50) })
		return c, nil
	}
	pair := func(ca *testCA, cn string) *tls.Certificate {
		c, k := ca.issue(t, cn, false)
		kp, err := tls.X509KeyPair(c, k)
		if err != nil {
			t.Fatal(err)
		}
		return &kp
	}

	dev, err := connect("store-042-dc-01", "dc-01", "pass-01", pair(ca, "dc-01"))
	if err != nil {
		t.Fatalf("a device with its certificate and password: %v", err)
	}
	report := fmt.Sprintf(`{"boot":"b","seq":1,"ts":%q,"in":5,"out":0}`, time.Now().UTC().Format(time.RFC3339))
	if tok := dev.Publish(base+"counter/dc-01", 1, false, report); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	if got := svc.engine.Snapshot().Zones[0].Occupancy; got != 5 {
		t.Fatalf("occupancy over TLS: %d", got)
	}

	if _, err := connect("store-042-dc-02", "dc-02", "pass-02", pair(ca, "dc-01")); err == nil {
		t.Error("dc-01's certificate signed in as dc-02")
	}
	if _, err := connect("store-042-dc-02", "dc-02", "pass-02", nil); err == nil {
		t.Error("a client without a certificate got in")
	}
	if _, err := connect("store-042-dc-02", "dc-02", "pass-02", pair(newTestCA(t, "another CA"), "dc-02")); err == nil {
		t.Error("a certificate from another CA got in")
	}
	waitFor(t, "three certificate refusals", func() bool { return len(ev.Of(security.MQTTAuthFailed)) == 3 })
	for _, e := range ev.Of(security.MQTTAuthFailed) {
		if !strings.HasPrefix(e.Source, "127.0.0.1:") {
			t.Errorf("refusal without its source: %+v", e)
		}
	}
}
