// What the global setup hands to the test files through vitest's provide/inject. The first two
// names are fixed: the Python and Go SDKs' test wrappers inject them too.
declare module 'vitest' {
  export interface ProvidedContext {
    /** host:port of the run's Temporal server; empty when none could be started. */
    temporalAddress: string;
    /** The Temporal CLI the server runs from; empty when TEMPORAL_ADDRESS names a server. */
    temporalCli: string;
    /** Why there is no Temporal server (the fetch or the start failed); empty when there is one. */
    temporalUnavailable: string;
  }
}

export {};
