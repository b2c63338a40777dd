/**
 * `@tokenwarden/temporal`: Tokenwarden for Temporal workers and clients. Workflows pass connection
 * ids, never tokens; activities always get a valid token, refreshed once cluster-wide however many
 * activities on however many workers need it at the same moment.
 *
 * ```ts
 * // activities.ts: one client and one set of helpers per worker process.
 * import { TokenwardenClient } from '@tokenwarden/client';
 * import { createActivityHelpers } from '@tokenwarden/temporal';
 *
 * const tokenwarden = new TokenwardenClient({ baseUrl, apiKey: process.env.TOKENWARDEN_API_KEY! });
 * const { fetch, withAccessToken } = createActivityHelpers(tokenwarden, { minTtl: 60 });
 *
 * export async function listChannels(connectionId: string): Promise<unknown> {
 *   // Bearer token added; a 401 is reported and retried once with the fresh token; heartbeats
 *   // while waiting for a refresh; `needs_reauth` fails the activity with the non-retryable
 *   // `TokenwardenNeedsReauth`, `refresh_unavailable` retries after Retry-After.
 *   const res = await fetch(connectionId, 'https://slack.com/api/conversations.list');
 *   return res.json();
 * }
 * ```
 *
 * The workflow side (waiting for the owner to authorize again) is `@tokenwarden/temporal/workflow`;
 * the encrypting `PayloadCodec` and its codec server are below.
 *
 * @module
 */
export {
  createActivityHelpers,
  isUnauthorizedError,
  TokenRejectedError,
  type ActivityHelpers,
  type ActivityHelpersOptions,
  type TokenSource,
} from './activity/helpers.ts';
export { toApplicationFailure } from './activity/failures.ts';
export {
  FailureTypes,
  type FailureType,
  type NeedsReauthDetails,
  type RefreshUnavailableDetails,
  type TokenwardenFailureDetails,
} from './failure-types.ts';
export {
  reauthorizedSignal,
  pendingReauthorizationsQuery,
  type ReauthorizedSignalInput,
  type PendingReauthorization,
} from './workflow/definitions.ts';
export {
  EncryptionCodec,
  PayloadDecryptionError,
  ENCRYPTED_ENCODING,
  KEY_ID_METADATA_KEY,
  FORMAT_METADATA_KEY,
  FORMAT_V1,
  type EncryptionCodecOptions,
  type PayloadDecryptionFailure,
} from './codec/encryption-codec.ts';
export { createCodecServerHandler, type CodecServerOptions } from './codec/codec-server.ts';
export {
  CodecKeyRing,
  CodecKeyRingError,
  CODEC_KEY_LENGTH,
  CODEC_KEY_ID_PATTERN,
  GENERATE_CODEC_KEY_COMMAND,
  type CodecKey,
} from './codec/key-ring.ts';
// Errors users catch from the SDK underneath, re-exported so one import serves.
export {
  NeedsReauthError,
  RefreshUnavailableError,
  TokenwardenError,
  type AccessToken,
} from '@tokenwarden/client';
