/**
 * The Redis store on a Redis that evicts keys under memory pressure (`maxmemory` with an `allkeys-*` or
 * `volatile-*` policy), on throwaway `redis-server`s started by the harness (never `REDIS_URL`: these
 * tests need their own configuration).
 *
 * Each user's sessions are one key, so an eviction can only drop a user's sessions together: `deleteUser`
 * can never miss a session that eviction left behind (the pre-fix layout kept a per-user index apart from
 * the sessions, which reads never touched: the index went cold and was evicted while the sessions stayed
 * hot, and "log out everywhere" missed them). And the layer warns at start when the policy evicts.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Effect, Layer, Logger, Option, Schedule } from "effect"
import * as Crypto from "node:crypto"
import * as RedisStore from "../../src/layers/Redis.js"
import { type Entry, type Key, Store } from "../../src/Store.js"
import { makeEntry } from "../../src/testing/StoreContract.js"
import { rawClient as rawRedis, type RedisServer, startRedis } from "../support/redis.js"

const part = () => Crypto.randomBytes(16).toString("base64url")

const entryOf = (userId: string): Entry => {
  const now = Date.now()
  return makeEntry({
    userId,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 3_600_000,
    secret: Crypto.randomBytes(32).toString("base64url"),
    userAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    address: "203.0.113.7",
    data: { csrf: part(), roles: ["reader"] }
  })
}

const rawClient = (server: RedisServer) => rawRedis(server.url)

/** The warnings logged while `effect` runs (and by the fibers it forks, after it too). */
const warningsOf = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
    })
    const value = yield* Effect.provide(effect, Logger.replace(Logger.defaultLogger, logger))
    return { value, warnings }
  })

/**
 * 3,000 users with three sessions each on a Redis too small for them all, reads keeping a third of the
 * users hot while the rest are written; then "log out everywhere" for every user.
 */
const everyoneLogsOut = (policy: "allkeys-lru" | "volatile-lru") =>
  Effect.gen(function*() {
    const server = yield* startRedis({ args: ["--maxmemory", "3mb", "--maxmemory-policy", policy] })
    const raw = yield* rawClient(server)
    const store = Context.get(yield* Layer.build(RedisStore.layer({ url: server.url })), Store)
    const users = Array.from({ length: 3_000 }, () => part())
    const keys = users.map((user): ReadonlyArray<Key> => [0, 1, 2].map(() => ({ user, session: part() })))
    const hot = keys.slice(0, 1_000).flat()
    let reads = 0
    yield* Effect.forEach(
      keys,
      (mine, i) =>
        Effect.gen(function*() {
          for (const key of mine) yield* store.save(key, entryOf(`user-${i}`), "create")
          // every write is followed by reads of the hot users: their sessions stay recently used
          for (let j = 0; j < 3; j++) {
            yield* store.fetch(hot[Crypto.randomInt(hot.length)]!)
            reads++
          }
        }),
      { concurrency: 32, discard: true }
    )
    const info = String(yield* Effect.promise(() => raw.info("stats")))
    const evicted = Number(/^evicted_keys:(\d+)/m.exec(info)?.[1])
    // the premise: Redis did evict, and kept some users
    expect(evicted).toBeGreaterThan(100)
    const alive = yield* Effect.forEach(keys.flat(), (key) => store.fetch(key), { concurrency: 64 })
    expect(alive.filter(Option.isSome).length).toBeGreaterThan(300)

    yield* Effect.forEach(users, (user) => store.deleteUser(user), { concurrency: 64, discard: true })
    const survivors = yield* Effect.forEach(keys.flat(), (key) => store.fetch(key), { concurrency: 64 })
    expect(survivors.filter(Option.isSome)).toEqual([])
    // nothing of theirs is left in Redis either
    expect(Number(yield* Effect.promise(() => raw.dbsize()))).toBe(0)
    return { evicted, reads }
  })

describe("Redis store under an evicting maxmemory-policy", () => {
  // Fails on the pre-fix store (f4cef2e): its per-user index was evicted while the sessions stayed, and
  // deleteUser missed them (thousands of live sessions after "log out everywhere").
  it.scopedLive(
    "allkeys-lru: after deleteUser of every user, no session of theirs can be fetched",
    () =>
      Effect.gen(function*() {
        const { evicted } = yield* everyoneLogsOut("allkeys-lru")
        console.info(`allkeys-lru: ${evicted} keys evicted`)
      }),
    60_000
  )

  it.scopedLive(
    "volatile-lru: after deleteUser of every user, no session of theirs can be fetched",
    () =>
      Effect.gen(function*() {
        const { evicted } = yield* everyoneLogsOut("volatile-lru")
        console.info(`volatile-lru: ${evicted} keys evicted`)
      }),
    60_000
  )
})

describe("Redis store: the eviction policy at layer start", () => {
  for (const policy of ["allkeys-lru", "allkeys-lfu", "allkeys-random", "volatile-lru", "volatile-ttl"]) {
    it.scopedLive(`${policy}: layer warns that sessions may be evicted`, () =>
      Effect.gen(function*() {
        const server = yield* startRedis({ args: ["--maxmemory", "64mb", "--maxmemory-policy", policy] })
        const { warnings } = yield* warningsOf(Layer.build(RedisStore.layer({ url: server.url })))
        expect(warnings).toHaveLength(1)
        expect(warnings[0]).toContain(`maxmemory-policy ${policy}`)
        expect(warnings[0]).toContain("evict")
        expect(warnings[0]).toContain("noeviction")
        expect(warnings[0]).toContain(`127.0.0.1:${server.port}`)
      }))
  }

  it.scopedLive("noeviction (the default): no warning", () =>
    Effect.gen(function*() {
      const server = yield* startRedis({ args: ["--maxmemory", "64mb"] })
      const { warnings } = yield* warningsOf(Layer.build(RedisStore.layer({ url: server.url })))
      expect(warnings).toEqual([])
    }))

  it.scopedLive("a Redis that refuses CONFIG (as managed ones do): no warning, and the store works", () =>
    Effect.gen(function*() {
      const server = yield* startRedis({
        args: ["--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", ""]
      })
      const { value: context, warnings } = yield* warningsOf(Layer.build(RedisStore.layer({ url: server.url })))
      expect(warnings).toEqual([])
      const store = Context.get(context, Store)
      const key = { user: part(), session: part() }
      const entry = entryOf("u")
      expect(yield* store.save(key, entry, "create")).toBe(true)
      expect(yield* store.fetch(key)).toEqual(Option.some(entry))
    }))

  it.scopedLive("layerClient warns too, once the application's client answers", () =>
    Effect.gen(function*() {
      const server = yield* startRedis({ args: ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"] })
      const client = yield* rawClient(server)
      const { warnings } = yield* warningsOf(Layer.build(RedisStore.layerClient(client)))
      // the check runs in the background: wait for it
      yield* Effect.suspend(() => warnings.length > 0 ? Effect.void : Effect.fail("not yet")).pipe(
        Effect.retry({ schedule: Schedule.spaced("20 millis"), times: 100 })
      )
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("maxmemory-policy allkeys-lru")
    }))
})
