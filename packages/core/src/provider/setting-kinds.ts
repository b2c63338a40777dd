// The kinds of value a provider setting can hold. Each kind says two things once: how the value
// is written on the wire (a JSON schema, with the bounds the HTTP API accepts) and how core
// checks and normalises it (`read`). `settings.ts` picks one kind per setting.
import { InvalidInputError } from '../errors.ts';
import { apiBaseUrl, endpointUrl } from './urls.ts';

export type JsonSchema = Readonly<Record<string, unknown>>;

export interface SettingKind<T> {
  /** The value on the wire (the server's request body, the CLI's flags). */
  readonly schema: JsonSchema;
  /**
   * The given value, checked and normalised; undefined when none was given. Throws
   * InvalidInputError naming `field`.
   */
  read(value: unknown, field: string): T | undefined;
  /** A preset's value may hold `{placeholders}` filled from `presetParams` (URLs). */
  readonly placeholders?: true;
}

const absent = (value: unknown): value is undefined | null => value === undefined || value === null;

const URL_SCHEMA = { type: 'string', minLength: 1, maxLength: 2048, format: 'uri' } as const;

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,256}$/;

/** An endpoint Tokenwarden sends secrets to: https, or plain http on loopback only. */
export function endpoint(): SettingKind<string> {
  return {
    schema: URL_SCHEMA,
    read: (value, field) => (absent(value) ? undefined : endpointUrl(field, value)),
    placeholders: true,
  };
}

/** RFC 9207 compares issuers as strings: the configured spelling is kept. */
export function issuer(): SettingKind<string> {
  return {
    schema: URL_SCHEMA,
    read(value, field) {
      if (value === undefined) return undefined;
      const href = endpointUrl(field, value);
      if (typeof value !== 'string' || value.length > 2048 || /[?#]/.test(value)) {
        throw new InvalidInputError(field, 'must be a URL without query or fragment');
      }
      return href === value || href === `${value}/` ? value : href;
    },
  };
}

/**
 * A list of at most `max` items, each checked by `item`; `what` names the items in the message.
 * Duplicates stay unless `unique`.
 */
function listOf<T>(
  max: number,
  schema: JsonSchema,
  what: string,
  item: (value: unknown, field: string) => T,
  { unique = false } = {},
): SettingKind<T[]> {
  return {
    schema: { type: 'array', maxItems: max, items: schema },
    read(value, field) {
      if (absent(value)) return undefined;
      if (!Array.isArray(value) || value.length > max) {
        throw new InvalidInputError(field, `must be a list of at most ${max} ${what}`);
      }
      const items = value.map((v) => item(v, field));
      return unique ? [...new Set(items)] : items;
    },
  };
}

/** Origins with an optional path prefix (`https://slack.com/api`), without duplicates. */
export function apiBaseUrls(): SettingKind<string[]> {
  const urls = listOf(20, URL_SCHEMA, 'URLs', (item, field) => apiBaseUrl(field, item), {
    unique: true,
  });
  return { ...urls, placeholders: true };
}

export function oneOf<const T extends string>(values: readonly T[]): SettingKind<T> {
  return {
    schema: { type: 'string', enum: values },
    read(value, field) {
      if (value === undefined) return undefined;
      if (values.includes(value as T)) return value as T;
      throw new InvalidInputError(field, `must be one of ${values.join(', ')}`);
    },
  };
}

export function text(maxLength: number): SettingKind<string> {
  return {
    schema: { type: 'string', minLength: 1, maxLength },
    read: (value, field) => (value === undefined ? undefined : checkText(value, field, maxLength)),
  };
}

function checkText(value: unknown, field: string, maxLength: number): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    throw new InvalidInputError(field, `must be a string of 1-${maxLength} characters`);
  }
  return value;
}

/**
 * A number of seconds or milliseconds. Core accepts anything from `least` (tests and embedded
 * use run with short lifetimes); `schema` holds the HTTP API's narrower, operator-sized bounds.
 */
export function amount(
  least: number,
  schema: { type: 'integer' | 'number'; minimum: number; maximum: number },
): SettingKind<number> {
  return {
    schema,
    read(value, field) {
      if (value === undefined) return undefined;
      if (typeof value !== 'number' || !Number.isFinite(value) || value < least) {
        throw new InvalidInputError(field, `must be a number of at least ${least}`);
      }
      return value;
    },
  };
}

export function yesNo(): SettingKind<boolean> {
  return {
    schema: { type: 'boolean' },
    read(value, field) {
      if (value === undefined || typeof value === 'boolean') return value;
      throw new InvalidInputError(field, 'must be true or false');
    },
  };
}

export function scopes(): SettingKind<string[]> {
  return {
    schema: {
      type: 'array',
      maxItems: 100,
      items: { type: 'string', pattern: SCOPE_TOKEN.source },
    },
    read: (value) => (absent(value) ? undefined : checkScopes(value)),
  };
}

/** Scopes as RFC 6749 §3.3 writes them. Throws InvalidInputError (field `scopes`). */
export function checkScopes(value: unknown): string[] {
  if (absent(value)) return [];
  if (
    !Array.isArray(value) ||
    value.length > 100 ||
    !value.every((s) => typeof s === 'string' && SCOPE_TOKEN.test(s))
  ) {
    throw new InvalidInputError(
      'scopes',
      'must be a list of scope tokens (printable ASCII without spaces, quotes or backslashes)',
    );
  }
  return [...value] as string[];
}

const SHORT = { type: 'string', minLength: 1, maxLength: 200 } as const;

/** Error codes and message fragments: at most 50 strings of 1-200 characters. */
export function shortStrings(): SettingKind<string[]> {
  return listOf(50, SHORT, 'strings', (item, field) => checkText(item, field, SHORT.maxLength));
}

/** HTTP error statuses (400-599): at most 20, without duplicates. */
export function statusCodes(): SettingKind<number[]> {
  const item = { type: 'integer', minimum: 400, maximum: 599 } as const;
  return listOf(
    20,
    item,
    'HTTP statuses from 400 to 599',
    (value, field) => {
      if (
        !Number.isInteger(value) ||
        (value as number) < item.minimum ||
        (value as number) > item.maximum
      ) {
        throw new InvalidInputError(field, 'must be a list of HTTP statuses from 400 to 599');
      }
      return value as number;
    },
    { unique: true },
  );
}

const KEY = /^[A-Za-z0-9_.-]{1,64}$/;

/** Named parameters: at most 50 `{name: value}` pairs of short strings. */
export function stringMap(): SettingKind<Record<string, string>> {
  return {
    schema: {
      type: 'object',
      maxProperties: 50,
      propertyNames: { pattern: KEY.source },
      additionalProperties: SHORT,
    },
    read(value, field) {
      if (absent(value)) return undefined;
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw new InvalidInputError(field, 'must be an object of strings');
      }
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length > 50) throw new InvalidInputError(field, 'must have at most 50 entries');
      const out: Record<string, string> = {};
      for (const [key, item] of entries) {
        if (!KEY.test(key)) throw new InvalidInputError(field, 'has an invalid name');
        out[key] = checkText(item, field, SHORT.maxLength);
      }
      return out;
    },
  };
}
