/**
 * The cases of the per-user cap: a "create" given a cap makes room by deleting the user's least recently
 * seen live entries, in the same atomic write.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import * as Store from "../../Store.js"
import * as Assert from "./assert.js"
import * as Case from "./Case.js"
import {
  bySession,
  create,
  expiredAMinuteAgo,
  farFuture,
  fetchable,
  forgottenIn,
  newEntry,
  newKey,
  newUser,
  nextVersion,
  sessions,
  shuffle,
  swapCase
} from "./fixtures.js"

const testCase = Case.of("per-user cap")

// `cap.now` far from the real clock, so that the entries a test calls expired by it are live to a
// backend with its own clock (Redis), and only the cap's `now` tells them apart.
const now = farFuture - 3_600_000
const seen = (lastSeenAt: number, overrides: Partial<Store.Entry> = {}) =>
  newEntry({ createdAt: now - 86_400_000, lastSeenAt, ...overrides })

/**
 * The cases of the clause "per-user cap".
 *
 * @since 0.1.0
 * @category cases
 */
export const cases: ReadonlyArray<Case.Case> = [
  testCase(
    "a create under a cap deletes the user's least recently seen live entries to make room",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      // written in an order unrelated to when they were last seen
      const mine = [5, 1, 4, 2, 3].map((n): Store.Listed => ({ key: newKey(user), entry: seen(now - 1_000 * (6 - n)) }))
      yield* create(store, mine)
      const fresh: Store.Listed = { key: newKey(user), entry: seen(now) }
      yield* Assert.equal(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 3, now }), true)
      // the two most recently seen (n = 5 and 4) and the new one
      const kept = [mine[0]!, mine[2]!, fresh]
      yield* Assert.equal(yield* fetchable(store, [...mine, fresh].map(({ key }) => key)), bySession(kept))
      yield* Assert.equal(bySession(yield* store.list(user, now)), bySession(kept))
    })
  ),

  testCase(
    "of entries last seen at the same time, the earliest created goes first",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const mine = [3, 1, 2].map((n): Store.Listed => ({
        key: newKey(user),
        entry: seen(now - 1_000, { createdAt: now - 86_400_000 + n })
      }))
      yield* create(store, mine)
      const fresh: Store.Listed = { key: newKey(user), entry: seen(now - 5_000) }
      yield* Assert.equal(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 2, now }), true)
      // the newest by creation (n = 3) and the new one, although it was last seen earlier than any of them
      yield* Assert.equal(sessions(yield* store.list(user, now)), sessions([mine[0]!, fresh]))
    })
  ),

  testCase(
    "below the cap a create deletes nothing, and a cap of one keeps only the new session",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const mine = Array.from({ length: 3 }, (_, i): Store.Listed => ({ key: newKey(user), entry: seen(now - i) }))
      yield* create(store, mine)
      const fourth: Store.Listed = { key: newKey(user), entry: seen(now) }
      yield* Assert.equal(yield* store.save(fourth.key, fourth.entry, "create", { maxPerUser: 4, now }), true)
      yield* Assert.equal(sessions(yield* store.list(user, now)), sessions([...mine, fourth]))
      const only: Store.Listed = { key: newKey(user), entry: seen(now) }
      yield* Assert.equal(yield* store.save(only.key, only.entry, "create", { maxPerUser: 1, now }), true)
      yield* Assert.equal(yield* store.list(user, now), [only])
      yield* Assert.equal(yield* fetchable(store, [...mine, fourth, only].map(({ key }) => key)), [only])
    })
  ),

  testCase(
    "entries expired by the cap's now neither count nor are deleted",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const live = Array.from({ length: 2 }, (_, i): Store.Listed => ({ key: newKey(user), entry: seen(now - 10 - i) }))
      // last seen long before the live ones: the first to go if they counted; one expires exactly at `now`
      const expired = [now - 60_000, now - 1, now].map((expiresAt, i): Store.Listed => ({
        key: newKey(user),
        entry: seen(now - 100_000 - i, { expiresAt })
      }))
      yield* create(store, [...live, ...expired])
      const fresh: Store.Listed = { key: newKey(user), entry: seen(now) }
      yield* Assert.equal(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 3, now }), true)
      const all = [...live, ...expired, fresh]
      yield* Assert.equal(yield* fetchable(store, all.map(({ key }) => key)), bySession(all))
      // one more live entry now makes room by deleting the least recently seen live one, still no expired one
      const next: Store.Listed = { key: newKey(user), entry: seen(now) }
      yield* Assert.equal(yield* store.save(next.key, next.entry, "create", { maxPerUser: 3, now }), true)
      yield* Assert.equal(
        yield* fetchable(store, [...all, next].map(({ key }) => key)),
        bySession([live[0]!, ...expired, fresh, next])
      )
    })
  ),

  testCase(
    "a refused create under a cap deletes nothing, and updates never apply a cap",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const mine = Array.from({ length: 3 }, (_, i): Store.Listed => ({ key: newKey(user), entry: seen(now - i) }))
      yield* create(store, mine)
      yield* Assert.equal(yield* store.save(mine[0]!.key, seen(now + 1), "create", { maxPerUser: 1, now }), false)
      const updated = nextVersion(mine[1]!.entry, { lastSeenAt: now + 2 })
      yield* Assert.equal(yield* store.save(mine[1]!.key, updated, "update", { maxPerUser: 1, now }), true)
      yield* Assert.equal(
        bySession(yield* store.list(user, now)),
        bySession([mine[0]!, { key: mine[1]!.key, entry: updated }, mine[2]!])
      )
    })
  ),

  testCase(
    "a cap on one user's create leaves every other user's sessions alone",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const mine = Array.from({ length: 3 }, (_, i): Store.Listed => ({ key: newKey(user), entry: seen(now - i) }))
      // neighbours by case, prefix and suffix, and one with the same session part, all seen long ago
      const others: ReadonlyArray<Store.Listed> = [
        { key: newKey(swapCase(user)), entry: seen(now - 500_000) },
        { key: newKey(`${user}x`), entry: seen(now - 500_000) },
        { key: newKey(user.slice(0, -1)), entry: seen(now - 500_000) },
        { key: { user: newUser(), session: mine[0]!.key.session }, entry: seen(now - 500_000) }
      ]
      yield* create(store, [...mine, ...others])
      const fresh: Store.Listed = { key: newKey(user), entry: seen(now) }
      yield* Assert.equal(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 1, now }), true)
      yield* Assert.equal(yield* store.list(user, now), [fresh])
      for (const other of others) {
        yield* Assert.equal(yield* store.fetch(other.key), Option.some(other.entry))
        yield* Assert.equal(yield* store.list(other.key.user, now), [other])
      }
    })
  ),

  testCase(
    "concurrent creates of one user under a cap never leave more than the cap live",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const maxPerUser = 4
      for (let round = 0; round < 3; round++) {
        const user = newUser()
        const writes = Array.from({ length: 60 }, (_, i): Store.Listed => ({ key: newKey(user), entry: seen(now - i) }))
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
          shuffle(writes),
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
        const found = yield* fetchable(store, writes.map(({ key }) => key))
        yield* Assert.equal(found.length, maxPerUser)
        yield* Assert.equal(bySession(yield* store.list(user, now)), found)
        yield* Assert.equal(yield* store.deleteUser(user), maxPerUser)
      }
    }),
    60_000
  ),
  testCase(
    "by the real clock, expired entries, retained or forgotten, neither count nor are deleted",
    Effect.gen(function*() {
      const store = yield* Store.Store
      const user = newUser()
      const now = yield* Clock.currentTimeMillis
      const live = Array.from({ length: 2 }, (_, i): Store.Listed => ({
        key: newKey(user),
        entry: newEntry({ createdAt: now - 86_400_000, lastSeenAt: now - 10 - i })
      }))
      const retained: Store.Listed = { key: newKey(user), entry: expiredAMinuteAgo(now) }
      yield* create(store, [...live, retained])
      yield* Effect.asVoid(store.save(newKey(user), forgottenIn(now, -60_000), "create"))
      const fresh: Store.Listed = { key: newKey(user), entry: newEntry({ lastSeenAt: now }) }
      yield* Assert.equal(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 3, now }), true)
      const kept = [...live, retained, fresh]
      yield* Assert.equal(yield* fetchable(store, kept.map(({ key }) => key)), bySession(kept), "fetchable")
      yield* Assert.equal(sessions(yield* store.list(user, now)), sessions([...live, fresh]), "listed")
    })
  )
]
