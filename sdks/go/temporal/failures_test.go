package temporal_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
	twtemporal "github.com/tokenwarden/tokenwarden/sdks/go/temporal"
	sdktemporal "go.temporal.io/sdk/temporal"
)

func TestToApplicationError(t *testing.T) {
	cases := []struct {
		err          *tokenwarden.Error
		failureType  string
		nonRetryable bool
	}{
		{&tokenwarden.Error{Code: "needs_reauth", Reason: "invalid_grant"}, twtemporal.FailureNeedsReauth, true},
		{&tokenwarden.Error{Code: "refresh_unavailable", RetryAfter: 7 * time.Second}, twtemporal.FailureRefreshUnavailable, false},
		{&tokenwarden.Error{Code: "refresh_unavailable"}, twtemporal.FailureUnavailable, false},
		{&tokenwarden.Error{Code: "store_unavailable", Status: 503}, twtemporal.FailureUnavailable, false},
		{&tokenwarden.Error{Code: "network_error"}, twtemporal.FailureUnavailable, false},
		{&tokenwarden.Error{Code: "internal_error", Status: 500}, twtemporal.FailureUnavailable, false},
		{&tokenwarden.Error{Code: "unexpected_response", Status: 502}, twtemporal.FailureUnavailable, false},
		{&tokenwarden.Error{Code: "not_found", Status: 404}, twtemporal.FailureNotFound, true},
		{&tokenwarden.Error{Code: "unauthorized", Status: 401}, twtemporal.FailureAccessDenied, true},
		{&tokenwarden.Error{Code: "forbidden", Status: 403}, twtemporal.FailureAccessDenied, true},
		{&tokenwarden.Error{Code: "invalid_request", Status: 400}, twtemporal.FailureError, true},
		{&tokenwarden.Error{Code: "a_code_from_a_newer_server", Status: 409}, twtemporal.FailureError, true},
	}
	for _, tc := range cases {
		t.Run(tc.err.Code, func(t *testing.T) {
			tc.err.Message = "the server's message, which stays out of history"
			// Wrapped, as an http.Client's *url.Error wraps what a Transport returned.
			err := twtemporal.ToApplicationError(fmt.Errorf("get: %w", tc.err), "conn-1")
			var appErr *sdktemporal.ApplicationError
			if !errors.As(err, &appErr) {
				t.Fatalf("%v is not an ApplicationError", err)
			}
			if appErr.Type() != tc.failureType || appErr.NonRetryable() != tc.nonRetryable {
				t.Errorf("type %q non-retryable %v, want %q %v", appErr.Type(), appErr.NonRetryable(), tc.failureType, tc.nonRetryable)
			}
			if strings.Contains(appErr.Error(), tc.err.Message) {
				t.Errorf("the server's message reached the failure: %v", appErr)
			}
			if errors.Unwrap(appErr) != nil {
				t.Errorf("the SDK error is attached as a cause: %v", errors.Unwrap(appErr))
			}
			switch tc.failureType {
			case twtemporal.FailureNeedsReauth:
				var d twtemporal.NeedsReauthDetails
				if err := appErr.Details(&d); err != nil || d != (twtemporal.NeedsReauthDetails{ConnectionID: "conn-1", Reason: "invalid_grant"}) {
					t.Errorf("details %+v (%v)", d, err)
				}
			case twtemporal.FailureRefreshUnavailable:
				var d twtemporal.RefreshUnavailableDetails
				if err := appErr.Details(&d); err != nil || d.RetryAfterMs != 7000 {
					t.Errorf("details %+v (%v)", d, err)
				}
				if appErr.NextRetryDelay() != 7*time.Second {
					t.Errorf("next retry delay %s, want 7s", appErr.NextRetryDelay())
				}
			default:
				var d twtemporal.FailureDetails
				if err := appErr.Details(&d); err != nil || d != (twtemporal.FailureDetails{ConnectionID: "conn-1", Code: tc.err.Code}) {
					t.Errorf("details %+v (%v)", d, err)
				}
			}
		})
	}
}

func TestToApplicationErrorLeavesOtherErrors(t *testing.T) {
	if err := twtemporal.ToApplicationError(errors.New("the resource server is down"), "conn-1"); err != nil {
		t.Errorf("got %v, want nil", err)
	}
	if err := twtemporal.ToApplicationError(nil, "conn-1"); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}
