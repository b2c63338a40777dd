// Core's provider settings table, the route's schema and view, and the CLI's flags agree: every
// setting is in the OpenAPI document, in `providers put --help`, and travels from a flag through
// the API into the stored provider and back out of its view.
import { SETTING_ENTRIES, type Setting } from '@tokenwarden/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { providersCommand } from '../src/cli/providers.ts';
import { startTestServer, type TestServer } from './helpers.ts';

interface ObjectSchema {
  required: string[];
  properties: Record<string, { type: string | string[] }>;
}

const flagOf = (setting: Setting<unknown>) => setting.flag ?? setting.wire.replaceAll('_', '-');

/** A value for each setting that is not its default, as a flag and as the API shows it. */
function sample(name: string, setting: Setting<unknown>): { argv: string[]; shown: unknown } {
  const flag = `--${flagOf(setting)}`;
  const schema = setting.schema as { type: string; enum?: string[]; minimum?: number };
  if (name === 'preset') return { argv: [flag, 'okta'], shown: 'okta' };
  if (name === 'presetParams') {
    return { argv: [flag, 'domain=acme.okta.com'], shown: { domain: 'acme.okta.com' } };
  }
  if (schema.enum) return { argv: [flag, schema.enum.at(-1)!], shown: schema.enum.at(-1) };
  switch (schema.type) {
    case 'boolean':
      return { argv: [flag, 'no'], shown: false };
    case 'integer':
    case 'number':
      return { argv: [flag, String(schema.minimum! + 1)], shown: schema.minimum! + 1 };
    case 'object':
      return { argv: [flag, 'k=v'], shown: { k: 'v' } };
    case 'array': {
      if ((schema as { items?: { type?: string } }).items?.type === 'integer') {
        return { argv: [flag, '403'], shown: [403] };
      }
      const item = name === 'apiBaseUrls' ? 'https://api.acme.example/v1' : 'value';
      return { argv: [flag, item], shown: [item] };
    }
    default: {
      const value = (schema as { format?: string }).format
        ? `https://acme.example/${setting.wire}`
        : 'value';
      return { argv: [flag, value], shown: value };
    }
  }
}

async function capture(run: () => Promise<void>): Promise<string> {
  let out = '';
  const write = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((chunk: string | Uint8Array) => ((out += String(chunk)), true));
  try {
    await run();
  } finally {
    write.mockRestore();
  }
  return out;
}

describe('provider settings: table, route, view and CLI', () => {
  let s: TestServer | undefined;
  afterEach(async () => {
    vi.unstubAllGlobals();
    await s?.close();
    s = undefined;
  });

  it('puts every setting in the OpenAPI body schema and the provider view', async () => {
    s = await startTestServer();
    const doc = (await s.call({ method: 'GET', url: '/docs/json' })).json();
    const put = doc.paths['/v1/providers/{name}'].put;
    const body = put.requestBody.content['application/json'].schema as ObjectSchema;
    const view = put.responses['200'].content['application/json'].schema as ObjectSchema;
    expect(body.required).toEqual(['client_id']);
    for (const [name, setting] of SETTING_ENTRIES) {
      // A secret may be null in a PUT: that drops the stored one on purpose.
      const type = setting.secret ? [setting.schema.type, 'null'] : setting.schema.type;
      expect(body.properties[setting.wire]?.type, name).toEqual(type);
      const shownAs = setting.secret ? `has_${setting.wire}` : setting.wire;
      expect(view.properties[shownAs], name).toBeDefined();
      expect(view.required.includes(shownAs), name).toBe(setting.view === 'required');
    }
    const settings = SETTING_ENTRIES.length;
    expect(Object.keys(body.properties)).toHaveLength(settings);
    expect(Object.keys(view.properties)).toHaveLength(settings + 2); // and the name, the problem
    expect(view.properties.problem).toMatchObject({ type: 'string' });
    expect(view.required).not.toContain('problem');
  });

  it('lists every setting in providers put --help', async () => {
    const help = await capture(() => providersCommand.run(['put', '--help']));
    for (const [, setting] of SETTING_ENTRIES) {
      expect(help).toContain(`  --${flagOf(setting)} `);
      expect(help).toContain(setting.doc.split(' ').slice(0, 4).join(' '));
    }
  });

  it('carries every flag through the API into the stored provider and back out of its view', async () => {
    s = await startTestServer();
    const server = s;
    const argv = ['put', 'acme', '--url', 'http://tokenwarden.test', '--key', 'k', '--json'];
    const shown: Record<string, unknown> = {};
    for (const [name, setting] of SETTING_ENTRIES) {
      const { argv: flags, shown: value } = sample(name, setting);
      argv.push(...flags);
      shown[setting.secret ? `has_${setting.wire}` : setting.wire] = setting.secret ? true : value;
    }
    // The CLI's request goes to the test server, as the admin.
    vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
      const answer = await server.admin(
        'PUT',
        new URL(url).pathname,
        JSON.parse(String(init.body)),
      );
      return new Response(answer.body, { status: answer.statusCode });
    });
    const printed = JSON.parse(await capture(() => providersCommand.run(argv)));
    expect(printed).toEqual({ name: 'acme', ...shown });
    expect(printed).not.toHaveProperty('client_secret');
    expect((await s.admin('GET', '/v1/providers/acme')).json()).toEqual(printed);
  });

  it.each([
    ['plain http off loopback', 'http://api.acme.example'],
    ['user info', 'https://user:pass@api.acme.example'],
    ['a query', 'https://api.acme.example/v1?key=1'],
    ['a fragment', 'https://api.acme.example/v1#top'],
  ])(
    'refuses an api_base_urls entry with %s as invalid_request, storing nothing',
    async (_, url) => {
      s ??= await startTestServer();
      const response = await s.admin('PUT', '/v1/providers/acme', {
        token_url: 'https://acme.example/token',
        client_id: 'c',
        api_base_urls: ['https://api.acme.example', url],
      });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toMatchObject({ error: 'invalid_request' });
      expect(response.json().message).toMatch(/^api_base_urls: /);
      expect((await s.admin('GET', '/v1/providers/acme')).statusCode).toBe(404);
    },
  );
});
