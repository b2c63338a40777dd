import { ApplicationFailure } from '@temporalio/common';
import { NeedsReauthError, RefreshUnavailableError, TokenwardenError } from '@tokenwarden/client';
import { FailureTypes } from '../failure-types.ts';

/**
 * The ApplicationFailure a Tokenwarden SDK error becomes in an activity, or undefined when `error`
 * is not one. Messages and details are built here from codes and ids only: never a token, never
 * the API key, and the SDK error is not attached as a cause (its stack and nested causes would
 * go to workflow history). An error thrown by another copy of `@tokenwarden/client` in the
 * worker's dependency tree is mapped the same: the SDK's classes answer `instanceof` across copies.
 *
 * | SDK error                                   | failure type                    | retryable |
 * | ------------------------------------------- | ------------------------------- | --------- |
 * | `needs_reauth`                              | `TokenwardenNeedsReauth`        | no        |
 * | `refresh_unavailable`                       | `TokenwardenRefreshUnavailable` | yes, after Retry-After |
 * | `store_unavailable`, `network_error`, 5xx   | `TokenwardenUnavailable`        | yes       |
 * | `not_found`                                 | `TokenwardenNotFound`           | no        |
 * | `unauthorized`, `forbidden`                 | `TokenwardenAccessDenied`       | no        |
 * | anything else                               | `TokenwardenError`              | no        |
 */
export function toApplicationFailure(
  error: unknown,
  connectionId: string,
): ApplicationFailure | undefined {
  if (!(error instanceof TokenwardenError)) return undefined;
  const id = error.connectionId ?? connectionId;
  const connection = `Connection "${id}"`;
  const forConnection = `connection "${id}"`;

  // The SDK always throws the subclass, which carries the reason; a bare TokenwardenError with
  // this code (made by hand) means the same, without one.
  if (error instanceof NeedsReauthError || error.code === 'needs_reauth') {
    const reason = error instanceof NeedsReauthError ? error.reason : 'unknown';
    return ApplicationFailure.create({
      type: FailureTypes.NeedsReauth,
      message: `${connection} needs its owner to authorize again (${reason}).`,
      nonRetryable: true,
      details: [{ connectionId: id, reason }],
    });
  }
  if (error instanceof RefreshUnavailableError) {
    const retryAfterMs = Math.max(0, Math.ceil(error.retryAfterMs));
    return ApplicationFailure.create({
      type: FailureTypes.RefreshUnavailable,
      message: `${connection} could not be refreshed right now; retrying in ${Math.ceil(retryAfterMs / 1000)} s.`,
      nonRetryable: false,
      // Temporal needs a positive delay; 0 means "use the retry policy".
      ...(retryAfterMs > 0 ? { nextRetryDelay: retryAfterMs } : {}),
      details: [{ connectionId: id, retryAfterMs }],
    });
  }

  const code = String(error.code);
  const details = [{ connectionId: id, code }];
  // `retryable` covers store_unavailable, shutting_down, network errors, and a bare
  // TokenwardenError with code refresh_unavailable (made by hand: no Retry-After to honour).
  if (
    error.retryable ||
    code === 'internal_error' ||
    (error.status !== undefined && error.status >= 500)
  ) {
    return ApplicationFailure.create({
      type: FailureTypes.Unavailable,
      message: `Tokenwarden is unavailable for ${forConnection} (${code}).`,
      nonRetryable: false,
      details,
    });
  }
  if (code === 'not_found') {
    return ApplicationFailure.create({
      type: FailureTypes.NotFound,
      message: `${connection} does not exist, or this API key cannot see it (not_found).`,
      nonRetryable: true,
      details,
    });
  }
  if (code === 'unauthorized' || code === 'forbidden') {
    return ApplicationFailure.create({
      type: FailureTypes.AccessDenied,
      message:
        code === 'unauthorized'
          ? `Tokenwarden refused the worker's API key for ${forConnection} (unauthorized).`
          : `The worker's API key is not granted ${forConnection} (forbidden).`,
      nonRetryable: true,
      details,
    });
  }
  return ApplicationFailure.create({
    type: FailureTypes.Error,
    message: `Tokenwarden refused the request for ${forConnection} (${code}).`,
    nonRetryable: true,
    details,
  });
}
