// Package temporal is the activity side of Tokenwarden for Temporal Go workers: a valid access
// token for a connection, with heartbeats while it waits for Tokenwarden and Tokenwarden's errors
// turned into ApplicationErrors whose types retry policies and workflows match on (the same
// types as the TypeScript and Python packages).
//
//	tw, _ := tokenwarden.NewClient(tokenwarden.Options{BaseURL: baseURL, APIKey: apiKey})
//	helpers := twtemporal.NewHelpers(tw, twtemporal.Options{MinTTL: time.Minute})
//
//	func (a *Activities) ListChannels(ctx context.Context, connectionID string) ([]byte, error) {
//		req, _ := http.NewRequestWithContext(ctx, "GET", "https://slack.com/api/conversations.list", nil)
//		res, err := helpers.Do(ctx, connectionID, req)
//		...
//	}
package temporal

import (
	"context"
	"errors"
	"net/http"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
)

// ErrTokenRejected is what a [Helpers.WithToken] callback returns (or wraps) when the resource
// server refused the token, if its client library returns no error with a 401 status of its own.
var ErrTokenRejected = errors.New("the resource server refused the access token (HTTP 401)")

// Options for [NewHelpers]; the zero value of each field means its default.
type Options struct {
	// MinTTL: a token handed out stays valid at least this long.
	MinTTL time.Duration
	// HeartbeatInterval is how often to heartbeat while waiting for Tokenwarden. Default: a third
	// of the activity's heartbeat timeout. Without a heartbeat timeout (and without this option)
	// the helpers do not heartbeat; local activities never heartbeat.
	HeartbeatInterval time.Duration
	// HeartbeatDetails are sent with those heartbeats. Heartbeat details are the activity's
	// checkpoint and each heartbeat replaces the last one's: an activity that checkpoints its
	// progress should return it here. Default: the previous attempt's last heartbeat details.
	// Never put a token here: the Temporal server stores them.
	HeartbeatDetails func(ctx context.Context) []any
	// IsRejected says whether an error from a WithToken callback means the resource server refused
	// the token. Default: errors.Is(err, ErrTokenRejected), or an error in the chain with a
	// StatusCode() int method that returns 401.
	IsRejected func(error) bool
}

// Helpers are bound to one [tokenwarden.Client]. Create one client and one Helpers per worker
// process and share them between activities: the client's cache and single-flight are shared by
// every activity the worker runs.
type Helpers struct {
	client *tokenwarden.Client
	opts   Options
}

// NewHelpers returns the helpers for client.
func NewHelpers(client *tokenwarden.Client, opts Options) *Helpers {
	if opts.IsRejected == nil {
		opts.IsRejected = isUnauthorized
	}
	return &Helpers{client: client, opts: opts}
}

// Token returns a valid access token for the connection, heartbeating while it waits; the
// activity's cancellation (ctx) stops the wait. A Tokenwarden error is returned as an
// ApplicationError ([ToApplicationError]).
func (h *Helpers) Token(ctx context.Context, connectionID string) (*tokenwarden.Token, error) {
	return waitFor(ctx, h, connectionID, func() (*tokenwarden.Token, error) {
		return h.client.Token(ctx, connectionID, &tokenwarden.TokenOptions{MinTTL: h.opts.MinTTL})
	})
}

// WithToken runs fn with a valid access token. If fn's error means the resource server refused
// the token (see Options.IsRejected), the refusal is reported to Tokenwarden, which refreshes the
// token once however many workers report it, and fn runs once more with the fresh token; a
// second refusal is returned as fn returned it. Errors from fn pass through unchanged.
func (h *Helpers) WithToken(ctx context.Context, connectionID string, fn func(ctx context.Context, token *tokenwarden.Token) error) error {
	token, err := h.Token(ctx, connectionID)
	if err != nil {
		return err
	}
	if err := fn(ctx, token); err == nil || !h.opts.IsRejected(err) {
		return err
	}
	fresh, err := waitFor(ctx, h, connectionID, func() (*tokenwarden.Token, error) {
		return h.client.ReportRejected(ctx, connectionID, token.Version)
	})
	if err != nil {
		return err
	}
	return fn(ctx, fresh)
}

// Do sends req with the connection's bearer token through a [tokenwarden.Transport]: a 401 is
// reported and the request sent once more with the fresh token (if its body can be read
// twice). It heartbeats until the response headers arrive; cancel req's context to abort it
// (pass the activity's ctx, or one derived from it).
func (h *Helpers) Do(ctx context.Context, connectionID string, req *http.Request) (*http.Response, error) {
	transport := &tokenwarden.Transport{Client: h.client, ConnectionID: connectionID, MinTTL: h.opts.MinTTL}
	return waitFor(ctx, h, connectionID, func() (*http.Response, error) {
		return transport.RoundTrip(req)
	})
}

// waitFor runs call, heartbeating while it is pending if ctx is an activity's, and turns a
// Tokenwarden error into an ApplicationError.
func waitFor[T any](ctx context.Context, h *Helpers, connectionID string, call func() (T, error)) (T, error) {
	stop := h.startHeartbeats(ctx)
	value, err := call()
	stop()
	if failure := ToApplicationError(err, connectionID); failure != nil {
		return value, failure
	}
	return value, err
}

// startHeartbeats heartbeats every interval until the returned stop is called. A cache hit
// returns long before the first interval: it sends none.
func (h *Helpers) startHeartbeats(ctx context.Context) (stop func()) {
	if !activity.IsActivity(ctx) {
		return func() {}
	}
	info := activity.GetInfo(ctx)
	interval := h.opts.HeartbeatInterval
	if interval <= 0 && info.HeartbeatTimeout > 0 {
		interval = max(50*time.Millisecond, info.HeartbeatTimeout/3)
	}
	if info.IsLocalActivity || interval <= 0 {
		return func() {}
	}
	details := h.opts.HeartbeatDetails
	if details == nil {
		previous := previousHeartbeat(ctx)
		details = func(context.Context) []any { return previous }
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-ticker.C:
				activity.RecordHeartbeat(ctx, details(ctx)...)
			}
		}
	}()
	return func() {
		close(done)
		<-finished // no heartbeat after the call returned: the activity may heartbeat itself
	}
}

// previousHeartbeat is the previous attempt's last heartbeat details, passed on undecoded, so
// that a checkpoint survives the helpers' heartbeats.
func previousHeartbeat(ctx context.Context) []any {
	if !activity.HasHeartbeatDetails(ctx) {
		return nil
	}
	const most = 8
	raw := make([]converter.RawValue, most)
	ptrs := make([]any, most)
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	if activity.GetHeartbeatDetails(ctx, ptrs...) != nil {
		return nil
	}
	var details []any
	for _, value := range raw {
		if value.Payload() == nil {
			break
		}
		details = append(details, value)
	}
	return details
}

// isUnauthorized is the default IsRejected.
func isUnauthorized(err error) bool {
	if errors.Is(err, ErrTokenRejected) {
		return true
	}
	// The Tokenwarden API's own 401 (a bad API key) is not the resource server refusing a token.
	var twErr *tokenwarden.Error
	if errors.As(err, &twErr) {
		return false
	}
	var status interface{ StatusCode() int }
	return errors.As(err, &status) && status.StatusCode() == http.StatusUnauthorized
}
