// The README's failure table, FailureTypes and what toApplicationFailure does must agree.
import { readFileSync } from 'node:fs';
import {
  ForbiddenError,
  InvalidRequestError,
  NeedsReauthError,
  NetworkError,
  NotFoundError,
  RefreshUnavailableError,
  TokenwardenError,
  UnauthorizedError,
} from '@tokenwarden/client';
import { FailureTypes, toApplicationFailure } from '@tokenwarden/temporal';
import { describe, expect, it } from 'vitest';

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const rows = readme
  .split('\n')
  .filter((line) => /^\| `Tokenwarden\w+` /.test(line))
  .map((line) => line.split('|').map((cell) => cell.trim()))
  .map(([, type, retryable]) => ({
    type: type!.replaceAll('`', ''),
    retryable: retryable!.startsWith('yes'),
  }));

describe('failure types', () => {
  it('the README table lists every type, in the order of FailureTypes', () => {
    expect(rows.map((r) => r.type)).toEqual(Object.values(FailureTypes));
  });

  it('the retryable column says what toApplicationFailure does', () => {
    const errors = [
      new NeedsReauthError('m', 'invalid_grant', { connectionId: 'c' }),
      new RefreshUnavailableError('m', 2_000, { connectionId: 'c' }),
      new NetworkError('m', { connectionId: 'c' }),
      new TokenwardenError('store_unavailable', 'm', { status: 503 }),
      new NotFoundError('m'),
      new UnauthorizedError('m'),
      new ForbiddenError('m'),
      new InvalidRequestError('m'),
      new TokenwardenError('some_future_code', 'm', { status: 400 }),
    ];
    const documented = new Map(rows.map((r) => [r.type, r.retryable]));
    const seen = new Set<string>();
    for (const error of errors) {
      const failure = toApplicationFailure(error, 'c')!;
      seen.add(failure.type!);
      expect(documented.get(failure.type!), failure.type!).toBe(!failure.nonRetryable);
    }
    // Every type the activity side can raise was produced (the last one is the workflow's own).
    expect([...seen].sort()).toEqual(
      Object.values(FailureTypes)
        .filter((t) => t !== FailureTypes.ReauthorizationTimeout)
        .sort(),
    );
    expect(documented.get(FailureTypes.ReauthorizationTimeout)).toBe(false);
    expect(toApplicationFailure(new Error('not ours'), 'c')).toBeUndefined();
  });
});
