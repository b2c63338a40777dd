package tokenwarden_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
)

func TestBadOptions(t *testing.T) {
	for _, opts := range []tokenwarden.Options{
		{BaseURL: "http://127.0.0.1:1"},
		{BaseURL: "", APIKey: "tw_secret_key"},
		{BaseURL: "ftp://tokenwarden.internal", APIKey: "tw_secret_key"},
		{BaseURL: "tokenwarden.internal", APIKey: "tw_secret_key"},
		{BaseURL: "http://127.0.0.1:1", APIKey: "tw_secret_key", MaxAttempts: -1},
		{BaseURL: "http://127.0.0.1:1", APIKey: "tw_secret_key", Timeout: -time.Second},
	} {
		_, err := tokenwarden.NewClient(opts)
		if !errors.Is(err, tokenwarden.ErrInvalidRequest) {
			t.Errorf("%+v: %v, want invalid_request", opts, err)
		}
		if opts.APIKey != "" && strings.Contains(err.Error(), opts.APIKey) {
			t.Errorf("the API key is in the error: %v", err)
		}
	}
}

func TestBadArguments(t *testing.T) {
	client := newClient(t, "http://127.0.0.1:1", "the-api-key")
	ctx := context.Background()
	checks := map[string]error{}
	_, checks["empty id"] = client.Token(ctx, "", nil)
	_, checks["long id"] = client.Token(ctx, strings.Repeat("x", 257), nil)
	_, checks["negative MinTTL"] = client.Token(ctx, "c", &tokenwarden.TokenOptions{MinTTL: -time.Second})
	_, checks["MinTTL past a day"] = client.Token(ctx, "c", &tokenwarden.TokenOptions{MinTTL: 25 * time.Hour})
	_, checks["negative version"] = client.ReportRejected(ctx, "c", -1)
	_, checks["report, empty id"] = client.ReportRejected(ctx, "", 1)
	for name, err := range checks {
		var e *tokenwarden.Error
		if !errors.As(err, &e) || e.Code != tokenwarden.CodeInvalidRequest || e.Message == "" {
			t.Errorf("%s: %v, want invalid_request with a message", name, err)
		}
	}
}

func TestErrorsMatchBySentinelAndType(t *testing.T) {
	c := scenarios.Setup(t, "needs_reauth")
	client := newClient(t, c.BaseURL, c.APIKey)
	_, err := client.Token(context.Background(), c.ConnectionID, nil)
	wrapped := fmt.Errorf("syncing the mailbox: %w", err)
	if !errors.Is(wrapped, tokenwarden.ErrNeedsReauth) || errors.Is(wrapped, tokenwarden.ErrNotFound) {
		t.Errorf("errors.Is: %v", wrapped)
	}
	var e *tokenwarden.Error
	if !errors.As(wrapped, &e) || e.Reason != "invalid_grant" || e.Status != http.StatusConflict || e.Retryable() {
		t.Errorf("errors.As: %+v", e)
	}
	if e.ConnectionID != c.ConnectionID || strings.Contains(err.Error(), c.APIKey) {
		t.Errorf("error %q: wrong connection, or the API key in it", err)
	}
}

func TestATokenDoesNotPrintItsSecret(t *testing.T) {
	c := scenarios.Setup(t, "cache_hit")
	client := newClient(t, c.BaseURL, c.APIKey)
	token, err := client.Token(context.Background(), c.ConnectionID, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("got", "token", token)
	for _, shown := range []string{fmt.Sprint(token), fmt.Sprintf("%+v", token), fmt.Sprintf("%#v", token), logged.String()} {
		if strings.Contains(shown, token.AccessToken) {
			t.Errorf("the access token is shown: %s", shown)
		}
		if !strings.Contains(shown, c.ConnectionID) {
			t.Errorf("the connection is not named: %s", shown)
		}
	}
}

// A body that can be read once is not sent twice: the 401 is returned, but the rejection is
// reported, so the next request carries the fresh token.
func TestTransportDoesNotResendAOneShotBody(t *testing.T) {
	c := scenarios.Setup(t, "rejected_then_success")
	client := newClient(t, c.BaseURL, c.APIKey)
	httpClient := client.HTTPClient(c.ConnectionID)
	post := func(body io.Reader) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, c.ResourceURL, body)
		if err != nil {
			t.Fatal(err)
		}
		res, err := httpClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res.StatusCode
	}
	if status := post(strings.NewReader("{}")); status != http.StatusOK {
		t.Fatalf("first request: %d", status)
	}
	c.Reject(t)
	oneShot := io.NopCloser(strings.NewReader("{}")) // no GetBody
	if status := post(oneShot); status != http.StatusUnauthorized {
		t.Errorf("one-shot body after the rejection: %d, want the 401", status)
	}
	if status := post(strings.NewReader("{}")); status != http.StatusOK {
		t.Errorf("next request: %d, want 200 with the fresh token", status)
	}
	if s := c.Stats(t); s.Redemptions != 1 || s.HandOuts != 2 {
		t.Errorf("stats %+v, want 1 redemption and 2 hand-outs", s)
	}
}

func TestCallerCancellationDoesNotCancelTheSharedRequest(t *testing.T) {
	c := scenarios.Setup(t, "expired_refreshes_once")
	client := newClient(t, c.BaseURL, c.APIKey)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := client.Token(ctx, c.ConnectionID, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: %v, want context.Canceled", err)
	}
	token, err := client.Token(context.Background(), c.ConnectionID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if time.Until(token.Expiry) < time.Minute {
		t.Errorf("token expires in %s", time.Until(token.Expiry))
	}
	if s := c.Stats(t); s.Redemptions != 1 || s.HandOuts != 1 {
		t.Errorf("stats %+v, want the cancelled caller's request to be the one request", s)
	}
}
