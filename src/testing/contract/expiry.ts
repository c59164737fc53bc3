/**
 * The cases of retention and expiry: an expired entry is still answered for `Store.expiredRetention`, and
 * no longer once that has passed by the store's own clock. They use the real clock: entries that expired a
 * minute ago, entries saved already past their retention, and entries that pass it while the case waits
 * (about a second).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import {
  create,
  expiredAMinuteAgo,
  fetchable,
  forgottenIn,
  newEntry,
  newKey,
  newUser,
  nextVersion
} from "./fixtures.js"

const retained = Case.of("retention")
const expiry = Case.of("expiry")

/** Saves `entry` with "create" and leaves it to the store whether it writes an entry already forgotten. */
const saveForgotten = (store: Store.StoreService, key: Store.Key, entry: Store.Entry) =>
  Effect.asVoid(store.save(key, entry, "create"))

/**
 * Saves an entry that the store must forget half a second later, with a live session of the same user
 * beside it when `beside` is given: fetched at once it is answered, fetched after that it is none.
 */
const forgottenWhileStored = (beside: boolean) =>
  Effect.gen(function*() {
    const store = yield* Store.Store
    const user = newUser()
    const key = newKey(user)
    const live: Store.Listed = { key: newKey(user), entry: newEntry() }
    if (beside) yield* create(store, [live])
    const now = yield* Clock.currentTimeMillis
    const entry = forgottenIn(now, 500)
    const forgetAt = now + 500
    yield* create(store, [{ key, entry }])
    const first = yield* store.fetch(key)
    // the premise, unless the store took longer than that to answer (then none is right too)
    if ((yield* Clock.currentTimeMillis) < forgetAt - 50) {
      yield* Assert.equal(first, Option.some(entry), "fetch before expiresAt + expiredRetention")
    }
    yield* Effect.sleep(Math.max(0, forgetAt + 400 - (yield* Clock.currentTimeMillis)))
    yield* Assert.equal(yield* store.fetch(key), Option.none(), "fetch once expiresAt + expiredRetention has passed")
    if (beside) yield* Assert.equal(yield* store.fetch(live.key), Option.some(live.entry), "the live session beside it")
  })

/**
 * The cases of the clauses "retention" and "expiry".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  retained(
    "an entry stays fetchable for a while after its expiry, but list leaves it out",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const now = yield* Clock.currentTimeMillis
      const expired: Store.Listed = { key: newKey(user), entry: expiredAMinuteAgo(now) }
      const live: Store.Listed = { key: newKey(user), entry: newEntry() }
      yield* create(store, [expired, live])
      yield* Assert.equal(yield* store.fetch(expired.key), Option.some(expired.entry))
      yield* Assert.equal(yield* store.list(user, yield* Clock.currentTimeMillis), [live])
      // it is still a stored entry: an update follows its version, a create of its key is refused
      const extended = nextVersion(expired.entry, { data: { extended: true } })
      yield* Assert.equal(yield* store.save(expired.key, newEntry(), "create"), false)
      yield* Assert.equal(yield* store.save(expired.key, extended, "update"), true)
      yield* Assert.equal(yield* store.fetch(expired.key), Option.some(extended))
    })
  ),
  expiry(
    "fetch answers none for an entry saved already past expiresAt + expiredRetention",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      yield* saveForgotten(store, key, forgottenIn(yield* Clock.currentTimeMillis, -60_000))
      yield* Assert.equal(yield* store.fetch(key), Option.none(), "fetch of an entry past its retention")
      yield* Assert.equal(yield* store.list(key.user, yield* Clock.currentTimeMillis), [], "list")
    })
  ),
  expiry(
    "fetch answers none for an entry saved already past expiresAt + expiredRetention beside a live one",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const live: Store.Listed = { key: newKey(user), entry: newEntry() }
      const key = newKey(user)
      yield* create(store, [live])
      yield* saveForgotten(store, key, forgottenIn(yield* Clock.currentTimeMillis, -60_000))
      yield* Assert.equal(yield* store.fetch(key), Option.none(), "fetch of an entry past its retention")
      yield* Assert.equal(yield* store.fetch(live.key), Option.some(live.entry), "the live session beside it")
      yield* Assert.equal(yield* store.list(user, yield* Clock.currentTimeMillis), [live], "list")
    })
  ),
  expiry("fetch answers none once an entry passes expiresAt + expiredRetention", forgottenWhileStored(false)),
  expiry(
    "fetch answers none once an entry passes expiresAt + expiredRetention beside a live one",
    forgottenWhileStored(true)
  ),
  expiry(
    "deleteUser deletes expired entries too, and answers only how many live ones it deleted",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const now = yield* Clock.currentTimeMillis
      const live = Array.from({ length: 3 }, (): Store.Listed => ({ key: newKey(user), entry: newEntry() }))
      const expired = Array.from(
        { length: 2 },
        (): Store.Listed => ({ key: newKey(user), entry: expiredAMinuteAgo(now) })
      )
      const forgotten = newKey(user)
      yield* create(store, [...live, ...expired])
      yield* saveForgotten(store, forgotten, forgottenIn(now, -60_000))
      const keys = [...live, ...expired].map(({ key }) => key).concat([forgotten])
      yield* Assert.equal(yield* store.deleteUser(user, live[0]!.key.session), 2, "deleteUser's answer")
      yield* Assert.equal(yield* fetchable(store, keys), [live[0]!], "fetchable after deleteUser")
      yield* create(store, [{ key: newKey(user), entry: expiredAMinuteAgo(now) }])
      yield* Assert.equal(yield* store.deleteUser(user), 1, "deleteUser's answer")
      yield* Assert.equal(yield* fetchable(store, keys), [], "fetchable after deleteUser")
      yield* Assert.equal(yield* store.deleteUser(user), 0, "deleteUser's answer")
    })
  )
]
