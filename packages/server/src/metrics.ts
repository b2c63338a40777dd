import type { BreakerReport, BrokerEvent, ProtocolMeasure } from '@tokenwarden/core';
import { performance } from 'node:perf_hooks';
import {
  collectDefaultMetrics,
  Counter,
  Gauge,
  Histogram,
  Registry,
  type OpenMetricsContentType,
  type PrometheusContentType,
} from 'prom-client';
import { traceIdsMixin } from './tracing/http.ts';

/**
 * Prometheus metrics, on a registry of this server's own (two servers in one process, as in
 * tests, do not share counters). Labels are codes and names, never a token, key or owner.
 */
export class ServerMetrics {
  /**
   * Prometheus text; OpenMetrics when tracing, whose exemplars (`trace_id`, `span_id`) point
   * from the protocol's histograms at the trace of an observation.
   */
  readonly registry = new Registry<PrometheusContentType | OpenMetricsContentType>();
  readonly #exemplars: boolean;
  readonly #protocol: Record<ProtocolMeasure['kind'], Histogram<'provider'>>;

  /**
   * Hand-outs counted in plain numbers (`countHandout`) and copied into `handouts` when metrics
   * are read: prom-client's `inc(labels)` validates and hashes the labels on every call, on the
   * path of every hand-out.
   */
  readonly #handoutCounts = new Map<string, { route: string; outcome: string; count: number }>();

  readonly handouts = new Counter({
    name: 'tokenwarden_token_handouts_total',
    help: 'Access tokens asked for over the API, by route (token, rejected) and outcome (ok or an error code).',
    labelNames: ['route', 'outcome'] as const,
    registers: [this.registry],
    collect: () => {
      for (const entry of this.#handoutCounts.values()) {
        if (entry.count === 0) continue;
        this.handouts.inc({ route: entry.route, outcome: entry.outcome }, entry.count);
        entry.count = 0;
      }
    },
  });

