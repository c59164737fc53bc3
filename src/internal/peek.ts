/**
 * A store's read that needs no round trip: an entry the store holds in this process (the in-memory store,
 * the Redis store's near-cache) answered on the caller's fiber, without an effect. Found by the store
 * object itself, as the HTTP layer's fast path is (registry.ts): a copy or a wrapper of the store
 * (`Store.around`, a test's switch that takes the store down) is not registered, so its own `fetch`
 * always runs.
 *
 * @internal
 */
import type * as Fiber from "effect/Fiber"
import type * as Option from "effect/Option"
import type { Entry, Key, StoreService, StringBackend } from "../Store.js"

/**
 * What `fetch(key, known)` would answer, when the store can tell without suspending; `undefined` when it
 * cannot (the entry is not held here, or the cache is bypassed): then `fetch` runs. The fiber is the
 * caller's, for its `Clock`.
 */
export type Peek = (
  key: Key,
  known: Entry | undefined,
  fiber: Fiber.RuntimeFiber<unknown, unknown>
) => Option.Option<Entry> | undefined

const peeks = new WeakMap<object, Peek>()

/** Registers `peek` as the in-process read of exactly this store object. */
export const register = <S extends StoreService>(store: S, peek: Peek): S => {
  peeks.set(store, peek)
  return store
}

/** The in-process read of this very store object, if it registered one. */
export const peekOf = (store: StoreService): Peek | undefined => peeks.get(store)

/**
 * The same for a `Store.StringBackend`: the value `fetch` would hand to `decode`, when the backend holds it
 * in this process; `undefined` when only `fetch` can tell. `Store.makeStringOnly`
 * decodes it as it decodes what `fetch` reads.
 */
export type PeekString = (key: Key, now: number) => string | undefined

const stringPeeks = new WeakMap<object, PeekString>()

/** Registers `peek` as the in-process read of exactly this string backend object. */
export const registerString = <B extends StringBackend>(backend: B, peek: PeekString): B => {
  stringPeeks.set(backend, peek)
  return backend
}

/** The in-process read of this very string backend object, if it registered one. */
export const peekStringOf = (backend: StringBackend): PeekString | undefined => stringPeeks.get(backend)
