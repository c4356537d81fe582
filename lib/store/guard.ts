/**
 * Decorators for object stores that enforce what a client may do:
 * appendOnly (delete and repack fail with PERMISSION: obnam-server's
 * append-only clients) and readOnly (put, delete and repack fail with
 * PERMISSION). Everything else passes through; the wrapped store keeps its
 * other methods.
 */
import { ObnamError } from '../errors.js';
import type { ObjectStore } from './store.js';

export const APPEND_ONLY_MESSAGE = 'this client is append-only: it may add objects but not delete them';

export function appendOnly<S extends ObjectStore>(inner: S, message = APPEND_ONLY_MESSAGE): S {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'delete' || prop === 'repack') return () => Promise.reject(new ObnamError('PERMISSION', message));
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

export function readOnly<S extends ObjectStore>(inner: S): S {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'delete' || prop === 'put' || prop === 'repack') {
        return () => Promise.reject(new ObnamError('PERMISSION', `${target.location} is open read-only`));
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
