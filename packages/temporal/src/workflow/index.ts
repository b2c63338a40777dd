/**
 * `@tokenwarden/temporal/workflow`: the workflow side. Imports only `@temporalio/workflow`, so it is
 * safe in the workflow sandbox.
 *
 * A long-running workflow whose user may have to authorize again waits for it instead of failing,
 * and keeps its progress:
 *
 * ```ts
 * import { proxyActivities } from '@temporalio/workflow';
 * import { FailureTypes, Reauthorization } from '@tokenwarden/temporal/workflow';
 * import type * as activities from './activities.ts';
 *
 * const { syncPage, notifyOwner } = proxyActivities<typeof activities>({
 *   startToCloseTimeout: '1 minute',
 *   heartbeatTimeout: '20 seconds',
 *   retry: { nonRetryableErrorTypes: [FailureTypes.NeedsReauth] }, // already non-retryable; explicit is clearer
 * });
 *
 * export async function syncAll(connectionId: string, pages: number): Promise<number> {
 *   const reauth = new Reauthorization({
 *     timeout: '14 days',
 *     onNeedsReauth: ({ connectionId, reason }) => notifyOwner(connectionId, reason),
 *   });
 *   let synced = 0;
 *   for (let page = 0; page < pages; page++) {
 *     // Waits for the `tokenwarden.reauthorized` signal if the connection needs its owner.
 *     synced += await reauth.run(() => syncPage(connectionId, page));
 *   }
 *   return synced;
 * }
 * ```
 *
 * The web backend, once the owner has authorized again and the new tokens are in Tokenwarden:
 * `await handle.signal(reauthorizedSignal, { connectionId })`.
 *
 * @module
 */
export {
  reauthorizedSignal,
  pendingReauthorizationsQuery,
  type ReauthorizedSignalInput,
  type PendingReauthorization,
} from './definitions.ts';
export { Reauthorization, needsReauthOf, type ReauthorizationOptions } from './reauthorization.ts';
// The failure types a workflow matches on, the same module as the activity side's (all of it is
// public: the type strings and their details).
export * from '../failure-types.ts';
