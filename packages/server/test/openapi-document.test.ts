import { ERROR_CODES } from '@tokenwarden/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startTestServer, type TestServer } from './helpers.ts';

/**
 * What schemathesis found in the OpenAPI document (schemathesis.test.ts runs it): answers the
 * document did not list, a query schema it turned into nonsense parameters. Each is checked here
 * on the document itself, cheaply, for every route, including routes added later.
 */
interface Operation {
  parameters?: { name: string; in: string }[];
  requestBody?: { required?: boolean };
  security?: unknown[];
  responses: Record<
    string,
    { description?: string; content?: Record<string, { schema?: Schema }> }
  >;
}
interface Schema {
  type?: string;
  required?: string[];
  additionalProperties?: boolean;
  properties?: Record<string, { enum?: string[] }>;
}

let s: TestServer;
let operations: [string, Operation][];
const strictWarnings: string[] = [];

beforeAll(async () => {
  // Ajv reports a schema it only half understands on the console, once, at start-up.
  const warn = vi.spyOn(console, 'warn').mockImplementation((...args: unknown[]) => {
    strictWarnings.push(args.map(String).join(' '));
  });
  try {
    s = await startTestServer({
      server: { connect: { callbackUrl: 'http://127.0.0.1:9/v1/connect/callback' } },
    });
    await s.app.ready();
  } finally {
    warn.mockRestore();
  }
  const spec = (await s.call({ method: 'GET', url: '/docs/json' })).json<{
    paths: Record<string, Record<string, Operation>>;
  }>();
  operations = Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]): [string, Operation] => [
      `${method.toUpperCase()} ${path}`,
      op,
    ]),
  );
});
afterAll(async () => {
  await s?.close();
});

const statuses = (op: Operation) => Object.keys(op.responses).map(Number);

describe('the OpenAPI document', () => {
  it('has every route', () => {
    expect(operations.length).toBeGreaterThanOrEqual(24);
  });

  it('lists on every route the errors any route can answer: 400, 500, 503', () => {
    for (const [name, op] of operations) {
      expect(statuses(op), name).toEqual(expect.arrayContaining([400, 500, 503]));
    }
  });

  it('lists 401 and 403 where a key is needed, 404 and 414 with path parameters, 413 with a body', () => {
    for (const [name, op] of operations) {
      const open = Array.isArray(op.security) && op.security.length === 0;
      if (!open) expect(statuses(op), name).toEqual(expect.arrayContaining([401, 403]));
      if ((op.parameters ?? []).some((p) => p.in === 'path')) {
        expect(statuses(op), name).toEqual(expect.arrayContaining([404, 414]));
      }
      if (op.requestBody !== undefined) expect(statuses(op), name).toContain(413);
    }
    // GET /v1/clients had only 200, 401 and 403; a store outage answered it 503.
    const [, clients] = operations.find(([name]) => name === 'GET /v1/clients')!;
    expect(statuses(clients).sort()).toEqual([200, 400, 401, 403, 500, 503]);
  });

  it('describes every error as {error, message}, with the codes the API answers', () => {
    const apiCodes = Object.keys(ERROR_CODES).filter((code) => code !== 'invalid_input');
    for (const [name, op] of operations) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (Number(status) < 400) continue;
        const schema = response.content?.['application/json']?.schema;
        expect(schema?.required, `${name} ${status}`).toEqual(['error', 'message']);
        expect(schema?.additionalProperties, `${name} ${status}`).toBe(false);
        expect(schema?.properties?.error?.enum?.sort(), `${name} ${status}`).toEqual(
          [...apiCodes].sort(),
        );
        expect(response.description, `${name} ${status}`).not.toBe('Default Response');
      }
    }
  });

  it('sends errors in that shape only: a 404 has exactly error and message', async () => {
    const response = await s.admin('GET', '/v1/clients/cli_00000000000000000000');
    expect(response.statusCode).toBe(404);
    expect(Object.keys(response.json<object>()).sort()).toEqual(['error', 'message']);
  });

  it("documents the connect callback's query as the OAuth parameters, not as a schema's keywords", () => {
    const [, callback] = operations.find(([name]) => name === 'GET /v1/connect/callback')!;
    const names = (callback.parameters ?? []).map((p) => p.name).sort();
    expect(names).toEqual(['code', 'error', 'error_description', 'iss', 'state']);
  });

  it('documents /metrics as text or OpenMetrics (with tracing), and answers text without', async () => {
    const [, metrics] = operations.find(([name]) => name === 'GET /metrics')!;
    expect(Object.keys(metrics.responses['200']?.content ?? {})).toEqual([
      'text/plain',
      'application/openmetrics-text',
    ]);
    const response = await s.call({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
  });

  it('says which bodies may be omitted, as the routes take them', async () => {
    const optional = operations.filter(([, op]) => op.requestBody?.required === false);
    expect(optional.map(([name]) => name).sort()).toEqual([
      'POST /v1/connections/{id}/introspect',
      'POST /v1/connections/{id}/token',
    ]);
    for (const [name, op] of operations) {
      if (op.requestBody && op.requestBody.required !== false) {
        const path = name.split(' ')[1]!.replace(/\{(\w+)\}/g, 'x');
        const method = name.split(' ')[0] as 'POST' | 'PUT' | 'PATCH';
        const response = await s.call({ method, url: path, key: s.adminKey });
        expect(response.statusCode, name).toBe(400);
      }
    }
  });

  it('is built from schemas Ajv understands without a strict-mode warning', () => {
    expect(strictWarnings).toEqual([]);
  });
});
