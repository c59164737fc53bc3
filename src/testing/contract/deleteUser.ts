/**
 * The cases of deleteUser: all of a user's sessions, but the one kept.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import {
  create,
  farFuture,
  fartherFuture,
  newEntry,
  newKey,
  newUser,
  nextVersion,
  randomPart,
  swapCase
} from "./fixtures.js"

const testCase = Case.of("deleteUser")

/**
 * The cases of the clause "deleteUser".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "deleteUser deletes all of a user's sessions, answers how many, and leaves other users alone",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const mine = Array.from({ length: 4 }, (): Store.Listed => ({ key: newKey(user), entry: newEntry() }))
      const others: ReadonlyArray<Store.Listed> = [
        { key: newKey(swapCase(user)), entry: newEntry() },
        { key: newKey(`${user}x`), entry: newEntry() },
        { key: { user: newUser(), session: mine[0]!.key.session }, entry: newEntry() }
      ]
      yield* create(store, [...mine, ...others])
      yield* Assert.equal(yield* store.deleteUser(user), 4)
      for (const { key } of mine) yield* Assert.equal(yield* store.fetch(key), Option.none())
      yield* Assert.equal(yield* store.list(user, farFuture - 1), [])
      for (const { entry, key } of others) {
        yield* Assert.equal(yield* store.fetch(key), Option.some(entry))
        yield* Assert.equal(yield* store.list(key.user, farFuture - 1), [{ key, entry }])
      }
      yield* Assert.equal(yield* store.deleteUser(user), 0)
    })
  ),

  testCase(
    "deleteUser with except keeps exactly that session",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const mine = Array.from({ length: 4 }, (): Store.Listed => ({ key: newKey(user), entry: newEntry() }))
      yield* create(store, mine)
      const kept = mine[2]!
      yield* Assert.equal(yield* store.deleteUser(user, kept.key.session), 3)
      for (const { key } of mine) {
        yield* Assert.equal(yield* store.fetch(key), key === kept.key ? Option.some(kept.entry) : Option.none())
      }
      yield* Assert.equal(yield* store.list(user, farFuture - 1), [kept])
      // nothing left to delete but the one kept
      yield* Assert.equal(yield* store.deleteUser(user, kept.key.session), 0)
      yield* Assert.equal(yield* store.fetch(kept.key), Option.some(kept.entry))
      yield* Assert.equal(yield* store.deleteUser(user), 1)
      yield* Assert.equal(yield* store.fetch(kept.key), Option.none())
    })
  ),

  testCase(
    "deleteUser with an except that is none of the user's sessions deletes them all",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const mine = Array.from({ length: 3 }, (): Store.Listed => ({ key: newKey(user), entry: newEntry() }))
      const elsewhere: Store.Listed = { key: newKey(), entry: newEntry() }
      yield* create(store, [...mine, elsewhere])
      yield* Assert.equal(yield* store.deleteUser(user, elsewhere.key.session), 3)
      yield* Assert.equal(yield* store.deleteUser(user, swapCase(mine[0]!.key.session)), 0)
      for (const { key } of mine) yield* Assert.equal(yield* store.fetch(key), Option.none())
      yield* Assert.equal(yield* store.fetch(elsewhere.key), Option.some(elsewhere.entry))
    })
  ),

  testCase(
    "deleteUser of an unknown user answers 0",
    Effect.gen(function*() {
      const store = yield* Store.Store
      yield* Assert.equal(yield* store.deleteUser(newUser()), 0)
      yield* Assert.equal(yield* store.deleteUser(newUser(), randomPart()), 0)
    })
  ),

  testCase(
    "after deleteUser, updates of the deleted sessions are refused and new sessions are listed alone",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const old: Store.Listed = { key: newKey(user), entry: newEntry() }
      yield* create(store, [old])
      yield* Assert.equal(yield* store.deleteUser(user), 1)
      yield* Assert.equal(
        yield* store.save(old.key, nextVersion(old.entry, { expiresAt: fartherFuture }), "update"),
        false
      )
      yield* Assert.equal(yield* store.fetch(old.key), Option.none())
      const fresh: Store.Listed = { key: newKey(user), entry: newEntry() }
      yield* create(store, [fresh])
      yield* Assert.equal(yield* store.list(user, farFuture - 1), [fresh])
    })
  )
]
