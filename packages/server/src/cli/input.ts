// Reading secrets and JSON documents without putting them on the command line, where other local
// users can read them (ps, /proc) and the shell history keeps them.
import { readFileSync } from 'node:fs';
import { CliError, UsageError } from './errors.ts';

/** The contents of a file, or of stdin for '-', without the trailing newline. */
export function readText(path: string, what: string): string {
  try {
    return readFileSync(path === '-' ? 0 : path, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'error';
    throw new CliError(`cannot read ${what} from ${path === '-' ? 'stdin' : path} (${code})`);
  }
}

export function readJsonObject(path: string, what: string): Record<string, unknown> {
  return parseJsonObject(readText(path, what), what);
}

export function parseJsonObject(
  text: string,
  what: string,
  command?: string,
): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError(`${what} is not valid JSON`, command);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new UsageError(`${what} must be a JSON object`, command);
  }
  return value as Record<string, unknown>;
}

/** A list answer, whatever the collection is called in the body. */
export function itemsOf<T>(body: unknown, key: string): T[] {
  if (Array.isArray(body)) return body as T[];
  const value = (body as Record<string, unknown> | undefined)?.[key];
  return Array.isArray(value) ? (value as T[]) : [];
}