  readonly refreshes = new Counter({
    name: 'tokenwarden_refreshes_total',
    help: 'Refresh attempts this process led, by provider and outcome (refreshed, recovered, needs_reauth, failed).',
    labelNames: ['provider', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly refreshFailures = new Counter({
    name: 'tokenwarden_refresh_failures_total',
    help: 'Failed refresh attempts without a verdict on the refresh token, by provider and error code.',
    labelNames: ['provider', 'error'] as const,
    registers: [this.registry],
  });

  readonly waits = new Counter({
    name: 'tokenwarden_refresh_waits_total',
    help: "Times a caller in this process waited for another caller's (or process's) refresh instead of redeeming.",
    registers: [this.registry],
  });

  readonly leaseConflicts = new Counter({
    name: 'tokenwarden_lease_conflicts_total',
    help: 'Times a caller in this process tried to take a refresh lease and another had won it.',
    registers: [this.registry],
  });

  readonly requestDuration = new Histogram({
    name: 'tokenwarden_http_request_duration_seconds',
    help: 'HTTP request duration by route pattern, method and status code.',
    labelNames: ['route', 'method', 'status'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
    registers: [this.registry],
  });

  readonly providerLatency = new Histogram({
    name: 'tokenwarden_provider_request_duration_seconds',
    help: "Token-endpoint requests this process sent, until the response headers, by the endpoint's host and the HTTP status (or error).",
    labelNames: ['host', 'status'] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly proxyDuration = new Histogram({
    name: 'tokenwarden_proxy_request_duration_seconds',
    help: "Proxied calls, from arrival until the answer was sent, by provider and the upstream's status (or the error code).",
    labelNames: ['provider', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30, 120],
    registers: [this.registry],
  });

  readonly proxyBytes = new Counter({
    name: 'tokenwarden_proxy_bytes_total',
    help: 'Body bytes proxied, by provider and direction (upstream: request bodies, downstream: answers).',
    labelNames: ['provider', 'direction'] as const,
    registers: [this.registry],
  });

  readonly proxyRetries = new Counter({
    name: 'tokenwarden_proxy_token_rejections_total',
    help: 'Proxied calls whose token the upstream refused, by provider and whether the call was sent again with a fresh token (a streamed body cannot be).',
    labelNames: ['provider', 'retried'] as const,
    registers: [this.registry],
  });

  readonly auditDropped = new Counter({
    name: 'tokenwarden_audit_dropped_total',
    help: 'Audit events dropped because the buffer was full while the store was unreachable.',
    registers: [this.registry],
  });

  constructor(options: {
    auditPending: () => number;
    processMetrics?: boolean;
    /** Each provider's circuit breaker (`CredentialBroker.breakerStates`). */
    breakerStates?: () => BreakerReport[];
    /** Tracing is on: OpenMetrics with exemplars. */
    exemplars?: boolean;
  }) {
    this.#exemplars = options.exemplars ?? false;
    if (this.#exemplars) this.registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({
        name,
        help,
        labelNames: ['provider'] as const,
        buckets,
        enableExemplars: this.#exemplars,
        registers: [this.registry],
      });
    this.#protocol = {
      lease_wait: histogram(
        'tokenwarden_lease_wait_seconds',
        "How long a caller waited behind another's refresh lease (another caller's or replica's), by provider.",
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20],
      ),
      expiry_to_refresh: histogram(
        'tokenwarden_expiry_to_refresh_seconds',
        'From an access token expiring to the commit of its successor, by provider: negative when refreshed before it expired (proactively), positive when callers met an expired token.',
        [-3600, -600, -60, -10, 0, 1, 5, 30, 60, 300, 3600],
      ),
      scheduler_lag: histogram(
        'tokenwarden_scheduler_lag_seconds',
        "From a credential's planned refresh time to a scheduler claiming it, by provider.",
        [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      ),
    };
    const breakers = options.breakerStates;
    new Gauge({
      name: 'tokenwarden_circuit_breaker_open',
      help: "1 while a provider's circuit breaker in this process refuses requests (after failures or a Retry-After), else 0.",
      labelNames: ['provider'] as const,
      registers: [this.registry],
      collect() {
        for (const { provider, state } of breakers?.() ?? [])
          this.set({ provider }, state === 'open' ? 1 : 0);
      },
    });
    new Gauge({
      name: 'tokenwarden_audit_pending',
      help: 'Audit events buffered and not yet written.',
      registers: [this.registry],
      collect() {
        this.set(options.auditPending());
      },
    });
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'tokenwarden_' });
    }
  }

  /** Wraps the broker's `fetch` to time every token-endpoint request. */
  instrumentFetch(inner: typeof fetch): typeof fetch {
    return async (input, init) => {
      const started = performance.now();
      let status = 'error';
      try {
        const response = await inner(input, init);
        status = String(response.status);
        return response;
      } finally {
        this.providerLatency.observe(
          { host: hostOf(input), status },
          (performance.now() - started) / 1000,
        );
      }
    };
  }

  /**
   * One answered request. The histogram's child for its labels is kept by a key made of them:
   * `observe(labels, value)` validates and hashes the labels object on every call.
   */
  observeRequest(route: string, method: string, status: number, seconds: number): void {
    const key = `${method} ${status} ${route}`;
    let child = this.#requestChildren.get(key);
    if (child === undefined) {
      // Route patterns and status codes are few; the bound is for a misbehaving client's 404s.
      if (this.#requestChildren.size >= 1_000) this.#requestChildren.clear();
      child = this.requestDuration.labels({ route, method, status: String(status) });
      this.#requestChildren.set(key, child);
    }
    child.observe(seconds);
  }

  readonly #requestChildren = new Map<string, { observe(value: number): void }>();

  /** One hand-out over the API: `route` is token or rejected, `outcome` ok or an error code. */
  countHandout(route: string, outcome: string): void {
    const key = `${route} ${outcome}`;
    const entry = this.#handoutCounts.get(key);
    if (entry) entry.count += 1;
    else this.#handoutCounts.set(key, { route, outcome, count: 1 });
  }

  /** One proxied call, answered (`status`: the upstream's) or refused (an error code). */
  countProxied(
    provider: string,
    status: string,
    seconds: number,
    bytes: { upstream: number; downstream: number },
  ): void {
    this.proxyDuration.observe({ provider, status }, seconds);
    if (bytes.upstream > 0)
      this.proxyBytes.inc({ provider, direction: 'upstream' }, bytes.upstream);
    if (bytes.downstream > 0) {
      this.proxyBytes.inc({ provider, direction: 'downstream' }, bytes.downstream);
    }
  }

  /** The broker's `onMeasure`: the protocol's durations, with the trace they belong to. */
  onMeasure({ kind, provider, ms }: ProtocolMeasure): void {
    const histogram = this.#protocol[kind];
    const exemplar = this.#exemplars ? traceIdsMixin() : undefined;
    if (exemplar?.trace_id) {
      histogram.observe({ labels: { provider }, value: ms / 1000, exemplarLabels: exemplar });
    } else histogram.observe({ provider }, ms / 1000);
  }

  /** The broker's `onContention`. */
  onContention(kind: 'waited' | 'lease_conflict'): void {
    if (kind === 'waited') this.waits.inc();
    else this.leaseConflicts.inc();
  }

  /** The broker's `onEvent`: counts refresh outcomes. */
  onBrokerEvent(event: BrokerEvent): void {
    switch (event.type) {
      case 'refreshed':
        this.refreshes.inc({
          provider: event.provider,
          outcome: event.recovered ? 'recovered' : 'refreshed',
        });
        break;
      case 'needs_reauth':
        this.refreshes.inc({ provider: event.provider, outcome: 'needs_reauth' });
        break;
      case 'refresh_failed':
        this.refreshes.inc({ provider: event.provider, outcome: 'failed' });
        this.refreshFailures.inc({ provider: event.provider, error: event.error });
        break;
    }
  }
}

/** Only the host: a token URL's path or query could, with a careless provider, carry a secret. */
function hostOf(input: Parameters<typeof fetch>[0]): string {
  try {
    return new URL(input instanceof Request ? input.url : String(input)).host;
  } catch {
    return 'unknown';
  }
}
