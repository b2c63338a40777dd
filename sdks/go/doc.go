// Package tokenwarden is the Go SDK workers use to get valid access tokens from Tokenwarden,
// the OAuth2 credential broker. It depends on the standard library and, to send the W3C
// traceparent of the span in a call's context, on OpenTelemetry's API (go.opentelemetry.io/otel:
// no SDK, nothing exported; outside a span nothing is added).
//
//	tw, err := tokenwarden.NewClient(tokenwarden.Options{
//		BaseURL: "https://tokenwarden.internal",
//		APIKey:  os.Getenv("TOKENWARDEN_API_KEY"),
//	})
//
//	// Cached in this process and shared by concurrent callers; refreshed once cluster-wide.
//	token, err := tw.Token(ctx, connectionID, &tokenwarden.TokenOptions{MinTTL: time.Minute})
//
//	// Or let an http.Client add the bearer, and on a 401 report the rejected token and retry once.
//	res, err := tw.HTTPClient(connectionID).Get("https://slack.com/api/conversations.list")
//	if errors.Is(err, tokenwarden.ErrNeedsReauth) {
//		askOwnerToReconnect(connectionID)
//	}
//
// Errors are [*Error] values with a stable Code (the HTTP API's, the same strings as the
// TypeScript and Python SDKs); match them with [errors.Is] on the sentinels or [errors.As].
package tokenwarden
