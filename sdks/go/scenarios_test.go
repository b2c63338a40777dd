package tokenwarden_test

// The runner of the shared SDK scenarios (sdks/scenarios/scenarios.json): every case against a
// real Tokenwarden server, as the TypeScript and Python runners do.

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
	"github.com/tokenwarden/tokenwarden/sdks/go/internal/harness"
)

type scenarioFile struct {
	Version int        `json:"version"`
	Cases   []scenario `json:"cases"`
}

type scenario struct {
	Name   string          `json:"name"`
	Steps  []step          `json:"steps"`
	Expect harness.Stats   `json:"expect"`
	Setup  json.RawMessage `json:"setup"` // the harness's, not the runner's
}

type step struct {
	Op          string   `json:"op"`
	MinTTL      *float64 `json:"min_ttl"`
	Concurrency int      `json:"concurrency"`
	Server      string   `json:"server"`
	TLS         string   `json:"tls"`
	Expect      expect   `json:"expect"`
}

type expect struct {
	OK                  *bool    `json:"ok"`
	Error               string   `json:"error"`
	Reason              string   `json:"reason"`
	RetryAfterAtLeast   *float64 `json:"retry_after_at_least"`
	SameTokenAsPrevious *bool    `json:"same_token_as_previous"`
	VersionIncreased    *bool    `json:"version_increased"`
	ExpiresInAtLeast    *float64 `json:"expires_in_at_least"`
	Status              int      `json:"status"`
	TLSError            *bool    `json:"tls_error"`
}

func TestScenarios(t *testing.T) {
	root, err := harness.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "sdks", "scenarios", "scenarios.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file scenarioFile
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if file.Version != 1 || len(file.Cases) == 0 {
		t.Fatalf("scenarios.json: version %d with %d cases; this runner reads version 1", file.Version, len(file.Cases))
	}
	for _, sc := range file.Cases {
		t.Run(sc.Name, func(t *testing.T) {
			t.Parallel()
			runScenario(t, sc)
		})
	}
}

func runScenario(t *testing.T, sc scenario) {
	c := scenarios.Setup(t, sc.Name)
	// The runners' shared retry budget (sdks/scenarios/README.md): 2 attempts per call.
	client := newClient(t, c.BaseURL, c.APIKey)
	closed := newClient(t, c.ClosedURL, c.APIKey)
	byTLS := map[string]*tokenwarden.Client{}
	var previous *tokenwarden.Token
	for i, st := range sc.Steps {
		where := fmt.Sprintf("step %d (%s)", i+1, st.Op)
		switch st.Op {
		case "get_token":
			on := client
			switch {
			case st.Server == "closed":
				on = closed
			case st.TLS != "":
				if byTLS[st.TLS] == nil {
					byTLS[st.TLS] = newTLSClient(t, c, st.TLS)
				}
				on = byTLS[st.TLS]
			}
			var opts *tokenwarden.TokenOptions
			if st.MinTTL != nil {
				opts = &tokenwarden.TokenOptions{MinTTL: seconds(*st.MinTTL)}
			}
			tokens, errs := concurrently(max(1, st.Concurrency), func() (*tokenwarden.Token, error) {
				return on.Token(context.Background(), c.ConnectionID, opts)
			})
			for n := range tokens {
				checkToken(t, where, st.Expect, tokens[n], errs[n], previous)
			}
			if errs[0] == nil {
				previous = tokens[0]
			}
		case "fetch":
			res, err := client.HTTPClient(c.ConnectionID).Get(c.ResourceURL)
			if err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if st.Expect.Status != 0 && res.StatusCode != st.Expect.Status {
				t.Errorf("%s: status %d, want %d", where, res.StatusCode, st.Expect.Status)
			}
		case "reject_current":
			c.Reject(t)
		default:
			t.Fatalf("%s: this runner does not know the op %q", where, st.Op)
		}
	}
	if got := c.Stats(t); got != sc.Expect {
		t.Errorf("stats %+v, want %+v", got, sc.Expect)
	}
}

