/**
 * The cases of compare-and-set: an "update" writes only over the version it was made from.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import { farFuture, fartherFuture, newEntry, newKey, newUser, nextVersion } from "./fixtures.js"

const testCase = Case.of("compare-and-set")

/**
 * The cases of the clause "compare-and-set".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "an update with a stale version is refused and leaves the entry, its expiry and its listing unchanged",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const key = newKey(user)
      const created = newEntry()
      yield* Assert.equal(yield* store.save(key, created, "create"), true)
      const stale = (version: number) => newEntry({ version, expiresAt: fartherFuture, data: { stale: version } })
      // the stored version (made without counting it), two ahead (one skipped), and far off
      for (const version of [0, 2, 10, 11]) {
        yield* Assert.equal(yield* store.save(key, stale(version), "update"), false)
      }
      yield* Assert.equal(yield* store.fetch(key), Option.some(created))
      // no refused update moved the expiry: the entry is listed until its own, not after it
      yield* Assert.equal(yield* store.list(user, farFuture - 1), [{ key, entry: created }])
      yield* Assert.equal(yield* store.list(user, farFuture), [])

      const updated = nextVersion(created, { data: { updated: true } })
      yield* Assert.equal(yield* store.save(key, updated, "update"), true)
      // now 1 is the stored version, 0 is behind it, 3 two ahead; 12 and 21 are far off
      for (const version of [1, 0, 3, 12, 21]) {
        yield* Assert.equal(yield* store.save(key, stale(version), "update"), false)
      }
      yield* Assert.equal(yield* store.fetch(key), Option.some(updated))
      yield* Assert.equal(yield* store.list(user, farFuture - 1), [{ key, entry: updated }])
      yield* Assert.equal(yield* store.list(user, farFuture), [])
    })
  ),

  testCase(
    "of two updates made from the same read, the first wins; the other must be made again from a new read",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const key = newKey()
      yield* Assert.equal(yield* store.save(key, newEntry(), "create"), true)
      const read = yield* Assert.present(yield* store.fetch(key))
      const first = nextVersion(read, { data: { by: "first" } })
      const second = nextVersion(read, { expiresAt: fartherFuture, data: { by: "second" } })
      yield* Assert.equal(first.version, 1)
      yield* Assert.equal(second.version, 1)
      yield* Assert.equal(yield* store.save(key, first, "update"), true)
      yield* Assert.equal(yield* store.save(key, second, "update"), false)
      yield* Assert.equal(yield* store.fetch(key), Option.some(first))

      const reread = yield* Assert.present(yield* store.fetch(key))
      const retried = nextVersion(reread, { expiresAt: fartherFuture, data: { by: "second" } })
      yield* Assert.equal(retried.version, 2)
      yield* Assert.equal(yield* store.save(key, retried, "update"), true)
      yield* Assert.equal(yield* store.fetch(key), Option.some(retried))
      // the first, sent again, is now behind the stored version
      yield* Assert.equal(yield* store.save(key, first, "update"), false)
      yield* Assert.equal(yield* store.fetch(key), Option.some(retried))
    })
  ),

  testCase(
    "a chain of updates with consecutive versions all succeed, and versions compare whole",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const key = newKey(user)
      let current = newEntry()
      yield* Assert.equal(yield* store.save(key, current, "create"), true)
      for (let step = 1; step <= 25; step++) {
        const next = nextVersion(current, { lastSeenAt: current.lastSeenAt + step, data: { step } })
        yield* Assert.equal(next.version, step)
        yield* Assert.equal(yield* store.save(key, next, "update"), true)
        yield* Assert.equal(yield* store.fetch(key), Option.some(next))
        current = next
      }
      // stored 25: besides 25 and 27, version 3 expects 2, its leading digit, and 251 expects 250, which
      // begins with it
      for (const version of [25, 27, 3, 251]) {
        yield* Assert.equal(yield* store.save(key, newEntry({ version, data: { stale: version } }), "update"), false)
      }
      yield* Assert.equal(yield* store.fetch(key), Option.some(current))
      yield* Assert.equal(yield* store.list(user, farFuture - 1), [{ key, entry: current }])
    })
  ),

  testCase(
    "create keeps any version, and updates follow it up to the largest safe integer",
    Effect.gen(function*() {
      const store = yield* Store.Store
      for (const version of [2 ** 40, Number.MAX_SAFE_INTEGER - 1]) {
        const key = newKey()
        const created = newEntry({ version })
        yield* Assert.equal(yield* store.save(key, created, "create"), true)
        yield* Assert.equal(yield* store.fetch(key), Option.some(created))
        yield* Assert.equal(yield* store.save(key, newEntry({ version: version - 1 }), "update"), false)
        yield* Assert.equal(yield* store.save(key, newEntry({ version }), "update"), false)
        const updated = nextVersion(created, { data: { updated: true } })
        yield* Assert.equal(yield* store.save(key, updated, "update"), true)
        yield* Assert.equal(yield* store.fetch(key), Option.some(updated))
      }
    })
  ),

  testCase(
    "of concurrent updates made from one read and fired together, exactly one wins, round after round",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const key = newKey(user)
      yield* Assert.equal(yield* store.save(key, newEntry(), "create"), true)
      for (let round = 1; round <= 5; round++) {
        const read = yield* Assert.present(yield* store.fetch(key))
        yield* Assert.equal(read.version, round - 1)
        // each with its own expiry, so that the listing shows whose write it follows
        const candidates = Array.from(
          { length: 20 },
          (_, i) => nextVersion(read, { expiresAt: farFuture + round * 100 + i, data: { round, i } })
        )
        const results = yield* Effect.forEach(candidates, (entry) => store.save(key, entry, "update"), {
          concurrency: "unbounded"
        })
        yield* Assert.equal(results.filter((wrote) => wrote).length, 1)
        const winner = candidates[results.indexOf(true)]!
        yield* Assert.equal(yield* store.fetch(key), Option.some(winner))
        yield* Assert.equal(yield* store.list(user, winner.expiresAt - 1), [{ key, entry: winner }])
        yield* Assert.equal(yield* store.list(user, winner.expiresAt), [])
      }
    })
  )
]
