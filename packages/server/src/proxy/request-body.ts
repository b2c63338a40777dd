// The body of a proxied request: held whole when it is small, so that a 401 can be answered by
// sending it again with a fresh token; streamed otherwise, never held whole in memory.
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

export interface ProxyRequestBody {
  /** What undici sends: the held bytes, the stream, or nothing. */
  readonly source: Buffer | Readable | undefined;
  /** The body can be sent a second time (it was held whole, or there is none). */
  readonly replayable: boolean;
  /** Bytes sent upstream so far. */
  readonly sent: () => number;
}

const NO_BODY: ProxyRequestBody = { source: undefined, replayable: true, sent: () => 0 };

/**
 * Reads up to `limit` bytes of `raw`: a body that ends within them is held (replayable), a
 * longer one (or one whose `content-length` says so at once) streams, the bytes read so far
 * first. A request without a body (no `content-length`, no `transfer-encoding`) has none.
 */
export async function readRequestBody(
  raw: IncomingMessage,
  limit: number,
): Promise<ProxyRequestBody> {
  const length = raw.headers['content-length'];
  if (length === undefined && raw.headers['transfer-encoding'] === undefined) return NO_BODY;
  const chunks: Buffer[] = [];
  let held = 0;
  const iterator = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  if (length === undefined || Number(length) <= limit) {
    for (;;) {
      const next = await iterator.next();
      if (next.done) {
        const whole = Buffer.concat(chunks, held);
        return { source: whole, replayable: true, sent: () => whole.length };
      }
      chunks.push(next.value);
      held += next.value.length;
      if (held > limit) break;
    }
  }
  let sent = 0;
  async function* stream(): AsyncGenerator<Buffer> {
    for (const chunk of chunks.splice(0)) {
      sent += chunk.length;
      yield chunk;
    }
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      sent += next.value.length;
      yield next.value;
    }
  }
  return {
    source: Readable.from(stream(), { objectMode: false }),
    replayable: false,
    sent: () => sent,
  };
}
