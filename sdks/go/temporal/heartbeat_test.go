package temporal_test

import (
	"context"
	"errors"
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

// The helpers' heartbeats carry the previous attempt's checkpoint on, so a checkpointing activity
// does not lose it by waiting for a token. Attempt 1 checkpoints and fails; attempt 2 waits for
// Tokenwarden (unreachable) with heartbeats and fails; attempt 3 reads what attempt 2 left.
func TestHeartbeatsKeepTheCheckpoint(t *testing.T) {
	t.Parallel()
	c := temporalClient(t)
	tw := scenarios.Setup(t, "server_unreachable")
	twClient, err := tokenwarden.NewClient(tokenwarden.Options{BaseURL: tw.ClosedURL, APIKey: tw.APIKey, MaxAttempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	helpers := twtemporal.NewHelpers(twClient, twtemporal.Options{HeartbeatInterval: 50 * time.Millisecond})
	checkpointed := func(ctx context.Context, connectionID string) (string, error) {
		switch activity.GetInfo(ctx).Attempt {
		case 1:
			activity.RecordHeartbeat(ctx, "checkpoint-7")
			return "", errors.New("attempt 1 fails after its checkpoint")
		case 2:
			_, err := helpers.Token(ctx, connectionID)
			return "", err
		}
		var checkpoint string
		if err := activity.GetHeartbeatDetails(ctx, &checkpoint); err != nil {
			return "", err
		}
		return checkpoint, nil
	}
	workflowFn := func(ctx workflow.Context, connectionID string) (string, error) {
		ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
			StartToCloseTimeout: 30 * time.Second,
			HeartbeatTimeout:    5 * time.Second,
			RetryPolicy:         &sdktemporal.RetryPolicy{InitialInterval: 10 * time.Millisecond, MaximumAttempts: 3},
		})
		var checkpoint string
		err := workflow.ExecuteActivity(ctx, "Checkpointed", connectionID).Get(ctx, &checkpoint)
		return checkpoint, err
	}
	taskQueue := "tw-" + t.Name()
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(workflowFn, workflow.RegisterOptions{Name: "Checkpoint"})
	w.RegisterActivityWithOptions(checkpointed, activity.RegisterOptions{Name: "Checkpointed"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: taskQueue}, "Checkpoint", tw.ConnectionID)
	if err != nil {
		t.Fatal(err)
	}
	var checkpoint string
	if err := run.Get(ctx, &checkpoint); err != nil {
		t.Fatal(err)
	}
	if checkpoint != "checkpoint-7" {
		t.Errorf("attempt 3 found the checkpoint %q, want checkpoint-7", checkpoint)
	}
}
