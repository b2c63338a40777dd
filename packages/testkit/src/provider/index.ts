export { parseProviderArgs } from './args.ts';
export type { ProviderArgs } from './args.ts';
export { startProviderProcess } from './process.ts';
export type { ProviderProcess } from './process.ts';
export { TestProvider } from './provider.ts';
export type { StartOptions } from './provider.ts';
export { RemoteTestProvider } from './remote.ts';
export { tokenFingerprint } from './state.ts';
export { PERSONALITIES } from './personalities.ts';
// Every type of the provider's vocabulary (options, failures, grants, stats); its values (the
// defaults and validators) stay internal.
export type * from './types.ts';
