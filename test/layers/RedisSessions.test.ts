/**
 * The `Sessions` service end to end on a real `redis-server` started by the harness (test/support/redis.ts):
 * what it writes to Redis (one hash per user, a field per session lineage) and how it reads it back.
 * test/layers/Redis.test.ts keeps the store-level tests.
 *
 * One server serves the whole file (`REDIS_URL` when set); every test writes under its own key prefix or
 * random users, so tests need no flushing. Shared resources live in `ManagedRuntime`s rather than
 * @effect/vitest's `layer(...)` (see the header of test/contract/Store.ts), and every test runs with
 * `it.live`: Redis expires keys by its own clock, so the sessions these tests issue must be stamped with
 * real time.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, ManagedRuntime, Option, Redacted, Schema, type Scope } from "effect"
import { Redis } from "ioredis"
import * as Crypto from "node:crypto"
import * as Auth from "../../src/Auth.js"
import { parseId, secretDigest } from "../../src/internal/ids.js"
import * as RedisStore from "../../src/layers/Redis.js"
import * as Session from "../../src/Session.js"
import { encodeEntry, type Entry, expiredRetention } from "../../src/Store.js"
import { revokeMidway } from "../contract/Store.js"
import { makeEntry as completeEntry } from "../support/entry.js"
import { RedisTest } from "../support/redis.js"

// -----------------------------------------------------------------------------
// the file's own server and a raw client beside the store
// -----------------------------------------------------------------------------

// Every key this file writes starts with the run's prefix (but two tests' own `session:` keys, which they
// delete), so that a Redis given by REDIS_URL is left as it was found: see `removeRunKeys`.
const runPrefix = `test-${Crypto.randomBytes(4).toString("hex")}-`
let prefixes = 0
const uniquePrefix = () => `${runPrefix}${prefixes++}:`

class Env extends Context.Tag("test/layers/RedisSessions/Env")<Env, { readonly url: string; readonly raw: Redis }>() {}

/** A plain ioredis client, to look at and tamper with what the store writes. */
const rawClient = (url: string) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

/** Deletes every key of this run (the contract leaves its entries behind, expiring in 2100). */
const removeRunKeys = (raw: Redis) =>
  Effect.tryPromise(async () => {
    let cursor = "0"
    do {
      const [next, keys] = await raw.scan(cursor, "MATCH", `${runPrefix}*`, "COUNT", 1000)
      if (keys.length > 0) await raw.unlink(...keys)
      cursor = next
    } while (cursor !== "0")
  }).pipe(Effect.ignore)

const env = ManagedRuntime.make(
  Layer.scoped(
    Env,
    Effect.gen(function*() {
      const { url } = yield* RedisTest
      const raw = yield* rawClient(url)
      // released after every suite of the file, contracts included, and before the client quits
      yield* Effect.addFinalizer(() => removeRunKeys(raw))
      return { url, raw }
    })
  ).pipe(Layer.provide(RedisTest.layer))
)
beforeAll(() => env.runtime(), 60_000)
afterAll(() => env.dispose(), 60_000)

const test = (title: string, self: () => Effect.Effect<void, unknown, Env | Scope.Scope>, timeout?: number) =>
  it.live(
    title,
    () => Effect.flatMap(env.runtimeEffect, (rt) => Effect.scoped(Effect.provide(self(), rt.context))),
    timeout
  )

const call = (client: Redis, command: string, ...args: Array<string | number>) =>
  Effect.promise(() => client.call(command, ...args))

/** A store of its own on the file's server, under a fresh prefix. */
const makeStore = (options: Omit<RedisStore.SingleOptions, "url"> = {}) =>
  Effect.gen(function*() {
    const { raw, url } = yield* Env
    const prefix = options.prefix ?? uniquePrefix()
    const store = yield* RedisStore.makeSingle({ url, ...options, prefix })
    return { store, raw, prefix, userKey: (user: string) => `${prefix}{${user}}` }
  })

const retention = Duration.toMillis(expiredRetention)

/** The digest of a session's secret, as its entry holds it. */
const secretOf = (session: Session.Session<unknown>) => secretDigest(parseId(Redacted.value(session.id))!.secret)

const randomPart = () => Crypto.randomBytes(16).toString("base64url")

