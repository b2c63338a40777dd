package tokenwarden_test

// TLS beyond the scenarios' cases: bad files are typed errors naming them, the TLS error says
// what to give and is not retried, and TLSConfig does not mix with HTTPClient.

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
)

func TestBadTLSFilesAreTypedErrorsNamingThem(t *testing.T) {
	c := scenarios.Setup(t, "tls_private_ca")
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "not.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")
	type check struct {
		name, want string
		err        error
	}
	var checks []check
	add := func(name, want string, err error) { checks = append(checks, check{name, want, err}) }
	_, err := tokenwarden.LoadCAFile(missing)
	add("missing CA", "missing.pem cannot be read: no such file", err)
	_, err = tokenwarden.LoadCAFile(notPEM)
	add("CA not PEM", "not.pem holds no PEM certificate", err)
	_, err = tokenwarden.LoadKeyPair(c.TLS.CertFile, missing)
	add("missing key", "missing.pem cannot be read", err)
	_, err = tokenwarden.LoadKeyPair(c.TLS.CertFile, c.TLS.OtherKeyFile)
	add("another certificate's key", "are not a PEM certificate and its private key", err)
	_, err = tokenwarden.LoadKeyPair(notPEM, notPEM)
	add("not PEM", "are not a PEM certificate", err)
	_, err = tokenwarden.NewClient(tokenwarden.Options{
		BaseURL: c.BaseURL, APIKey: c.APIKey, HTTPClient: &http.Client{}, TLSConfig: &tls.Config{},
	})
	add("TLSConfig and HTTPClient", "with HTTPClient, set its TLS there", err)
	for _, ch := range checks {
		var e *tokenwarden.Error
		if !errors.As(ch.err, &e) || e.Code != tokenwarden.CodeInvalidRequest || !strings.Contains(e.Message, ch.want) {
			t.Errorf("%s: %v, want invalid_request saying %q", ch.name, ch.err, ch.want)
		}
		if ch.err != nil && strings.Contains(ch.err.Error(), "PRIVATE KEY") {
			t.Errorf("%s: key material in the error: %v", ch.name, ch.err)
		}
	}
}

func TestTheTLSErrorSaysWhatToGiveAndIsNotRetried(t *testing.T) {
	c := scenarios.Setup(t, "tls_client_certificate_sha256")
	var retries int
	untrusting, err := tokenwarden.NewClient(tokenwarden.Options{
		BaseURL: c.BaseURL, APIKey: c.APIKey, OnRetry: func(tokenwarden.RetryEvent) { retries++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = untrusting.Token(context.Background(), c.ConnectionID, nil)
	var e *tokenwarden.Error
	if !errors.As(err, &e) || !e.TLS || e.Code != tokenwarden.CodeNetworkError || e.Retryable() || retries != 0 {
		t.Fatalf("%v (retries %d), want a TLS network_error, not retried", err, retries)
	}
	var verification *tls.CertificateVerificationError
	if !errors.As(err, &verification) || !strings.Contains(e.Message, "not trusted here") || !strings.Contains(e.Message, "LoadCAFile") {
		t.Errorf("the untrusted certificate's error: %v", err)
	}
	if strings.Contains(err.Error(), c.APIKey) {
		t.Errorf("the API key is in the error: %v", err)
	}

	roots, err := tokenwarden.LoadCAFile(c.TLS.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	keyAlone, err := tokenwarden.NewClient(tokenwarden.Options{
		BaseURL: c.BaseURL, APIKey: c.APIKey, TLSConfig: &tls.Config{RootCAs: roots},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, err = keyAlone.Token(context.Background(), c.ConnectionID, nil)
	if !errors.As(err, &e) || !e.TLS || !strings.Contains(e.Message, "requires a client certificate") || !strings.Contains(e.Message, "LoadKeyPair") {
		t.Errorf("without the client certificate: %v", err)
	}
}
