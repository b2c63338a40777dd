/**
 * `@tokenwarden/client`: the SDK workers use to get valid access tokens from Tokenwarden. No
 * runtime dependencies (the global `fetch`).
 *
 * ```ts
 * import { NeedsReauthError, TokenwardenClient } from '@tokenwarden/client';
 *
 * const tokenwarden = new TokenwardenClient({
 *   baseUrl: 'https://tokenwarden.internal',
 *   apiKey: process.env.TOKENWARDEN_API_KEY!,
 * });
 *
 * // Cached in this process and shared by concurrent callers; refreshed once cluster-wide.
 * const { accessToken } = await tokenwarden.getAccessToken(connectionId, { minTtl: 60 });
 *
 * // Or let the SDK add the bearer, and on a 401 report the rejected token and retry once.
 * try {
 *   const res = await tokenwarden.fetch(connectionId, 'https://slack.com/api/conversations.list');
 * } catch (error) {
 *   if (error instanceof NeedsReauthError) await askOwnerToReconnect(connectionId, error.reason);
 *   else throw error;
 * }
 * ```
 */
export { TokenwardenClient } from './client.ts';
export {
  verifyWebhook,
  WebhookVerificationError,
  type VerifyWebhookOptions,
  type WebhookEvent,
} from './webhooks.ts';
export {
  ForbiddenError,
  InvalidRequestError,
  NeedsReauthError,
  NetworkError,
  NotFoundError,
  RefreshUnavailableError,
  TokenwardenError,
  UnauthorizedError,
  type ErrorCode,
  type ReauthReason,
  type TokenwardenErrorDetails,
} from './errors.ts';
export type {
  AccessToken,
  ConnectionMetadata,
  FetchLike,
  GetAccessTokenOptions,
  RetryEvent,
  RetryOptions,
  TokenwardenClientOptions,
} from './types.ts';
