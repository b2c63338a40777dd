import {
  ApplicationFailure,
  condition,
  log,
  setHandler,
  TemporalFailure,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import { FailureTypes, type NeedsReauthDetails } from '../failure-types.ts';
import {
  pendingReauthorizationsQuery,
  reauthorizedSignal,
  type PendingReauthorization,
} from './definitions.ts';

export interface ReauthorizationOptions {
  /**
   * How long a step waits for the `reauthorized` signal before it fails with the non-retryable
   * `TokenwardenReauthorizationTimeout`. Default `'7 days'`.
   */
  timeout?: Duration;
  /**
   * Called once per connection when a step first finds that it needs re-authorization (not once
   * per waiting step), e.g. to run an activity that emails the owner a reconnect link. It runs
   * before the wait; a signal that arrives while it runs is not missed. If it throws, the step
   * fails with that error.
   */
  onNeedsReauth?: (details: NeedsReauthDetails) => Promise<void> | void;
}

/**
 * The `TokenwardenNeedsReauth` details in an error, looking through ActivityFailure and
 * ChildWorkflowFailure causes; undefined when the error is something else.
 */
export function needsReauthOf(error: unknown): NeedsReauthDetails | undefined {
  for (let current = error, depth = 0; current instanceof Error && depth < 8; depth++) {
    if (current instanceof ApplicationFailure && current.type === FailureTypes.NeedsReauth) {
      const [details] = current.details ?? [];
      if (isNeedsReauthDetails(details))
        return { connectionId: details.connectionId, reason: details.reason };
      return undefined;
    }
    if (!(current instanceof TemporalFailure)) return undefined;
    current = current.cause;
  }
  return undefined;
}

function isNeedsReauthDetails(value: unknown): value is NeedsReauthDetails {
  if (typeof value !== 'object' || value === null) return false;
  const { connectionId, reason } = value as Record<string, unknown>;
  return typeof connectionId === 'string' && typeof reason === 'string';
}

/**
 * Lets a long-running workflow wait for its user to authorize again instead of failing. Create one
 * at the start of the workflow function (it registers the `reauthorized` signal and the
 * `pendingReauthorizations` query), then run each step that uses a connection through `run`.
 *
 * A step whose activity fails with `TokenwardenNeedsReauth` waits until the `reauthorized` signal
 * names that connection, then runs again. Everything the workflow did before stays done: only the
 * failed step runs again. Steps running concurrently on the same connection all wait for the same
 * signal, and `onNeedsReauth` runs once for them. A signal that arrives while a step is still
 * running (before its failure reached the workflow) counts: the step runs again at once.
 *
 * Deterministic: it uses only workflow time, signals and `condition`.
 */
export class Reauthorization {
  readonly #timeout: Duration;
  readonly #onNeedsReauth: ReauthorizationOptions['onNeedsReauth'];
  /** Per connection: how many `reauthorized` signals have named it. */
  readonly #generations = new Map<string, number>();
  readonly #pending = new Map<string, PendingReauthorization>();

  constructor(options: ReauthorizationOptions = {}) {
    this.#timeout = options.timeout ?? '7 days';
    this.#onNeedsReauth = options.onNeedsReauth;
    setHandler(reauthorizedSignal, (input) => this.#signalled(input));
    setHandler(pendingReauthorizationsQuery, () => this.pending());
  }

  /**
   * Runs `step`; while it fails with `TokenwardenNeedsReauth`, waits for the `reauthorized`
   * signal for that connection and runs it again. Other errors pass through unchanged. Throws a
   * non-retryable `TokenwardenReauthorizationTimeout` ApplicationFailure if no signal comes within
   * the timeout.
   */
  async run<T>(step: () => Promise<T>): Promise<T> {
    for (;;) {
      const before = new Map(this.#generations);
      try {
        return await step();
      } catch (error) {
        const needs = needsReauthOf(error);
        if (needs === undefined) throw error;
        await this.waitFor(needs, before.get(needs.connectionId) ?? 0);
      }
    }
  }

  /**
   * Waits until a `reauthorized` signal names `details.connectionId` (a signal counted in
   * `generation` or earlier does not count; `run` passes the count from before the step).
   * Throws `TokenwardenReauthorizationTimeout` after the timeout.
   */
  async waitFor(
    details: NeedsReauthDetails,
    generation = this.generation(details.connectionId),
  ): Promise<void> {
    const { connectionId } = details;
    const signalled = (): boolean => this.generation(connectionId) > generation;
    if (signalled()) return;

    let entry = this.#pending.get(connectionId);
    const first = entry === undefined;
    if (entry === undefined) {
      entry = { connectionId, reason: details.reason, since: Date.now(), waitingSteps: 0 };
      this.#pending.set(connectionId, entry);
    }
    entry.waitingSteps++;
    try {
      if (first) {
        log.warn('Waiting for the owner of a connection to authorize again', {
          connectionId,
          reason: details.reason,
        });
        await this.#onNeedsReauth?.({ connectionId, reason: details.reason });
      }
      if (!(await condition(signalled, this.#timeout))) {
        throw ApplicationFailure.create({
          type: FailureTypes.ReauthorizationTimeout,
          message: `Connection "${connectionId}" was not authorized again within ${String(this.#timeout)} (${details.reason}).`,
          nonRetryable: true,
          details: [{ connectionId, reason: details.reason }],
        });
      }
    } finally {
      if (--entry.waitingSteps === 0 && this.#pending.get(connectionId) === entry) {
        this.#pending.delete(connectionId);
      }
    }
  }

  /** How many `reauthorized` signals have named this connection so far. */
  generation(connectionId: string): number {
    return this.#generations.get(connectionId) ?? 0;
  }

  /** The connections steps are waiting on. */
  pending(): PendingReauthorization[] {
    return [...this.#pending.values()].map((entry) => ({ ...entry }));
  }

  #signalled(input: unknown): void {
    const connectionId = (input as { connectionId?: unknown } | null | undefined)?.connectionId;
    if (typeof connectionId !== 'string' || connectionId === '') {
      log.warn('Ignored a tokenwarden.reauthorized signal without a connectionId');
      return;
    }
    this.#generations.set(connectionId, this.generation(connectionId) + 1);
  }
}
