package tokenwarden

import (
	"fmt"
	"log/slog"
	"time"
)

// Token is an access token as the API hands it out. One Token is shared by every cache hit:
// do not modify it. Its String, GoString and LogValue leave the access token out, so logging a
// Token does not leak it.
type Token struct {
	ConnectionID string
	AccessToken  string
	TokenType    string
	// Expiry is when the access token expires, by the server's clock.
	Expiry time.Time
	// Version is what to report on a 401 ([Client.ReportRejected]) so that the token is
	// refreshed once, not once per caller.
	Version int64
}

func (t *Token) String() string {
	return fmt.Sprintf("tokenwarden.Token{ConnectionID:%q Version:%d Expiry:%s AccessToken:[redacted]}",
		t.ConnectionID, t.Version, t.Expiry.Format(time.RFC3339))
}

func (t *Token) GoString() string { return t.String() }

func (t *Token) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("connection_id", t.ConnectionID),
		slog.Int64("version", t.Version),
		slog.Time("expiry", t.Expiry),
	)
}

// tokenBody is the API's answer to POST /v1/connections/{id}/token (and /token/rejected).
type tokenBody struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresAt   string `json:"expires_at"`
	Version     *int64 `json:"version"`
}

func (b *tokenBody) token(connectionID string) (*Token, error) {
	expiry, err := time.Parse(time.RFC3339Nano, b.ExpiresAt)
	if b.AccessToken == "" || err != nil || b.Version == nil || *b.Version < 0 {
		return nil, unexpected(200, connectionID)
	}
	tokenType := b.TokenType
	if tokenType == "" {
		tokenType = "Bearer"
	}
	return &Token{
		ConnectionID: connectionID,
		AccessToken:  b.AccessToken,
		TokenType:    tokenType,
		Expiry:       expiry,
		Version:      *b.Version,
	}, nil
}
