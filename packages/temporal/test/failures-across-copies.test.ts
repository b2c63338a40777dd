// An activity's SDK error may come from another copy of @tokenwarden/client than the one this
// package imports (a worker whose dependency tree holds two): it is mapped all the same.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type * as ClientErrors from '@tokenwarden/client';
import { FailureTypes, toApplicationFailure } from '@tokenwarden/temporal';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/** The client's errors module loaded once more from another file, as a second copy would be. */
let copy: typeof ClientErrors;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-temporal-copy-'));
  const file = join(dir, 'errors.ts');
  const source = fileURLToPath(import.meta.resolve('@tokenwarden/client'));
  copyFileSync(join(source, '..', 'errors.ts'), file);
  copy = (await import(pathToFileURL(file).href)) as typeof ClientErrors;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("toApplicationFailure with another copy's errors", () => {
  it('maps each class to its failure type, with what the subclass carries', () => {
    const reauth = toApplicationFailure(
      new copy.NeedsReauthError('m', 'refresh_in_doubt', { connectionId: 'c1' }),
      'c',
    )!;
    expect(reauth).toMatchObject({ type: FailureTypes.NeedsReauth, nonRetryable: true });
    expect(reauth.details).toEqual([{ connectionId: 'c1', reason: 'refresh_in_doubt' }]);

    const unavailable = toApplicationFailure(new copy.RefreshUnavailableError('m', 3_000), 'c')!;
    expect(unavailable).toMatchObject({
      type: FailureTypes.RefreshUnavailable,
      nonRetryable: false,
      nextRetryDelay: 3_000,
    });

    const cases: [ClientErrors.TokenwardenError, string, boolean][] = [
      [new copy.NetworkError('m'), FailureTypes.Unavailable, false],
      [
        new copy.TokenwardenError('store_unavailable', 'm', { status: 503 }),
        FailureTypes.Unavailable,
        false,
      ],
      [new copy.NotFoundError('m'), FailureTypes.NotFound, true],
      [new copy.ForbiddenError('m'), FailureTypes.AccessDenied, true],
      [new copy.UnauthorizedError('m'), FailureTypes.AccessDenied, true],
      [new copy.InvalidRequestError('m'), FailureTypes.Error, true],
    ];
    for (const [error, type, nonRetryable] of cases) {
      expect(toApplicationFailure(error, 'c'), error.name).toMatchObject({ type, nonRetryable });
    }
  });
});
