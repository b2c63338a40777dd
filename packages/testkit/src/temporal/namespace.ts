import { randomBytes } from 'node:crypto';
import './provided.ts';

/** Long enough for any test; the run's server is in memory and gone with the run anyway. */
const RETENTION_SECONDS = 24 * 60 * 60;
const USABLE_TIMEOUT_MS = 30_000;

/**
 * The Temporal server for tests: TEMPORAL_ADDRESS if set, else the one the vitest global setup
 * started. Throws with the reason when there is none, so that such a test fails, never skips.
 */
export async function testTemporalAddress(): Promise<string> {
  const fromEnv = process.env.TEMPORAL_ADDRESS;
  if (fromEnv) return fromEnv;
  // Loaded here so that this module also works outside vitest, given the variable.
  const { inject } = await import('vitest');
  const address = inject('temporalAddress');
  if (!address) {
    const reason =
      inject('temporalUnavailable') ||
      'register packages/testkit/src/temporal/global-setup.ts as a vitest globalSetup, or set ' +
        'TEMPORAL_ADDRESS to a Temporal server of your own';
    throw new Error(`No Temporal server for tests: ${reason}`);
  }
  return address;
}

/**
 * Registers a fresh namespace (`tw-test-<pid>-<random>`) on the server at `address` through the
 * SDK's WorkflowService, waits until the server knows it, and returns its name. A test that has
 * its own namespace sees only its own workflows and task queues.
 */
export async function createTemporalNamespace(address: string): Promise<string> {
  const { Connection } = await import('@temporalio/client');
  const connection = await Connection.connect({ address });
  try {
    const namespace = `tw-test-${process.pid}-${randomBytes(4).toString('hex')}`;
    await connection.workflowService.registerNamespace({
      namespace,
      // protobufjs takes a plain number where its types say Long (as the SDK itself passes).
      workflowExecutionRetentionPeriod: { seconds: RETENTION_SECONDS as never },
    });
    for (const deadline = Date.now() + USABLE_TIMEOUT_MS; ;) {
      try {
        await connection.workflowService.describeNamespace({ namespace });
        return namespace;
      } catch (error) {
        if (Date.now() > deadline) {
          throw new Error(`Namespace ${namespace} was registered but is not usable: ${error}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  } finally {
    await connection.close();
  }
}
