import { StoreUnavailableError, TokenwardenError } from '../errors.ts';
import type { ServiceStore } from './service-store.ts';
import type { Store } from './store.ts';

/**
 * The store as the engine uses it: any failure of the database itself (connection refused,
 * server restarting, statement timeout) surfaces as `StoreUnavailableError`, a typed, retryable
 * error, instead of a driver-specific one whose message might quote SQL or a connection string.
 */
export function guardStore<T extends Store | ServiceStore | object>(store: T): T {
  // One wrapper per method name, made on first use (the store is read on every hand-out); it
  // calls whatever the method is at call time, so a method replaced later is still the one run.
  const guarded = new Map<PropertyKey, (...args: unknown[]) => Promise<unknown>>();
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      let wrapper = guarded.get(property);
      if (wrapper === undefined) {
        wrapper = async (...args: unknown[]) => {
          const method = Reflect.get(target, property) as (...a: unknown[]) => Promise<unknown>;
          try {
            return await method.apply(target, args);
          } catch (error) {
            throw error instanceof TokenwardenError ? error : new StoreUnavailableError(error);
          }
        };
        guarded.set(property, wrapper);
      }
      return wrapper;
    },
  });
}
