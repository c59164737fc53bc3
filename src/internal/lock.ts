/**
 * Per-key serialisation of writes within one process, so that concurrent writes of one session queue
 * instead of losing compare-and-set races to each other (the store's compare-and-set still orders writes
 * across processes). Each key's record also remembers the last entry written under it while anyone holds
 * or waits for it, so that the next writer starts from it rather than from a stale copy.
 *
 * @internal
 */
import * as Effect from "effect/Effect"

interface Slot<E> {
  readonly waiting: Array<() => void>
  latest: E | undefined
}

export interface KeyedLock<E> {
  /** Runs `f` alone among the holders of `key`, with the last entry written under it, if any. */
  readonly with: <A, Err, R>(
    key: string,
    f: (slot: { latest: E | undefined }) => Effect.Effect<A, Err, R>
  ) => Effect.Effect<A, Err, R>
}

export const make = <E>(): KeyedLock<E> => {
  const slots = new Map<string, Slot<E>>()
  // Acquisition runs uninterruptibly (acquireUseRelease), so a waiter always gets its turn and releases it.
  const acquire = (key: string) =>
    Effect.async<Slot<E>>((resume) => {
      const slot = slots.get(key)
      if (slot === undefined) {
        const created: Slot<E> = { waiting: [], latest: undefined }
        slots.set(key, created)
        resume(Effect.succeed(created))
      } else {
        slot.waiting.push(() => resume(Effect.succeed(slot)))
      }
    })
  const release = (key: string, slot: Slot<E>) =>
    Effect.sync(() => {
      const next = slot.waiting.shift()
      if (next !== undefined) next()
      else slots.delete(key)
    })
  return {
    with: (key, f) => Effect.acquireUseRelease(acquire(key), f, (slot) => release(key, slot))
  }
}
