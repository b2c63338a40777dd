import { StoreUnavailableError, TokenwardenError } from '../errors.ts';
import type { ServiceStore } from './service-store.ts';
import type { Store } from './store.ts';

/**
 * The store as the engine uses it: any failure of the database itself (connection refused,
 * server restarting, statement timeout) surfaces as `StoreUnavailableError`, a typed, retryable
 * error, instead of a driver-specific one whose message might quote SQL or a connection string.
 */
export function guardStore<T extends Store | ServiceStore>(store: T): T {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return async (...args: unknown[]) => {
        try {
          return await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } catch (error) {
          throw error instanceof TokenwardenError ? error : new StoreUnavailableError(error);
        }
      };
    },
  });
}
