package app

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.temporal.io/sdk/client"
)

// temporalTLSSet reports whether any variable asks for TLS to Temporal.
func (c Config) temporalTLSSet() bool {
	return c.TemporalTLSCA != "" || c.TemporalTLSCert != "" || c.TemporalTLSKey != "" ||
		c.TemporalTLSServerName != "" || c.TemporalAPIKey != ""
}

// checkTemporalTLS checks the TLS variables without reading the files.
func (c Config) checkTemporalTLS() error {
	if !c.temporalTLSSet() {
		return nil
	}
	if c.TemporalAddress == "" {
		return errors.New("JOBGATE_TEMPORAL_TLS_* and JOBGATE_TEMPORAL_API_KEY are for an external Temporal (JOBGATE_TEMPORAL_ADDRESS); the embedded server has no TLS")
	}
	if (c.TemporalTLSCert == "") != (c.TemporalTLSKey == "") {
		return errors.New("JOBGATE_TEMPORAL_TLS_CERT and JOBGATE_TEMPORAL_TLS_KEY go together: set both (a client certificate and its key) or neither")
	}
	return nil
}

// temporalTLS builds the TLS configuration and credentials of the
// connection to Temporal: nil, nil when no variable asks for TLS.
func temporalTLS(c Config) (*tls.Config, client.Credentials, error) {
	if !c.temporalTLSSet() {
		return nil, nil, nil
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.TemporalTLSServerName}
	if c.TemporalTLSCA != "" {
		pem, err := os.ReadFile(c.TemporalTLSCA)
		if err != nil {
			return nil, nil, fmt.Errorf("JOBGATE_TEMPORAL_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("JOBGATE_TEMPORAL_TLS_CA: %s holds no PEM certificate", c.TemporalTLSCA)
		}
		conf.RootCAs = pool
	}
	if c.TemporalTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TemporalTLSCert, c.TemporalTLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("JOBGATE_TEMPORAL_TLS_CERT and JOBGATE_TEMPORAL_TLS_KEY: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	var creds client.Credentials
	if c.TemporalAPIKey != "" {
		creds = client.NewAPIKeyStaticCredentials(c.TemporalAPIKey)
	}
	return conf, creds, nil
}

// explainDialError adds what to check to a failed connection to Temporal
// whose cause is TLS.
func explainDialError(c Config, err error) error {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "x509:") || strings.Contains(msg, "tls: failed to verify"):
		if c.TemporalTLSCA == "" {
			return fmt.Errorf("%w (the frontend's TLS certificate is not signed by a CA this system trusts: set JOBGATE_TEMPORAL_TLS_CA to the CA that signs it, and JOBGATE_TEMPORAL_TLS_SERVER_NAME if the name in it is not the address's host)", err)
		}
		return fmt.Errorf("%w (the frontend's TLS certificate is not signed by the CA in JOBGATE_TEMPORAL_TLS_CA %s, or does not name the host: check the CA file and JOBGATE_TEMPORAL_TLS_SERVER_NAME)", err, c.TemporalTLSCA)
	case strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate") || strings.Contains(msg, "unknown certificate authority"):
		if c.TemporalTLSCert == "" {
			return fmt.Errorf("%w (the frontend wants a client certificate, mutual TLS: set JOBGATE_TEMPORAL_TLS_CERT and JOBGATE_TEMPORAL_TLS_KEY)", err)
		}
		return fmt.Errorf("%w (the frontend refused the client certificate in JOBGATE_TEMPORAL_TLS_CERT: is it signed by a CA the frontend trusts?)", err)
	case c.temporalTLSSet() && c.TemporalTLSCert == "" && (strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset")):
		// With TLS 1.3 a frontend that wants a client certificate may
		// refuse it after the client's side of the handshake is done: the
		// client then sees the connection drop, not the alert.
		return fmt.Errorf("%w (the frontend dropped the TLS connection: if it wants a client certificate, mutual TLS, set JOBGATE_TEMPORAL_TLS_CERT and JOBGATE_TEMPORAL_TLS_KEY)", err)
	case c.temporalTLSSet() && (strings.Contains(msg, "first record does not look like a TLS handshake") || strings.Contains(msg, "EOF")):
		return fmt.Errorf("%w (TLS is on, JOBGATE_TEMPORAL_TLS_* or JOBGATE_TEMPORAL_API_KEY is set: does the frontend at JOBGATE_TEMPORAL_ADDRESS serve TLS?)", err)
	}
	return err
}
