/**
 * `@tokenwarden/server`: Tokenwarden's HTTP API.
 *
 * ```ts
 * import { loadKeyRing, openSqliteStore } from '@tokenwarden/core';
 * import { buildServer, hashApiKey } from '@tokenwarden/server';
 *
 * const store = openSqliteStore({ path: 'tokenwarden.sqlite' });
 * await store.migrate();
 * const app = await buildServer({
 *   store,
 *   keyRing: loadKeyRing(),
 *   adminKeyHash: hashApiKey(process.env.TOKENWARDEN_ADMIN_KEY!),
 * });
 * await app.listen({ port: 8080 });
 * // on SIGTERM: await app.close(); await store.close();
 * ```
 *
 * Routes, schemas and error codes: the OpenAPI document at `/docs/json`, and docs/errors.md.
 */
export { buildServer, type BuildServerOptions, type ConnectOptions } from './app.ts';
export { generateApiKey, hashApiKey, newClientKey, type NewClientKey } from './auth/api-keys.ts';
export type { Principal } from './auth/principal.ts';
export type { ServerWebhookOptions } from './routes/webhooks.ts';
export {
  errorReply,
  ForbiddenError,
  InvalidRequestError,
  ProxyNotConfiguredError,
  ShuttingDownError,
  UnauthorizedError,
  UpstreamTimeoutError,
  UpstreamUnreachableError,
  type ErrorBody,
} from './errors.ts';
export type { ProxyOptions } from './routes/proxy.ts';
export { startTracing, tracingConfigured, type Tracing } from './tracing/sdk.ts';
export {
  InvalidInputError,
  NeedsReauthError,
  NotFoundError,
  RefreshUnavailableError,
  TokenwardenError,
  ERROR_CODES,
  type ErrorCode,
} from '@tokenwarden/core';
