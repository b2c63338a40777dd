package tokenwarden

import (
	"io"
	"net/http"
	"time"
)

// Transport is an [http.RoundTripper] that sends each request with the connection's bearer
// token. On a 401 it reports the token's version ([Client.ReportRejected]) and sends the request
// once more with the fresh token; a second 401 is returned as it is.
//
// A request whose body cannot be read twice (Body set, GetBody nil) is not sent again: the
// rejection is still reported, so the next request gets the fresh token, but the 401 is
// returned. http.NewRequest sets GetBody for *bytes.Buffer, *bytes.Reader and *strings.Reader
// bodies.
type Transport struct {
	Client       *Client
	ConnectionID string
	// MinTTL asks for a token valid at least this long (see [TokenOptions]).
	MinTTL time.Duration
	// Base sends the requests; nil: http.DefaultTransport.
	Base http.RoundTripper
}

// HTTPClient is an *http.Client whose requests carry the connection's bearer token (see
// [Transport]).
func (c *Client) HTTPClient(connectionID string) *http.Client {
	return &http.Client{Transport: &Transport{Client: c, ConnectionID: connectionID}}
}

func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	token, err := t.Client.Token(req.Context(), t.ConnectionID, &TokenOptions{MinTTL: t.MinTTL})
	if err != nil {
		closeBody(req)
		return nil, err
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	res, err := t.base().RoundTrip(withBearer(req, token))
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		return res, err
	}
	fresh, err := t.Client.ReportRejected(req.Context(), t.ConnectionID, token.Version)
	if err != nil {
		discard(res)
		return nil, err
	}
	if !replayable {
		return res, nil
	}
	retry := withBearer(req, fresh)
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			discard(res)
			return nil, err
		}
	}
	discard(res)
	return t.base().RoundTrip(retry)
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return http.DefaultTransport
}

// withBearer is a copy of req with Authorization set: a RoundTripper must not modify its request.
func withBearer(req *http.Request, token *Token) *http.Request {
	out := req.Clone(req.Context())
	out.Header.Set("Authorization", "Bearer "+token.AccessToken)
	return out
}

// discard reads a little of an unused response so that its connection can be reused, and closes it.
func discard(res *http.Response) {
	_, _ = io.CopyN(io.Discard, res.Body, 64<<10)
	res.Body.Close()
}

// closeBody honours the RoundTripper contract: the request body is closed, even on errors.
func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
