import type { ApiCall } from './helpers.ts';

/** A value that must never come back in a response. */
export const SECRET = 'at-SECRET-value-9f8e7d';
/** Stands for the id of a stored connection in the URLs below. */
export const CONNECTION = 'CONNECTION';

export type BadInputCase = [name: string, call: Omit<ApiCall, 'key'>, status: number, code: string];

const TEN_YEARS_S = 10 * 365 * 24 * 3600;
const base = { provider: 'test', owner: 'user-a', access_token: SECRET };
const conn = `/v1/connections/${CONNECTION}`;
const provider = { token_url: 'https://a.example/t', client_id: 'c' };
const post = (url: string, body: unknown): Omit<ApiCall, 'key'> => ({ method: 'POST', url, body });
const put = (url: string, body: unknown): Omit<ApiCall, 'key'> => ({ method: 'PUT', url, body });
const get = (url: string): Omit<ApiCall, 'key'> => ({ method: 'GET', url });

/** What each route must refuse, and how. One line each: a table reads better than prettier's. */
// prettier-ignore
export const BAD_INPUT: BadInputCase[] = [
  // Malformed bodies, on every route that takes one.
  ['truncated JSON (import)', post('/v1/connections', `{"access_token": "${SECRET}",`), 400, 'invalid_request'],
  ['truncated JSON (token)', post(`${conn}/token`, '{"min_ttl": '), 400, 'invalid_request'],
  ['truncated JSON (rejected)', post(`${conn}/token/rejected`, '{"version'), 400, 'invalid_request'],
  ['truncated JSON (client)', post('/v1/clients', '{"name": "x", "grants": ['), 400, 'invalid_request'],
  ['truncated JSON (provider)', put('/v1/providers/p1', '{"token_url"'), 400, 'invalid_request'],
  ['a JSON array', post('/v1/connections', '[1, 2]'), 400, 'invalid_request'],
  ['a JSON string', post('/v1/connections', `"${SECRET}"`), 400, 'invalid_request'],
  ['JSON null (import)', post('/v1/connections', 'null'), 400, 'invalid_request'],
  ['an empty JSON body', { method: 'POST', url: '/v1/connections', body: '', contentType: 'application/json' }, 400, 'invalid_request'],
  ['__proto__ in the body', post('/v1/connections', `{"__proto__": {"x": 1}, "provider": "test", "owner": "o", "access_token": "${SECRET}"}`), 400, 'invalid_request'],
  ['text/plain', { method: 'POST', url: '/v1/connections', body: JSON.stringify(base), contentType: 'text/plain' }, 400, 'invalid_request'],
  // Wrong types.
  ['owner as a number', post('/v1/connections', { ...base, owner: 42 }), 400, 'invalid_request'],
  ['expires_in as a string', post('/v1/connections', { ...base, expires_in: '3600' }), 400, 'invalid_request'],
  ['metadata as an array', post('/v1/connections', { ...base, metadata: [1] }), 400, 'invalid_request'],
  ['refresh_token as an object', post('/v1/connections', { ...base, refresh_token: { v: SECRET } }), 400, 'invalid_request'],
  ['min_ttl as a string', post(`${conn}/token`, { min_ttl: '60' }), 400, 'invalid_request'],
  ['version as a string', post(`${conn}/token/rejected`, { version: '1' }), 400, 'invalid_request'],
  ['version missing', post(`${conn}/token/rejected`, {}), 400, 'invalid_request'],
  ['grants as a string', post('/v1/clients', { name: 'x', grants: 'all' }), 400, 'invalid_request'],
  ['client_id as a number', put('/v1/providers/p1', { ...provider, client_id: 7 }), 400, 'invalid_request'],
  // Unknown fields.
  ['an unknown field (import)', post('/v1/connections', { ...base, extra: 1 }), 400, 'invalid_request'],
  ['a camelCase refreshToken', post('/v1/connections', { ...base, refreshToken: SECRET }), 400, 'invalid_request'],
  ['an unknown field (token)', post(`${conn}/token`, { minTtl: 60 }), 400, 'invalid_request'],
  ['an unknown field (rejected)', post(`${conn}/token/rejected`, { version: 1, why: 'x' }), 400, 'invalid_request'],
  ['an unknown field in a grant', post('/v1/clients', { name: 'x', grants: [{ owner: '*', provider: '*', actions: ['token.read'], admin: true }] }), 400, 'invalid_request'],
  ['a certificate binding that is not a fingerprint', post('/v1/clients', { name: 'x', grants: [], certificate: { sha256: 'ab:cd' } }), 400, 'invalid_request'],
  ['a certificate binding with both forms', post('/v1/clients', { name: 'x', grants: [], certificate: { sha256: 'AB', subject_cn: 'w' } }), 400, 'invalid_request'],
  ['an unknown field (provider)', put('/v1/providers/p1', { ...provider, clientSecret: SECRET }), 400, 'invalid_request'],
  ['an unknown query parameter', get('/v1/connections?foo=1'), 400, 'invalid_request'],
  // Oversized bodies and values.
  ['a body over the limit', post('/v1/connections', { ...base, access_token: 'a'.repeat(70 * 1024) }), 413, 'payload_too_large'],
  ['a token over 16 KiB', post('/v1/connections', { ...base, access_token: 'a'.repeat(17 * 1024) }), 400, 'invalid_request'],
  ['metadata over 8 KiB', post('/v1/connections', { ...base, metadata: { x: 'm'.repeat(9 * 1024) } }), 400, 'invalid_request'],
  ['an owner over 256 characters', post('/v1/connections', { ...base, owner: 'o'.repeat(257) }), 400, 'invalid_request'],
  ['a token with whitespace', post('/v1/connections', { ...base, access_token: `${SECRET} x` }), 400, 'invalid_request'],
  // Absurd expiries.
  ['a negative expires_in', post('/v1/connections', { ...base, expires_in: -1 }), 400, 'invalid_request'],
  ['expires_in over ten years', post('/v1/connections', { ...base, expires_in: TEN_YEARS_S + 1 }), 400, 'invalid_request'],
  ['expires_in of 1e300', post('/v1/connections', { ...base, expires_in: 1e300 }), 400, 'invalid_request'],
  ['expires_at in 1970', post('/v1/connections', { ...base, expires_at: '1970-01-01T00:00:00Z' }), 400, 'invalid_request'],
  ['expires_at in 9999', post('/v1/connections', { ...base, expires_at: '9999-01-01T00:00:00Z' }), 400, 'invalid_request'],
  ['expires_at not a date', post('/v1/connections', { ...base, expires_at: 'tomorrow' }), 400, 'invalid_request'],
  ['expires_at as epoch seconds', post('/v1/connections', { ...base, expires_at: 1_700_000_000 }), 400, 'invalid_request'],
  ['both expires_in and expires_at', post('/v1/connections', { ...base, expires_in: 60, expires_at: new Date(Date.now() + 60_000).toISOString() }), 400, 'invalid_request'],
  ['min_ttl over a day', post(`${conn}/token`, { min_ttl: 86_401 }), 400, 'invalid_request'],
  ['a negative min_ttl', post(`${conn}/token`, { min_ttl: -1 }), 400, 'invalid_request'],
  ['version 0', post(`${conn}/token/rejected`, { version: 0 }), 400, 'invalid_request'],
  ['a fractional version', post(`${conn}/token/rejected`, { version: 1.5 }), 400, 'invalid_request'],
  // Ids, names and query values with path or odd characters.
  ['an encoded parent path', get('/v1/connections/..%2F..%2Fetc'), 400, 'invalid_request'],
  ['an encoded NUL', post('/v1/connections/conn%00x/token', {}), 400, 'invalid_request'],
  ['a space in the id', { method: 'DELETE', url: '/v1/connections/conn%20x' }, 400, 'invalid_request'],
  ['a 65-character id', get(`/v1/connections/${'c'.repeat(65)}`), 400, 'invalid_request'],
  ['an extra path segment', get(`${conn}/x`), 404, 'not_found'],
  ['a provider name with a slash', put('/v1/providers/a%2Fb', provider), 400, 'invalid_request'],
  ['a provider name "*"', put('/v1/providers/*', provider), 400, 'invalid_request'],
  ['delete: a provider name "*"', { method: 'DELETE', url: '/v1/providers/*' }, 400, 'invalid_request'],
  ['delete: a provider that has connections', { method: 'DELETE', url: '/v1/providers/test' }, 400, 'invalid_request'],
  ['an owner "*"', post('/v1/connections', { ...base, owner: '*' }), 400, 'invalid_request'],
  ['a client id with a dot', { method: 'DELETE', url: '/v1/clients/cli.x' }, 400, 'invalid_request'],
  ['a client id that is a dot-dot', { method: 'DELETE', url: '/v1/clients/..' }, 404, 'not_found'],
  ['a bad list cursor', get('/v1/connections?cursor=..%2Fx'), 400, 'invalid_request'],
  ['a list limit of 0', get('/v1/connections?limit=0'), 400, 'invalid_request'],
  ['a list limit of 1000', get('/v1/connections?limit=1000'), 400, 'invalid_request'],
  ['a bogus status', get('/v1/connections?status=dead'), 400, 'invalid_request'],
  ['an audit since that is not a date', get('/v1/audit?since=yesterday'), 400, 'invalid_request'],
  ['a non-numeric audit cursor', get('/v1/audit?cursor=abc'), 400, 'invalid_request'],
  // Provider and client settings that cannot work.
  ['a plain-http token URL off loopback', put('/v1/providers/p1', { ...provider, token_url: 'http://auth.example/token' }), 400, 'invalid_request'],
  ['a token URL that is not a URL', put('/v1/providers/p1', { ...provider, token_url: 'not a url' }), 400, 'invalid_request'],
  ['an unknown client_auth', put('/v1/providers/p1', { ...provider, client_auth: 'none' }), 400, 'invalid_request'],
  ['a scope with a space', put('/v1/providers/p1', { ...provider, scopes: ['a b'] }), 400, 'invalid_request'],
  ['an unknown grant action', post('/v1/clients', { name: 'x', grants: [{ owner: '*', provider: '*', actions: ['admin'] }] }), 400, 'invalid_request'],
  ['a grant without actions', post('/v1/clients', { name: 'x', grants: [{ owner: '*', provider: '*', actions: [] }] }), 400, 'invalid_request'],
  ['an empty client name', post('/v1/clients', { name: '', grants: [] }), 400, 'invalid_request'],
  // Unknown routes and methods.
  ['an unknown route', get('/v1/nope'), 404, 'not_found'],
  ['a method the route does not have', put(conn, {}), 404, 'not_found'],
];
