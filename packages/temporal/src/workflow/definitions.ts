// Signal and query definitions, shared by workflow code and by the code that signals workflows
// (the web backend that finishes a new OAuth handshake). Only @temporalio/workflow's pure
// definition helpers are used, so this module is safe on both sides.
import { defineQuery, defineSignal } from '@temporalio/workflow';

/** What the `tokenwarden.reauthorized` signal carries. No token: the new tokens are in Tokenwarden. */
export interface ReauthorizedSignalInput {
  /** The connection whose owner authorized again (and whose new tokens Tokenwarden now holds). */
  connectionId: string;
}

/**
 * Send it to a workflow once the connection's owner has authorized again and the new tokens are in
 * Tokenwarden; every step of the workflow waiting on that connection then continues.
 *
 * @example
 * ```ts
 * import { reauthorizedSignal } from '@tokenwarden/temporal';
 * await client.workflow.getHandle(workflowId).signal(reauthorizedSignal, { connectionId });
 * ```
 */
export const reauthorizedSignal = defineSignal<[ReauthorizedSignalInput]>(
  'tokenwarden.reauthorized',
);

/** A connection a workflow is waiting on, as `pendingReauthorizationsQuery` reports it. */
export interface PendingReauthorization {
  connectionId: string;
  /** Why the connection needs its owner (`invalid_grant`, `refresh_in_doubt`, ...). */
  reason: string;
  /** Workflow time (epoch ms) at which the workflow started waiting. */
  since: number;
  /** How many steps of the workflow are waiting on this connection. */
  waitingSteps: number;
}

/** Which connections the workflow is waiting on, e.g. for a UI that asks users to reconnect. */
export const pendingReauthorizationsQuery = defineQuery<PendingReauthorization[]>(
  'tokenwarden.pendingReauthorizations',
);
