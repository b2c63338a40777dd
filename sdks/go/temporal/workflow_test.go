package temporal_test

// The helpers in real Temporal workflows: a Temporal server (TEMPORAL_ADDRESS), real workers, and
// the scenario harness's Tokenwarden server and test provider.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
	twtemporal "github.com/tokenwarden/tokenwarden/sdks/go/temporal"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	sdktemporal "go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// resourceActivities fetch the case's resource with the connection's token.
type resourceActivities struct {
	helpers *twtemporal.Helpers
	calls   *atomic.Int64
}

func (a *resourceActivities) FetchResource(ctx context.Context, connectionID, resourceURL string) (int, error) {
	a.calls.Add(1)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, resourceURL, nil)
	if err != nil {
		return 0, err
	}
	res, err := a.helpers.Do(ctx, connectionID, req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

type fanOut struct {
	ConnectionID, ResourceURL string
	Activities                int
	Options                   workflow.ActivityOptions
}

// fanOutWorkflow runs the activities at once and returns their statuses.
func fanOutWorkflow(ctx workflow.Context, in fanOut) ([]int, error) {
	ctx = workflow.WithActivityOptions(ctx, in.Options)
	futures := make([]workflow.Future, in.Activities)
	for i := range futures {
		futures[i] = workflow.ExecuteActivity(ctx, "FetchResource", in.ConnectionID, in.ResourceURL)
	}
	statuses := make([]int, len(futures))
	for i, f := range futures {
		if err := f.Get(ctx, &statuses[i]); err != nil {
			return nil, err
		}
	}
	return statuses, nil
}

// startWorkers starts n workers on one task queue, each with its own Tokenwarden client, as n
// worker processes would have.
func startWorkers(t *testing.T, c client.Client, baseURL, apiKey string, n int, opts tokenwarden.Options) (taskQueue string, calls *atomic.Int64) {
	t.Helper()
	taskQueue = "tw-" + t.Name()
	calls = &atomic.Int64{}
	for range n {
		opts.BaseURL, opts.APIKey = baseURL, apiKey
		twClient, err := tokenwarden.NewClient(opts)
		if err != nil {
			t.Fatal(err)
		}
		w := worker.New(c, taskQueue, worker.Options{})
		w.RegisterWorkflowWithOptions(fanOutWorkflow, workflow.RegisterOptions{Name: "FanOut"})
		acts := &resourceActivities{helpers: twtemporal.NewHelpers(twClient, twtemporal.Options{}), calls: calls}
		w.RegisterActivityWithOptions(acts.FetchResource, activity.RegisterOptions{Name: "FetchResource"})
		if err := w.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(w.Stop)
	}
	return taskQueue, calls
}

func run(t *testing.T, c client.Client, taskQueue string, in fanOut) ([]int, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: taskQueue}, "FanOut", in)
	if err != nil {
		t.Fatal(err)
	}
	var statuses []int
	err = run.Get(ctx, &statuses)
	return statuses, err
}

