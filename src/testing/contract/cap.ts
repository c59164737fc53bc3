/**
 * The cases of the per-user cap: a "create" given a cap makes room by deleting the user's least recently
 * seen live entries, in the same atomic write.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Crypto from "node:crypto"
import type * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import * as F from "./fixtures.js"
import * as Step from "./steps.js"

const testCase = Case.of("per-user cap")

// `cap.now` far from the real clock, so that the entries a test calls expired by it are live to a
// backend with its own clock (Redis), and only the cap's `now` tells them apart.
const now = F.farFuture - 3_600_000
const seen = (lastSeenAt: number, overrides: Partial<Store.Entry> = {}) =>
  F.newEntry({ createdAt: now - 86_400_000, lastSeenAt, ...overrides })

/** A new session of `user` last seen at `lastSeenAt`. */
const seenSession = (user: string, lastSeenAt: number) => F.session(user, seen(lastSeenAt))

/** A "create" of `write` under the cap `maxPerUser` by `at` writes it. */
const createsUnder = (store: Store.StoreService, maxPerUser: number, write: Store.Listed, at = now) =>
  Step.saves(store, write, "create", true, { maxPerUser, now: at })

const keys = (writes: ReadonlyArray<Store.Listed>) => writes.map(({ key }) => key)

/** The session parts `list(user, at)` answers, for the cases that compare by session part only. */
const listedSessions = (store: Store.StoreService, user: string, at = now) =>
  Effect.map(store.list(user, at), F.sessions)

