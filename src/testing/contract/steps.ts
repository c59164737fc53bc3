/**
 * The steps several contract cases take: each asks the store one thing and checks its answer, failing with a
 * {@link Assert.ContractViolation} when the answer breaks the contract.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as F from "./fixtures.js"

/**
 * `save(key, entry, mode, cap)` answers `wrote`: true when it wrote, false when it refused.
 *
 * @since 0.1.0
 * @category steps
 */
export const saves = (
  store: Store.StoreService,
  write: Store.Listed,
  mode: "create" | "update",
  wrote: boolean,
  cap?: Store.Cap
) => Effect.flatMap(store.save(write.key, write.entry, mode, cap), (answer) => Assert.equal(answer, wrote, mode))

/**
 * Saves `write` with "create", checks that it was written, and answers it.
 *
 * @since 0.1.0
 * @category steps
 */
export const created = (store: Store.StoreService, write: Store.Listed): Effect.Effect<
  Store.Listed,
  Assert.ContractViolation | Store.StoreError
> => Effect.as(saves(store, write, "create", true), write)

/**
 * `fetch(key)` answers `entry` as saved, or none when `entry` is undefined.
 *
 * @since 0.1.0
 * @category steps
 */
export const fetches = (store: Store.StoreService, key: Store.Key, entry: Store.Entry | undefined, what?: string) =>
  Effect.flatMap(store.fetch(key), (answer) => Assert.equal(answer, Option.fromNullable(entry), what))

/**
 * Of `keys`, `fetch` answers exactly `expected` (in any order), and none for the others.
 *
 * @since 0.1.0
 * @category steps
 */
export const fetchesOnly = (
  store: Store.StoreService,
  keys: ReadonlyArray<Store.Key>,
  expected: ReadonlyArray<Store.Listed>,
  what?: string
) => Effect.flatMap(F.fetchable(store, keys), (found) => Assert.equal(found, F.bySession(expected), what))

/**
 * `list(user, now)` answers exactly `expected`, in any order.
 *
 * @since 0.1.0
 * @category steps
 */
export const lists = (
  store: Store.StoreService,
  user: string,
  now: number,
  expected: ReadonlyArray<Store.Listed>,
  what?: string
) => Effect.flatMap(store.list(user, now), (listed) => Assert.equal(F.bySession(listed), F.bySession(expected), what))

/**
 * Saves each entry with "create", checking that each was written, and then that each is fetched back as saved.
 *
 * @since 0.1.0
 * @category steps
 */
export const roundTrip = (store: Store.StoreService, writes: ReadonlyArray<Store.Listed>) =>
  Effect.zipRight(
    F.create(store, writes),
    Effect.forEach(writes, ({ entry, key }) => fetches(store, key, entry), { discard: true })
  )

/**
 * `deleteUser(user, except)` answers `deleted`, the number of live sessions it deleted.
 *
 * @since 0.1.0
 * @category steps
 */
export const deletesUser = (store: Store.StoreService, user: string, except: string | undefined, deleted: number) =>
  Effect.flatMap(
    except === undefined ? store.deleteUser(user) : store.deleteUser(user, except),
    (answer) => Assert.equal(answer, deleted, "deleteUser's answer")
  )
