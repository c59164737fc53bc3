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
import type * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import * as F from "./fixtures.js"
import * as Step from "./steps.js"

const retained = Case.of("retention")
const expiry = Case.of("expiry")

/** Saves `entry` with "create" and leaves it to the store whether it writes an entry already forgotten. */
const saveForgotten = (store: Store.StoreService, key: Store.Key, entry: Store.Entry) =>
  Effect.asVoid(store.save(key, entry, "create"))

/**
 * Saves an entry that the store must forget half a second later, with a live session of the same user
 * beside it when `beside` is given: fetched at once it is answered, fetched after that it is none.
 */
const forgottenWhileStored = (beside: boolean): Case.Body => (store, user) =>
  Effect.gen(function*() {
    const key = F.newKey(user)
    const live = F.session(user)
    if (beside) yield* F.create(store, [live])
    const now = yield* Clock.currentTimeMillis
    const entry = F.forgottenIn(now, 500)
    const forgetAt = now + 500
    yield* F.create(store, [{ key, entry }])
    const first = yield* store.fetch(key)
    // the premise, unless the store took longer than that to answer (then none is right too)
    if ((yield* Clock.currentTimeMillis) < forgetAt - 50) {
      yield* Assert.equal(first, Option.some(entry), "fetch before expiresAt + expiredRetention")
    }
    yield* Effect.sleep(Math.max(0, forgetAt + 400 - (yield* Clock.currentTimeMillis)))
    yield* Step.fetches(store, key, undefined, "fetch once expiresAt + expiredRetention has passed")
    if (beside) yield* Step.fetches(store, live.key, live.entry, "the live session beside it")
  })

/**
 * Saves an entry already past expiresAt + expiredRetention, with a live session of the same user beside it
 * when `beside` is given: fetch answers none for it, and list only the live one.
 */
const savedForgotten = (beside: boolean): Case.Body => (store, user) =>
  Effect.gen(function*() {
    const live = F.sessionsOf(user, beside ? 1 : 0)
    const key = F.newKey(user)
    yield* F.create(store, live)
    yield* saveForgotten(store, key, F.forgottenIn(yield* Clock.currentTimeMillis, -60_000))
    yield* Step.fetches(store, key, undefined, "fetch of an entry past its retention")
    for (const { entry, key } of live) yield* Step.fetches(store, key, entry, "the live session beside it")
    yield* Step.lists(store, user, yield* Clock.currentTimeMillis, live, "list")
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
    (store, user) =>
      Effect.gen(function*() {
        const expired = F.session(user, F.expiredAMinuteAgo(yield* Clock.currentTimeMillis))
        const live = F.session(user)
        yield* F.create(store, [expired, live])
        yield* Step.fetches(store, expired.key, expired.entry)
        yield* Step.lists(store, user, yield* Clock.currentTimeMillis, [live])
        // it is still a stored entry: an update follows its version, a create of its key is refused
        const extended = F.nextVersion(expired.entry, { data: { extended: true } })
        yield* Step.saves(store, { key: expired.key, entry: F.newEntry() }, "create", false)
        yield* Step.saves(store, { key: expired.key, entry: extended }, "update", true)
        yield* Step.fetches(store, expired.key, extended)
      })
  ),
  expiry("fetch answers none for an entry saved already past expiresAt + expiredRetention", savedForgotten(false)),
  expiry(
    "fetch answers none for an entry saved already past expiresAt + expiredRetention beside a live one",
    savedForgotten(true)
  ),
  expiry("fetch answers none once an entry passes expiresAt + expiredRetention", forgottenWhileStored(false)),
  expiry(
    "fetch answers none once an entry passes expiresAt + expiredRetention beside a live one",
    forgottenWhileStored(true)
  ),
  expiry(
    "deleteUser deletes expired entries too, and answers only how many live ones it deleted",
    (store, user) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const live = F.sessionsOf(user, 3)
        const expired = F.sessionsOf(user, 2, () => F.expiredAMinuteAgo(now))
        const forgotten = F.newKey(user)
        yield* F.create(store, [...live, ...expired])
        yield* saveForgotten(store, forgotten, F.forgottenIn(now, -60_000))
        const keys = [...live, ...expired].map(({ key }) => key).concat([forgotten])
        yield* Step.deletesUser(store, user, live[0]!.key.session, 2)
        yield* Step.fetchesOnly(store, keys, [live[0]!], "fetchable after deleteUser")
        yield* F.create(store, F.sessionsOf(user, 1, () => F.expiredAMinuteAgo(now)))
        yield* Step.deletesUser(store, user, undefined, 1)
        yield* Step.fetchesOnly(store, keys, [], "fetchable after deleteUser")
        yield* Step.deletesUser(store, user, undefined, 0)
      })
  )
]
