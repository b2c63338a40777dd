package tokenwarden

// One JSON request to the Tokenwarden API, with a timeout per attempt and bounded retries of what
// can go away by itself: refresh_unavailable (honouring Retry-After), 429/502/503/504, network
// errors. The same rules as the TypeScript client's internal/transport.ts.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/propagation"
)

const (
	// Used when a 503 names no Retry-After: the server knows best, but said nothing.
	defaultRetryAfter = time.Second
	// The server's messages are safe, but a proxy's error page could be anything: keep it short.
	maxMessageLength = 300
	// An API answer is a few hundred bytes; anything past this is not the API.
	maxBodyBytes = 1 << 20
)

// traceContext writes the W3C traceparent and tracestate of the span in a request's context
// (none outside a span), whatever global propagator the program set: it is what the server reads.
var traceContext propagation.TraceContext

type api struct {
	baseURL     string
	origin      string
	apiKey      string
	http        *http.Client
	timeout     time.Duration
	maxAttempts int
	maxElapsed  time.Duration
	onRetry     func(RetryEvent)
}

// request sends method path with body (nil: none) and decodes a 2xx answer into out.
func (a *api) request(ctx context.Context, method, path string, body any, connectionID string, out any) error {
	started := time.Now()
	for attempt := 1; ; attempt++ {
		delay, err := a.attempt(ctx, method, path, body, connectionID, attempt, out)
		if err == nil {
			return nil
		}
		if delay < 0 || attempt >= a.maxAttempts || time.Since(started)+delay > a.maxElapsed {
			return err
		}
		if a.onRetry != nil {
			a.onRetry(RetryEvent{Attempt: attempt, Delay: delay, Err: err})
		}
		timer := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		case <-timer.C:
		}
	}
}

// attempt returns how long to wait before the next attempt, or -1 when retrying cannot help.
func (a *api) attempt(ctx context.Context, method, path string, body any, connectionID string, attempt int, out any) (time.Duration, error) {
	var payload io.Reader
	if body != nil {
		encoded, err := json.Marshal(body)
		if err != nil {
			return -1, invalidRequest(connectionID, "the request body cannot be encoded: %v", err)
		}
		payload = bytes.NewReader(encoded)
	}
	attemptCtx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(attemptCtx, method, a.baseURL+path, payload)
	if err != nil {
		return -1, invalidRequest(connectionID, "the request cannot be built: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+a.apiKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	traceContext.Inject(attemptCtx, propagation.HeaderCarrier(req.Header))

	res, err := a.http.Do(req)
	var text []byte
	if err == nil {
		text, err = io.ReadAll(io.LimitReader(res.Body, maxBodyBytes))
		res.Body.Close()
	}
	if err != nil {
		if ctx.Err() != nil {
			return -1, ctx.Err() // the caller gave up: not the network's fault
		}
		if why, isTLS := tlsFailure(err); isTLS {
			// Not retried: a certificate does not become trusted by asking again.
			return -1, &Error{
				Code:         CodeNetworkError,
				Message:      fmt.Sprintf("could not reach Tokenwarden at %s: %s", a.origin, why),
				ConnectionID: connectionID,
				TLS:          true,
				Err:          err,
			}
		}
		timedOut := errors.Is(err, context.DeadlineExceeded)
		why := "no answer within " + a.timeout.String()
		if !timedOut {
			why = describe(err)
		}
		return backoff(attempt), &Error{
			Code:         CodeNetworkError,
			Message:      fmt.Sprintf("could not reach Tokenwarden at %s: %s", a.origin, why),
			ConnectionID: connectionID,
			TimedOut:     timedOut,
			Err:          err,
		}
	}

	if res.StatusCode >= 200 && res.StatusCode < 300 {
		if err := json.Unmarshal(text, out); err != nil {
			return -1, unexpected(res.StatusCode, connectionID)
		}
		return 0, nil
	}
	retryAfter, named := parseRetryAfter(res.Header.Get("Retry-After"), time.Now())
	apiErr := errorFromResponse(res.StatusCode, text, retryAfter, named, connectionID)
	switch res.StatusCode {
	case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		if named {
			return retryAfter, apiErr
		}
		return backoff(attempt), apiErr
	}
	return -1, apiErr
}

// errorFromResponse turns an API answer that is not 2xx into the typed error.
func errorFromResponse(status int, text []byte, retryAfter time.Duration, named bool, connectionID string) *Error {
	var body struct {
		Error   *string `json:"error"`
		Message string  `json:"message"`
		Reason  *string `json:"reason"`
	}
	if json.Unmarshal(text, &body) != nil || body.Error == nil {
		// A load balancer's 502 or a wrong BaseURL's 404: not something the API said.
		return &Error{
			Code:         CodeUnexpectedResponse,
			Message:      fmt.Sprintf("HTTP %d without a Tokenwarden error body (is BaseURL right, is a proxy in the way?)", status),
			Status:       status,
			ConnectionID: connectionID,
		}
	}
	e := &Error{Code: *body.Error, Message: body.Message, Status: status, ConnectionID: connectionID}
	if len(e.Message) > maxMessageLength {
		e.Message = e.Message[:maxMessageLength]
	}
	if e.Message == "" {
		e.Message = fmt.Sprintf("Tokenwarden answered %s (HTTP %d)", e.Code, status)
	}
	switch e.Code {
	case CodeNeedsReauth:
		e.Reason = "unknown"
		if body.Reason != nil {
			e.Reason = *body.Reason
		}
	case CodeRefreshUnavailable:
		e.RetryAfter = defaultRetryAfter
		if named {
			e.RetryAfter = retryAfter
		}
	}
	return e
}

// parseRetryAfter reads Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.
func parseRetryAfter(value string, now time.Time) (time.Duration, bool) {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0, false
	}
	if seconds, err := strconv.ParseUint(value, 10, 32); err == nil {
		return time.Duration(seconds) * time.Second, true
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(0, at.Sub(now)), true
	}
	return 0, false
}

// backoff is what a retry waits when the server named no time: exponential, capped, half of it
// random so that callers in many processes that failed together spread out.
func backoff(attempt int) time.Duration {
	ceiling := min(5*time.Second, 200*time.Millisecond<<min(attempt-1, 5))
	return ceiling/2 + rand.N(ceiling/2+1)
}

// describe names why a request failed without the URL's query or any header: the innermost
// error of a *url.Error (e.g. "connect: connection refused").
func describe(err error) string {
	for {
		inner := errors.Unwrap(err)
		if inner == nil {
			return err.Error()
		}
		err = inner
	}
}
