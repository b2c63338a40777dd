// How this repository's workers bundle workflow code: the workspace packages resolve to their
// TypeScript sources (the `tokenwarden-source` export condition) as they do everywhere else here.
// A project that installs @tokenwarden/temporal from npm needs none of this: the published package
// points its `./workflow` export at compiled JavaScript.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

/** The example's workflow module. */
export const workflowsPath = fileURLToPath(new URL('./workflows.ts', import.meta.url));

interface WebpackConfigLike {
  resolve?: { conditionNames?: string[] };
}

/** `bundlerOptions.webpackConfigHook`: resolve workspace packages to their sources. */
export function sourceConditionsHook<C extends WebpackConfigLike>(config: C): C {
  const resolve = config.resolve ?? {};
  // '...' keeps webpack's default conditions after ours.
  resolve.conditionNames = ['tokenwarden-source', ...(resolve.conditionNames ?? ['...'])];
  config.resolve = resolve;
  return config;
}

/**
 * Bundles the example's workflows once into `path`, for workers started with WORKFLOW_BUNDLE:
 * each worker would otherwise run webpack itself, which takes seconds of CPU per process.
 */
export async function writeWorkflowBundle(path: string): Promise<string> {
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const { code } = await bundleWorkflowCode({
    workflowsPath,
    webpackConfigHook: sourceConditionsHook,
    // Its progress lines would only interleave with the test output.
    logger: silentLogger,
  });
  await writeFile(path, code);
  return path;
}

const silentLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
