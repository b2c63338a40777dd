// The CLI's parsing and formatting helpers, in process (the end-to-end test drives the binary).
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ApiClient } from '../src/cli/api.ts';
import { parseCommand } from '../src/cli/args.ts';
import { parseSince } from '../src/cli/audit.ts';
import { parseGrant } from '../src/cli/clients.ts';
import { redactUrl } from '../src/cli/redact-url.ts';
import { UsageError } from '../src/cli/errors.ts';
import { formatTime } from '../src/cli/output.ts';
import { Progress } from '../src/cli/progress.ts';
import { presetParams, providersCommand } from '../src/cli/providers.ts';
import { connectCallbackUrl } from '../src/cli/serve.ts';

const command = { name: 'demo', help: 'Usage: tokenwarden demo' };

describe('CLI arguments', () => {
  it('turns parseArgs errors into one usage line naming the command', () => {
    const attempt = (argv: string[]) => () =>
      parseCommand(argv, command, { port: { type: 'string' } }, { max: 1 });
    expect(attempt(['--nope'])).toThrow(new UsageError('unknown option --nope', 'demo'));
    expect(attempt(['--port'])).toThrow(/option --port needs a value/);
    expect(attempt(['a', 'b'])).toThrow(/unexpected argument 'b'/);
    expect(
      parseCommand(['--port', '80'], command, { port: { type: 'string' } })?.int('port', {
        min: 0,
        max: 65535,
      }),
    ).toBe(80);
    expect(() =>
      parseCommand(['--port', '8o'], command, { port: { type: 'string' } })?.int('port', {
        min: 0,
        max: 9,
      }),
    ).toThrow(/--port must be an integer from 0 to 9, got '8o'/);
  });

  it('reads grants as provider:owner:actions, owners may contain colons', () => {
    expect(parseGrant('slack:*:token.read', 'c')).toEqual({
      provider: 'slack',
      owner: '*',
      actions: ['token.read'],
    });
    expect(parseGrant('google:tenant:42:token.read,connections.read', 'c')).toEqual({
      provider: 'google',
      owner: 'tenant:42',
      actions: ['token.read', 'connections.read'],
    });
    expect(() => parseGrant('slack:token.read', 'c')).toThrow(UsageError);
    expect(() => parseGrant(':o:token.read', 'c')).toThrow(/needs a provider, an owner/);
  });

  it('reads --since as a duration ago or an ISO time', () => {
    const now = Date.parse('2026-01-02T00:00:00Z');
    expect(parseSince('12h', 'audit', now)).toBe('2026-01-01T12:00:00.000Z');
    expect(parseSince('2025-12-31', 'audit', now)).toBe('2025-12-31T00:00:00.000Z');
    expect(() => parseSince('yesterday', 'audit', now)).toThrow(/neither an ISO 8601 time/);
  });

  it('never prints a database password', () => {
    expect(redactUrl('postgres://tw:s3cret@db:5432/tw?sslpassword=x')).toBe(
      'postgres://tw:***@db:5432/tw',
    );
    expect(
      redactUrl('postgres://tw:s3cret@db-a:5432,db-b:5432/tw?target_session_attrs=read-write'),
    ).toBe('postgres://tw:***@db-a:5432,db-b:5432/tw');
    expect(redactUrl('postgres://db-a,db-b/tw')).toBe('postgres://db-a,db-b/tw');
  });

  it('formats times from the API to the second', () => {
    expect(formatTime('2026-01-02T03:04:05.678Z')).toBe('2026-01-02T03:04:05Z');
    expect(formatTime(null)).toBe('-');
  });
});

describe('progress', () => {
  function capture(isTTY: boolean) {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    }) as unknown as NodeJS.WriteStream;
    (stream as { isTTY?: boolean }).isTTY = isTTY;
    return { stream, text: () => text };
  }

  it('redraws a bar on a terminal', () => {
    const out = capture(true);
    const progress = new Progress('re-encrypting', 4, out.stream);
    progress.update(1);
    progress.finish(4);
    expect(out.text()).toContain('\rre-encrypting [########----------------------]  25% 1/4');
    expect(out.text().endsWith(`[${'#'.repeat(30)}] 100% 4/4\u001b[K\n`)).toBe(true);
  });

  it('writes plain lines otherwise, at most one a second, and always the last', () => {
    const out = capture(false);
    const progress = new Progress('re-encrypting', 4, out.stream);
    progress.update(1);
    progress.update(2);
    progress.finish(4);
    expect(out.text()).toBe('re-encrypting: 1/4 (25%)\nre-encrypting: 4/4 (100%)\n');
  });
});

describe('serve --public-url', () => {
  it('appends the callback route to the public URL, keeping a path prefix', () => {
    expect(connectCallbackUrl('https://tw.example')).toBe('https://tw.example/v1/connect/callback');
    expect(connectCallbackUrl('https://tw.example/auth/')).toBe(
      'https://tw.example/auth/v1/connect/callback',
    );
    expect(connectCallbackUrl('http://127.0.0.1:8080')).toBe(
      'http://127.0.0.1:8080/v1/connect/callback',
    );
    expect(() => connectCallbackUrl('tw.example')).toThrow(/--public-url is not a URL/);
  });
});

describe('providers put --param', () => {
  const params = (argv: string[]) =>
    presetParams(parseCommand(argv, command, { param: { type: 'string', multiple: true } })!);
  it('collects key=value pairs for the preset URL placeholders', () => {
    expect(params([])).toBeUndefined();
    expect(params(['--param', 'domain=acme.okta.com', '--param', 'tenant=a=b'])).toEqual({
      domain: 'acme.okta.com',
      tenant: 'a=b',
    });
    expect(() => params(['--param', 'domain'])).toThrow(/--param expects key=value/);
    expect(() => params(['--param', '=x'])).toThrow(UsageError);
  });
});

describe('providers put --rejected-token-statuses', () => {
  it('takes whole numbers only, refused before anything is sent', async () => {
    const argv = ['put', 'acme', '--url', 'http://127.0.0.1:1', '--key', 'k', '--client-id', 'c'];
    await expect(
      providersCommand.run([...argv, '--rejected-token-statuses', '4o3']),
    ).rejects.toThrow(
      new UsageError("--rejected-token-statuses expects whole numbers, got '4o3'", 'providers put'),
    );
  });
});

describe('the API client of the CLI', () => {
  it('never shows a password from --url in its errors', async () => {
    // fetch refuses a URL with credentials before connecting: the error names the URL.
    const api = new ApiClient('http://admin:hunter2-secret@127.0.0.1:1', 'tw_admin_key');
    const error = await api.get('/v1/clients').catch((e: unknown) => e as Error);
    expect(String(error)).toMatch(/Tokenwarden at http:\/\/admin:\*\*\*@127\.0\.0\.1:1/);
    expect(String(error)).not.toContain('hunter2');
    expect(() => new ApiClient('ftp://a:hunter2-secret@x', 'k')).toThrow(/must start with http/);
    expect(() => new ApiClient('ftp://a:hunter2-secret@x', 'k')).not.toThrow(/hunter2/);
    expect(() => new ApiClient('::hunter2::', 'k')).toThrow(/^--url is not a URL/);
  });
});
