package tokenwarden_test

// W3C trace context on the API's requests: inside a span the request that hands out the token
// carries the span's traceparent and tracestate (seen by the harness's recording front, in front
// of the real server); outside one, none; a cache hit sends nothing.

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
	"github.com/tokenwarden/tokenwarden/sdks/go/internal/harness"
	"go.opentelemetry.io/otel/trace"
)

var callerTrace = trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}

// inSpan is ctx with a span as an instrumented worker would have one (the API alone makes it).
func inSpan(t testing.TB, ctx context.Context, spanByte byte) (context.Context, string) {
	t.Helper()
	state, err := trace.ParseTraceState("worker=eu-1")
	if err != nil {
		t.Fatal(err)
	}
	span := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    callerTrace,
		SpanID:     trace.SpanID{0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, spanByte},
		TraceFlags: trace.FlagsSampled,
		TraceState: state,
	})
	return trace.ContextWithSpanContext(ctx, span), fmt.Sprintf("00-%s-%s-01", span.TraceID(), span.SpanID())
}

func TestARequestInsideASpanCarriesItsTraceContext(t *testing.T) {
	c := scenarios.Setup(t, "min_ttl_refreshes")
	client := newClient(t, c.RecordingURL, c.APIKey)
	ctx := context.Background()
	if _, err := client.Token(ctx, c.ConnectionID, nil); err != nil { // outside any span
		t.Fatal(err)
	}
	traced, traceparent := inSpan(t, ctx, 0x31)
	if _, err := client.Token(traced, c.ConnectionID, nil); err != nil { // the cache: no request
		t.Fatal(err)
	}
	if _, err := client.Token(traced, c.ConnectionID, &tokenwarden.TokenOptions{MinTTL: 4000 * time.Second}); err != nil {
		t.Fatal(err)
	}
	want := []harness.TraceHeaders{
		{Method: "POST", Path: "/v1/connections/" + c.ConnectionID + "/token"},
		{Method: "POST", Path: "/v1/connections/" + c.ConnectionID + "/token", Traceparent: traceparent, Tracestate: "worker=eu-1"},
	}
	if got := c.TraceHeaders(t); !slices.Equal(got, want) {
		t.Errorf("requests %+v, want %+v", got, want)
	}
}

func TestConcurrentCallersShareTheRequestOfTheFirst(t *testing.T) {
	c := scenarios.Setup(t, "concurrent_callers")
	client := newClient(t, c.RecordingURL, c.APIKey)
	sent := make([]string, 5)
	var contexts []context.Context
	for n := range sent {
		var ctx context.Context
		ctx, sent[n] = inSpan(t, context.Background(), byte(n))
		contexts = append(contexts, ctx)
	}
	next := make(chan context.Context, len(contexts))
	for _, ctx := range contexts {
		next <- ctx
	}
	_, errs := concurrently(len(contexts), func() (*tokenwarden.Token, error) {
		return client.Token(<-next, c.ConnectionID, nil)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := c.TraceHeaders(t)
	// One request for the five callers, in the span of the one that sent it.
	if len(got) != 1 || !slices.Contains(sent, got[0].Traceparent) {
		t.Errorf("requests %+v, want one with a traceparent of %v", got, sent)
	}
}
