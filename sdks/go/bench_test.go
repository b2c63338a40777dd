package tokenwarden_test

// Benchmarks, against the harness's real server (npm run bench:sdk-go prints them with the
// machine's load): Client.Token once the token is cached, from one goroutine and from all of
// them, and a miss (a client with an empty cache: one round trip to the server).

import (
	"context"
	"testing"

	tokenwarden "github.com/tokenwarden/tokenwarden/sdks/go"
)

func BenchmarkTokenCacheHit(b *testing.B) {
	c := scenarios.Setup(b, "cache_hit")
	client := newClient(b, c.BaseURL, c.APIKey)
	ctx := context.Background()
	if _, err := client.Token(ctx, c.ConnectionID, nil); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.Token(ctx, c.ConnectionID, nil); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
	b.Run("min_ttl", func(b *testing.B) {
		opts := &tokenwarden.TokenOptions{MinTTL: 60e9}
		for b.Loop() {
			if _, err := client.Token(ctx, c.ConnectionID, opts); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := client.Token(ctx, c.ConnectionID, nil); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	})
	if s := c.Stats(b); s.HandOuts != 1 {
		b.Errorf("%d hand-outs during the benchmark, want 1", s.HandOuts)
	}
}

func BenchmarkTokenMiss(b *testing.B) {
	c := scenarios.Setup(b, "cache_hit")
	ctx := context.Background()
	for b.Loop() {
		client := newClient(b, c.BaseURL, c.APIKey)
		if _, err := client.Token(ctx, c.ConnectionID, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/miss")
}
