/**
 * Spans for tests, recorded by the OpenTelemetry SDK's own `InMemorySpanExporter`: in this
 * process (`memorySpans`, handed to the SDK a server starts), or in a worker process
 * (`traceThisProcess`), whose spans travel back to the test as plain JSON (`RecordedSpan`).
 */

import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';

/** A finished span as JSON: what a test asserts on, from whichever process it came. */
export interface RecordedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  /** Epoch milliseconds, and how long it lasted. */
  startMs: number;
  durationMs: number;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
  status: { code: number; message?: string | undefined };
}

export interface MemorySpans {
  /** For the SDK: `spanProcessors: [processor]`. Exports each span as it ends. */
  processor: SpanProcessor;
  /** Every span finished so far. */
  spans(): RecordedSpan[];
  reset(): void;
}

export function memorySpans(): MemorySpans {
  const exporter = new InMemorySpanExporter();
  return {
    processor: new SimpleSpanProcessor({ exporter }),
    spans: () => exporter.getFinishedSpans().map(recorded),
    reset: () => exporter.reset(),
  };
}

/**
 * Registers a tracer provider for this whole process (a worker a test spawned), recording in
 * memory. `spans()` then gives what to report back to the test.
 */
export function traceThisProcess(): MemorySpans {
  const memory = memorySpans();
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [memory.processor] }));
  return memory;
}

function recorded(span: ReadableSpan): RecordedSpan {
  return {
    name: span.name,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    startMs: span.startTime[0] * 1000 + span.startTime[1] / 1e6,
    durationMs: span.duration[0] * 1000 + span.duration[1] / 1e6,
    links: span.links.map((l) => ({ traceId: l.context.traceId, spanId: l.context.spanId })),
    attributes: { ...span.attributes },
    events: span.events.map((e) => ({ name: e.name, attributes: { ...e.attributes } })),
    status: { code: span.status.code, message: span.status.message },
  };
}

/** The spans grouped by trace, in the order their traces first appear. */
export function byTrace(spans: readonly RecordedSpan[]): RecordedSpan[][] {
  const traces = new Map<string, RecordedSpan[]>();
  for (const span of spans) {
    const list = traces.get(span.traceId) ?? [];
    list.push(span);
    traces.set(span.traceId, list);
  }
  return [...traces.values()];
}

/** Whether `ancestor` is `span` or one of its ancestors in `spans`. */
export function descendsFrom(
  spans: readonly RecordedSpan[],
  span: RecordedSpan,
  ancestor: { spanId: string },
): boolean {
  const byId = new Map(spans.map((s) => [s.spanId, s]));
  for (let at: RecordedSpan | undefined = span; at; at = byId.get(at.parentSpanId ?? '')) {
    if (at.spanId === ancestor.spanId || at.parentSpanId === ancestor.spanId) return true;
  }
  return false;
}
