/**
 * The cases of the races: `deleteUser` is atomic with respect to `save`, under many random interleavings.
 *
 * @since 0.1.0
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import type * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import * as F from "./fixtures.js"
import * as Step from "./steps.js"

const testCase = Case.of("races")

// the creates of each round of the revocation race
const racedCreates = 300

/** Runs `round` three times, each with a new user and `size` new sessions of it. */
const threeRounds = <E>(
  size: number,
  round: (user: string, writes: ReadonlyArray<Store.Listed>) => Effect.Effect<void, E>
) =>
  Effect.forEach([1, 2, 3], () => {
    const user = F.newUser()
    return round(user, F.sessionsOf(user, size))
  }, { discard: true })

/**
 * Fires `total` creates concurrently and calls `revoke` midway through them, for the tests that nothing
 * escapes a revocation. The first two thirds of the creates are spread over 20 ms and `revoke` is called
 * when a third of them have completed, so that some are still in flight or unsent when it is called (fired
 * at once, a pipelining client or a synchronous store would complete them all in one batch); the last third
 * start a millisecond after it is called, so that some creates follow it, and the very last one only once
 * it has returned, so that at least one certainly does (however slow the revocation's round trip).
 *
 * Answers each create's result (by index), the indexes of the creates that had completed when `revoke` was
 * called (recorded before calling it), and what `revoke` answered.
 *
 * @since 0.1.0
 * @category races
 */
export const revokeMidway = <A, E, R, B, E2, R2>(options: {
  readonly total: number
  readonly create: (index: number) => Effect.Effect<A, E, R>
  readonly revoke: Effect.Effect<B, E2, R2>
}): Effect.Effect<
  { readonly results: ReadonlyArray<A>; readonly before: ReadonlyArray<number>; readonly revoked: B },
  E | E2,
  R | R2
> =>
  Effect.gen(function*() {
    const { total } = options
    const early = Math.ceil(total * 2 / 3)
    const completed: Array<number> = []
    const midway = yield* Deferred.make<void>()
    const returned = yield* Deferred.make<void>()
    const creates = Effect.forEach(
      Array.from({ length: total }, (_, i) => i),
      (i) =>
        (i < early
          ? Effect.sleep(Crypto.randomInt(20))
          : i === total - 1
          ? Deferred.await(returned)
          : Effect.zipRight(Deferred.await(midway), Effect.sleep(1)))
          .pipe(
            Effect.zipRight(options.create(i)),
            Effect.tap(() =>
              Effect.suspend(() => {
                completed.push(i)
                return completed.length === Math.ceil(total / 3) ? Deferred.succeed(midway, undefined) : Effect.void
              })
            )
          ),
      { concurrency: "unbounded" }
    )
    const revoke = Effect.gen(function*() {
      yield* Deferred.await(midway)
      // recorded before the call: whatever completes from here on may or may not survive it
      const before = completed.slice()
      return { before, revoked: yield* Effect.ensuring(options.revoke, Deferred.succeed(returned, undefined)) }
    })
    const [results, { before, revoked }] = yield* Effect.all([creates, revoke], { concurrency: "unbounded" })
    return { results, before, revoked }
  })

/**
 * The cases of the clause "races".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "nothing escapes revocation: every create completed before deleteUser was called is gone after it",
    (store) =>
      threeRounds(racedCreates, (user, writes) =>
        Effect.gen(function*() {
          const { before, results, revoked: deleted } = yield* revokeMidway({
            total: racedCreates,
            create: (i) => store.save(writes[i]!.key, writes[i]!.entry, "create"),
            revoke: store.deleteUser(user)
          })
          yield* Assert.equal(results.every((wrote) => wrote), true)
          const escaped = yield* F.fetchable(store, before.map((i) => writes[i]!.key))
          yield* Assert.equal(escaped, [])
          // each create wrote once and deleteUser is atomic: every entry was either deleted or survives
          const survivors = yield* F.fetchable(store, writes.map((write) => write.key))
          yield* Assert.ok(deleted >= before.length, "deleted >= before.length")
          yield* Assert.equal(deleted + survivors.length, racedCreates)
          // the premise: deleteUser ran while creates were still being made
          yield* Assert.ok(survivors.length > 0, "survivors.length > 0")
          yield* Step.lists(store, user, F.farFuture - 1, survivors)
          yield* Step.deletesUser(store, user, undefined, survivors.length)
          yield* Step.fetchesOnly(store, writes.map((write) => write.key), [])
        })),
    60_000
  ),

  testCase(
    "concurrent deleteUser, delete, update and create leave list answering exactly the fetchable entries",
    (store) =>
      threeRounds(200, (user, writes) =>
        Effect.gen(function*() {
          const kept = writes[7]!.key.session
          const operations: Array<Effect.Effect<unknown, Store.StoreError>> = [
            ...writes.map(({ entry, key }) => store.save(key, entry, "create")),
            ...writes.filter((_, i) => i % 10 === 3).map(({ key }) => store.delete(key)),
            ...writes.filter((_, i) => i % 10 === 5).map(({ entry, key }) =>
              store.save(key, F.nextVersion(entry, { expiresAt: F.fartherFuture }), "update")
            ),
            store.deleteUser(user),
            store.deleteUser(user),
            store.deleteUser(user, kept),
            store.list(user, F.farFuture - 1)
          ]
          yield* Effect.all(
            F.shuffle(operations).map((operation) => Effect.zipRight(Effect.sleep(Crypto.randomInt(5)), operation)),
            { concurrency: "unbounded", discard: true }
          )

          const keys = writes.map((write) => write.key)
          const found = yield* F.fetchable(store, keys)
          yield* Step.lists(store, user, F.farFuture - 1, found)
          // the per-user records hold exactly what is stored: deleteUser finds every survivor and nothing else
          yield* Step.deletesUser(store, user, undefined, found.length)
          yield* Step.fetchesOnly(store, keys, [])
          yield* Step.lists(store, user, 0, [])
        })),
    60_000
  )
]
