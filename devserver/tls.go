package devserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"go.temporal.io/server/common/config"
)

// TLSOptions make the frontend serve TLS, optionally mutual TLS. The other
// services keep talking to each other in plain text on IP; the server's
// own clients of the frontend (its internal worker, Start's readiness
// check) use CertFile as their client certificate and trust CAFile.
type TLSOptions struct {
	// CertFile and KeyFile are the frontend's PEM certificate and key. With
	// ClientCAFile set the certificate must also allow client use
	// (extended key usage clientAuth), since the server's own worker
	// presents it.
	CertFile, KeyFile string
	// CAFile is the PEM CA that signed CertFile.
	CAFile string
	// ServerName is the name in CertFile the server's own clients check
	// (default "localhost").
	ServerName string
	// ClientCAFile, when set, makes TLS mutual: a client must present a
	// certificate signed by this PEM CA.
	ClientCAFile string
}

// applyTLS adds o to conf.
func applyTLS(conf *config.Config, o *TLSOptions) {
	name := o.ServerName
	if name == "" {
		name = "localhost"
	}
	conf.Global.TLS.Frontend = config.GroupTLS{
		Server: config.ServerTLS{CertFile: o.CertFile, KeyFile: o.KeyFile},
		Client: config.ClientTLS{ServerName: name, RootCAFiles: []string{o.CAFile}},
	}
	if o.ClientCAFile != "" {
		conf.Global.TLS.Frontend.Server.RequireClientAuth = true
		conf.Global.TLS.Frontend.Server.ClientCAFiles = []string{o.ClientCAFile}
	}
	conf.Global.TLS.SystemWorker = config.WorkerTLS{
		CertFile: o.CertFile, KeyFile: o.KeyFile,
		Client: config.ClientTLS{ServerName: name, RootCAFiles: []string{o.CAFile}},
	}
}

// clientTLS is the TLS configuration Start's readiness check dials with.
func (o *TLSOptions) clientTLS() (*tls.Config, error) {
	pem, err := os.ReadFile(o.CAFile)
	if err != nil {
		return nil, fmt.Errorf("embedded Temporal TLS: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("embedded Temporal TLS: %s holds no PEM certificate", o.CAFile)
	}
	cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("embedded Temporal TLS: %w", err)
	}
	name := o.ServerName
	if name == "" {
		name = "localhost"
	}
	return &tls.Config{RootCAs: pool, ServerName: name, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}
