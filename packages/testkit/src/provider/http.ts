// Small node:http helpers for the test provider: bounded body reading, JSON answers, and
// client authentication as RFC 6749 §2.3.1 describes it.
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';

export const MAX_BODY_BYTES = 64 * 1024;

/** Reads the whole body; null when it exceeds the limit (the rest is drained, then dropped). */
export async function readBody(
  req: IncomingMessage,
  limit = MAX_BODY_BYTES,
): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = false;
  // Draining instead of destroying lets the client finish sending and read our 413.
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) tooLarge = true;
    if (!tooLarge) chunks.push(chunk);
  }
  return tooLarge ? null : Buffer.concat(chunks).toString('utf8');
}

export interface Answer {
  status: number;
  body: unknown;
  headers?: OutgoingHttpHeaders;
  /** Default 'json'; 'form' sends the body's members form-encoded (GitHub). */
  encoding?: 'json' | 'form';
}

export function send(res: ServerResponse, answer: Answer): void {
  if (answer.encoding === 'form') {
    const form = new URLSearchParams();
    for (const [key, value] of Object.entries(answer.body as Record<string, unknown>)) {
      form.set(key, String(value));
    }
    return sendRaw(res, answer.status, form.toString(), {
      'Content-Type': 'application/x-www-form-urlencoded',
      ...answer.headers,
    });
  }
  sendRaw(res, answer.status, JSON.stringify(answer.body), answer.headers);
}

/**
 * The request body as form parameters: form-encoded, or (for providers that take JSON bodies)
 * a JSON object of strings. Null when the encoding is not one `accepted`.
 */
export function requestParams(
  contentType: string | undefined,
  body: string,
  accepted: 'form' | 'json' | 'any',
): URLSearchParams | null {
  const isForm = /^application\/x-www-form-urlencoded\b/i.test(contentType ?? '');
  const isJson = /^application\/json\b/i.test(contentType ?? '');
  if (isForm && accepted !== 'json') return new URLSearchParams(body);
  if (isJson && accepted !== 'form') {
    try {
      const parsed: unknown = JSON.parse(body);
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(parsed)) {
        if (typeof value !== 'string') return null;
        params.set(key, value);
      }
      return params;
    } catch {
      return null;
    }
  }
  return null;
}

export function sendRaw(
  res: ServerResponse,
  status: number,
  body: string,
  headers: OutgoingHttpHeaders = {},
): void {
  // The client may have given up (aborted a slow answer); writing then would only throw.
  if (res.destroyed || res.headersSent) return;
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    // RFC 6749 §5.1: token responses must not be cached.
    'Cache-Control': 'no-store',
    Pragma: 'no-cache',
    ...headers,
  });
  res.end(body);
}

export function oauthError(status: number, error: string, description?: string): Answer {
  const body = description === undefined ? { error } : { error, error_description: description };
  return { status, body };
}

const INVALID_CLIENT: Answer = {
  status: 401,
  body: { error: 'invalid_client' },
  headers: { 'WWW-Authenticate': 'Basic realm="tokenwarden-test-provider"' },
};

/** application/x-www-form-urlencoded decoding of one Basic credential half. */
function formDecode(value: string): string | null {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return null;
  }
}

/**
 * Authenticates the client with client_secret_basic or client_secret_post. Returns an error
 * answer, or null when the client is who it claims to be.
 */
export function authenticateClient(
  authorization: string | undefined,
  form: URLSearchParams,
  expected: { clientId: string; clientSecret: string },
): Answer | null {
  let id: string | null;
  let secret: string | null;
  const basic = /^Basic\s+(\S+)\s*$/i.exec(authorization ?? '');
  if (basic?.[1] !== undefined) {
    // RFC 6749 §2.3: a client must not use more than one authentication method per request.
    if (form.has('client_secret')) {
      return oauthError(400, 'invalid_request', 'more than one client authentication method');
    }
    const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return INVALID_CLIENT;
    // RFC 6749 §2.3.1: id and secret are form-urlencoded before they are put in the header.
    id = formDecode(decoded.slice(0, colon));
    secret = formDecode(decoded.slice(colon + 1));
  } else {
    id = form.get('client_id');
    secret = form.get('client_secret');
  }
  if (id !== expected.clientId || secret !== expected.clientSecret) return INVALID_CLIENT;
  return null;
}
