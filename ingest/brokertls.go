package ingest

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"

	mqtt "github.com/mochi-mqtt/server/v2"

	"github.com/crowdwatch/crowdwatch/configs"
	"github.com/crowdwatch/crowdwatch/security"
)

// listenerTLS is the id of the embedded broker's TLS listener (cl.Net.Listener).
const listenerTLS = "tls"

// serverTLS builds the TLS listener's configuration. With a client CA, every device must
// present a certificate signed by it; the chain is checked here rather than by crypto/tls so
// that a refused certificate is reported with the address it came from.
func serverTLS(t configs.EmbeddedTLS, sink security.Sink) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("mqtt.embedded.tls: cannot load the certificate and key: %w", err)
	}
	base := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile == "" {
		return base, nil
	}
	pem, err := os.ReadFile(t.ClientCAFile)
	if err != nil {
		return nil, fmt.Errorf("mqtt.embedded.tls.client_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("mqtt.embedded.tls.client_ca_file: %s holds no PEM certificate", t.ClientCAFile)
	}
	base.ClientAuth = tls.RequestClientCert // demanded by VerifyConnection, which reports a missing one
	base.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		c := base.Clone()
		c.GetConfigForClient = nil
		remote := hello.Conn.RemoteAddr().String()
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			err := verifyClientChain(cs.PeerCertificates, pool)
			if err != nil {
				sink.Record(security.Event{Kind: security.MQTTAuthFailed, Source: remote, Subject: "client certificate",
					Detail: "TLS client certificate refused: " + err.Error(), At: now()})
			}
			return err
		}
		return c, nil
	}
	return base, nil
}

func verifyClientChain(certs []*x509.Certificate, roots *x509.CertPool) error {
	if len(certs) == 0 {
		return errors.New("no client certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	return err
}

// certificateNames returns the names in a TLS client's verified certificate (common name and
// DNS names), or nil when the client came without one.
func certificateNames(cl *mqtt.Client) []string {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	certs := tc.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return nil
	}
	return append([]string{certs[0].Subject.CommonName}, certs[0].DNSNames...)
}

// certificateMatches tells whether a TLS client's certificate names the account it signs in as.
func certificateMatches(cl *mqtt.Client, username string) bool {
	return slices.Contains(certificateNames(cl), username)
}
