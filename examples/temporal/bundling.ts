// How this repository's workers bundle workflow code: the workspace packages resolve to their
// TypeScript sources (the `tokenwarden-source` export condition) as they do everywhere else here.
// A project that installs @tokenwarden/temporal from npm needs none of this: the published package
// points its `./workflow` export at compiled JavaScript.
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
