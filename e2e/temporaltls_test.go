package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/jobgate/jobgate/devserver"
	"github.com/jobgate/jobgate/workflows"
)

// testCA is a certificate authority made up for one test.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string
}

func mustCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	ca := &testCA{cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	require.NoError(t, os.WriteFile(ca.file, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return ca
}

// issue writes a certificate for localhost and 127.0.0.1, usable by
// servers and clients, and its key; it returns their files.
func (ca *testCA) issue(t *testing.T, dir, name string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile
}

// authorizations records the authorization metadata of the calls a
// frontend serves.
type authorizations struct {
	mu   sync.Mutex
	seen map[string]int
}

func (a *authorizations) intercept(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	a.mu.Lock()
	for _, v := range md.Get("authorization") {
		a.seen[v]++
	}
	a.mu.Unlock()
	return handler(ctx, req)
}

func (a *authorizations) count(v string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[v]
}

func mustStartTLSServer(t *testing.T, tlsOpts *devserver.TLSOptions, auth *authorizations) *devserver.Server {
	t.Helper()
	srv, err := devserver.Start(devserver.Options{
		LogLevel:             "none",
		TLS:                  tlsOpts,
		FrontendInterceptors: []grpc.UnaryServerInterceptor{auth.intercept},
		SearchAttributes: map[string]enumspb.IndexedValueType{
			workflows.TenantKey.GetName(): enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.KindKey.GetName():   enumspb.INDEXED_VALUE_TYPE_KEYWORD,
			workflows.StateKey.GetName():  enumspb.INDEXED_VALUE_TYPE_KEYWORD,
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	return srv
}

// runToExit runs the binary with env and returns its output once it has
// exited, failing the test if it is still running after limit.
func runToExit(t *testing.T, limit time.Duration, env ...string) string {
	t.Helper()
	cmd := exec.Command(mustBuildBinary(t))
	cmd.Env = append(append(os.Environ(), "JOBGATE_HTTP_ADDR=127.0.0.1:0", "JOBGATE_DATA_DIR="+t.TempDir()), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		require.Error(t, err, "jobgate must not start:\n%s", out.String())
	case <-time.After(limit):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("jobgate still running after %s:\n%s", limit, out.String())
	}
	return out.String()
}

// jobgate connects to a Temporal frontend that serves TLS, and to one that
// wants mutual TLS, with an API key that reaches the server on every call
// and never appears in jobgate's output; a wrong CA and a missing client
// certificate fail start-up saying what to set.
func TestTemporalTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	ca := mustCA(t, dir, "ca")
	other := mustCA(t, dir, "other-ca")
	serverCert, serverKey := ca.issue(t, dir, "frontend")
	clientCert, clientKey := ca.issue(t, dir, "jobgate")
	const apiKey = "tk-0123456789-secret-api-key"

	t.Run("TLS with an API key", func(t *testing.T) {
		t.Parallel()
		auth := &authorizations{seen: map[string]int{}}
		srv := mustStartTLSServer(t, &devserver.TLSOptions{CertFile: serverCert, KeyFile: serverKey, CAFile: ca.file}, auth)
		ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
		p := startProcess(t, t.TempDir(), ports,
			"JOBGATE_TEMPORAL_ADDRESS="+srv.FrontendAddress(),
			"JOBGATE_TEMPORAL_TLS_CA="+ca.file,
			"JOBGATE_TEMPORAL_TLS_SERVER_NAME=localhost",
			"JOBGATE_TEMPORAL_API_KEY="+apiKey,
			"JOBGATE_LOG_LEVEL=debug")
		base := "http://127.0.0.1:" + strconv.Itoa(ports.http)
		resp, err := http.Post(base+"/v1/jobs", "application/json", strings.NewReader(`{"kind":"sleep","input":{"seconds":0}}`))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode)
		loc := resp.Header.Get("Location")
		eventually(t, 30*time.Second, "the job succeeds over TLS", func() bool {
			r, err := http.Get(base + loc + "?redirect=false")
			if err != nil {
				return false
			}
			var b bytes.Buffer
			_, _ = b.ReadFrom(r.Body)
			r.Body.Close()
			return strings.Contains(b.String(), `"state":"succeeded"`)
		})
		require.Positive(t, auth.count("Bearer "+apiKey), "the API key reached the frontend as a bearer token")
		require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
		<-p.done
		p.done <- nil
		out := p.output.String()
		require.NotContains(t, out, apiKey, "the API key is never logged")
	})

	t.Run("mutual TLS", func(t *testing.T) {
		t.Parallel()
		auth := &authorizations{seen: map[string]int{}}
		srv := mustStartTLSServer(t, &devserver.TLSOptions{CertFile: serverCert, KeyFile: serverKey, CAFile: ca.file, ClientCAFile: ca.file}, auth)
		common := []string{"JOBGATE_ROLE=worker", "JOBGATE_TEMPORAL_ADDRESS=" + srv.FrontendAddress(), "JOBGATE_TEMPORAL_TLS_SERVER_NAME=localhost"}

		ports := processPorts{http: freeLoopbackPort(t), temporal: freeLoopbackPort(t)}
		startProcess(t, t.TempDir(), ports, append(common,
			"JOBGATE_TEMPORAL_TLS_CA="+ca.file, "JOBGATE_TEMPORAL_TLS_CERT="+clientCert, "JOBGATE_TEMPORAL_TLS_KEY="+clientKey)...)

		out := runToExit(t, time.Minute, append(common, "JOBGATE_TEMPORAL_TLS_CA="+other.file,
			"JOBGATE_TEMPORAL_TLS_CERT="+clientCert, "JOBGATE_TEMPORAL_TLS_KEY="+clientKey)...)
		require.Contains(t, out, "not signed by the CA in JOBGATE_TEMPORAL_TLS_CA", "a wrong CA says so:\n%s", out)
		t.Logf("wrong CA: %s", lastLine(out))

		out = runToExit(t, time.Minute, append(common, "JOBGATE_TEMPORAL_TLS_CA="+ca.file)...)
		require.Contains(t, out, "set JOBGATE_TEMPORAL_TLS_CERT and JOBGATE_TEMPORAL_TLS_KEY", "a missing client certificate says so:\n%s", out)
		t.Logf("no client certificate: %s", lastLine(out))
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
