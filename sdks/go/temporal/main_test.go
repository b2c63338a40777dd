package temporal_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenwarden/tokenwarden/sdks/go/internal/harness"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/log"
	"google.golang.org/protobuf/types/known/durationpb"
)

var (
	scenarios *harness.Harness
	// temporalAddress is the Temporal server the tests run on (the suite's, via TEMPORAL_ADDRESS).
	temporalAddress = os.Getenv("TEMPORAL_ADDRESS")
	quiet           = log.NewStructuredLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	namespaces      atomic.Int64
)

func TestMain(m *testing.M) {
	var err error
	if scenarios, err = harness.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	scenarios.Close()
	os.Exit(code)
}

// temporalClient is a client on a namespace of the test's own; the interceptors also go to the
// workers made on it.
func temporalClient(t *testing.T, interceptors ...interceptor.ClientInterceptor) client.Client {
	t.Helper()
	if temporalAddress == "" {
		// The suite's wrapper (go-sdk.test.ts) always sets it and fails on a skipped test.
		t.Skip("TEMPORAL_ADDRESS is not set: start a server with `temporal server start-dev` and set it")
	}
	namespace := fmt.Sprintf("tw-go-%d-%d", time.Now().UnixNano(), namespaces.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nsClient, err := client.NewNamespaceClient(client.Options{HostPort: temporalAddress, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer nsClient.Close()
	err = nsClient.Register(ctx, &workflowservice.RegisterNamespaceRequest{
		Namespace:                        namespace,
		WorkflowExecutionRetentionPeriod: durationpb.New(24 * time.Hour),
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(client.Options{HostPort: temporalAddress, Namespace: namespace, Logger: quiet, Interceptors: interceptors})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// A new namespace reaches the frontend's cache a moment after it is registered.
	for {
		_, err := c.WorkflowService().DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: namespace})
		if err == nil {
			return c
		}
		if ctx.Err() != nil {
			t.Fatalf("namespace %s: %v", namespace, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
