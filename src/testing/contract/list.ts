/**
 * The cases of list: a user's live entries, by the `now` it is given.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import { bySession, create, farFuture, newEntry, newKey, newUser, nextVersion, swapCase } from "./fixtures.js"

const testCase = Case.of("list")

/**
 * The cases of the clause "list".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "list of a user never written is empty",
    Effect.gen(function*() {
      const store = yield* Store.Store
      yield* Assert.equal(yield* store.list(newUser(), 0), [])
      yield* Assert.equal(yield* store.list(newUser(), farFuture), [])
    })
  ),

  testCase(
    "list answers exactly the user's live entries with their keys, and no other user's",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const mine = Array.from({ length: 5 }, (_, i): Store.Listed => ({
        key: newKey(user),
        entry: newEntry({ userId: "me", createdAt: farFuture - 10_000 + i, data: { n: i } })
      }))
      // neighbours whose user part differs by case, by a suffix or completely, some with the same session part
      const others: ReadonlyArray<Store.Listed> = [
        { key: newKey(swapCase(user)), entry: newEntry() },
        { key: newKey(`${user}x`), entry: newEntry() },
        { key: newKey(user.slice(0, -1)), entry: newEntry() },
        { key: { user: newUser(), session: mine[0]!.key.session }, entry: newEntry() }
      ]
      yield* create(store, [...mine, ...others])
      yield* Assert.equal(bySession(yield* store.list(user, farFuture - 1)), bySession(mine))
      for (const { entry, key } of others) {
        yield* Assert.equal(yield* store.list(key.user, farFuture - 1), [{ key, entry }])
      }
    })
  ),

  testCase(
    "list leaves out entries whose expiresAt <= now, by the now it is given",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      // near the `now` passed below, far from the real clock, so that no backend expires it meanwhile
      const now = farFuture - 60_000
      const soon: Store.Listed = { key: newKey(user), entry: newEntry({ createdAt: now - 1, expiresAt: now + 1_000 }) }
      const later: Store.Listed = { key: newKey(user), entry: newEntry({ createdAt: now - 1, expiresAt: farFuture }) }
      yield* create(store, [soon, later])
      yield* Assert.equal(bySession(yield* store.list(user, now)), bySession([soon, later]))
      yield* Assert.equal(bySession(yield* store.list(user, now + 999)), bySession([soon, later]))
      // both entries are still stored: only `list` leaves the expired one out
      yield* Assert.equal(yield* store.fetch(soon.key), Option.some(soon.entry))
      yield* Assert.equal(yield* store.list(user, now + 1_000), [later])
      yield* Assert.equal(yield* store.list(user, now + 5_000), [later])
      yield* Assert.equal(yield* store.list(user, farFuture), [])
    })
  ),

  testCase(
    "a deleted session is no longer listed; the others are",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const writes = Array.from({ length: 3 }, (): Store.Listed => ({ key: newKey(user), entry: newEntry() }))
      yield* create(store, writes)
      yield* store.delete(writes[1]!.key)
      yield* Assert.equal(bySession(yield* store.list(user, farFuture - 1)), bySession([writes[0]!, writes[2]!]))
      yield* store.delete(writes[0]!.key)
      yield* store.delete(writes[2]!.key)
      yield* Assert.equal(yield* store.list(user, farFuture - 1), [])
    })
  ),

  testCase(
    "update keeps the entry listed with its new expiry, also past the old one",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const now = farFuture - 60_000
      const key = newKey(user)
      const before = newEntry({ createdAt: now - 1, expiresAt: now + 1_000 })
      const after = nextVersion(before, {
        extendedUntil: farFuture,
        expiresAt: farFuture,
        data: { extended: true }
      })
      const other: Store.Listed = { key: newKey(user), entry: newEntry() }
      yield* create(store, [{ key, entry: before }, other])
      yield* Assert.equal(yield* store.save(key, after, "update"), true)
      yield* Assert.equal(bySession(yield* store.list(user, now)), bySession([{ key, entry: after }, other]))
      // the old expiry has passed, the new one has not
      yield* Assert.equal(bySession(yield* store.list(user, now + 5_000)), bySession([{ key, entry: after }, other]))
      yield* Assert.equal(yield* store.fetch(key), Option.some(after))
    })
  )
]
