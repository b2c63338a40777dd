package temporal

import (
	"errors"
	"fmt"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
	sdktemporal "go.temporal.io/sdk/temporal"
)

// The type of every ApplicationError this package returns: the same strings as the TypeScript
// package's FailureTypes (packages/temporal/src/failure-types.ts), so retry policies
// (NonRetryableErrorTypes) and workflows in any language match them alike.
const (
	// FailureNeedsReauth: the connection's owner must authorize again. Non-retryable.
	// Details: [NeedsReauthDetails].
	FailureNeedsReauth = "TokenwardenNeedsReauth"
	// FailureRefreshUnavailable: the token could not be refreshed right now; the connection is
	// healthy. Retryable; the next attempt waits for the server's Retry-After.
	// Details: [RefreshUnavailableDetails].
	FailureRefreshUnavailable = "TokenwardenRefreshUnavailable"
	// FailureUnavailable: Tokenwarden could not be reached or answered 5xx. Retryable with the
	// retry policy's backoff. Details: [FailureDetails].
	FailureUnavailable = "TokenwardenUnavailable"
	// FailureNotFound: no connection with this id (or the API key may not see it).
	// Non-retryable. Details: [FailureDetails].
	FailureNotFound = "TokenwardenNotFound"
	// FailureAccessDenied: the API key is missing, revoked, or not granted this connection.
	// Non-retryable. Details: [FailureDetails].
	FailureAccessDenied = "TokenwardenAccessDenied"
	// FailureError: any other Tokenwarden error (a malformed request, an unknown code).
	// Non-retryable. Details: [FailureDetails].
	FailureError = "TokenwardenError"
)

// NeedsReauthDetails are the details of a TokenwardenNeedsReauth failure.
type NeedsReauthDetails struct {
	ConnectionID string `json:"connectionId"`
	// Reason: invalid_grant, refresh_in_doubt, refresh_token_expired, no_refresh_token, ...
	Reason string `json:"reason"`
}

// RefreshUnavailableDetails are the details of a TokenwardenRefreshUnavailable failure.
type RefreshUnavailableDetails struct {
	ConnectionID string `json:"connectionId"`
	RetryAfterMs int64  `json:"retryAfterMs"`
}

// FailureDetails are the details of the other failures: the Tokenwarden error code.
type FailureDetails struct {
	ConnectionID string `json:"connectionId"`
	Code         string `json:"code"`
}

// ToApplicationError is the ApplicationError a Tokenwarden error becomes in an activity, or nil
// when err holds no [*tokenwarden.Error]. Messages and details are built from codes and ids only,
// and the SDK error is not attached as a cause: nothing of it but its code reaches workflow
// history.
//
//	SDK error                                 failure type                   retryable
//	needs_reauth                              TokenwardenNeedsReauth         no
//	refresh_unavailable                       TokenwardenRefreshUnavailable  yes, after Retry-After
//	store_unavailable, network_error, 5xx     TokenwardenUnavailable         yes
//	not_found                                 TokenwardenNotFound            no
//	unauthorized, forbidden                   TokenwardenAccessDenied        no
//	anything else                             TokenwardenError               no
func ToApplicationError(err error, connectionID string) error {
	var e *tokenwarden.Error
	if !errors.As(err, &e) {
		return nil
	}
	id := connectionID
	if e.ConnectionID != "" {
		id = e.ConnectionID
	}
	details := FailureDetails{ConnectionID: id, Code: e.Code}
	switch {
	case e.Code == tokenwarden.CodeNeedsReauth:
		reason := e.Reason
		if reason == "" {
			reason = "unknown"
		}
		return nonRetryable(fmt.Sprintf("Connection %q needs its owner to authorize again (%s).", id, reason),
			FailureNeedsReauth, NeedsReauthDetails{ConnectionID: id, Reason: reason})
	case e.Code == tokenwarden.CodeRefreshUnavailable && e.RetryAfter > 0:
		retryAfter := e.RetryAfter.Round(time.Millisecond)
		return sdktemporal.NewApplicationErrorWithOptions(
			fmt.Sprintf("Connection %q could not be refreshed right now; retrying in %d s.", id, int64((retryAfter+time.Second-1)/time.Second)),
			FailureRefreshUnavailable,
			sdktemporal.ApplicationErrorOptions{
				NextRetryDelay: retryAfter,
				Details:        []any{RefreshUnavailableDetails{ConnectionID: id, RetryAfterMs: retryAfter.Milliseconds()}},
			})
	case e.Retryable() || e.Code == tokenwarden.CodeInternalError || e.Status >= 500:
		return sdktemporal.NewApplicationError(
			fmt.Sprintf("Tokenwarden is unavailable for connection %q (%s).", id, e.Code), FailureUnavailable, details)
	case e.Code == tokenwarden.CodeNotFound:
		return nonRetryable(fmt.Sprintf("Connection %q does not exist, or this API key cannot see it (not_found).", id),
			FailureNotFound, details)
	case e.Code == tokenwarden.CodeUnauthorized:
		return nonRetryable(fmt.Sprintf("Tokenwarden refused the worker's API key for connection %q (unauthorized).", id),
			FailureAccessDenied, details)
	case e.Code == tokenwarden.CodeForbidden:
		return nonRetryable(fmt.Sprintf("The worker's API key is not granted connection %q (forbidden).", id),
			FailureAccessDenied, details)
	}
	return nonRetryable(fmt.Sprintf("Tokenwarden refused the request for connection %q (%s).", id, e.Code),
		FailureError, details)
}

func nonRetryable(message, failureType string, details any) error {
	return sdktemporal.NewNonRetryableApplicationError(message, failureType, nil, details)
}
