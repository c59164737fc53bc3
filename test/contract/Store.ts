/**
 * The contract of the Store port (see the top of src/Store.ts), written once and run against every backend:
 *
 * ```ts
 * storeContract("memory", Memory.layer())
 * ```
 *
 * Every test writes under its own random users and sessions (base64url, like the keys the `Sessions`
 * service makes), so the tests are independent of each other and of their order, and a shared backend (a
 * Redis server) needs no flushing. Expiry times are fixed far in the future: a backend with its own clock
 * (Redis) must keep every entry for the whole run. The contract never waits for the clock: `list` and the
 * per-user cap take `now` as an argument, so the tests pass a `now` past an entry's expiry instead of
 * waiting. Only the retention tests use the real clock, with entries that expired a minute ago: every
 * backend must still hold them (`Store.expiredRetention` is 10 minutes) and count them out of
 * `deleteUser`'s answer by its own clock.
 *
 * The store is built once per suite in a `ManagedRuntime` rather than with @effect/vitest's `layer(...)`:
 * in @effect/vitest 0.30 `layer(...)` reassigns `effect`/`scoped` on the shared `it` object, so every
 * `it.effect` declared after it in the same file would silently run in the suite's runtime and share its
 * TestClock (fixed upstream in Effect 4 only: Effect-TS/effect-smol#2177). The tests run with `it.live`,
 * which `layer(...)` leaves alone, and on the real clock, so that a backend's own timers (a command
 * timeout) behave as in production.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, type Layer, ManagedRuntime, Option } from "effect"
import * as Crypto from "node:crypto"
import { type Entry, type Key, type Listed, Store } from "../../src/Store.js"
import { makeEntry as completeEntry, nextVersion } from "../support/entry.js"

// 2100-01-01 and 2101-01-01 (UTC), in milliseconds.
const farFuture = Date.UTC(2100, 0, 1)
const fartherFuture = Date.UTC(2101, 0, 1)

/** 128 random bits, base64url: the alphabet of both parts of a real key. */
const randomPart = () => Crypto.randomBytes(16).toString("base64url")

// A leading letter guarantees that swapping case yields a different part.
const newUser = () => `u${randomPart()}`
const newKey = (user: string = newUser()): Key => ({ user, session: `s${randomPart()}` })
const swapCase = (part: string) => part === part.toLowerCase() ? part.toUpperCase() : part.toLowerCase()

/** A new session's entry (version 0), unique by its user id and data. */
const makeEntry = (overrides: Partial<Entry> = {}): Entry =>
  completeEntry({
    userId: `user-${Crypto.randomBytes(6).toString("hex")}`,
    createdAt: farFuture - 60_000,
    expiresAt: farFuture,
    data: { csrf: randomPart() },
    ...overrides
  })

/** `list` answers in no particular order: compare by session part. */
const bySession = (listed: ReadonlyArray<Listed>): Array<Listed> =>
  [...listed].sort((a, b) => a.key.session < b.key.session ? -1 : a.key.session > b.key.session ? 1 : 0)

const shuffle = <A>(items: ReadonlyArray<A>): Array<A> => {
  const out = [...items]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Crypto.randomInt(i + 1)
    const item = out[i]!
    out[i] = out[j]!
    out[j] = item
  }
  return out
}

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
 * Runs the Store contract against the store built by `storeLayer`, which is built once for the suite and
 * released after it.
 */
