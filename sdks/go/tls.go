package tokenwarden

// TLS for the requests to the Tokenwarden API: a private CA to trust, a client certificate for a
// server that requires one, and the typed error a failed handshake becomes.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// LoadCAFile reads a PEM bundle of CA certificates, e.g. the private CA that issued the server's
// certificate, for [tls.Config].RootCAs. A file that does not read or holds no certificate is an
// invalid_request [*Error] naming it.
func LoadCAFile(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, invalidRequest("", "the CA bundle %s cannot be read: %v", path, pathErrorReason(err))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, invalidRequest("", "the CA bundle %s holds no PEM certificate", path)
	}
	return pool, nil
}

// LoadKeyPair reads a client certificate and its unencrypted private key (PEM files), for
// [tls.Config].Certificates. A file that does not read, or a key that is not the certificate's,
// is an invalid_request [*Error] naming the files (never their contents).
func LoadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	for _, path := range []string{certFile, keyFile} {
		if _, err := os.Stat(path); err != nil {
			return tls.Certificate{}, invalidRequest("", "the client certificate's file %s cannot be read: %v", path, pathErrorReason(err))
		}
	}
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		// crypto/tls's messages name what is wrong (no PEM data, a key that does not match) and
		// hold no key material.
		return tls.Certificate{}, invalidRequest("", "%s and %s are not a PEM certificate and its private key: %v", certFile, keyFile, err)
	}
	return pair, nil
}

// httpClientWithTLS is a client on a clone of http.DefaultTransport (its proxy, timeouts and
// pooling) with this TLS configuration.
func httpClientWithTLS(config *tls.Config) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = config.Clone()
	return &http.Client{Transport: transport}
}

func pathErrorReason(err error) error {
	var pathErr *os.PathError
	if errors.As(err, &pathErr) {
		return pathErr.Err
	}
	return err
}

// tlsFailure says why a request failed in its TLS handshake, with what to do about it; ok is
// false when the failure was not TLS's.
func tlsFailure(err error) (why string, ok bool) {
	var verification *tls.CertificateVerificationError
	var unknownAuthority x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	var op *net.OpError
	switch {
	case errors.As(err, &verification), errors.As(err, &unknownAuthority),
		errors.As(err, &hostname), errors.As(err, &invalid):
		return fmt.Sprintf("its TLS certificate is not trusted here (%s); give the client the CA that issued it "+
			"(Options.TLSConfig with RootCAs from LoadCAFile)", describe(err)), true
	case errors.As(err, &op) && op.Op == "remote error":
		// The server's TLS alert: "tls: certificate required", "tls: bad certificate", ...
		reason := op.Err.Error()
		if strings.Contains(reason, "certificate") {
			return fmt.Sprintf("the server refused the TLS handshake (%s): it requires a client certificate; "+
				"give it (Options.TLSConfig with Certificates from LoadKeyPair)", reason), true
		}
		return fmt.Sprintf("the server refused the TLS handshake (%s)", reason), true
	case errors.As(err, &record):
		return "the server did not answer in TLS (is it plain HTTP? then BaseURL is http://)", true
	}
	return "", false
}
