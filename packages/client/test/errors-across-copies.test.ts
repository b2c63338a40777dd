// A worker's dependency tree may hold two copies of @tokenwarden/client (two versions, or one
// bundled into a library): an error thrown by one copy must still be `instanceof` the other's.
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as errors from '@tokenwarden/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type ErrorsModule = typeof import('../src/errors.ts');

/** The same errors module loaded a second time from another file: distinct classes, as a second copy has. */
let copy: ErrorsModule;
let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-client-copy-'));
  const file = join(dir, 'errors.ts');
  copyFileSync(new URL('../src/errors.ts', import.meta.url), file);
  copy = (await import(pathToFileURL(file).href)) as ErrorsModule;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** One error of every class, made by `module`'s constructors. */
function oneOfEach(module: ErrorsModule) {
  return {
    TokenwardenError: new module.TokenwardenError('some_code', 'm'),
    NeedsReauthError: new module.NeedsReauthError('m', 'invalid_grant'),
    RefreshUnavailableError: new module.RefreshUnavailableError('m', 1_000),
    NotFoundError: new module.NotFoundError('m'),
    ForbiddenError: new module.ForbiddenError('m'),
    UnauthorizedError: new module.UnauthorizedError('m'),
    InvalidRequestError: new module.InvalidRequestError('m'),
    NetworkError: new module.NetworkError('m'),
  };
}
type ClassName = keyof ReturnType<typeof oneOfEach>;

describe('SDK errors across two copies of the package', () => {
  it('the copy really is another module: its classes are not ours', () => {
    expect(copy.NeedsReauthError).not.toBe(errors.NeedsReauthError);
  });

  for (const [from, to] of [
    ['the copy', 'ours'],
    ['ours', 'the copy'],
  ] as const) {
    it(`an error of ${from} is instanceof exactly its class and the base class of ${to}`, () => {
      const made = oneOfEach(from === 'the copy' ? copy : (errors as ErrorsModule));
      const checked = to === 'the copy' ? copy : (errors as ErrorsModule);
      const names = Object.keys(made) as ClassName[];
      for (const name of names) {
        for (const other of names) {
          const expected = other === name || other === 'TokenwardenError';
          expect(made[name] instanceof checked[other], `${name} instanceof ${other}`).toBe(
            expected,
          );
        }
        expect(made[name]).toBeInstanceOf(Error);
      }
    });
  }

  it('keeps instanceof of a subclass of ours (not branded) to its own instances', () => {
    class AppError extends errors.NeedsReauthError {}
    expect(new AppError('m', 'invalid_grant')).toBeInstanceOf(AppError);
    expect(new AppError('m', 'invalid_grant')).toBeInstanceOf(errors.NeedsReauthError);
    expect(new errors.NeedsReauthError('m', 'invalid_grant')).not.toBeInstanceOf(AppError);
    expect(new copy.NeedsReauthError('m', 'invalid_grant')).not.toBeInstanceOf(AppError);
  });

  it('is not fooled by values that are not errors', () => {
    for (const value of [null, undefined, 0, 'needs_reauth', {}, { code: 'needs_reauth' }]) {
      expect(value instanceof errors.TokenwardenError).toBe(false);
      expect(value instanceof errors.NeedsReauthError).toBe(false);
    }
  });
});
