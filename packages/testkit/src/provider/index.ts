export { parseProviderArgs } from './args.ts';
export type { ProviderArgs } from './args.ts';
export { startProviderProcess } from './process.ts';
export type { ProviderProcess } from './process.ts';
export { TestProvider } from './provider.ts';
export type { StartOptions } from './provider.ts';
export { RemoteTestProvider } from './remote.ts';
export { tokenFingerprint } from './state.ts';
export { PERSONALITIES } from './personalities.ts';
export type {
  ErrorStyle,
  PersonalityName,
  GrantOptions,
  InjectedFailure,
  IssuedGrant,
  ProviderStats,
  TestProviderOptions,
} from './types.ts';
