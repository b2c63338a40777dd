package tokenwarden

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	maxMinTTL           = 24 * time.Hour
	maxCachedConnection = 10_000
	maxConnectionIDLen  = 256
)

// Options configure a [Client]. BaseURL and APIKey are required; the zero value of every other
// field means its default.
type Options struct {
	// BaseURL is where the Tokenwarden API is, e.g. https://tokenwarden.internal.
	BaseURL string
	// APIKey is this service client's API key, sent as Authorization: Bearer.
	APIKey string
	// HTTPClient sends the requests to the Tokenwarden API (not the ones a [Transport] sends to
	// resource servers). Default: a client on http.DefaultTransport.
	HTTPClient *http.Client
	// TLSConfig is the TLS of the requests to the API (not a [Transport]'s) when HTTPClient is
	// nil: RootCAs for a server whose certificate a private CA issued ([LoadCAFile]),
	// Certificates for one that requires a client certificate ([LoadKeyPair]). It is cloned.
	// Default: the system's CAs, no client certificate. With HTTPClient, set it there instead.
	TLSConfig *tls.Config
	// ExpirySkew: a cached token is not handed out once it has less than this left (capped at half
	// of what it had when it arrived, so that short-lived tokens are still cached). Default 30 s;
	// negative: no skew.
	ExpirySkew time.Duration
	// Timeout bounds each HTTP request to the API. Default 30 s (the server may wait up to 20 s
	// for a refresh).
	Timeout time.Duration
	// MaxAttempts per call, the first included, for refresh_unavailable, 429/502/503/504 and
	// network errors. Default 4; 1: no retry.
	MaxAttempts int
	// MaxElapsed: a retry is not started if it could not begin within this long of the call's
	// start; a Retry-After beyond it is returned to the caller at once. Default 30 s.
	MaxElapsed time.Duration
	// OnRetry is called before each retry, e.g. for metrics. Its error carries no secret.
	OnRetry func(RetryEvent)
}

// RetryEvent describes a failed attempt that the client is about to retry.
type RetryEvent struct {
	Attempt int           // the attempt that failed, 1-based
	Delay   time.Duration // how long the client waits before the next one
	Err     error
}

// TokenOptions are per call; nil means none.
type TokenOptions struct {
	// MinTTL is how long the token must stay valid at least; the server refreshes it first if
	// needed (the API's min_ttl). At most 24 h.
	MinTTL time.Duration
}

// Client gets access tokens from Tokenwarden for workers. Keep one per process and share it: its
// cache and single-flight are what spare the server a request per call. Safe for concurrent use.
type Client struct {
	api   api
	skew  time.Duration
	cache cache
}

// NewClient checks the options and returns a client; it sends nothing yet.
func NewClient(opts Options) (*Client, error) {
	if opts.APIKey == "" {
		return nil, invalidRequest("", "APIKey must be a non-empty string")
	}
	base, err := url.Parse(opts.BaseURL)
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, invalidRequest("", "BaseURL must be an absolute http(s) URL")
	}
	if opts.Timeout < 0 || opts.MaxAttempts < 0 || opts.MaxElapsed < 0 {
		return nil, invalidRequest("", "Timeout, MaxAttempts and MaxElapsed must not be negative")
	}
	httpClient := opts.HTTPClient
	switch {
	case httpClient != nil && opts.TLSConfig != nil:
		return nil, invalidRequest("", "TLSConfig sets up the HTTP client made here; with HTTPClient, set its TLS there")
	case opts.TLSConfig != nil:
		httpClient = httpClientWithTLS(opts.TLSConfig)
	case httpClient == nil:
		httpClient = &http.Client{}
	}
	c := &Client{
		api: api{
			baseURL:     strings.TrimRight(base.String(), "/"),
			origin:      base.Scheme + "://" + base.Host,
			apiKey:      opts.APIKey,
			http:        httpClient,
			timeout:     orDefault(opts.Timeout, 30*time.Second),
			maxAttempts: orDefault(opts.MaxAttempts, 4),
			maxElapsed:  orDefault(opts.MaxElapsed, 30*time.Second),
			onRetry:     opts.OnRetry,
		},
		skew:  max(0, orDefault(opts.ExpirySkew, 30*time.Second)),
		cache: cache{limit: maxCachedConnection},
	}
	return c, nil
}