func TestTwentyActivitiesOneRedemption(t *testing.T) {
	t.Parallel()
	c := temporalClient(t)
	tw := scenarios.Setup(t, "expired_refreshes_once")
	taskQueue, calls := startWorkers(t, c, tw.BaseURL, tw.APIKey, 2, tokenwarden.Options{})
	statuses, err := run(t, c, taskQueue, fanOut{
		ConnectionID: tw.ConnectionID, ResourceURL: tw.ResourceURL, Activities: 20,
		Options: workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, status := range statuses {
		if status != http.StatusOK {
			t.Errorf("activity %d: status %d, want 200", i, status)
		}
	}
	if len(statuses) != 20 || calls.Load() != 20 {
		t.Errorf("%d statuses from %d activity calls, want 20 and 20", len(statuses), calls.Load())
	}
	s := tw.Stats(t)
	if s.Redemptions != 1 {
		t.Errorf("%d redemptions, want 1", s.Redemptions)
	}
}

func TestNeedsReauthIsNotRetried(t *testing.T) {
	t.Parallel()
	c := temporalClient(t)
	tw := scenarios.Setup(t, "needs_reauth")
	taskQueue, calls := startWorkers(t, c, tw.BaseURL, tw.APIKey, 1, tokenwarden.Options{})
	_, err := run(t, c, taskQueue, fanOut{
		ConnectionID: tw.ConnectionID, ResourceURL: tw.ResourceURL, Activities: 1,
		Options: workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			RetryPolicy:         &sdktemporal.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaximumAttempts: 5},
		},
	})
	var appErr *sdktemporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("workflow error %v, want an ApplicationError", err)
	}
	if appErr.Type() != twtemporal.FailureNeedsReauth || !appErr.NonRetryable() {
		t.Errorf("type %q non-retryable %v, want %q non-retryable", appErr.Type(), appErr.NonRetryable(), twtemporal.FailureNeedsReauth)
	}
	var details twtemporal.NeedsReauthDetails
	if err := appErr.Details(&details); err != nil {
		t.Fatal(err)
	}
	if details != (twtemporal.NeedsReauthDetails{ConnectionID: tw.ConnectionID, Reason: "invalid_grant"}) {
		t.Errorf("details %+v", details)
	}
	if calls.Load() != 1 {
		t.Errorf("the activity ran %d times, want 1 (non-retryable)", calls.Load())
	}
}

// Tokenwarden unreachable: the client retries for a few seconds, longer than the heartbeat
// timeout. Heartbeating keeps the activity alive until the client gives up; without it the
// activity would end in a heartbeat timeout instead.
func TestHeartbeatsWhileWaiting(t *testing.T) {
	t.Parallel()
	c := temporalClient(t)
	tw := scenarios.Setup(t, "server_unreachable")
	// 6 attempts: at least 3.1 s of backoff (200 ms doubling, half of it random).
	taskQueue, calls := startWorkers(t, c, tw.ClosedURL, tw.APIKey, 1, tokenwarden.Options{MaxAttempts: 6})
	_, err := run(t, c, taskQueue, fanOut{
		ConnectionID: tw.ConnectionID, ResourceURL: tw.ResourceURL, Activities: 1,
		Options: workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			HeartbeatTimeout:    time.Second,
			RetryPolicy:         &sdktemporal.RetryPolicy{MaximumAttempts: 1},
		},
	})
	var appErr *sdktemporal.ApplicationError
	if !errors.As(err, &appErr) {
		t.Fatalf("workflow error %v, want an ApplicationError", err)
	}
	if appErr.Type() != twtemporal.FailureUnavailable || appErr.NonRetryable() {
		t.Errorf("type %q non-retryable %v, want %q retryable", appErr.Type(), appErr.NonRetryable(), twtemporal.FailureUnavailable)
	}
	if calls.Load() != 1 {
		t.Errorf("the activity ran %d times, want 1", calls.Load())
	}
}

// Outside an activity the helpers still report a rejection and map errors (without heartbeats).
func TestWithTokenReportsARejection(t *testing.T) {
	t.Parallel()
	tw := scenarios.Setup(t, "rejected_then_success")
	twClient, err := tokenwarden.NewClient(tokenwarden.Options{BaseURL: tw.BaseURL, APIKey: tw.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	helpers := twtemporal.NewHelpers(twClient, twtemporal.Options{})
	var versions []int64
	err = helpers.WithToken(context.Background(), tw.ConnectionID, func(_ context.Context, token *tokenwarden.Token) error {
		versions = append(versions, token.Version)
		if len(versions) == 1 {
			return fmt.Errorf("calling the API: %w", twtemporal.ErrTokenRejected)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 || versions[1] <= versions[0] {
		t.Errorf("versions %v, want two, increasing", versions)
	}
	s := tw.Stats(t)
	if s.Redemptions != 1 {
		t.Errorf("%d redemptions, want 1", s.Redemptions)
	}

	_, err = helpers.Token(context.Background(), "no-such-connection")
	var appErr *sdktemporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != twtemporal.FailureNotFound {
		t.Errorf("unknown connection: %v, want a %s failure", err, twtemporal.FailureNotFound)
	}
}
