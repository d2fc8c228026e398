package dist_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ppool/ppool/dist"
)

// Wrong credentials are refused with a message that says so, and names
// the server without the secret.
func TestConnectRefusesWrongCredentials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server dist.ServerConfig
		right  string // credentials in the URL
		wrong  []string
		secret string
	}{
		{"user and password", dist.ServerConfig{User: "alice", Password: "s3cret-pw"}, "alice:s3cret-pw@", []string{"alice:wrong-pw@", "bob:s3cret-pw@", ""}, "wrong-pw"},
		{"token", dist.ServerConfig{Token: "s3cret-token"}, "s3cret-token@", []string{"wrong-token@", ""}, "wrong-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, tc.server)
			withCreds := func(creds string) string { return strings.Replace(s.URL(), "://", "://"+creds, 1) }
			nc, err := dist.Connect(dist.ConnOptions{URL: withCreds(tc.right)})
			if err != nil {
				t.Fatalf("the right credentials: %v", err)
			}
			nc.Close()
			for _, creds := range tc.wrong {
				nc, err := dist.Connect(dist.ConnOptions{URL: withCreds(creds)})
				if err == nil {
					nc.Close()
					t.Fatalf("credentials %q accepted", creds)
				}
				msg := err.Error()
				if !errors.Is(err, dist.ErrAuthRefused) || !strings.Contains(msg, "refused the credentials") ||
					!strings.Contains(msg, "127.0.0.1") || strings.Contains(msg, tc.secret) {
					t.Errorf("credentials %q: error %q", creds, msg)
				}
			}
		})
	}
}

// An agent given the wrong password exits at once, saying why.
func TestAgentWrongCredentials(t *testing.T) {
	s := startServer(t, dist.ServerConfig{User: "alice", Password: "pw"})
	a := startAgent(t, strings.Replace(s.URL(), "://", "://alice:nope@", 1), "denied", 1)
	select {
	case <-a.exited:
	case <-time.After(waitTimeout):
		t.Fatal("an agent with the wrong password is still running")
	}
	if a.err == nil || !stderrHas(a, "refused the credentials") {
		t.Errorf("agent exit %v, stderr:\n%s", a.err, a.stderr.String())
	}
}

// TLS against the embedded server works with its CA, and without it fails
// saying what is missing.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	cert := selfSigned(t, dir)
	s := startServer(t, dist.ServerConfig{TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if !strings.HasPrefix(s.URL(), "tls://") {
		t.Errorf("URL %s, want tls://", s.URL())
	}
	ca := filepath.Join(dir, "cert.pem")
	_, js := connect(t, dist.ConnOptions{URL: s.URL(), TLSCA: ca})
	if err := dist.CreateQueue(context.Background(), js, dist.QueueConfig{}); err != nil {
		t.Fatal(err)
	}
	_, err := dist.Connect(dist.ConnOptions{URL: s.URL()})
	if err == nil || !strings.Contains(err.Error(), "--tlsca") {
		t.Errorf("without the CA: %v", err)
	}
	// An agent process over TLS registers.
	a := startAgent(t, s.URL(), "secure", 1, "PPOOL_TEST_TLSCA="+ca)
	waitFor(t, waitTimeout, "the TLS agent listed", func() (bool, string) {
		names := listed(t, js)
		return contains(names, "secure"), strings.Join(names, ",")
	})
	a.stop(t, syscall.SIGTERM)
}

// selfSigned makes a certificate for 127.0.0.1 that is its own CA, and
// writes it to dir/cert.pem.
func selfSigned(t *testing.T, dir string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ppool test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
