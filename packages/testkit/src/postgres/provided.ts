// What the global setup hands to the test files through vitest's provide/inject.
declare module 'vitest' {
  export interface ProvidedContext {
    /** Superuser URL of the test run's Postgres server. */
    tokenwardenPostgresUrl: string;
  }
}

export {};
