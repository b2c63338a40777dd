package tokenwarden

// What this process knows about each connection's token: the cached token, the requests in
// flight for it, and the newest version a resource server has refused.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

type slot struct {
	// cached is read without the lock: a cache hit is one atomic load and one clock read.
	cached atomic.Pointer[cachedToken]

	mu sync.Mutex
	// flight is a /token request in flight and the min TTL it asked for.
	flight       *call
	flightMinTTL time.Duration
	// rejecting is a /token/rejected request in flight, for rejectingVersion.
	rejecting        *call
	rejectingVersion int64
	// rejectedVersion is the newest version refused by a resource server here: never cached again.
	rejectedVersion int64
}

type cachedToken struct {
	token *Token
	// usableUntil is when the token stops being handed out: its expiry minus the skew.
	usableUntil time.Time
}

// call is one API request that several callers wait for.
type call struct {
	done  chan struct{}
	token *Token
	err   error
}

func newSlot() *slot { return &slot{rejectedVersion: -1} }

// usable is the cached token if it is still handed out and has at least minTTL left.
func (s *slot) usable(now time.Time, minTTL time.Duration) *Token {
	c := s.cached.Load()
	if c == nil || !now.Before(c.usableUntil) || !now.Before(c.token.Expiry.Add(-minTTL)) {
		return nil
	}
	return c.token
}

// store caches a token the API handed out, unless a newer one is cached or it was refused here.
func (s *slot) store(token *Token, now time.Time, skew time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if token.Version <= s.rejectedVersion {
		return
	}
	if c := s.cached.Load(); c != nil && c.token.Version > token.Version {
		return
	}
	// A token that arrives with less than twice the skew left is kept for half its remaining
	// life instead of not at all, so short-lived tokens do not send every call to the server.
	s.cached.Store(&cachedToken{token: token, usableUntil: token.Expiry.Add(-min(skew, token.Expiry.Sub(now)/2))})
}

// rejectLocked forgets the token if it is version or older (a resource server refused it).
func (s *slot) rejectLocked(version int64) {
	s.rejectedVersion = max(s.rejectedVersion, version)
	if c := s.cached.Load(); c != nil && c.token.Version <= version {
		s.cached.Store(nil)
	}
}

func (s *slot) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.flight == nil && s.rejecting == nil
}

// wait returns the call's outcome, or the context's error if the caller stops waiting first.
func (c *call) wait(ctx context.Context) (*Token, error) {
	select {
	case <-c.done:
		return c.token, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// cache holds slots by connection id, at most limit of them.
type cache struct {
	slots sync.Map // connection id → *slot
	mu    sync.Mutex
	count int
	limit int
}

func (c *cache) load(connectionID string) *slot {
	if s, ok := c.slots.Load(connectionID); ok {
		return s.(*slot)
	}
	return nil
}

func (c *cache) slot(connectionID string) *slot {
	if s := c.load(connectionID); s != nil {
		return s
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if s := c.load(connectionID); s != nil {
		return s
	}
	if c.count >= c.limit {
		c.evictLocked()
	}
	s := newSlot()
	c.slots.Store(connectionID, s)
	c.count++
	return s
}

// evictLocked drops one idle slot. A slot with a request in flight stays, so that its callers'
// single-flight is not split in two.
func (c *cache) evictLocked() {
	c.slots.Range(func(id, s any) bool {
		if s.(*slot).idle() {
			c.slots.Delete(id)
			c.count--
			return false
		}
		return true
	})
}
