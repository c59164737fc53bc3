/**
 * The cases of list: a user's live entries, by the `now` it is given.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type * as Store from "../../Store.js"
import * as Case from "./Case.js"
import * as F from "./fixtures.js"
import * as Step from "./steps.js"

const testCase = Case.of("list")

// near the `now` the cases pass, far from the real clock, so that no backend expires an entry meanwhile
const now = F.farFuture - 60_000

/**
 * The cases of the clause "list".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "list of a user never written is empty",
    (store) =>
      Effect.all([Step.lists(store, F.newUser(), 0, []), Step.lists(store, F.newUser(), F.farFuture, [])], {
        discard: true
      })
  ),

  testCase(
    "list answers exactly the user's live entries with their keys, and no other user's",
    (store, user) =>
      Effect.gen(function*() {
        const mine = F.sessionsOf(
          user,
          5,
          (i) => F.newEntry({ userId: "me", createdAt: F.farFuture - 10_000 + i, data: { n: i } })
        )
        // neighbours whose user part differs by case, by a suffix or completely, some with the same session part
        const others = F.neighbours(user, mine[0]!.key.session)
        yield* F.create(store, [...mine, ...others])
        yield* Step.lists(store, user, F.farFuture - 1, mine)
        for (const other of others) yield* Step.lists(store, other.key.user, F.farFuture - 1, [other])
      })
  ),

  testCase(
    "list leaves out entries whose expiresAt <= now, by the now it is given",
    (store, user) =>
      Effect.gen(function*() {
        const soon = F.session(user, F.newEntry({ createdAt: now - 1, expiresAt: now + 1_000 }))
        const later = F.session(user, F.newEntry({ createdAt: now - 1, expiresAt: F.farFuture }))
        yield* F.create(store, [soon, later])
        yield* Step.lists(store, user, now, [soon, later])
        yield* Step.lists(store, user, now + 999, [soon, later])
        // both entries are still stored: only `list` leaves the expired one out
        yield* Step.fetches(store, soon.key, soon.entry)
        for (const at of [now + 1_000, now + 5_000]) yield* Step.lists(store, user, at, [later])
        yield* Step.lists(store, user, F.farFuture, [])
      })
  ),

  testCase("a deleted session is no longer listed; the others are", (store, user) =>
    Effect.gen(function*() {
      const [first, second, third] = F.sessionsOf(user, 3) as [Store.Listed, Store.Listed, Store.Listed]
      yield* F.create(store, [first, second, third])
      yield* store.delete(second.key)
      yield* Step.lists(store, user, F.farFuture - 1, [first, third])
      yield* store.delete(first.key)
      yield* store.delete(third.key)
      yield* Step.lists(store, user, F.farFuture - 1, [])
    })),

  testCase(
    "update keeps the entry listed with its new expiry, also past the old one",
    (store, user) =>
      Effect.gen(function*() {
        const key = F.newKey(user)
        const before = F.newEntry({ createdAt: now - 1, expiresAt: now + 1_000 })
        const after: Store.Listed = {
          key,
          entry: F.nextVersion(before, { extendedUntil: F.farFuture, expiresAt: F.farFuture, data: { extended: true } })
        }
        const other = F.session(user)
        yield* F.create(store, [{ key, entry: before }, other])
        yield* Step.saves(store, after, "update", true)
        yield* Step.lists(store, user, now, [after, other])
        // the old expiry has passed, the new one has not
        yield* Step.lists(store, user, now + 5_000, [after, other])
        yield* Step.fetches(store, key, after.entry)
      })
  )
]