func checkToken(t *testing.T, where string, want expect, token *tokenwarden.Token, err error, previous *tokenwarden.Token) {
	t.Helper()
	if want.OK != nil && *want.OK != (err == nil) {
		t.Errorf("%s: error %v, want ok=%v", where, err, *want.OK)
		return
	}
	if err != nil {
		var twErr *tokenwarden.Error
		if !errors.As(err, &twErr) {
			t.Errorf("%s: %T %v is not a *tokenwarden.Error", where, err, err)
			return
		}
		if want.Error != "" && twErr.Code != want.Error {
			t.Errorf("%s: code %q, want %q (%v)", where, twErr.Code, want.Error, err)
		}
		if want.Reason != "" && twErr.Reason != want.Reason {
			t.Errorf("%s: reason %q, want %q", where, twErr.Reason, want.Reason)
		}
		if want.TLSError != nil && twErr.TLS != *want.TLSError {
			t.Errorf("%s: TLS %v, want %v (%v)", where, twErr.TLS, *want.TLSError, err)
		}
		if want.RetryAfterAtLeast != nil && twErr.RetryAfter < seconds(*want.RetryAfterAtLeast) {
			t.Errorf("%s: RetryAfter %s, want at least %vs", where, twErr.RetryAfter, *want.RetryAfterAtLeast)
		}
		return
	}
	if want.ExpiresInAtLeast != nil && time.Until(token.Expiry) < seconds(*want.ExpiresInAtLeast) {
		t.Errorf("%s: expires in %s, want at least %vs", where, time.Until(token.Expiry), *want.ExpiresInAtLeast)
	}
	if want.SameTokenAsPrevious != nil {
		same := previous != nil && previous.AccessToken == token.AccessToken
		if same != *want.SameTokenAsPrevious {
			t.Errorf("%s: same token as the previous step: %v, want %v", where, same, *want.SameTokenAsPrevious)
		}
	}
	if want.VersionIncreased != nil {
		increased := previous != nil && token.Version > previous.Version
		if increased != *want.VersionIncreased {
			t.Errorf("%s: version increased: %v (from %v to %d), want %v", where, increased, previous, token.Version, *want.VersionIncreased)
		}
	}
}

// concurrently calls fn from n goroutines released at once.
func concurrently(n int, fn func() (*tokenwarden.Token, error)) ([]*tokenwarden.Token, []error) {
	tokens, errs := make([]*tokenwarden.Token, n), make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			tokens[i], errs[i] = fn()
		}()
	}
	close(start)
	wg.Wait()
	return tokens, errs
}

func newClient(t testing.TB, baseURL, apiKey string) *tokenwarden.Client {
	t.Helper()
	client, err := tokenwarden.NewClient(tokenwarden.Options{BaseURL: baseURL, APIKey: apiKey, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// newTLSClient is a client with the TLS a step names (sdks/scenarios/README.md): "none" (the
// system's CAs), "ca", "ca_and_certificate" or "ca_and_other_certificate".
func newTLSClient(t testing.TB, c *harness.Case, choice string) *tokenwarden.Client {
	t.Helper()
	if choice == "none" {
		return newClient(t, c.BaseURL, c.APIKey)
	}
	if c.TLS == nil {
		t.Fatalf("the step asks for TLS %q, the case's server has none", choice)
	}
	roots, err := tokenwarden.LoadCAFile(c.TLS.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	config := &tls.Config{RootCAs: roots}
	pairs := map[string][2]string{
		"ca_and_certificate":       {c.TLS.CertFile, c.TLS.KeyFile},
		"ca_and_other_certificate": {c.TLS.OtherCertFile, c.TLS.OtherKeyFile},
	}
	if pair, ok := pairs[choice]; ok {
		certificate, err := tokenwarden.LoadKeyPair(pair[0], pair[1])
		if err != nil {
			t.Fatal(err)
		}
		config.Certificates = []tls.Certificate{certificate}
	} else if choice != "ca" {
		t.Fatalf("unknown TLS choice %q", choice)
	}
	client, err := tokenwarden.NewClient(tokenwarden.Options{BaseURL: c.BaseURL, APIKey: c.APIKey, MaxAttempts: 2, TLSConfig: config})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// fingerprint names a token in test output without showing it.
func fingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}
