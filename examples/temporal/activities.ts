// The example activities. They get the connection id from the workflow and the token from
// Tokenwarden, through helpers shared by every activity of the worker process.
import { log } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { ActivityHelpers } from '@tokenwarden/temporal';

export interface ExampleActivityDeps {
  helpers: ActivityHelpers;
  /** The protected API, e.g. the test provider's `/resource`. */
  resourceUrl: string;
}

export interface CallResult {
  ok: boolean;
  call: number;
}

export function createExampleActivities({ helpers, resourceUrl }: ExampleActivityDeps) {
  return {
    /** One call to the protected API with the connection's token. */
    async callProtectedApi(connectionId: string, call: number): Promise<CallResult> {
      const response = await helpers.fetch(connectionId, resourceUrl);
      await response.body?.cancel();
      if (!response.ok) {
        // A second 401 (the fresh token refused too) or another error: let Temporal retry.
        throw ApplicationFailure.retryable(
          `The protected API answered ${response.status}.`,
          'ProtectedApiError',
        );
      }
      return { ok: true, call };
    },

    /** Stands in for an email or a push message asking the owner to reconnect. */
    async notifyOwner(connectionId: string, reason: string): Promise<void> {
      log.warn('Connection needs its owner to authorize again', { connectionId, reason });
    },
  };
}

export type ExampleActivities = ReturnType<typeof createExampleActivities>;
