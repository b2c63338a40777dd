package tokenwarden

import (
	"errors"
	"fmt"
	"time"
)

// The codes an [*Error] carries: the HTTP API's (docs/errors.md), the same strings as the
// TypeScript client's ErrorCode, plus two only the SDK can see (network_error,
// unexpected_response). A newer server may send a code not listed here; it arrives as it is.
const (
	CodeNotFound           = "not_found"
	CodeNeedsReauth        = "needs_reauth"
	CodeRefreshUnavailable = "refresh_unavailable"
	CodeInvalidRequest     = "invalid_request"
	CodeInvalidInput       = "invalid_input"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodePayloadTooLarge    = "payload_too_large"
	CodeStoreUnavailable   = "store_unavailable"
	CodeInternalError      = "internal_error"
	CodeShuttingDown       = "shutting_down"
	CodeNetworkError       = "network_error"
	CodeUnexpectedResponse = "unexpected_response"
)

// Sentinels for [errors.Is]: an [*Error] matches the sentinel with its Code, whatever else it
// carries. Use [errors.As] to read Reason, RetryAfter or Status.
var (
	ErrNeedsReauth        = &Error{Code: CodeNeedsReauth}
	ErrRefreshUnavailable = &Error{Code: CodeRefreshUnavailable}
	ErrNotFound           = &Error{Code: CodeNotFound}
	ErrForbidden          = &Error{Code: CodeForbidden}
	ErrUnauthorized       = &Error{Code: CodeUnauthorized}
	ErrInvalidRequest     = &Error{Code: CodeInvalidRequest}
	ErrNetwork            = &Error{Code: CodeNetworkError}
)

// Error is every error the SDK returns on purpose, except a cancelled or expired context, which
// is returned as it is (context.Canceled, context.DeadlineExceeded). Match on Code (or a
// sentinel with errors.Is), never on the message. Messages never contain a token or the API key.
type Error struct {
	// Code is stable: one of the Code constants, or a code this SDK version does not know yet.
	Code    string
	Message string
	// Status is the HTTP status of the API's answer; 0 when there was none.
	Status       int
	ConnectionID string
	// Reason says why a connection needs its owner to authorize again (needs_reauth only):
	// invalid_grant, refresh_in_doubt, refresh_token_expired, no_refresh_token, ...
	Reason string
	// RetryAfter is how long the server asked to wait before the next attempt
	// (refresh_unavailable only).
	RetryAfter time.Duration
	// TimedOut is true for a network_error that is a request with no answer within the timeout.
	TimedOut bool
	// TLS is true for a network_error that is a failed TLS handshake: the server's certificate
	// is not trusted here (give its CA: [LoadCAFile]) or the server requires a client certificate
	// ([LoadKeyPair]); the message says which. Not retried, and not Retryable. Err holds
	// crypto/tls's error (e.g. a *tls.CertificateVerificationError).
	TLS bool
	// Err is the underlying cause (for network_error, what the HTTP client returned).
	Err error
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "tokenwarden: " + e.Code
	}
	return fmt.Sprintf("tokenwarden: %s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code (the sentinels above).
func (e *Error) Is(target error) bool {
	var t *Error
	return errors.As(target, &t) && t.Code == e.Code
}

// Retryable is true for errors that may go away if the same call is made again later (the SDK
// has already retried within its bounds): refresh_unavailable, store_unavailable,
// shutting_down, network errors other than TLS's.
func (e *Error) Retryable() bool {
	if e.TLS {
		return false
	}
	switch e.Code {
	case CodeRefreshUnavailable, CodeStoreUnavailable, CodeShuttingDown, CodeNetworkError:
		return true
	}
	return false
}

func invalidRequest(connectionID, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf(format, args...), ConnectionID: connectionID}
}

func unexpected(status int, connectionID string) *Error {
	return &Error{
		Code:         CodeUnexpectedResponse,
		Message:      fmt.Sprintf("Tokenwarden answered HTTP %d with a body this SDK cannot read", status),
		Status:       status,
		ConnectionID: connectionID,
	}
}
