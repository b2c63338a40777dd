package tokenwarden_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/tokenwarden/tokenwarden/sdks/go/internal/harness"
)

// scenarios is the harness every test of this package sets its cases up on.
var scenarios *harness.Harness

func TestMain(m *testing.M) {
	// This test binary is also the worker process of the multi-process test.
	if os.Getenv(workerEnv) != "" {
		os.Exit(runWorker())
	}
	var err error
	if scenarios, err = harness.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	scenarios.Close()
	os.Exit(code)
}
