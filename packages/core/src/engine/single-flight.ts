import type { SpanContext } from '@opentelemetry/api';
import { activeSpanContext, joinFlight } from '../tracing/spans.ts';

/** Callers asking for the same key while a call is running share its promise (in-process only). */
export class SingleFlight<T> {
  readonly #inFlight = new Map<string, { promise: Promise<T>; span: SpanContext | undefined }>();

  run(key: string, fn: () => Promise<T>): Promise<T> {
    const running = this.#inFlight.get(key);
    // Traced, a caller that joins links to the span of the call it waits for.
    if (running) return joinFlight(running.promise, running.span);
    const promise = fn().finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, { promise, span: activeSpanContext() });
    return promise;
  }

  get size(): number {
    return this.#inFlight.size;
  }
}
