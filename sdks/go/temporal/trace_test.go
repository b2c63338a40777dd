package temporal_test

// Temporal's OpenTelemetry interceptor (go.temporal.io/sdk/contrib/opentelemetry) on the client
// and the worker: the workflow's trace reaches the activity, and the activity's span is the
// parent of the SDK's request for the token (the harness's recording front sees its traceparent).

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
	twtemporal "github.com/tokenwarden/tokenwarden/sdks/go/temporal"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/contrib/opentelemetry"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

func TestTheActivitySpanIsTheParentOfTheHandOut(t *testing.T) {
	t.Parallel()
	tw := scenarios.Setup(t, "cache_hit")
	spans := tracetest.NewInMemoryExporter()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	tracer := provider.Tracer("tokenwarden-tests")
	tracing, err := opentelemetry.NewTracingInterceptor(opentelemetry.TracerOptions{Tracer: tracer})
	if err != nil {
		t.Fatal(err)
	}
	c := temporalClient(t, tracing) // and so the worker's

	twClient, err := tokenwarden.NewClient(tokenwarden.Options{BaseURL: tw.RecordingURL, APIKey: tw.APIKey})
	if err != nil {
		t.Fatal(err)
	}
	taskQueue := "tw-" + t.Name()
	w := worker.New(c, taskQueue, worker.Options{})
	w.RegisterWorkflowWithOptions(fanOutWorkflow, workflow.RegisterOptions{Name: "FanOut"})
	acts := &resourceActivities{helpers: twtemporal.NewHelpers(twClient, twtemporal.Options{}), calls: &atomic.Int64{}}
	w.RegisterActivityWithOptions(acts.FetchResource, activity.RegisterOptions{Name: "FetchResource"})
	if err := w.Start(); err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ctx, root := tracer.Start(ctx, "worker-job")
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: taskQueue}, "FanOut", fanOut{
		ConnectionID: tw.ConnectionID, ResourceURL: tw.ResourceURL, Activities: 1,
		Options: workflow.ActivityOptions{StartToCloseTimeout: 30 * time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.Get(ctx, nil); err != nil {
		t.Fatal(err)
	}
	root.End()

	var activitySpan *tracetest.SpanStub
	for _, span := range spans.GetSpans() {
		if span.Name == "RunActivity:FetchResource" {
			activitySpan = &span
		}
	}
	if activitySpan == nil {
		t.Fatalf("no RunActivity:FetchResource span among %d", len(spans.GetSpans()))
	}
	if activitySpan.SpanContext.TraceID() != root.SpanContext().TraceID() {
		t.Errorf("the activity's span is in trace %s, not the caller's %s", activitySpan.SpanContext.TraceID(), root.SpanContext().TraceID())
	}
	sc := activitySpan.SpanContext
	want := fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
	requests := tw.TraceHeaders(t)
	if len(requests) != 1 || requests[0].Traceparent != want {
		t.Errorf("the hand-out's requests %+v, want one with traceparent %s", requests, want)
	}
}