/**
 * The cases of the clause "per-user cap".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "a create under a cap deletes the user's least recently seen live entries to make room",
    (store, user) =>
      Effect.gen(function*() {
        // written in an order unrelated to when they were last seen
        const mine = [5, 1, 4, 2, 3].map((n) => seenSession(user, now - 1_000 * (6 - n)))
        yield* F.create(store, mine)
        const fresh = seenSession(user, now)
        yield* createsUnder(store, 3, fresh)
        // the two most recently seen (n = 5 and 4) and the new one
        const kept = [mine[0]!, mine[2]!, fresh]
        yield* Step.fetchesOnly(store, keys([...mine, fresh]), kept)
        yield* Step.lists(store, user, now, kept)
      })
  ),

  testCase(
    "of entries last seen at the same time, the earliest created goes first",
    (store, user) =>
      Effect.gen(function*() {
        const mine = F.sessionsOf(user, 3, (i) => seen(now - 1_000, { createdAt: now - 86_400_000 + [3, 1, 2][i]! }))
        yield* F.create(store, mine)
        const fresh = seenSession(user, now - 5_000)
        yield* createsUnder(store, 2, fresh)
        // the newest by creation (n = 3) and the new one, although it was last seen earlier than any of them
        yield* Assert.equal(yield* listedSessions(store, user, now), F.sessions([mine[0]!, fresh]))
      })
  ),

  testCase(
    "below the cap a create deletes nothing, and a cap of one keeps only the new session",
    (store, user) =>
      Effect.gen(function*() {
        const mine = F.sessionsOf(user, 3, (i) => seen(now - i))
        yield* F.create(store, mine)
        const fourth = seenSession(user, now)
        yield* createsUnder(store, 4, fourth)
        yield* Assert.equal(yield* listedSessions(store, user, now), F.sessions([...mine, fourth]))
        const only = seenSession(user, now)
        yield* createsUnder(store, 1, only)
        yield* Step.lists(store, user, now, [only])
        yield* Step.fetchesOnly(store, keys([...mine, fourth, only]), [only])
      })
  ),

  testCase("entries expired by the cap's now neither count nor are deleted", (store, user) =>
    Effect.gen(function*() {
      const live = F.sessionsOf(user, 2, (i) => seen(now - 10 - i))
      // last seen long before the live ones: the first to go if they counted; one expires exactly at `now`
      const expired = [now - 60_000, now - 1, now].map((expiresAt, i): Store.Listed => ({
        key: F.newKey(user),
        entry: seen(now - 100_000 - i, { expiresAt })
      }))
      yield* F.create(store, [...live, ...expired])
      const fresh = seenSession(user, now)
      yield* createsUnder(store, 3, fresh)
      const all = [...live, ...expired, fresh]
      yield* Step.fetchesOnly(store, keys(all), all)
      // one more live entry now makes room by deleting the least recently seen live one, still no expired one
      const next = seenSession(user, now)
      yield* createsUnder(store, 3, next)
      yield* Step.fetchesOnly(store, keys([...all, next]), [live[0]!, ...expired, fresh, next])
    })),

  testCase(
    "a refused create under a cap deletes nothing, and updates never apply a cap",
    (store, user) =>
      Effect.gen(function*() {
        const [first, second, third] = F.sessionsOf(user, 3, (i) => seen(now - i)) as [
          Store.Listed,
          Store.Listed,
          Store.Listed
        ]
        yield* F.create(store, [first, second, third])
        const cap = { maxPerUser: 1, now }
        yield* Step.saves(store, { key: first.key, entry: seen(now + 1) }, "create", false, cap)
        const updated: Store.Listed = { key: second.key, entry: F.nextVersion(second.entry, { lastSeenAt: now + 2 }) }
        yield* Step.saves(store, updated, "update", true, cap)
        yield* Step.lists(store, user, now, [first, updated, third])
      })
  ),

  testCase(
    "a cap on one user's create leaves every other user's sessions alone",
    (store, user) =>
      Effect.gen(function*() {
        const mine = F.sessionsOf(user, 3, (i) => seen(now - i))
        // neighbours by case, prefix and suffix, and one with the same session part, all seen long ago
        const others = F.neighbours(user, mine[0]!.key.session, () => seen(now - 500_000))
        yield* F.create(store, [...mine, ...others])
        const fresh = seenSession(user, now)
        yield* createsUnder(store, 1, fresh)
        yield* Step.lists(store, user, now, [fresh])
        for (const other of others) {
          yield* Step.fetches(store, other.key, other.entry)
          yield* Step.lists(store, other.key.user, now, [other])
        }
      })
  ),

  testCase(
    "concurrent creates of one user under a cap never leave more than the cap live",
    (store) =>
      Effect.gen(function*() {
        const maxPerUser = 4
        for (let round = 0; round < 3; round++) {
          const user = F.newUser()
          const writes = F.sessionsOf(user, 60, (i) => seen(now - i))
          // an observer lists while they run: never more than the cap at any moment
          let stop = false
          const observed: Array<number> = []
          const observer = Effect.gen(function*() {
            while (!stop) {
              observed.push((yield* store.list(user, now)).length)
              yield* Effect.sleep(1)
            }
          })
          const creates = Effect.forEach(
            F.shuffle(writes),
            ({ entry, key }) =>
              Effect.zipRight(
                Effect.sleep(Crypto.randomInt(10)),
                store.save(key, entry, "create", { maxPerUser, now })
              ),
            { concurrency: "unbounded" }
          ).pipe(Effect.ensuring(Effect.sync(() => {
            stop = true
          })))
          const [results] = yield* Effect.all([creates, observer], { concurrency: "unbounded" })
          yield* Assert.equal(results.every((wrote) => wrote), true)
          yield* Assert.ok(observed.length > 0, "observed.length > 0")
          yield* Assert.ok(Math.max(...observed) <= maxPerUser, "Math.max(...observed) <= maxPerUser")
          const found = yield* F.fetchable(store, keys(writes))
          yield* Assert.equal(found.length, maxPerUser)
          yield* Step.lists(store, user, now, found)
          yield* Step.deletesUser(store, user, undefined, maxPerUser)
        }
      }),
    60_000
  ),
  testCase(
    "by the real clock, expired entries, retained or forgotten, neither count nor are deleted",
    (store, user) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const live = F.sessionsOf(user, 2, (i) => F.newEntry({ createdAt: now - 86_400_000, lastSeenAt: now - 10 - i }))
        const retained: Store.Listed = { key: F.newKey(user), entry: F.expiredAMinuteAgo(now) }
        yield* F.create(store, [...live, retained])
        yield* Effect.asVoid(store.save(F.newKey(user), F.forgottenIn(now, -60_000), "create"))
        const fresh: Store.Listed = { key: F.newKey(user), entry: F.newEntry({ lastSeenAt: now }) }
        yield* createsUnder(store, 3, fresh, now)
        const kept = [...live, retained, fresh]
        yield* Step.fetchesOnly(store, keys(kept), kept, "fetchable")
        yield* Assert.equal(yield* listedSessions(store, user, now), F.sessions([...live, fresh]), "listed")
      })
  )
]
