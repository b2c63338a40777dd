// The workflow code (the example workflow and @tokenwarden/temporal/workflow) bundled by the
// Temporal SDK's own bundler, which fails on any import a workflow may not use (node:crypto,
// @tokenwarden/client, ...). `tsc` type-checks the same files (tsconfig includes examples/).
import { bundleWorkflowCode, type Logger } from '@temporalio/worker';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { sourceConditionsHook, workflowsPath } from '../../../examples/temporal/bundling.ts';

const messages: string[] = [];
const logger: Logger = {
  log: (_level, message) => void messages.push(message),
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message) => void messages.push(message),
  error: (message) => void messages.push(message),
};

describe('workflow bundle', () => {
  it('bundles the example workflow and the workflow helpers with the Temporal bundler', async () => {
    const { code } = await bundleWorkflowCode({
      workflowsPath,
      webpackConfigHook: sourceConditionsHook,
      logger,
    });
    expect(messages.filter((m) => /error/i.test(m))).toEqual([]);
    expect(code).toContain('fanOutWorkflow');
    expect(code).toContain('tokenwarden.reauthorized');
    expect(code).toContain('TokenwardenReauthorizationTimeout');
    // Nothing of the activity side or the codec got in.
    for (const absent of [
      'TokenwardenClient',
      'createActivityHelpers',
      'aes-256-gcm',
      'createCipheriv',
    ]) {
      expect(code).not.toContain(absent);
    }
  });

  it('refuses a workflow that imports the activity side (the test has teeth)', async () => {
    messages.length = 0;
    await expect(
      bundleWorkflowCode({
        workflowsPath: fileURLToPath(
          new URL('./fixtures/activity-side-in-workflow.ts', import.meta.url),
        ),
        webpackConfigHook: sourceConditionsHook,
        logger,
      }),
    ).rejects.toThrow(/Webpack finished with errors/);
    expect(messages.join('\n')).toMatch(/node:crypto/);
  });
});
