/**
 * The cases of deleteUser: all of a user's sessions, but the one kept.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Store from "../../Store.js"
import * as Case from "./Case.js"
import * as F from "./fixtures.js"
import * as Step from "./steps.js"

const testCase = Case.of("deleteUser")

/** None of `writes` is fetched any longer. */
const allGone = (store: Store.StoreService, writes: ReadonlyArray<Store.Listed>) =>
  Effect.forEach(writes, ({ key }) => Step.fetches(store, key, undefined), { discard: true })

/**
 * The cases of the clause "deleteUser".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "deleteUser deletes all of a user's sessions, answers how many, and leaves other users alone",
    (store, user) =>
      Effect.gen(function*() {
        const mine = F.sessionsOf(user, 4)
        const others = F.neighbours(user, mine[0]!.key.session)
        yield* F.create(store, [...mine, ...others])
        yield* Step.deletesUser(store, user, undefined, 4)
        yield* allGone(store, mine)
        yield* Step.lists(store, user, F.farFuture - 1, [])
        for (const other of others) {
          yield* Step.fetches(store, other.key, other.entry)
          yield* Step.lists(store, other.key.user, F.farFuture - 1, [other])
        }
        yield* Step.deletesUser(store, user, undefined, 0)
      })
  ),

  testCase("deleteUser with except keeps exactly that session", (store, user) =>
    Effect.gen(function*() {
      const mine = F.sessionsOf(user, 4)
      yield* F.create(store, mine)
      const kept = mine[2]!
      yield* Step.deletesUser(store, user, kept.key.session, 3)
      yield* Step.fetchesOnly(store, mine.map(({ key }) => key), [kept])
      yield* Step.lists(store, user, F.farFuture - 1, [kept])
      // nothing left to delete but the one kept
      yield* Step.deletesUser(store, user, kept.key.session, 0)
      yield* Step.fetches(store, kept.key, kept.entry)
      yield* Step.deletesUser(store, user, undefined, 1)
      yield* Step.fetches(store, kept.key, undefined)
    })),

  testCase(
    "deleteUser with an except that is none of the user's sessions deletes them all",
    (store, user) =>
      Effect.gen(function*() {
        const mine = F.sessionsOf(user, 3)
        const elsewhere: Store.Listed = { key: F.newKey(), entry: F.newEntry() }
        yield* F.create(store, [...mine, elsewhere])
        yield* Step.deletesUser(store, user, elsewhere.key.session, 3)
        yield* Step.deletesUser(store, user, F.swapCase(mine[0]!.key.session), 0)
        yield* allGone(store, mine)
        yield* Step.fetches(store, elsewhere.key, elsewhere.entry)
      })
  ),

  testCase("deleteUser of an unknown user answers 0", (store) =>
    Effect.all([
      Step.deletesUser(store, F.newUser(), undefined, 0),
      Step.deletesUser(store, F.newUser(), F.randomPart(), 0)
    ], { discard: true })),

  testCase(
    "after deleteUser, updates of the deleted sessions are refused and new sessions are listed alone",
    (store, user) =>
      Effect.gen(function*() {
        const old: Store.Listed = { key: F.newKey(user), entry: F.newEntry() }
        yield* F.create(store, [old])
        yield* Step.deletesUser(store, user, undefined, 1)
        yield* Step.saves(
          store,
          { ...old, entry: F.nextVersion(old.entry, { expiresAt: F.fartherFuture }) },
          "update",
          false
        )
        yield* Step.fetches(store, old.key, undefined)
        const fresh: Store.Listed = { key: F.newKey(user), entry: F.newEntry() }
        yield* F.create(store, [fresh])
        yield* Step.lists(store, user, F.farFuture - 1, [fresh])
      })
  )
]
