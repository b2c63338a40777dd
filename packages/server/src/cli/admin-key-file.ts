// The admin key's file beside the embedded database (mode 0600), and where the admin commands
// find the key: TOKENWARDEN_ADMIN_KEY, else the file TOKENWARDEN_ADMIN_KEY_FILE names.
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { writePrivateFile } from '@tokenwarden/core';
import { CliError } from './errors.ts';

/** `tokenwarden.admin-key` in the database's own directory, beside `tokenwarden.keys`. */
export function adminKeyFile(dbPath: string): string {
  return join(dirname(resolve(dbPath)), 'tokenwarden.admin-key');
}

/** Writes (or replaces) the admin key's file. */
export function writeAdminKeyFile(path: string, key: string): void {
  try {
    writePrivateFile(path, `${key}\n`, { replace: true });
  } catch (error) {
    throw new CliError(`cannot write ${path} (${(error as { code?: string }).code ?? 'error'})`);
  }
}

/** TOKENWARDEN_ADMIN_KEY, else the contents of TOKENWARDEN_ADMIN_KEY_FILE; undefined if neither. */
export function adminKeyFromEnv(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TOKENWARDEN_ADMIN_KEY) return env.TOKENWARDEN_ADMIN_KEY;
  const file = env.TOKENWARDEN_ADMIN_KEY_FILE;
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8').trim();
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'error';
    throw new CliError(`TOKENWARDEN_ADMIN_KEY_FILE ${file} could not be read (${code})`);
  }
}
