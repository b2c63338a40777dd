import { InvalidInputError } from '../errors.ts';

/** What a web backend hands over after finishing the OAuth handshake. */
export interface ImportConnectionInput {
  provider: string;
  /** Who the tokens belong to in your world (user id, tenant id, ...). */
  owner: string;
  accessToken: string;
  refreshToken?: string | null;
  /** Seconds from now, as in the token response. 0 imports an already expired token. */
  expiresIn?: number;
  /** Absolute expiry (Date, epoch milliseconds or ISO 8601). Mutually exclusive with `expiresIn`. */
  expiresAt?: Date | number | string;
  /** Seconds until the refresh token itself expires, when the provider says so. */
  refreshExpiresIn?: number;
  tokenType?: string;
  scope?: string;
  metadata?: Record<string, unknown>;
}

/** @deprecated The same as `ImportConnectionInput`: the API's word is "connection". */
export type ImportCredentialInput = ImportConnectionInput;

/** What a machine connection is made of: no tokens, they come from the provider. */
export interface MachineConnectionInput {
  provider: string;
  owner: string;
  /** Default: the provider's scopes. */
  scope?: string;
  metadata?: Record<string, unknown>;
}

/** The fields of every connection, whatever its grant. */
export interface ValidConnection {
  provider: string;
  owner: string;
  scope: string | null;
  metadata: string;
}

export interface ValidImport extends ValidConnection {
  provider: string;
  owner: string;
  accessToken: string;
  refreshToken: string | null;
  /** Exactly one of these is set, or neither (the provider's default lifetime applies). */
  expiresInMs: number | undefined;
  expiresAtMs: number | undefined;
  refreshExpiresInMs: number | null;
  tokenType: string;
  scope: string | null;
  metadata: string;
}

const MAX_TOKEN_LENGTH = 16 * 1024;
const MAX_METADATA_BYTES = 8 * 1024;
const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;
/** Expiries before this are typos or seconds passed as milliseconds, not real tokens. */
const EARLIEST_EXPIRY_MS = Date.UTC(2000, 0, 1);

/** Checks an import field by field; the first problem becomes an `InvalidInputError`. */
export function validateImport(input: ImportConnectionInput): ValidImport {
  if (typeof input !== 'object' || input === null) {
    throw new InvalidInputError('credential', 'must be an object');
  }
  if (input.expiresIn !== undefined && input.expiresAt !== undefined) {
    throw new InvalidInputError('expires_in', 'give either expires_in or expires_at, not both');
  }
  return {
    provider: name('provider', input.provider),
    owner: name('owner', input.owner),
    accessToken: token('access_token', input.accessToken),
    refreshToken:
      input.refreshToken === undefined || input.refreshToken === null
        ? null
        : token('refresh_token', input.refreshToken),
    expiresInMs:
      input.expiresIn === undefined ? undefined : seconds('expires_in', input.expiresIn, 0),
    expiresAtMs: input.expiresAt === undefined ? undefined : instant('expires_at', input.expiresAt),
    refreshExpiresInMs:
      input.refreshExpiresIn === undefined
        ? null
        : seconds('refresh_expires_in', input.refreshExpiresIn, 1),
    tokenType: input.tokenType === undefined ? 'Bearer' : name('token_type', input.tokenType),
    scope: scope(input.scope),
    metadata: metadata(input.metadata),
  };
}

/** Checks a machine connection's fields, in the order `validateImport` checks them. */
export function validateMachineConnection(input: MachineConnectionInput): ValidConnection {
  // A missing input is reported as its first missing field, as it always has been.
  return {
    provider: name('provider', input?.provider),
    owner: name('owner', input?.owner),
    scope: scope(input?.scope),
    metadata: metadata(input?.metadata),
  };
}

function name(field: string, value: unknown): string {
  const checked = text(field, value, 256);
  if (checked.trim() !== checked) {
    throw new InvalidInputError(field, 'must not start or end with whitespace');
  }
  return checked;
}

/** RFC 6749's token characters (VSCHAR) without the space: what a bearer header can carry. */
const TOKEN_CHARACTERS = /^[\x21-\x7E]+$/;

function token(field: string, value: unknown): string {
  // The message names the field only: a token must never appear in an error.
  const checked = text(field, value, MAX_TOKEN_LENGTH);
  if (/\s/.test(checked)) throw new InvalidInputError(field, 'must not contain whitespace');
  if (!TOKEN_CHARACTERS.test(checked)) {
    throw new InvalidInputError(
      field,
      'must be printable ASCII (characters 0x21 to 0x7E): no NUL, control or non-ASCII characters',
    );
  }
  return checked;
}

function scope(value: unknown): string | null {
  return value === undefined ? null : text('scope', value, 4096);
}

/** In `u` mode a surrogate pair is one code point: only an unpaired half matches. */
const LONE_SURROGATE = /\p{Surrogate}/u;

function text(field: string, value: unknown, maxLength: number): string {
  if (typeof value !== 'string') throw new InvalidInputError(field, 'must be a string');
  if (value.length === 0) throw new InvalidInputError(field, 'must not be empty');
  if (value.length > maxLength) {
    throw new InvalidInputError(field, `must be at most ${maxLength} characters`);
  }
  // A lone surrogate has no UTF-8 form: stored, it would become other bytes, never found again.
  if (LONE_SURROGATE.test(value)) {
    throw new InvalidInputError(field, 'must be valid UTF-16 (it holds a lone surrogate)');
  }
  return value;
}

function seconds(field: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    throw new InvalidInputError(field, 'must be a finite number of seconds');
  }
  if (value < min || value > MAX_LIFETIME_SECONDS) {
    throw new InvalidInputError(
      field,
      `must be between ${min} and ${MAX_LIFETIME_SECONDS} seconds`,
    );
  }
  return Math.round(value * 1000);
}

function instant(field: string, value: unknown): number {
  const ms =
    value instanceof Date
      ? value.getTime()
      : typeof value === 'number'
        ? value
        : typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value)
          ? Date.parse(value)
          : NaN;
  if (!Number.isFinite(ms)) {
    throw new InvalidInputError(
      field,
      'must be a Date, epoch milliseconds or an ISO 8601 date-time',
    );
  }
  if (ms < EARLIEST_EXPIRY_MS || ms > Date.now() + MAX_LIFETIME_SECONDS * 1000) {
    throw new InvalidInputError(
      field,
      'is not a plausible expiry (before 2000 or over 10 years ahead)',
    );
  }
  return ms;
}

function metadata(value: unknown): string {
  if (value === undefined) return '{}';
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidInputError('metadata', 'must be a JSON object');
  }
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    throw new InvalidInputError('metadata', 'must be serialisable as JSON');
  }
  if (Buffer.byteLength(json) > MAX_METADATA_BYTES) {
    throw new InvalidInputError('metadata', `must be at most ${MAX_METADATA_BYTES} bytes as JSON`);
  }
  return json;
}
