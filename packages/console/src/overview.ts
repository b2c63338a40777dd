/// <reference lib="dom" />
// The overview: connections by provider and status, refreshes and failures per minute (from the
// audit log), this server's circuit breakers, the scheduler's lag, what ends within a day.
import type { Overview } from './api.ts';
import { lineChart, type Series } from './chart.ts';
import { element, h, report, row, time } from './dom.ts';
import { api } from './http.ts';

const STATUSES = ['active', 'needs_reauth', 'revoked'];

export async function showOverview(): Promise<void> {
  try {
    const overview = await api<Overview>('GET', '/v1/console/overview');
    report('overview-error');
    render(overview);
  } catch (problem) {
    report('overview-error', problem);
  }
}

function render(overview: Overview): void {
  const providers = [...new Set(overview.counts.map((count) => count.provider))];
  element('overview-counts').replaceChildren(
    ...providers.map((provider) =>
      row([
        provider,
        ...STATUSES.map((status) =>
          String(
            overview.counts.find((c) => c.provider === provider && c.status === status)?.count ?? 0,
          ),
        ),
      ]),
    ),
  );
  if (providers.length === 0)
    element('overview-counts').replaceChildren(row(['No connections yet.']));

  const { overdue, lag_ms } = overview.scheduler;
  element('overview-scheduler').textContent =
    overdue === 0
      ? 'No refresh is overdue.'
      : `${overdue} refresh${overdue === 1 ? ' is' : 'es are'} overdue; the oldest by ${seconds(lag_ms)}.`;
  element('overview-breakers').replaceChildren(
    ...(overview.breakers.length === 0
      ? [h('li', {}, 'No provider has been called yet.')]
      : overview.breakers.map((breaker) =>
          h(
            'li',
            { className: `breaker-${breaker.state}` },
            `${breaker.provider}: ${breaker.state.replace('_', '-')}`,
            breaker.state === 'open' ? ` for ${seconds(breaker.refusing_for_ms)} more` : '',
            breaker.consecutive_failures > 0
              ? `, ${breaker.consecutive_failures} failures in a row`
              : '',
          ),
        )),
  );

  const { refreshes } = overview;
  const start = Date.parse(refreshes.since);
  const step = refreshes.bucket_seconds * 1000;
  const minutes = Array.from(
    { length: Math.max(1, Math.floor((Date.parse(overview.generated_at) - start) / step) + 1) },
    (_, i) => start + i * step,
  );
  const perProvider = (ok: boolean): Series[] => {
    const byProvider = new Map<string, number[]>();
    for (const bucket of refreshes.buckets) {
      if ((bucket.outcome === 'ok') !== ok) continue;
      const values = byProvider.get(bucket.provider) ?? minutes.map(() => 0);
      const index = Math.round((Date.parse(bucket.at) - start) / step);
      if (index >= 0 && index < values.length) values[index]! += bucket.count;
      byProvider.set(bucket.provider, values);
    }
    return [...byProvider].map(([name, values]) => ({ name, values }));
  };
  const refreshed = perProvider(true);
  const failed = perProvider(false);
  element('refresh-chart').replaceChildren(lineChart(minutes, refreshed, 'refresh-chart-title'));
  element('failure-chart').replaceChildren(lineChart(minutes, failed, 'failure-chart-title'));
  const total = (series: Series[], name: string) =>
    String(series.find((s) => s.name === name)?.values.reduce((a, b) => a + b, 0) ?? 0);
  const named = [...new Set([...refreshed, ...failed].map((s) => s.name))].sort();
  element('overview-refresh-totals').replaceChildren(
    ...named.map((name) => row([name, total(refreshed, name), total(failed, name)])),
  );

  element('overview-ending').replaceChildren(
    ...(overview.ending_soon.length === 0
      ? [h('li', {}, 'Nothing ends within 24 hours.')]
      : overview.ending_soon.map((connection) =>
          h(
            'li',
            {},
            h('a', { href: `#connection=${encodeURIComponent(connection.id)}` }, connection.owner),
            ` (${connection.provider}): `,
            connection.has_refresh_token ? 'refresh token ends ' : 'access token ends ',
            time(connection.refresh_expires_at ?? connection.access_expires_at),
          ),
        )),
  );
}

function seconds(ms: number): string {
  return ms < 120_000 ? `${Math.round(ms / 1000)} s` : `${Math.round(ms / 60_000)} min`;
}
