package tokenwarden_test

// 4 processes × 50 goroutines, each process with its own client, on a connection whose token has
// expired: the refresh token is redeemed once, and every caller gets the one new token.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
)

const (
	workerEnv       = "TOKENWARDEN_GO_TEST_WORKER"
	workerProcesses = 4
	workerCallers   = 50
)

// workerReport is what a worker process prints: the tokens its callers got, by fingerprint (the
// test output must not hold a token), and their errors.
type workerReport struct {
	Fingerprints []string `json:"fingerprints"`
	Errors       []string `json:"errors"`
}

func TestProcessesShareOneRedemption(t *testing.T) {
	c := scenarios.Setup(t, "expired_refreshes_once")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	reports := make([]workerReport, workerProcesses)
	failures := make([]error, workerProcesses)
	var wg sync.WaitGroup
	for p := range workerProcesses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(self)
			cmd.Env = append(os.Environ(), workerEnv+"=1",
				"TW_BASE_URL="+c.BaseURL, "TW_API_KEY="+c.APIKey, "TW_CONNECTION_ID="+c.ConnectionID)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err == nil {
				err = json.Unmarshal(out, &reports[p])
			}
			if err != nil {
				failures[p] = fmt.Errorf("worker %d: %v; stderr: %s", p, err, stderr.String())
			}
		}()
	}
	wg.Wait()
	distinct := map[string]bool{}
	for p := range workerProcesses {
		if failures[p] != nil {
			t.Fatal(failures[p])
		}
		r := reports[p]
		if len(r.Errors) > 0 {
			t.Errorf("worker %d: %d callers failed, first: %s", p, len(r.Errors), r.Errors[0])
		}
		if len(r.Fingerprints) != workerCallers {
			t.Errorf("worker %d: %d tokens, want %d", p, len(r.Fingerprints), workerCallers)
		}
		for _, f := range r.Fingerprints {
			distinct[f] = true
		}
	}
	if len(distinct) != 1 {
		t.Errorf("%d distinct tokens across the processes, want 1", len(distinct))
	}
	s := c.Stats(t)
	if s.Redemptions != 1 {
		t.Errorf("%d redemptions, want 1", s.Redemptions)
	}
	// One request per process at most: each client's single-flight holds its 50 callers.
	if s.HandOuts < 1 || s.HandOuts > workerProcesses {
		t.Errorf("%d hand-outs, want 1 to %d", s.HandOuts, workerProcesses)
	}
}

// runWorker is the worker process: workerCallers goroutines on one client, released at once.
func runWorker() int {
	client, err := tokenwarden.NewClient(tokenwarden.Options{
		BaseURL: os.Getenv("TW_BASE_URL"),
		APIKey:  os.Getenv("TW_API_KEY"),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	id := os.Getenv("TW_CONNECTION_ID")
	tokens, errs := concurrently(workerCallers, func() (*tokenwarden.Token, error) {
		return client.Token(context.Background(), id, nil)
	})
	var report workerReport
	for i := range tokens {
		if errs[i] != nil {
			report.Errors = append(report.Errors, errs[i].Error())
			continue
		}
		report.Fingerprints = append(report.Fingerprints, fingerprint(tokens[i].AccessToken))
	}
	if err := json.NewEncoder(os.Stdout).Encode(report); err != nil {
		return 1
	}
	return 0
}
