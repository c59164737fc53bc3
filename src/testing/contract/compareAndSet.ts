/**
 * The cases of compare-and-set: an "update" writes only over the version it was made from.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import * as F from "./fixtures.js"
import * as Step from "./steps.js"

const testCase = Case.of("compare-and-set")

/** An "update" of `key` with each of `versions` (its entry made by `entry`) is refused. */
const refusesVersions = (
  store: Store.StoreService,
  key: Store.Key,
  versions: ReadonlyArray<number>,
  entry: (version: number) => Store.Entry
) => Effect.forEach(versions, (version) => Step.saves(store, { key, entry: entry(version) }, "update", false))

/** `write` is stored as it is, and listed until its own expiry but not after it. */
const storedUntilItsExpiry = (store: Store.StoreService, write: Store.Listed) =>
  Effect.all([
    Step.fetches(store, write.key, write.entry),
    Step.lists(store, write.key.user, write.entry.expiresAt - 1, [write]),
    Step.lists(store, write.key.user, write.entry.expiresAt, [])
  ], { discard: true })

/**
 * The cases of the clause "compare-and-set".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "an update with a stale version is refused and leaves the entry, its expiry and its listing unchanged",
    (store, user) =>
      Effect.gen(function*() {
        const { entry: created, key } = F.session(user)
        yield* F.create(store, [{ key, entry: created }])
        const stale = (version: number) => F.newEntry({ version, expiresAt: F.fartherFuture, data: { stale: version } })
        // the stored version (made without counting it), two ahead (one skipped), and far off
        yield* refusesVersions(store, key, [0, 2, 10, 11], stale)
        // no refused update moved the expiry: the entry is listed until its own, not after it
        yield* storedUntilItsExpiry(store, { key, entry: created })

        const updated = F.nextVersion(created, { data: { updated: true } })
        yield* Step.saves(store, { key, entry: updated }, "update", true)
        // now 1 is the stored version, 0 is behind it, 3 two ahead; 12 and 21 are far off
        yield* refusesVersions(store, key, [1, 0, 3, 12, 21], stale)
        yield* storedUntilItsExpiry(store, { key, entry: updated })
      })
  ),

  testCase(
    "of two updates made from the same read, the first wins; the other must be made again from a new read",
    (store, user) =>
      Effect.gen(function*() {
        const { key } = yield* Step.created(store, F.session(user))
        const read = yield* Assert.present(yield* store.fetch(key))
        const first = F.nextVersion(read, { data: { by: "first" } })
        const second = F.nextVersion(read, { expiresAt: F.fartherFuture, data: { by: "second" } })
        yield* Assert.equal([first.version, second.version], [1, 1])
        yield* Step.saves(store, { key, entry: first }, "update", true)
        yield* Step.saves(store, { key, entry: second }, "update", false)
        yield* Step.fetches(store, key, first)

        const reread = yield* Assert.present(yield* store.fetch(key))
        const retried = F.nextVersion(reread, { expiresAt: F.fartherFuture, data: { by: "second" } })
        yield* Assert.equal(retried.version, 2)
        yield* Step.saves(store, { key, entry: retried }, "update", true)
        yield* Step.fetches(store, key, retried)
        // the first, sent again, is now behind the stored version
        yield* Step.saves(store, { key, entry: first }, "update", false)
        yield* Step.fetches(store, key, retried)
      })
  ),

  testCase(
    "a chain of updates with consecutive versions all succeed, and versions compare whole",
    (store, user) =>
      Effect.gen(function*() {
        const key = F.newKey(user)
        let current = F.newEntry()
        yield* F.create(store, [{ key, entry: current }])
        for (let step = 1; step <= 25; step++) {
          const next = F.nextVersion(current, { lastSeenAt: current.lastSeenAt + step, data: { step } })
          yield* Assert.equal(next.version, step)
          yield* Step.saves(store, { key, entry: next }, "update", true)
          yield* Step.fetches(store, key, next)
          current = next
        }
        // stored 25: besides 25 and 27, version 3 expects 2, its leading digit, and 251 expects 250, which
        // begins with it
        yield* refusesVersions(
          store,
          key,
          [25, 27, 3, 251],
          (version) => F.newEntry({ version, data: { stale: version } })
        )
        yield* Step.fetches(store, key, current)
        yield* Step.lists(store, key.user, F.farFuture - 1, [{ key, entry: current }])
      })
  ),

  testCase(
    "create keeps any version, and updates follow it up to the largest safe integer",
    (store) =>
      Effect.forEach([2 ** 40, Number.MAX_SAFE_INTEGER - 1], (version) =>
        Effect.gen(function*() {
          const created: Store.Listed = { key: F.newKey(), entry: F.newEntry({ version }) }
          yield* Step.roundTrip(store, [created])
          yield* refusesVersions(store, created.key, [version - 1, version], (v) => F.newEntry({ version: v }))
          const updated = F.nextVersion(created.entry, { data: { updated: true } })
          yield* Step.saves(store, { key: created.key, entry: updated }, "update", true)
          yield* Step.fetches(store, created.key, updated)
        }), { discard: true })
  ),

  testCase(
    "of concurrent updates made from one read and fired together, exactly one wins, round after round",
    (store, user) =>
      Effect.gen(function*() {
        const { key } = yield* Step.created(store, F.session(user))
        for (let round = 1; round <= 5; round++) {
          const read = yield* Assert.present(yield* store.fetch(key))
          yield* Assert.equal(read.version, round - 1)
          // each with its own expiry, so that the listing shows whose write it follows
          const candidates = Array.from(
            { length: 20 },
            (_, i) => F.nextVersion(read, { expiresAt: F.farFuture + round * 100 + i, data: { round, i } })
          )
          const results = yield* Effect.forEach(candidates, (entry) => store.save(key, entry, "update"), {
            concurrency: "unbounded"
          })
          yield* Assert.equal(results.filter((wrote) => wrote).length, 1)
          yield* storedUntilItsExpiry(store, { key, entry: candidates[results.indexOf(true)]! })
        }
      })
  )
]
