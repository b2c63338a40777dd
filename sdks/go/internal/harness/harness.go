// Package harness runs the shared SDK scenario harness (sdks/scenarios/harness.ts) for the Go
// tests: a real Tokenwarden server on SQLite and a test OAuth provider, behind a control API
// that sets up a connection per case and counts redemptions and hand-outs.
package harness

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Harness is one running harness process.
type Harness struct {
	control string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  *tail
}

// Case is a connection set up for a named case.
type Case struct {
	Name         string `json:"-"`
	BaseURL      string `json:"base_url"`
	APIKey       string `json:"api_key"`
	ConnectionID string `json:"connection_id"`
	ClosedURL    string `json:"closed_url"`
	ResourceURL  string `json:"resource_url"`
	// RecordingURL is the plain server behind a front that records each API request's trace
	// context headers ([Case.TraceHeaders]).
	RecordingURL string `json:"recording_url"`
	// TLS is set for the cases whose server speaks HTTPS (BaseURL is then https).
	TLS     *TLSFiles `json:"tls"`
	control string
}

// TLSFiles are the PEM files of a TLS case: the CA that issued the server's certificate, the
// client certificate the service client is bound to, and another of the same CA.
type TLSFiles struct {
	CAFile        string `json:"ca_file"`
	CertFile      string `json:"cert_file"`
	KeyFile       string `json:"key_file"`
	OtherCertFile string `json:"other_cert_file"`
	OtherKeyFile  string `json:"other_key_file"`
}

// TraceHeaders are the W3C trace context headers of one API request, as the front received
// them; empty when absent.
type TraceHeaders struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	Traceparent string `json:"traceparent"`
	Tracestate  string `json:"tracestate"`
}

// Stats are the counts the harness keeps for a case's connection.
type Stats struct {
	Redemptions int `json:"redemptions"`
	HandOuts    int `json:"hand_outs"`
}

// RepoRoot is the repository's root: the nearest parent of the working directory holding
// sdks/scenarios/scenarios.json.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "sdks", "scenarios", "scenarios.json")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("sdks/scenarios/scenarios.json not found above the working directory")
		}
		dir = parent
	}
}

// Start runs the harness from the repository's root and waits for its control URL.
func Start() (*Harness, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("node", "--conditions=tokenwarden-source", "--import", "tsx", "sdks/scenarios/harness.ts")
	cmd.Dir = root
	h := &Harness{cmd: cmd, stderr: &tail{limit: 32 << 10}}
	cmd.Stderr = h.stderr
	if h.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the scenario harness: %w", err)
	}
	line := make(chan string, 1)
	go func() {
		scanner := bufio.NewScanner(stdout)
		if scanner.Scan() {
			line <- scanner.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case text, ok := <-line:
		var hello struct {
			Control string `json:"control"`
		}
		if !ok || json.Unmarshal([]byte(text), &hello) != nil || hello.Control == "" {
			h.Close()
			return nil, fmt.Errorf("the scenario harness did not print its control URL; its stderr:\n%s", h.stderr)
		}
		h.control = hello.Control
		return h, nil
	case <-time.After(90 * time.Second):
		h.Close()
		return nil, fmt.Errorf("the scenario harness did not start within 90 s; its stderr:\n%s", h.stderr)
	}
}

// Close stops the harness (closing its stdin is its signal to stop everything it started).
func (h *Harness) Close() {
	h.stdin.Close()
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		_ = h.cmd.Process.Kill()
		<-done
	}
}

// Setup asks for a fresh connection set up as the named case says; t fails if it cannot.
func (h *Harness) Setup(t testing.TB, name string) *Case {
	t.Helper()
	c := &Case{Name: name, control: h.control}
	if err := call(http.MethodPost, h.control+"/scenarios/"+url.PathEscape(name), http.StatusOK, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// Reject makes the resource refuse every access token issued so far for the case.
func (c *Case) Reject(t testing.TB) {
	t.Helper()
	if err := call(http.MethodPost, c.caseURL("reject"), http.StatusNoContent, nil); err != nil {
		t.Fatal(err)
	}
}

// Stats reads the case's counts.
func (c *Case) Stats(t testing.TB) Stats {
	t.Helper()
	var s Stats
	if err := call(http.MethodGet, c.caseURL("stats"), http.StatusOK, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TraceHeaders lists the trace context headers of the case's API requests made through
// RecordingURL, in order.
func (c *Case) TraceHeaders(t testing.TB) []TraceHeaders {
	t.Helper()
	var answer struct {
		Requests []TraceHeaders `json:"requests"`
	}
	if err := call(http.MethodGet, c.caseURL("trace_headers"), http.StatusOK, &answer); err != nil {
		t.Fatal(err)
	}
	return answer.Requests
}

func (c *Case) caseURL(action string) string {
	return c.control + "/scenarios/" + url.PathEscape(c.Name) + "/" + action +
		"?connection_id=" + url.QueryEscape(c.ConnectionID)
}

func call(method, target string, want int, out any) error {
	req, err := http.NewRequest(method, target, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != want {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, target, res.StatusCode, body)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// tail keeps the last limit bytes written to it: the harness's logs, shown when it fails.
type tail struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	limit int
}

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if extra := t.buf.Len() - t.limit; extra > 0 {
		t.buf.Next(extra)
	}
	return len(p), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