describe("Redis store: layout", () => {
  test("an entry is stored compact: the JSON array of Store.encodeEntry in the user's hash, little memory per session", () =>
    Effect.gen(function*() {
      const { raw, store, userKey } = yield* makeStore({ prefix: RedisStore.defaultPrefix })
      // a typical session: real key sizes (22-character tag and lineage), a CSRF token as data
      const userId = `user-${Crypto.randomInt(1_000_000)}`
      const now = Date.now()
      const expiresAt = now + Duration.toMillis(Session.defaultTtl)
      const entry: Entry = {
        version: 0,
        userId,
        createdAt: now,
        renewedAt: now,
        extendedUntil: expiresAt,
        expiresAt,
        lastSeenAt: now,
        secret: randomPart(),
        previous: undefined,
        previousUntil: 0,
        userAgent: undefined,
        address: undefined,
        data: { csrf: Auth.randomId(24) }
      }
      const user = randomPart()
      const keys = Array.from({ length: 10 }, () => ({ user, session: randomPart() }))
      expect(yield* store.save(keys[0]!, entry, "create")).toBe(true)
      const stored = yield* call(raw, "HGET", userKey(user), keys[0]!.session)
      expect(stored).toBe(encodeEntry(entry))
      expect(JSON.parse(String(stored))).toEqual([
        3,
        0,
        entry.expiresAt,
        entry.lastSeenAt,
        entry.createdAt,
        entry.renewedAt,
        entry.extendedUntil,
        0,
        userId,
        entry.secret,
        null,
        null,
        null,
        entry.data
      ])

      const withOne = Number(yield* call(raw, "MEMORY", "USAGE", userKey(user), "SAMPLES", 0))
      for (const key of keys.slice(1)) yield* store.save(key, entry, "create")
      const withTen = Number(yield* call(raw, "MEMORY", "USAGE", userKey(user), "SAMPLES", 0))
      console.info(
        `Redis MEMORY USAGE: a user's hash with 1 session ${withOne} B (value ${
          String(stored).length
        } B: ${stored}); ` +
          `with 10 sessions ${withTen} B (${withTen / 10} B each)`
      )
      expect(withOne).toBeGreaterThan(0)
      expect(withOne).toBeLessThan(480)
      expect(withTen / 10).toBeLessThan(320)
      expect(yield* store.deleteUser(user)).toBe(10)
    }))
})

// -----------------------------------------------------------------------------
// the Sessions service on Redis
// -----------------------------------------------------------------------------

const Data = Schema.Struct({ csrf: Schema.String, visits: Schema.NumberFromString })
type Data = typeof Data.Type

class AppSession extends Session.Tag<AppSession>()("test/layers/RedisSessions/AppSession", { data: Data }) {}

const data: Data = { csrf: "csrf-token", visits: 3 }

const view = (session: Session.SessionInfo<Data>) => ({
  key: session.key,
  userId: session.userId,
  createdAt: session.createdAt.epochMillis,
  expiresAt: session.expiresAt.epochMillis,
  data: session.data
})

/** `list` answers oldest first; sessions created in the same millisecond may come in either order. */
const expectListed = (
  listed: ReadonlyArray<Session.SessionInfo<Data>>,
  expected: ReadonlyArray<Session.SessionInfo<Data>>
) => {
  const bySession = (views: ReadonlyArray<ReturnType<typeof view>>) =>
    [...views].sort((a, b) => a.key.session < b.key.session ? -1 : 1)
  expect(bySession(listed.map(view))).toEqual(bySession(expected.map(view)))
  const created = listed.map((session) => session.createdAt.epochMillis)
  expect(created).toEqual([...created].sort((a, b) => a - b))
}

/** The sessions service on its own Redis store (fresh prefix) and a fresh signing key. */
const makeSessions = (ttl: Duration.DurationInput = "1 hour") =>
  Effect.gen(function*() {
    const { raw, url } = yield* Env
    const prefix = uniquePrefix()
    const context = yield* Layer.build(
      Session.layer(AppSession, { ttl }).pipe(
        Layer.provide(
          Layer.merge(RedisStore.layer({ url, prefix }), Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }))
        )
      )
    )
    return { sessions: Context.get(context, AppSession), raw, userKey: (user: string) => `${prefix}{${user}}` }
  })