// Token returns a valid access token for the connection. It is served from this process's cache
// while it has more than the skew (and MinTTL) left; otherwise from one request to the API,
// shared by every caller that asks meanwhile.
//
// The shared request is not cancelled when ctx is (other callers may be waiting for it; its
// answer is cached): ctx only bounds how long this caller waits, and its error is returned as it
// is. Every other error is an [*Error]: needs_reauth, refresh_unavailable (after retrying within
// the bounds), not_found, forbidden, unauthorized, network_error, ...
func (c *Client) Token(ctx context.Context, connectionID string, opts *TokenOptions) (*Token, error) {
	var minTTL time.Duration
	if opts != nil {
		minTTL = opts.MinTTL
	}
	// The hit path: one map lookup, one atomic load, one clock read; no allocation.
	if s := c.cache.load(connectionID); s != nil {
		if token := s.usable(time.Now(), max(0, minTTL)); token != nil && minTTL >= 0 {
			return token, nil
		}
	}
	return c.obtain(ctx, connectionID, minTTL)
}

// ReportRejected tells Tokenwarden that a resource server refused the token of this version
// (HTTP 401) and returns a fresh one. It is refreshed only if version is still current, so
// however many callers report the same version, in however many processes, it is refreshed
// once; in this process they share one request.
func (c *Client) ReportRejected(ctx context.Context, connectionID string, version int64) (*Token, error) {
	if err := checkID(connectionID); err != nil {
		return nil, err
	}
	if version < 0 {
		return nil, invalidRequest(connectionID, "version must be a non-negative integer")
	}
	s := c.cache.slot(connectionID)
	s.mu.Lock()
	s.rejectLocked(version)
	if newer := s.usable(time.Now(), 0); newer != nil {
		s.mu.Unlock()
		return newer, nil
	}
	if s.rejecting != nil && s.rejectingVersion >= version {
		r := s.rejecting
		s.mu.Unlock()
		return r.wait(ctx)
	}
	r := &call{done: make(chan struct{})}
	s.rejecting, s.rejectingVersion = r, version
	s.mu.Unlock()
	go c.run(ctx, s, r, connectionID, "/token/rejected", map[string]int64{"version": version})
	return r.wait(ctx)
}

func (c *Client) obtain(ctx context.Context, connectionID string, minTTL time.Duration) (*Token, error) {
	if err := checkID(connectionID); err != nil {
		return nil, err
	}
	if minTTL < 0 || minTTL > maxMinTTL {
		return nil, invalidRequest(connectionID, "MinTTL must be from 0 to %s", maxMinTTL)
	}
	s := c.cache.slot(connectionID)
	s.mu.Lock()
	if r := s.rejecting; r != nil {
		// The token being replaced was refused: wait for its successor instead of asking for the
		// current one, which the server may still hand out.
		s.mu.Unlock()
		fresh, err := r.wait(ctx)
		if err != nil {
			return nil, err
		}
		if time.Now().Before(fresh.Expiry.Add(-minTTL)) {
			return fresh, nil
		}
		s.mu.Lock()
	}
	if token := s.usable(time.Now(), minTTL); token != nil {
		s.mu.Unlock()
		return token, nil
	}
	if f := s.flight; f != nil && s.flightMinTTL >= minTTL {
		s.mu.Unlock()
		return f.wait(ctx)
	}
	f := &call{done: make(chan struct{})}
	s.flight, s.flightMinTTL = f, minTTL
	s.mu.Unlock()
	body := map[string]int64{}
	if minTTL > 0 {
		body["min_ttl"] = int64((minTTL + time.Second - 1) / time.Second)
	}
	go c.run(ctx, s, f, connectionID, "/token", body)
	return f.wait(ctx)
}

// run sends one token request for everyone waiting on call, caches its token and wakes them.
// It runs on its own goroutine, detached from the first caller's cancellation (its values stay),
// and is bounded by the client's timeout and retry limits.
func (c *Client) run(ctx context.Context, s *slot, r *call, connectionID, action string, body any) {
	var answer tokenBody
	path := "/v1/connections/" + url.PathEscape(connectionID) + action
	err := c.api.request(context.WithoutCancel(ctx), http.MethodPost, path, body, connectionID, &answer)
	var token *Token
	if err == nil {
		token, err = answer.token(connectionID)
	}
	if err == nil {
		s.store(token, time.Now(), c.skew)
	}
	s.mu.Lock()
	if s.flight == r {
		s.flight = nil
	}
	if s.rejecting == r {
		s.rejecting = nil
	}
	r.token, r.err = token, err
	s.mu.Unlock()
	close(r.done)
}

func checkID(connectionID string) error {
	if connectionID == "" || len(connectionID) > maxConnectionIDLen {
		return invalidRequest("", "connectionID must be a non-empty string of at most %d bytes", maxConnectionIDLen)
	}
	return nil
}

func orDefault[T comparable](value, fallback T) T {
	var zero T
	if value == zero {
		return fallback
	}
	return value
}