export const storeContract = (name: string, storeLayer: Layer.Layer<Store, unknown>) =>
  describe(`Store contract: ${name}`, () => {
    const runtime = ManagedRuntime.make(storeLayer)
    beforeAll(() => runtime.runtime(), 60_000)
    afterAll(() => runtime.dispose(), 60_000)

    const test = (title: string, self: () => Effect.Effect<void, unknown, Store>, timeout?: number) =>
      it.live(title, () => Effect.flatMap(runtime.runtimeEffect, (rt) => Effect.provide(self(), rt.context)), timeout)

    /** Saves entries with "create" and checks that each was written. */
    const create = (store: Store["Type"], writes: ReadonlyArray<Listed>) =>
      Effect.forEach(writes, ({ entry, key }) =>
        Effect.map(store.save(key, entry, "create"), (wrote) => {
          expect(wrote).toBe(true)
        }), { discard: true })

    /** What `fetch` answers for each key, as listed entries, in key order. */
    const fetchable = (store: Store["Type"], keys: ReadonlyArray<Key>) =>
      Effect.map(
        Effect.forEach(keys, (key) => Effect.map(store.fetch(key), Option.map((entry): Listed => ({ key, entry }))), {
          concurrency: 16
        }),
        (found) => bySession(found.filter(Option.isSome).map((some) => some.value))
      )

    describe("fetch, save and delete", () => {
      test("fetch of a key never written is none, also under a user that has other sessions", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          expect(yield* store.fetch(key)).toEqual(Option.none())
          expect(yield* store.save(key, makeEntry(), "create")).toBe(true)
          expect(yield* store.fetch(newKey(key.user))).toEqual(Option.none())
        }))

      test("create writes a new key and fetch returns the entry as saved", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const entry = makeEntry()
          expect(yield* store.save(key, entry, "create")).toBe(true)
          expect(yield* store.fetch(key)).toEqual(Option.some(entry))
        }))

      test("fetch with a known entry answers it only while the stored value is unchanged", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const first = makeEntry()
          expect(yield* store.save(key, first, "create")).toBe(true)
          const read = Option.getOrThrow(yield* store.fetch(key))
          // unchanged: the known entry, or an equal one
          expect(yield* store.fetch(key, read)).toEqual(Option.some(first))
          // an entry it never answered for this key is not a reason to answer it
          const stranger = makeEntry()
          expect(Option.getOrThrow(yield* store.fetch(key, stranger))).not.toBe(stranger)
          // changed: never the known entry
          const second = nextVersion(first, { data: { csrf: "changed" } })
          expect(yield* store.save(key, second, "update")).toBe(true)
          const after = Option.getOrThrow(yield* store.fetch(key, read))
          expect(after).not.toBe(read)
          expect(after).toEqual(second)
          // deleted: none, whatever was known
          yield* store.delete(key)
          expect(yield* store.fetch(key, after)).toEqual(Option.none())
        }))

      test("create refuses an existing key and leaves its entry unchanged", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const first = makeEntry()
          const second = makeEntry({ expiresAt: fartherFuture, data: { other: true } })
          expect(yield* store.save(key, first, "create")).toBe(true)
          expect(yield* store.save(key, second, "create")).toBe(false)
          expect(yield* store.fetch(key)).toEqual(Option.some(first))
        }))

      test("update refuses a missing key and does not create it", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          // whatever version it carries
          for (const version of [0, 1, 2, 10]) {
            expect(yield* store.save(key, makeEntry({ version }), "update")).toBe(false)
          }
          expect(yield* store.fetch(key)).toEqual(Option.none())
          expect(yield* store.list(key.user, farFuture - 1)).toEqual([])
        }))

      test("update replaces every field of an existing entry", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const before = makeEntry()
          const after = makeEntry({
            version: 1,
            userId: `${before.userId}-renamed`,
            createdAt: before.createdAt + 1,
            renewedAt: before.renewedAt + 2,
            extendedUntil: fartherFuture + 3,
            expiresAt: fartherFuture,
            lastSeenAt: before.lastSeenAt + 4,
            secret: `${before.secret}-renewed`,
            previous: before.secret,
            previousUntil: fartherFuture + 5,
            userAgent: "Mozilla/5.0 ünï ✓",
            address: "2001:db8::1",
            data: { csrf: "new", visits: 2 }
          })
          expect(yield* store.save(key, before, "create")).toBe(true)
          expect(yield* store.save(key, after, "update")).toBe(true)
          expect(yield* store.fetch(key)).toEqual(Option.some(after))
        }))

      test("delete removes the entry, after which create works again", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const entry = makeEntry()
          expect(yield* store.save(key, entry, "create")).toBe(true)
          yield* store.delete(key)
          expect(yield* store.fetch(key)).toEqual(Option.none())
          expect(yield* store.save(key, entry, "create")).toBe(true)
          expect(yield* store.fetch(key)).toEqual(Option.some(entry))
        }))

      test("delete is idempotent", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          yield* store.delete(key)
          expect(yield* store.save(key, makeEntry(), "create")).toBe(true)
          yield* store.delete(key)
          yield* store.delete(key)
          expect(yield* store.fetch(key)).toEqual(Option.none())
        }))

      test("update after delete is refused: a cleared entry is never brought back", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const entry = makeEntry()
          expect(yield* store.save(key, entry, "create")).toBe(true)
          yield* store.delete(key)
          expect(yield* store.save(key, nextVersion(entry, { expiresAt: fartherFuture }), "update")).toBe(false)
          expect(yield* store.fetch(key)).toEqual(Option.none())
          expect(yield* store.list(key.user, farFuture - 1)).toEqual([])
        }))

      test("keys are independent: a shared part, a case difference or a longer part is another key", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const keys: ReadonlyArray<Key> = [
            key,
            { user: key.user, session: swapCase(key.session) },
            { user: key.user, session: `${key.session}x` },
            { user: key.user, session: key.session.slice(0, -1) },
            { user: swapCase(key.user), session: key.session },
            { user: `${key.user}x`, session: key.session },
            { user: key.user.slice(0, -1), session: key.session },
            { user: newUser(), session: key.session }
          ]
          const entries = keys.map(() => makeEntry())
          for (let i = 0; i < keys.length; i++) {
            expect(yield* store.save(keys[i]!, entries[i]!, "create")).toBe(true)
          }
          for (let i = 0; i < keys.length; i++) {
            expect(yield* store.fetch(keys[i]!)).toEqual(Option.some(entries[i]!))
          }
          yield* store.delete(keys[0]!)
          expect(yield* store.fetch(keys[0]!)).toEqual(Option.none())
          for (let i = 1; i < keys.length; i++) {
            expect(yield* store.fetch(keys[i]!)).toEqual(Option.some(entries[i]!))
          }
        }))

      test("JSON-compatible data round-trips exactly", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const values: ReadonlyArray<unknown> = [
            null,
            true,
            false,
            0,
            -17,
            3.25,
            "",
            "ünïcødé ✓ 🍪 \"quoted\" \\ \n newline",
            [],
            [1, "two", null, [3]],
            {},
            { nested: { deeper: { list: [{ a: 1 }, { b: "c" }] } }, flag: false, empty: "" },
            { big: "x".repeat(10_000) }
          ]
          for (const data of values) {
            const key = newKey()
            const entry = makeEntry({ data })
            expect(yield* store.save(key, entry, "create")).toBe(true)
            expect(yield* store.fetch(key)).toEqual(Option.some(entry))
          }
        }))

      test("the store keeps any JSON data and any user id: garbage to a session schema round-trips exactly", () =>
        Effect.gen(function*() {
          const store = yield* Store
          let nested: unknown = "bottom"
          for (let i = 0; i < 64; i++) nested = [nested]
          const entries: ReadonlyArray<Entry> = [
            // data that looks like a stored entry, or like its serialised form
            makeEntry({ data: [1, "someone-else", 0, 1, null] }),
            makeEntry({ data: "[1,\"someone-else\",0,1,null]" }),
            makeEntry({ data: [2, 5, "someone-else", 0, 0, 1, 1, 0, 0, null, null, null] }),
            makeEntry({ data: "[2,5,\"someone-else\",0,0,1,1,0,0,null,null,null]" }),
            makeEntry({ data: [3, 5, 0, 0, 0, 0, 0, 0, "someone-else", "s", null, null, null, null] }),
            makeEntry({ data: "[3,5,0,0,0,0,0,0,\"someone-else\",\"s\",null,null,null,null]" }),
            makeEntry({ data: "not json {" }),
            // characters that mean something to a key layout or to JSON
            makeEntry({ data: { "{": "}", ":": [], "": "", "\"": "\\", "key with spaces": "\u0000\u001f" } }),
            makeEntry({ data: "\ud800 lone surrogate, \u2028 line separator" }),
            makeEntry({ data: [1e308, 5e-324, -1.5e-7, Number.MAX_SAFE_INTEGER, 2 ** 60] }),
            makeEntry({ data: nested }),
            makeEntry({ userId: "", createdAt: 0, data: null }),
            makeEntry({ userId: "{tag}:ünï 🍪 \"q\" \\ \n", createdAt: farFuture + 1, expiresAt: farFuture + 1 }),
            makeEntry({ userAgent: "[2,5,{tag}:ünï 🍪 \"q\" \\ \n", address: "" }),
            makeEntry({ userAgent: "", address: "null" }),
            makeEntry({ secret: "", previous: "", previousUntil: 0 }),
            makeEntry({ secret: "[3,1,2,3,", previous: "{tag}:\"q\" \\", previousUntil: farFuture + 2 })
          ]
          const user = newUser()
          const writes = entries.map((entry): Listed => ({ key: newKey(user), entry }))
          yield* create(store, writes)
          for (const { entry, key } of writes) expect(yield* store.fetch(key)).toEqual(Option.some(entry))
          expect(bySession(yield* store.list(user, farFuture - 1))).toEqual(bySession(writes))
        }))

      test("times keep millisecond precision", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const entry = makeEntry({ createdAt: farFuture - 1_234_567, expiresAt: farFuture + 789 })
          expect(yield* store.save(key, entry, "create")).toBe(true)
          const fetched = yield* store.fetch(key)
          expect(Option.map(fetched, (e) => [e.createdAt, e.expiresAt])).toEqual(
            Option.some([farFuture - 1_234_567, farFuture + 789])
          )
        }))

      test("of concurrent creates of one key, exactly one wins and its entry is stored", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          const candidates = Array.from({ length: 20 }, () => makeEntry())
          const results = yield* Effect.forEach(candidates, (entry) => store.save(key, entry, "create"), {
            concurrency: "unbounded"
          })
          expect(results.filter((wrote) => wrote)).toHaveLength(1)
          const winner = candidates[results.indexOf(true)]!
          expect(yield* store.fetch(key)).toEqual(Option.some(winner))
          expect(yield* store.list(key.user, farFuture - 1)).toEqual([{ key, entry: winner }])
        }))

      test("concurrent creates of distinct keys all succeed", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const writes = Array.from({ length: 50 }, () => [newKey(), makeEntry()] as const)
          const results = yield* Effect.forEach(writes, ([key, entry]) => store.save(key, entry, "create"), {
            concurrency: "unbounded"
          })
          expect(results.every((wrote) => wrote)).toBe(true)
          const fetched = yield* Effect.forEach(writes, ([key]) => store.fetch(key), { concurrency: "unbounded" })
          expect(fetched).toEqual(writes.map(([, entry]) => Option.some(entry)))
        }))
    })

    describe("compare-and-set", () => {
      test("an update with a stale version is refused and leaves the entry, its expiry and its listing unchanged", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const key = newKey(user)
          const created = makeEntry()
          expect(yield* store.save(key, created, "create")).toBe(true)
          const stale = (version: number) => makeEntry({ version, expiresAt: fartherFuture, data: { stale: version } })
          // the stored version (made without counting it), two ahead (one skipped), and far off
          for (const version of [0, 2, 10, 11]) {
            expect(yield* store.save(key, stale(version), "update")).toBe(false)
          }
          expect(yield* store.fetch(key)).toEqual(Option.some(created))
          // no refused update moved the expiry: the entry is listed until its own, not after it
          expect(yield* store.list(user, farFuture - 1)).toEqual([{ key, entry: created }])
          expect(yield* store.list(user, farFuture)).toEqual([])

          const updated = nextVersion(created, { data: { updated: true } })
          expect(yield* store.save(key, updated, "update")).toBe(true)
          // now 1 is the stored version, 0 is behind it, 3 two ahead; 12 and 21 are far off
          for (const version of [1, 0, 3, 12, 21]) {
            expect(yield* store.save(key, stale(version), "update")).toBe(false)
          }
          expect(yield* store.fetch(key)).toEqual(Option.some(updated))
          expect(yield* store.list(user, farFuture - 1)).toEqual([{ key, entry: updated }])
          expect(yield* store.list(user, farFuture)).toEqual([])
        }))

      test("of two updates made from the same read, the first wins; the other must be made again from a new read", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const key = newKey()
          expect(yield* store.save(key, makeEntry(), "create")).toBe(true)
          const read = Option.getOrThrow(yield* store.fetch(key))
          const first = nextVersion(read, { data: { by: "first" } })
          const second = nextVersion(read, { expiresAt: fartherFuture, data: { by: "second" } })
          expect(first.version).toBe(1)
          expect(second.version).toBe(1)
          expect(yield* store.save(key, first, "update")).toBe(true)
          expect(yield* store.save(key, second, "update")).toBe(false)
          expect(yield* store.fetch(key)).toEqual(Option.some(first))

          const reread = Option.getOrThrow(yield* store.fetch(key))
          const retried = nextVersion(reread, { expiresAt: fartherFuture, data: { by: "second" } })
          expect(retried.version).toBe(2)
          expect(yield* store.save(key, retried, "update")).toBe(true)
          expect(yield* store.fetch(key)).toEqual(Option.some(retried))
          // the first, sent again, is now behind the stored version
          expect(yield* store.save(key, first, "update")).toBe(false)
          expect(yield* store.fetch(key)).toEqual(Option.some(retried))
        }))

      test("a chain of updates with consecutive versions all succeed, and versions compare whole", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const key = newKey(user)
          let current = makeEntry()
          expect(yield* store.save(key, current, "create")).toBe(true)
          for (let step = 1; step <= 25; step++) {
            const next = nextVersion(current, { lastSeenAt: current.lastSeenAt + step, data: { step } })
            expect(next.version).toBe(step)
            expect(yield* store.save(key, next, "update")).toBe(true)
            expect(yield* store.fetch(key)).toEqual(Option.some(next))
            current = next
          }
          // stored 25: besides 25 and 27, version 3 expects 2, its leading digit, and 251 expects 250, which
          // begins with it
          for (const version of [25, 27, 3, 251]) {
            expect(yield* store.save(key, makeEntry({ version, data: { stale: version } }), "update")).toBe(false)
          }
          expect(yield* store.fetch(key)).toEqual(Option.some(current))
          expect(yield* store.list(user, farFuture - 1)).toEqual([{ key, entry: current }])
        }))

      test("create keeps any version, and updates follow it up to the largest safe integer", () =>
        Effect.gen(function*() {
          const store = yield* Store
          for (const version of [2 ** 40, Number.MAX_SAFE_INTEGER - 1]) {
            const key = newKey()
            const created = makeEntry({ version })
            expect(yield* store.save(key, created, "create")).toBe(true)
            expect(yield* store.fetch(key)).toEqual(Option.some(created))
            expect(yield* store.save(key, makeEntry({ version: version - 1 }), "update")).toBe(false)
            expect(yield* store.save(key, makeEntry({ version }), "update")).toBe(false)
            const updated = nextVersion(created, { data: { updated: true } })
            expect(yield* store.save(key, updated, "update")).toBe(true)
            expect(yield* store.fetch(key)).toEqual(Option.some(updated))
          }
        }))

      test("of concurrent updates made from one read and fired together, exactly one wins, round after round", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const key = newKey(user)
          expect(yield* store.save(key, makeEntry(), "create")).toBe(true)
          for (let round = 1; round <= 5; round++) {
            const read = Option.getOrThrow(yield* store.fetch(key))
            expect(read.version).toBe(round - 1)
            // each with its own expiry, so that the listing shows whose write it follows
            const candidates = Array.from(
              { length: 20 },
              (_, i) => nextVersion(read, { expiresAt: farFuture + round * 100 + i, data: { round, i } })
            )
            const results = yield* Effect.forEach(candidates, (entry) => store.save(key, entry, "update"), {
              concurrency: "unbounded"
            })
            expect(results.filter((wrote) => wrote)).toHaveLength(1)
            const winner = candidates[results.indexOf(true)]!
            expect(yield* store.fetch(key)).toEqual(Option.some(winner))
            expect(yield* store.list(user, winner.expiresAt - 1)).toEqual([{ key, entry: winner }])
            expect(yield* store.list(user, winner.expiresAt)).toEqual([])
          }
        }))
    })

    describe("list", () => {
      test("list of a user never written is empty", () =>
        Effect.gen(function*() {
          const store = yield* Store
          expect(yield* store.list(newUser(), 0)).toEqual([])
          expect(yield* store.list(newUser(), farFuture)).toEqual([])
        }))

      test("list answers exactly the user's live entries with their keys, and no other user's", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const mine = Array.from({ length: 5 }, (_, i): Listed => ({
            key: newKey(user),
            entry: makeEntry({ userId: "me", createdAt: farFuture - 10_000 + i, data: { n: i } })
          }))
          // neighbours whose user part differs by case, by a suffix or completely, some with the same session part
          const others: ReadonlyArray<Listed> = [
            { key: newKey(swapCase(user)), entry: makeEntry() },
            { key: newKey(`${user}x`), entry: makeEntry() },
            { key: newKey(user.slice(0, -1)), entry: makeEntry() },
            { key: { user: newUser(), session: mine[0]!.key.session }, entry: makeEntry() }
          ]
          yield* create(store, [...mine, ...others])
          expect(bySession(yield* store.list(user, farFuture - 1))).toEqual(bySession(mine))
          for (const { entry, key } of others) {
            expect(yield* store.list(key.user, farFuture - 1)).toEqual([{ key, entry }])
          }
        }))

      test("list leaves out entries whose expiresAt <= now, by the now it is given", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          // near the `now` passed below, far from the real clock, so that no backend expires it meanwhile
          const now = farFuture - 60_000
          const soon: Listed = { key: newKey(user), entry: makeEntry({ createdAt: now - 1, expiresAt: now + 1_000 }) }
          const later: Listed = { key: newKey(user), entry: makeEntry({ createdAt: now - 1, expiresAt: farFuture }) }
          yield* create(store, [soon, later])
          expect(bySession(yield* store.list(user, now))).toEqual(bySession([soon, later]))
          expect(bySession(yield* store.list(user, now + 999))).toEqual(bySession([soon, later]))
          // both entries are still stored: only `list` leaves the expired one out
          expect(yield* store.fetch(soon.key)).toEqual(Option.some(soon.entry))
          expect(yield* store.list(user, now + 1_000)).toEqual([later])
          expect(yield* store.list(user, now + 5_000)).toEqual([later])
          expect(yield* store.list(user, farFuture)).toEqual([])
        }))

      test("a deleted session is no longer listed; the others are", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const writes = Array.from({ length: 3 }, (): Listed => ({ key: newKey(user), entry: makeEntry() }))
          yield* create(store, writes)
          yield* store.delete(writes[1]!.key)
          expect(bySession(yield* store.list(user, farFuture - 1))).toEqual(bySession([writes[0]!, writes[2]!]))
          yield* store.delete(writes[0]!.key)
          yield* store.delete(writes[2]!.key)
          expect(yield* store.list(user, farFuture - 1)).toEqual([])
        }))

      test("update keeps the entry listed with its new expiry, also past the old one", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const now = farFuture - 60_000
          const key = newKey(user)
          const before = makeEntry({ createdAt: now - 1, expiresAt: now + 1_000 })
          const after = nextVersion(before, {
            extendedUntil: farFuture,
            expiresAt: farFuture,
            data: { extended: true }
          })
          const other: Listed = { key: newKey(user), entry: makeEntry() }
          yield* create(store, [{ key, entry: before }, other])
          expect(yield* store.save(key, after, "update")).toBe(true)
          expect(bySession(yield* store.list(user, now))).toEqual(bySession([{ key, entry: after }, other]))
          // the old expiry has passed, the new one has not
          expect(bySession(yield* store.list(user, now + 5_000))).toEqual(bySession([{ key, entry: after }, other]))
          expect(yield* store.fetch(key)).toEqual(Option.some(after))
        }))
    })

    describe("deleteUser", () => {
      test("deleteUser deletes all of a user's sessions, answers how many, and leaves other users alone", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const mine = Array.from({ length: 4 }, (): Listed => ({ key: newKey(user), entry: makeEntry() }))
          const others: ReadonlyArray<Listed> = [
            { key: newKey(swapCase(user)), entry: makeEntry() },
            { key: newKey(`${user}x`), entry: makeEntry() },
            { key: { user: newUser(), session: mine[0]!.key.session }, entry: makeEntry() }
          ]
          yield* create(store, [...mine, ...others])
          expect(yield* store.deleteUser(user)).toBe(4)
          for (const { key } of mine) expect(yield* store.fetch(key)).toEqual(Option.none())
          expect(yield* store.list(user, farFuture - 1)).toEqual([])
          for (const { entry, key } of others) {
            expect(yield* store.fetch(key)).toEqual(Option.some(entry))
            expect(yield* store.list(key.user, farFuture - 1)).toEqual([{ key, entry }])
          }
          expect(yield* store.deleteUser(user)).toBe(0)
        }))

      test("deleteUser with except keeps exactly that session", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const mine = Array.from({ length: 4 }, (): Listed => ({ key: newKey(user), entry: makeEntry() }))
          yield* create(store, mine)
          const kept = mine[2]!
          expect(yield* store.deleteUser(user, kept.key.session)).toBe(3)
          for (const { key } of mine) {
            expect(yield* store.fetch(key)).toEqual(key === kept.key ? Option.some(kept.entry) : Option.none())
          }
          expect(yield* store.list(user, farFuture - 1)).toEqual([kept])
          // nothing left to delete but the one kept
          expect(yield* store.deleteUser(user, kept.key.session)).toBe(0)
          expect(yield* store.fetch(kept.key)).toEqual(Option.some(kept.entry))
          expect(yield* store.deleteUser(user)).toBe(1)
          expect(yield* store.fetch(kept.key)).toEqual(Option.none())
        }))

      test("deleteUser with an except that is none of the user's sessions deletes them all", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const mine = Array.from({ length: 3 }, (): Listed => ({ key: newKey(user), entry: makeEntry() }))
          const elsewhere: Listed = { key: newKey(), entry: makeEntry() }
          yield* create(store, [...mine, elsewhere])
          expect(yield* store.deleteUser(user, elsewhere.key.session)).toBe(3)
          expect(yield* store.deleteUser(user, swapCase(mine[0]!.key.session))).toBe(0)
          for (const { key } of mine) expect(yield* store.fetch(key)).toEqual(Option.none())
          expect(yield* store.fetch(elsewhere.key)).toEqual(Option.some(elsewhere.entry))
        }))

      test("deleteUser of an unknown user answers 0", () =>
        Effect.gen(function*() {
          const store = yield* Store
          expect(yield* store.deleteUser(newUser())).toBe(0)
          expect(yield* store.deleteUser(newUser(), randomPart())).toBe(0)
        }))

      test("after deleteUser, updates of the deleted sessions are refused and new sessions are listed alone", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const old: Listed = { key: newKey(user), entry: makeEntry() }
          yield* create(store, [old])
          expect(yield* store.deleteUser(user)).toBe(1)
          expect(yield* store.save(old.key, nextVersion(old.entry, { expiresAt: fartherFuture }), "update")).toBe(false)
          expect(yield* store.fetch(old.key)).toEqual(Option.none())
          const fresh: Listed = { key: newKey(user), entry: makeEntry() }
          yield* create(store, [fresh])
          expect(yield* store.list(user, farFuture - 1)).toEqual([fresh])
        }))
    })

    describe("retention: expired entries", () => {
      // Expired by the real clock a minute ago: within Store.expiredRetention, so every backend still holds it.
      const expiredAMinuteAgo = () => {
        const now = Date.now()
        return makeEntry({ createdAt: now - 3_600_000, lastSeenAt: now - 120_000, expiresAt: now - 60_000 })
      }

      test("an entry stays fetchable for a while after its expiry, but list leaves it out", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const expired: Listed = { key: newKey(user), entry: expiredAMinuteAgo() }
          const live: Listed = { key: newKey(user), entry: makeEntry() }
          yield* create(store, [expired, live])
          expect(yield* store.fetch(expired.key)).toEqual(Option.some(expired.entry))
          expect(yield* store.list(user, Date.now())).toEqual([live])
          // it is still a stored entry: an update follows its version, a create of its key is refused
          const extended = nextVersion(expired.entry, { data: { extended: true } })
          expect(yield* store.save(expired.key, makeEntry(), "create")).toBe(false)
          expect(yield* store.save(expired.key, extended, "update")).toBe(true)
          expect(yield* store.fetch(expired.key)).toEqual(Option.some(extended))
        }))

      test("deleteUser deletes expired entries too, and answers how many live ones it deleted", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const live = Array.from({ length: 3 }, (): Listed => ({ key: newKey(user), entry: makeEntry() }))
          const expired = Array.from({ length: 2 }, (): Listed => ({ key: newKey(user), entry: expiredAMinuteAgo() }))
          yield* create(store, [...live, ...expired])
          expect(yield* store.deleteUser(user, live[0]!.key.session)).toBe(2)
          expect(yield* fetchable(store, [...live, ...expired].map(({ key }) => key))).toEqual([live[0]!])
          yield* create(store, [{ key: newKey(user), entry: expiredAMinuteAgo() }])
          expect(yield* store.deleteUser(user)).toBe(1)
          expect(yield* fetchable(store, [...live, ...expired].map(({ key }) => key))).toEqual([])
          expect(yield* store.deleteUser(user)).toBe(0)
        }))
    })

    describe("per-user cap", () => {
      // `cap.now` far from the real clock, so that the entries a test calls expired by it are live to a
      // backend with its own clock (Redis), and only the cap's `now` tells them apart.
      const now = farFuture - 3_600_000
      const seen = (lastSeenAt: number, overrides: Partial<Entry> = {}) =>
        makeEntry({ createdAt: now - 86_400_000, lastSeenAt, ...overrides })
      const sessions = (listed: ReadonlyArray<Listed>) => listed.map(({ key }) => key.session).sort()

      test("a create under a cap deletes the user's least recently seen live entries to make room", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          // written in an order unrelated to when they were last seen
          const mine = [5, 1, 4, 2, 3].map((n): Listed => ({ key: newKey(user), entry: seen(now - 1_000 * (6 - n)) }))
          yield* create(store, mine)
          const fresh: Listed = { key: newKey(user), entry: seen(now) }
          expect(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 3, now })).toBe(true)
          // the two most recently seen (n = 5 and 4) and the new one
          const kept = [mine[0]!, mine[2]!, fresh]
          expect(yield* fetchable(store, [...mine, fresh].map(({ key }) => key))).toEqual(bySession(kept))
          expect(bySession(yield* store.list(user, now))).toEqual(bySession(kept))
        }))

      test("of entries last seen at the same time, the earliest created goes first", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const mine = [3, 1, 2].map((n): Listed => ({
            key: newKey(user),
            entry: seen(now - 1_000, { createdAt: now - 86_400_000 + n })
          }))
          yield* create(store, mine)
          const fresh: Listed = { key: newKey(user), entry: seen(now - 5_000) }
          expect(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 2, now })).toBe(true)
          // the newest by creation (n = 3) and the new one, although it was last seen earlier than any of them
          expect(sessions(yield* store.list(user, now))).toEqual(sessions([mine[0]!, fresh]))
        }))

      test("below the cap a create deletes nothing, and a cap of one keeps only the new session", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const mine = Array.from({ length: 3 }, (_, i): Listed => ({ key: newKey(user), entry: seen(now - i) }))
          yield* create(store, mine)
          const fourth: Listed = { key: newKey(user), entry: seen(now) }
          expect(yield* store.save(fourth.key, fourth.entry, "create", { maxPerUser: 4, now })).toBe(true)
          expect(sessions(yield* store.list(user, now))).toEqual(sessions([...mine, fourth]))
          const only: Listed = { key: newKey(user), entry: seen(now) }
          expect(yield* store.save(only.key, only.entry, "create", { maxPerUser: 1, now })).toBe(true)
          expect(yield* store.list(user, now)).toEqual([only])
          expect(yield* fetchable(store, [...mine, fourth, only].map(({ key }) => key))).toEqual([only])
        }))

      test("entries expired by the cap's now neither count nor are deleted", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const live = Array.from({ length: 2 }, (_, i): Listed => ({ key: newKey(user), entry: seen(now - 10 - i) }))
          // last seen long before the live ones: the first to go if they counted; one expires exactly at `now`
          const expired = [now - 60_000, now - 1, now].map((expiresAt, i): Listed => ({
            key: newKey(user),
            entry: seen(now - 100_000 - i, { expiresAt })
          }))
          yield* create(store, [...live, ...expired])
          const fresh: Listed = { key: newKey(user), entry: seen(now) }
          expect(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 3, now })).toBe(true)
          const all = [...live, ...expired, fresh]
          expect(yield* fetchable(store, all.map(({ key }) => key))).toEqual(bySession(all))
          // one more live entry now makes room by deleting the least recently seen live one, still no expired one
          const next: Listed = { key: newKey(user), entry: seen(now) }
          expect(yield* store.save(next.key, next.entry, "create", { maxPerUser: 3, now })).toBe(true)
          expect(yield* fetchable(store, [...all, next].map(({ key }) => key))).toEqual(
            bySession([live[0]!, ...expired, fresh, next])
          )
        }))

      test("a refused create under a cap deletes nothing, and updates never apply a cap", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const mine = Array.from({ length: 3 }, (_, i): Listed => ({ key: newKey(user), entry: seen(now - i) }))
          yield* create(store, mine)
          expect(yield* store.save(mine[0]!.key, seen(now + 1), "create", { maxPerUser: 1, now })).toBe(false)
          const updated = nextVersion(mine[1]!.entry, { lastSeenAt: now + 2 })
          expect(yield* store.save(mine[1]!.key, updated, "update", { maxPerUser: 1, now })).toBe(true)
          expect(bySession(yield* store.list(user, now))).toEqual(
            bySession([mine[0]!, { key: mine[1]!.key, entry: updated }, mine[2]!])
          )
        }))

      test("a cap on one user's create leaves every other user's sessions alone", () =>
        Effect.gen(function*() {
          const store = yield* Store
          const user = newUser()
          const mine = Array.from({ length: 3 }, (_, i): Listed => ({ key: newKey(user), entry: seen(now - i) }))
          // neighbours by case, prefix and suffix, and one with the same session part, all seen long ago
          const others: ReadonlyArray<Listed> = [
            { key: newKey(swapCase(user)), entry: seen(now - 500_000) },
            { key: newKey(`${user}x`), entry: seen(now - 500_000) },
            { key: newKey(user.slice(0, -1)), entry: seen(now - 500_000) },
            { key: { user: newUser(), session: mine[0]!.key.session }, entry: seen(now - 500_000) }
          ]
          yield* create(store, [...mine, ...others])
          const fresh: Listed = { key: newKey(user), entry: seen(now) }
          expect(yield* store.save(fresh.key, fresh.entry, "create", { maxPerUser: 1, now })).toBe(true)
          expect(yield* store.list(user, now)).toEqual([fresh])
          for (const other of others) {
            expect(yield* store.fetch(other.key)).toEqual(Option.some(other.entry))
            expect(yield* store.list(other.key.user, now)).toEqual([other])
          }
        }))

      test(
        "concurrent creates of one user under a cap never leave more than the cap live",
        () =>
          Effect.gen(function*() {
            const store = yield* Store
            const maxPerUser = 4
            for (let round = 0; round < 3; round++) {
              const user = newUser()
              const writes = Array.from({ length: 60 }, (_, i): Listed => ({ key: newKey(user), entry: seen(now - i) }))
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
              expect(results.every((wrote) => wrote)).toBe(true)
              expect(observed.length).toBeGreaterThan(0)
              expect(Math.max(...observed)).toBeLessThanOrEqual(maxPerUser)
              const found = yield* fetchable(store, writes.map(({ key }) => key))
              expect(found).toHaveLength(maxPerUser)
              expect(bySession(yield* store.list(user, now))).toEqual(found)
              expect(yield* store.deleteUser(user)).toBe(maxPerUser)
            }
          }),
        60_000
      )
    })

    describe("races", () => {
      test(
        "nothing escapes revocation: every create completed before deleteUser was called is gone after it",
        () =>
          Effect.gen(function*() {
            const store = yield* Store
            const total = 300
            for (let round = 0; round < 3; round++) {
              const user = newUser()
              const writes = Array.from({ length: total }, (): Listed => ({ key: newKey(user), entry: makeEntry() }))
              const { before, results, revoked: deleted } = yield* revokeMidway({
                total,
                create: (i) => store.save(writes[i]!.key, writes[i]!.entry, "create"),
                revoke: store.deleteUser(user)
              })
              expect(results.every((wrote) => wrote)).toBe(true)
              const escaped = yield* fetchable(store, before.map((i) => writes[i]!.key))
              expect(escaped).toEqual([])
              // each create wrote once and deleteUser is atomic: every entry was either deleted or survives
              const survivors = yield* fetchable(store, writes.map((write) => write.key))
              expect(deleted).toBeGreaterThanOrEqual(before.length)
              expect(deleted + survivors.length).toBe(total)
              // the premise: deleteUser ran while creates were still being made
              expect(survivors.length).toBeGreaterThan(0)
              expect(bySession(yield* store.list(user, farFuture - 1))).toEqual(survivors)
              expect(yield* store.deleteUser(user)).toBe(survivors.length)
              expect(yield* fetchable(store, writes.map((write) => write.key))).toEqual([])
            }
          }),
        60_000
      )

      test(
        "concurrent deleteUser, delete, update and create leave list answering exactly the fetchable entries",
        () =>
          Effect.gen(function*() {
            const store = yield* Store
            for (let round = 0; round < 3; round++) {
              const user = newUser()
              const writes = Array.from({ length: 200 }, (): Listed => ({ key: newKey(user), entry: makeEntry() }))
              const kept = writes[7]!.key.session
              const operations: Array<Effect.Effect<unknown, unknown>> = [
                ...writes.map(({ entry, key }) => store.save(key, entry, "create")),
                ...writes.filter((_, i) => i % 10 === 3).map(({ key }) => store.delete(key)),
                ...writes.filter((_, i) => i % 10 === 5).map(({ entry, key }) =>
                  store.save(key, nextVersion(entry, { expiresAt: fartherFuture }), "update")
                ),
                store.deleteUser(user),
                store.deleteUser(user),
                store.deleteUser(user, kept),
                store.list(user, farFuture - 1)
              ]
              yield* Effect.all(
                shuffle(operations).map((operation) => Effect.zipRight(Effect.sleep(Crypto.randomInt(5)), operation)),
                { concurrency: "unbounded", discard: true }
              )

              const keys = writes.map((write) => write.key)
              const found = yield* fetchable(store, keys)
              expect(bySession(yield* store.list(user, farFuture - 1))).toEqual(found)
              // the per-user records hold exactly what is stored: deleteUser finds every survivor and nothing else
              expect(yield* store.deleteUser(user)).toBe(found.length)
              expect(yield* fetchable(store, keys)).toEqual([])
              expect(yield* store.list(user, 0)).toEqual([])
            }
          }),
        60_000
      )
    })
  })