describe("Redis store: Sessions end to end", () => {
  test("issue, get, extend and clear", () =>
    Effect.gen(function*() {
      const { raw, sessions, userKey } = yield* makeSessions()
      const { session, token } = yield* sessions.issue("alice", data)
      expect(view(yield* sessions.get(token))).toEqual(view(session))
      const key = userKey(session.key.user)
      // as issued: version 0, renewed and last seen at its creation, its expiry set by the ttl alone
      expect(yield* call(raw, "HGET", key, session.key.session)).toBe(encodeEntry({
        version: 0,
        userId: "alice",
        createdAt: session.createdAt.epochMillis,
        renewedAt: session.createdAt.epochMillis,
        extendedUntil: session.expiresAt.epochMillis,
        expiresAt: session.expiresAt.epochMillis,
        lastSeenAt: session.createdAt.epochMillis,
        secret: secretOf(session),
        previous: undefined,
        previousUntil: 0,
        userAgent: undefined,
        address: undefined,
        data: { csrf: "csrf-token", visits: "3" }
      }))
      // the user's key outlives its latest session by the retention, so that a late token reads Expired
      expect(yield* call(raw, "PEXPIRETIME", key)).toBe(session.expiresAt.epochMillis + retention)

      yield* Effect.sleep("10 millis")
      const extended = yield* sessions.extend(session)
      expect(extended.expiresAt.epochMillis).toBeGreaterThan(session.expiresAt.epochMillis)
      expect(view(yield* sessions.get(token))).toEqual(view(extended))
      // written by compare-and-set, as the entry's next version
      expect(JSON.parse(String(yield* call(raw, "HGET", key, session.key.session))).slice(0, 3)).toEqual([
        3,
        1,
        extended.expiresAt.epochMillis
      ])
      expect(yield* call(raw, "PEXPIRETIME", key)).toBe(extended.expiresAt.epochMillis + retention)

      yield* sessions.clear(extended)
      expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
      expect(yield* call(raw, "EXISTS", key)).toBe(0)
      // a cleared session is not brought back by a late extend
      expect((yield* Effect.flip(sessions.extend(extended)))._tag).toBe("NotFound")
      expect(yield* call(raw, "EXISTS", key)).toBe(0)
      yield* sessions.clear(extended)
    }))

  test("an expired session reads Expired, and Redis drops the user's key by itself after the retention", () =>
    Effect.gen(function*() {
      const { raw, sessions, userKey } = yield* makeSessions("300 millis")
      const { session, token } = yield* sessions.issue("alice", data)
      const key = userKey(session.key.user)
      expect(yield* call(raw, "PEXPIRETIME", key)).toBe(session.expiresAt.epochMillis + retention)
      yield* Effect.sleep("400 millis")
      expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("Expired")
      expect(yield* sessions.list("alice")).toEqual([])
      // what Redis does at the key's expiry, brought forward
      yield* call(raw, "PEXPIREAT", key, Date.now())
      expect(yield* call(raw, "EXISTS", key)).toBe(0)
      expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
    }))

  test("list, clearOthers and clearAll", () =>
    Effect.gen(function*() {
      const { sessions } = yield* makeSessions()
      const alice: Array<Session.Issued<Data>> = []
      for (let i = 0; i < 3; i++) {
        alice.push(yield* sessions.issue("alice", { csrf: `c${i}`, visits: i }))
        yield* Effect.sleep("2 millis")
      }
      const bob = yield* sessions.issue("bob", data)
      expectListed(yield* sessions.list("alice"), alice.map(({ session }) => session))
      expect((yield* sessions.list("bob")).map(view)).toEqual([view(bob.session)])

      expect(yield* sessions.clearOthers(alice[1]!.session)).toBe(2)
      expect((yield* Effect.flip(sessions.get(alice[0]!.token)))._tag).toBe("NotFound")
      expect((yield* Effect.flip(sessions.get(alice[2]!.token)))._tag).toBe("NotFound")
      expect(view(yield* sessions.get(alice[1]!.token))).toEqual(view(alice[1]!.session))
      expect((yield* sessions.list("alice")).map(view)).toEqual([view(alice[1]!.session)])

      expect(yield* sessions.clearAll("alice")).toBe(1)
      expect((yield* Effect.flip(sessions.get(alice[1]!.token)))._tag).toBe("NotFound")
      expect(yield* sessions.list("alice")).toEqual([])
      expect(yield* sessions.clearAll("alice")).toBe(0)
      expect(yield* sessions.clearAll("nobody")).toBe(0)
      expect(view(yield* sessions.get(bob.token))).toEqual(view(bob.session))
    }))

  test("stored data that no longer decodes reads as NotFound and is left out of list", () =>
    Effect.gen(function*() {
      const { raw, sessions, userKey } = yield* makeSessions()
      const one = yield* sessions.issue("alice", data)
      const two = yield* sessions.issue("alice", data)
      const three = yield* sessions.issue("alice", data)
      const entryOf = (session: Session.Session<Data>, data: unknown) =>
        encodeEntry(completeEntry({
          userId: session.userId,
          createdAt: session.createdAt.epochMillis,
          expiresAt: session.expiresAt.epochMillis,
          secret: secretOf(session),
          data
        }))
      const key = userKey(one.session.key.user)
      yield* call(raw, "HSET", key, one.session.key.session, entryOf(one.session, { csrf: 42 }))
      yield* call(raw, "HSET", key, two.session.key.session, "{not json")
      expect((yield* Effect.flip(sessions.get(one.token)))._tag).toBe("NotFound")
      expect((yield* Effect.flip(sessions.get(two.token)))._tag).toBe("NotFound")
      expect(view(yield* sessions.get(three.token))).toEqual(view(three.session))
      expect((yield* sessions.list("alice")).map(view)).toEqual([view(three.session)])
    }))

  test("a token issued before clearAll was called never validates after it", () =>
    Effect.gen(function*() {
      const { sessions } = yield* makeSessions()
      const total = 120
      for (let round = 0; round < 3; round++) {
        const userId = `user-${round}-${randomPart()}`
        const { before, results, revoked: cleared } = yield* revokeMidway({
          total,
          create: () => sessions.issue(userId, data),
          revoke: sessions.clearAll(userId)
        })
        for (const i of before) expect((yield* Effect.flip(sessions.get(results[i]!.token)))._tag).toBe("NotFound")
        const valid = yield* Effect.forEach(results, ({ token }) => Effect.option(sessions.get(token)))
        const survivors = valid.filter(Option.isSome).length
        expect(cleared).toBeGreaterThanOrEqual(before.length)
        expect(cleared + survivors).toBe(total)
        expect(survivors).toBeGreaterThan(0)
        expect(yield* sessions.list(userId)).toHaveLength(survivors)
        expect(yield* sessions.clearAll(userId)).toBe(survivors)
      }
    }))
})
