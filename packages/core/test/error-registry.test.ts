import { readFileSync } from 'node:fs';
import * as core from '@tokenwarden/core';
import { ERROR_CODES, TokenwardenError, type ErrorCode } from '@tokenwarden/core';
import { describe, expect, it } from 'vitest';

const DOC = new URL('../../../docs/errors.md', import.meta.url);
const HEADER = ['code', 'HTTP status', 'meaning', 'how to fix'];

interface Entry {
  code: string;
  status: number;
  message: string;
  fix: string;
}

/** The cells of a markdown table row: split on unescaped pipes, trimmed, `\|` unescaped. */
function cells(line: string): string[] {
  const inner = line
    .trim()
    .replace(/^\|/, '')
    .replace(/(?<!\\)\|$/, '');
  return inner.split(/(?<!\\)\|/).map((cell) => cell.trim().replaceAll('\\|', '|'));
}

/** The one table of docs/errors.md whose header is `| code | HTTP status | meaning | how to fix |`. */
function documentedCodes(markdown: string): Entry[] {
  const lines = markdown.split(/\r?\n/);
  const headers = lines.flatMap((line, index) =>
    line.trim().startsWith('|') && cells(line).join('\u0000') === HEADER.join('\u0000')
      ? [index]
      : [],
  );
  expect(headers, 'exactly one error table in docs/errors.md').toHaveLength(1);
  const start = headers[0]!;
  expect(cells(lines[start + 1]!).every((cell) => /^:?-{3,}:?$/.test(cell))).toBe(true);
  const entries: Entry[] = [];
  for (const line of lines.slice(start + 2)) {
    if (!line.trim().startsWith('|')) break;
    const row = cells(line);
    expect(row, `row ${line}`).toHaveLength(4);
    const [code, status, message, fix] = row as [string, string, string, string];
    expect(code, 'the code cell is `code`').toMatch(/^`[a-z_]+`$/);
    expect(status, `status of ${code}`).toMatch(/^\d{3}$/);
    entries.push({ code: code.slice(1, -1), status: Number(status), message, fix });
  }
  return entries;
}

const registry: Entry[] = Object.entries(ERROR_CODES).map(([code, { status, message, fix }]) => ({
  code,
  status,
  message,
  fix,
}));

describe('docs/errors.md', () => {
  const documented = documentedCodes(readFileSync(DOC, 'utf8'));

  it('lists exactly the registry codes, in registry order', () => {
    expect(registry.length).toBeGreaterThan(0);
    expect(documented.map((e) => e.code)).toEqual(registry.map((e) => e.code));
    expect(new Set(documented.map((e) => e.code)).size).toBe(documented.length);
  });

  it.each(registry)('documents $code with the registry status, message and fix', (entry) => {
    expect(documented.find((e) => e.code === entry.code)).toEqual(entry);
  });

  it('parses what it should (the check above is not vacuous)', () => {
    const sample = [
      '| code | HTTP status | meaning | how to fix |',
      '|---|---|---|---|',
      '| `a_b` | 418 | Short \\| and stout. | Tip it over. |',
      '',
      '| `not_in_table` | 500 | x | y |',
    ].join('\n');
    expect(documentedCodes(sample)).toEqual([
      { code: 'a_b', status: 418, message: 'Short | and stout.', fix: 'Tip it over.' },
    ]);
  });
});

/** How to build one of each error class: a new class without an entry here fails the test. */
const FACTORIES: Record<string, { make: () => TokenwardenError; code: ErrorCode }> = {
  NotFoundError: { make: () => new core.NotFoundError('conn_x'), code: 'not_found' },
  NeedsReauthError: {
    make: () => new core.NeedsReauthError('conn_x', 'invalid_grant'),
    code: 'needs_reauth',
  },
  RefreshUnavailableError: {
    make: () => new core.RefreshUnavailableError('conn_x', 1000, 'server_error'),
    code: 'refresh_unavailable',
  },
  InvalidInputError: {
    make: () => new core.InvalidInputError('field', 'is wrong'),
    code: 'invalid_input',
  },
  ProviderMisconfiguredError: {
    make: () => new core.ProviderMisconfiguredError('p', 'token_url: is wrong'),
    code: 'provider_misconfigured',
  },
  DecryptError: { make: () => new core.DecryptError('bad'), code: 'decrypt_failed' },
  KeyRingError: { make: () => new core.KeyRingError('bad'), code: 'key_ring_invalid' },
  KeySourceUnavailableError: {
    make: () => new core.KeySourceUnavailableError('the KMS did not answer'),
    code: 'key_ring_invalid',
  },
  StoreUnavailableError: {
    make: () => new core.StoreUnavailableError(new Error('connect ECONNREFUSED')),
    code: 'store_unavailable',
  },
  UnknownProviderError: {
    make: () => new core.UnknownProviderError('nope'),
    code: 'unknown_provider',
  },
  WebhookUrlError: {
    make: () => new core.WebhookUrlError('url: the scheme must be https'),
    code: 'webhook_url_refused',
  },
};

describe('exported error classes', () => {
  const classes = Object.entries(core).filter(
    ([, value]) => typeof value === 'function' && value.prototype instanceof TokenwardenError,
  ) as [string, new (...args: never[]) => TokenwardenError][];

  it('every TokenwardenError subclass exported from @tokenwarden/core is covered here', () => {
    expect(classes.map(([name]) => name).sort()).toEqual(Object.keys(FACTORIES).sort());
  });

  it.each(Object.entries(FACTORIES))(
    '%s has a registry code and the registry status',
    (name, { make, code }) => {
      const error = make();
      expect(error).toBeInstanceOf(
        (core as unknown as Record<string, new (...args: never[]) => unknown>)[name]!,
      );
      expect(error).toBeInstanceOf(TokenwardenError);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe(name);
      expect(error.code).toBe(code);
      expect(Object.keys(ERROR_CODES)).toContain(error.code);
      expect(error.status).toBe(ERROR_CODES[error.code].status);
    },
  );

  it('the base class answers the registry status for every code', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const error = new TokenwardenError(code);
      expect(error.code).toBe(code);
      expect(error.status).toBe(ERROR_CODES[code].status);
      expect(error.message).toBe(ERROR_CODES[code].message);
    }
  });
});
