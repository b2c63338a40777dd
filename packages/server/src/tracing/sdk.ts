/**
 * The OpenTelemetry SDK for `tokenwarden serve`, configured the standard way, by the `OTEL_*`
 * environment variables (`OTEL_TRACES_EXPORTER=otlp|console`, `OTEL_EXPORTER_OTLP_ENDPOINT`,
 * `OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, ...). Off unless one of them asks for traces, and
 * then free: the SDK is imported only when tracing is on, and core's spans are the API's no-op.
 */

import type { NodeSDKConfiguration } from '@opentelemetry/sdk-node';

/** Whether the environment asks for traces (and does not disable the SDK). */
export function tracingConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.OTEL_SDK_DISABLED === 'true') return false;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? '').split(',').map((name) => name.trim());
  if (exporters.some((name) => name !== '' && name !== 'none')) return true;
  return (
    !exporters.includes('none') &&
    Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
  );
}

export interface Tracing {
  /** Exports what is still buffered, then stops. */
  shutdown(): Promise<void>;
}

/**
 * Starts the Node SDK for this process: traces only (metrics stay Prometheus at /metrics, logs
 * stay pino's), exported as the `OTEL_*` variables say, or to `spanProcessors` when given (tests).
 * Call before `buildServer({ tracing: true })`.
 */
export async function startTracing(
  options: Pick<Partial<NodeSDKConfiguration>, 'spanProcessors'> = {},
): Promise<Tracing> {
  const { NodeSDK } = await import('@opentelemetry/sdk-node');
  const sdk = new NodeSDK({
    ...(process.env.OTEL_SERVICE_NAME ? {} : { serviceName: 'tokenwarden' }),
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [],
    ...(options.spanProcessors ? { spanProcessors: options.spanProcessors } : {}),
  });
  sdk.start();
  return { shutdown: () => sdk.shutdown() };
}
