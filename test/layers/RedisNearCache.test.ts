/**
 * The Redis store's near-cache (`nearCache`), against real `redis-server` processes of the harness (each
 * test its own, since several tamper with the server): two app instances on one Redis, A with the cache
 * and B without, sharing the signing keys.
 *
 * - A answers a session it has read from memory (Redis sees no HGET), and refuses it as soon as the
 *   invalidation of B's revocation (clear, clearAll, rotate) is delivered; A's own writes are read back
 *   at once; expiry is judged by A's Clock on the cached value; entries have a maximum age and the
 *   cache a capacity.
 * - An invalidation that overtakes the reply of its read (a pausing backend holds the reply back) keeps
 *   the reply out of the cache; random interleavings of A's readers with B's writers read nothing stale.
 * - Faults: the invalidation connection killed, Redis restarted, FLUSHALL, a tracking table overflowing:
 *   no revoked session is served, and the cache resumes by itself (hits again).
 * - A Cluster, or nonsense options, fail the layer with a `StoreError`.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  ConfigProvider,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Redacted,
  Schedule,
  type Scope,
  TestClock
} from "effect"
import { Redis as RawRedis } from "ioredis"
import * as Net from "node:net"
import * as Auth from "../../src/Auth.js"
import { hashKey, makeBackend, userOfHashKey } from "../../src/internal/redisBackend.js"
import * as NearCache from "../../src/internal/redisNearCache.js"
import * as RedisStore from "../../src/layers/Redis.js"
import * as Session from "../../src/Session.js"
import {
  encodeEntry,
  expiredRetention,
  makeStringOnly,
  maxEncodedLength,
  Store,
  StoreError,
  type StringBackend
} from "../../src/Store.js"
import { makeEntry } from "../../src/testing/StoreContract.js"
import { rawClient, type RedisServer, startRedis } from "../support/redis.js"
import { AppSession, type Data, newKey, randomPart } from "../support/redisStore.js"

// -----------------------------------------------------------------------------
// two instances on one Redis
// -----------------------------------------------------------------------------

const near: RedisStore.NearCacheOptions = { capacity: 10_000, maxAge: "1 hour", heartbeat: "200 millis" }

/** One app instance on `url`: the sessions service on its own store, with the near-cache when `cache`. */
const instance = (
  url: string,
  keys: ReadonlyArray<Redacted.Redacted<string>>,
  cache: RedisStore.NearCacheOptions | undefined,
  ttl: Duration.DurationInput = "1 hour"
) =>
  Effect.map(
    Layer.build(
      Session.layer(AppSession, { ttl }).pipe(
        Layer.provide(Layer.merge(
          RedisStore.layer({ url, nearCache: cache, commandTimeout: "1 second", connectTimeout: "2 seconds" }),
          Auth.layer({ keys })
        ))
      )
    ),
    Context.get(AppSession)
  )

interface Pair {
  readonly server: RedisServer
  readonly raw: RawRedis
  /** With the near-cache. */
  readonly a: AppSession["Type"]
  /** Without. */
  readonly b: AppSession["Type"]
}

const pair = (
  args: ReadonlyArray<string> = [],
  cache: RedisStore.NearCacheOptions = near
): Effect.Effect<Pair, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const server = yield* startRedis({ args })
    const raw = yield* rawClient(server.url)
    const keys = [Redacted.make(Auth.randomId(48))]
    const a = yield* instance(server.url, keys, cache)
    const b = yield* instance(server.url, keys, undefined)
    return { server, raw, a, b }
  })

const data = (visits: number): Data => ({ csrf: "c", visits })

const count = (metric: Metric.Metric.Counter<number>) => Effect.map(Metric.value(metric), (state) => state.count)
const hits = count(RedisStore.nearCacheMetrics.hits)
const invalidations = count(RedisStore.nearCacheMetrics.invalidations)

/** How many HGETs Redis has run: what tells a read from memory from one that asked Redis. */
const hgets = (raw: RawRedis) =>
  Effect.promise(async () => {
    const info = await raw.info("commandstats")
    return Number(/^cmdstat_hget:calls=(\d+)/m.exec(info)?.[1] ?? 0)
  })

/** Polls `check` (every 5 ms, for at most `within`) until it holds. */
const eventually = <E, R>(
  check: Effect.Effect<boolean, E, R>,
  what: string,
  within: Duration.DurationInput = "5 seconds"
) =>
  check.pipe(
    Effect.filterOrFail((ok) => ok, () => "not yet"),
    Effect.retry({ schedule: Schedule.spaced("5 millis"), while: (e) => e === "not yet" }),
    Effect.timeoutFail({ duration: within, onTimeout: () => new Error(`${what} did not happen in time`) }),
    Effect.asVoid
  )

/** Runs `revoke` and waits until A has been told of it (an invalidation arrived since it started). */
const revokeAndAwaitInvalidation = <A, E>(revoke: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const before = yield* invalidations
    const result = yield* revoke
    yield* eventually(Effect.map(invalidations, (n) => n > before), "the invalidation")
    return result
  })

/**
 * A session issued by B and read by A until A answers it from memory (B's write invalidates the user's
 * key, and an invalidation arriving after A's first read was sent keeps that read's reply out), checked
 * by Redis seeing no HGET for the hit.
 */
const cachedOnA = ({ a, b, raw }: Pair, userId = `user-${randomPart()}`) =>
  Effect.gen(function*() {
    const issued = yield* b.issue(userId, data(1))
    yield* a.get(issued.token)
    yield* eventually(
      Effect.gen(function*() {
        const [hitsBefore, hgetsBefore] = [yield* hits, yield* hgets(raw)]
        expect((yield* a.get(issued.token)).data).toEqual(data(1))
        return (yield* hits) === hitsBefore + 1 && (yield* hgets(raw)) === hgetsBefore
      }),
      "a hit",
      "2 seconds"
    )
    return issued
  })

const refused = (sessions: AppSession["Type"], token: string) =>
  Effect.map(Effect.exit(sessions.get(token)), (exit) => Exit.isFailure(exit))

/** Waits until A answers from memory again (after a fault): a hit on a fresh session. */
const resumes = (pair: Pair) =>
  eventually(
    Effect.gen(function*() {
      const issued = yield* pair.b.issue(`user-${randomPart()}`, data(7))
      yield* pair.a.get(issued.token)
      const before = yield* hits
      yield* pair.a.get(issued.token)
      return (yield* hits) > before
    }).pipe(Effect.catchAll(() => Effect.succeed(false))),
    "a hit after the fault",
    "15 seconds"
  )

/**
 * A TCP relay to Redis on `port`. `blackhole()` cuts the Redis side of every connection that subscribed to
 * invalidations and leaves the client's side open and silent: a loss the client cannot see as a close.
 */
const relay = (port: number) =>
  Effect.acquireRelease(
    Effect.async<
      {
        readonly port: number
        readonly server: Net.Server
        readonly blackhole: () => void
        readonly sockets: Array<Net.Socket>
      }
    >((resume) => {
      const pairs: Array<{ readonly upstream: Net.Socket; subscriber: boolean; dead: boolean }> = []
      const sockets: Array<Net.Socket> = []
      const server = Net.createServer((client) => {
        const upstream = Net.connect({ host: "127.0.0.1", port })
        const pair = { upstream, subscriber: false, dead: false }
        pairs.push(pair)
        sockets.push(client, upstream)
        client.on("data", (chunk: Buffer) => {
          if (chunk.includes("__redis__:invalidate")) pair.subscriber = true
          if (!pair.dead) upstream.write(chunk)
        })
        upstream.on("data", (chunk: Buffer) => {
          if (!pair.dead) client.write(chunk)
        })
        client.on("close", () => upstream.destroy())
        upstream.on("close", () => {
          if (!pair.dead) client.destroy()
        })
        client.on("error", () => {})
        upstream.on("error", () => {})
      })
      server.listen(0, "127.0.0.1", () =>
        resume(Effect.succeed({
          port: (server.address() as Net.AddressInfo).port,
          server,
          sockets,
          blackhole: () => {
            for (const pair of pairs) {
              if (pair.subscriber && !pair.dead) {
                pair.dead = true
                pair.upstream.destroy()
              }
            }
          }
        })))
    }),
    ({ server, sockets }) =>
      Effect.sync(() => {
        for (const socket of sockets) socket.destroy()
        server.close()
      })
  )

/** A test on the real clock (Redis expires keys by its own), in a scope, with room for a fault's recovery. */
const live = (title: string, body: Effect.Effect<void, unknown, Scope.Scope>) =>
  it.scopedLive(title, () => body, 60_000)

describe("Redis near-cache", () => {
  live(
    "answers a session it has read from memory, and A's own writes are read back at once",
    Effect.gen(function*() {
      const env = yield* pair()
      const issued = yield* cachedOnA(env)
      const session = yield* env.a.get(issued.token)
      const updated = yield* env.a.update(session, (d) => ({ ...d, visits: d.visits + 1 }))
      expect((yield* env.a.get(issued.token)).data.visits).toBe(2)
      yield* env.a.clear(updated)
      expect((yield* Effect.flip(env.a.get(issued.token)))._tag).toBe("NotFound")
    })
  )

  live(
    "refuses a session as soon as the invalidation of B's clear, clearAll or rotate arrives",
    Effect.gen(function*() {
      const env = yield* pair()
      const cleared = yield* cachedOnA(env)
      yield* revokeAndAwaitInvalidation(env.b.clear(yield* env.b.get(cleared.token)))
      expect((yield* Effect.flip(env.a.get(cleared.token)))._tag).toBe("NotFound")

      const userId = `user-${randomPart()}`
      const first = yield* cachedOnA(env, userId)
      const second = yield* cachedOnA(env, userId)
      expect(yield* revokeAndAwaitInvalidation(env.b.clearAll(userId))).toBe(2)
      expect((yield* Effect.flip(env.a.get(first.token)))._tag).toBe("NotFound")
      expect((yield* Effect.flip(env.a.get(second.token)))._tag).toBe("NotFound")

      const rotated = yield* cachedOnA(env)
      const renewed = yield* revokeAndAwaitInvalidation(env.b.rotate(yield* env.b.get(rotated.token)))
      expect((yield* Effect.flip(env.a.get(rotated.token)))._tag).toBe("NotFound")
      expect((yield* env.a.get(renewed.token)).userId).toBe(rotated.session.userId)
    })
  )

  live(
    "a cached entry is dropped after maxAge, and the cache holds at most capacity sessions",
    Effect.gen(function*() {
      const env = yield* pair([], { capacity: 3, maxAge: "300 millis", heartbeat: "200 millis" })
      const issued = yield* cachedOnA(env)
      yield* Effect.sleep("400 millis")
      const before = yield* hgets(env.raw)
      yield* env.a.get(issued.token)
      expect(yield* hgets(env.raw)).toBe(before + 1)

      const tokens = yield* Effect.forEach([1, 2, 3, 4], () => Effect.map(cachedOnA(env), (i) => i.token))
      // the first user was read least recently: capacity 3 dropped it
      const again = yield* hgets(env.raw)
      yield* env.a.get(tokens[0]!)
      expect(yield* hgets(env.raw)).toBe(again + 1)
      yield* env.a.get(tokens[3]!)
      expect(yield* hgets(env.raw)).toBe(again + 1)
    })
  )

  live(
    "the capacity drops the user read least recently, not the one cached first",
    Effect.gen(function*() {
      const env = yield* pair([], { capacity: 2, maxAge: "1 hour", heartbeat: "200 millis" })
      const [first, second] = [yield* cachedOnA(env), yield* cachedOnA(env)]
      // read again after the second user was cached: the second is now the least recently read
      yield* env.a.get(first.token)
      yield* cachedOnA(env)
      const before = yield* hgets(env.raw)
      yield* env.a.get(first.token)
      expect(yield* hgets(env.raw)).toBe(before)
      yield* env.a.get(second.token)
      expect(yield* hgets(env.raw)).toBe(before + 1)
    })
  )

  it.scoped("expiry is judged by A's own Clock on the cached value (no invalidation needed)", () =>
    Effect.gen(function*() {
      const server = yield* startRedis()
      const raw = yield* rawClient(server.url)
      const keys = [Redacted.make(Auth.randomId(48))]
      // the time of day, so that Redis keeps the key (its expiry follows Redis's own clock)
      yield* TestClock.setTime(Date.now())
      const a = yield* instance(server.url, keys, { capacity: 100, maxAge: "1 day" }, "1 minute")
      const issued = yield* a.issue("u", data(1))
      yield* a.get(issued.token)
      yield* a.get(issued.token)
      const [hitsBefore, hgetsBefore] = [yield* hits, yield* hgets(raw)]
      yield* TestClock.adjust("61 seconds")
      expect((yield* Effect.flip(a.get(issued.token)))._tag).toBe("Expired")
      expect(yield* hits).toBe(hitsBefore + 1)
      expect(yield* hgets(raw)).toBe(hgetsBefore)
    }))

  live(
    "an invalidation that overtakes the reply of its read keeps the reply out of the cache",
    Effect.gen(function*() {
      const server = yield* startRedis()
      const raw = yield* rawClient(server.url)
      const open = (protocol?: 2) =>
        Effect.acquireRelease(
          Effect.promise(async () => {
            const client = new RawRedis(server.url, {
              lazyConnect: true,
              enableOfflineQueue: false,
              ...(protocol === undefined ? {} : { protocol, autoResubscribe: false })
            })
            client.on("error", () => {})
            await client.connect()
            return client
          }),
          (client) => Effect.sync(() => client.disconnect())
        )
      const [data, invalidation] = [yield* open(), yield* open(2)]
      const prefix = "race:"
      const cache = yield* NearCache.make(
        {
          capacity: 100,
          maxAgeMillis: 3_600_000,
          heartbeatMillis: 1_000,
          userOf: (key) => userOfHashKey(prefix, key)
        },
        data,
        invalidation
      )
      const backend = makeBackend({
        client: data,
        revoker: data,
        prefix,
        retention: Duration.toMillis(expiredRetention),
        longest: maxEncodedLength,
        wait: undefined,
        connection: undefined,
        error: (failure) => new StoreError(failure)
      })
      // the reply of the first read is held back until the test lets it through
      const gate = yield* Deferred.make<void>()
      let held = true
      const pausing: StringBackend = {
        ...backend,
        fetch: (key, decode) =>
          held
            ? Effect.flatMap(backend.fetch(key, (value) => value), (value) => {
              held = false
              return Effect.map(Deferred.await(gate), () => decode(value))
            })
            : backend.fetch(key, decode)
      }
      const store = makeStringOnly(cache.wrap(pausing))
      const key = newKey()
      const entry = makeEntry({ version: 1, expiresAt: 4_102_444_800_000 })
      // written by another client: the only invalidation of the key is the deletion below
      yield* Effect.promise(() => raw.hset(hashKey(prefix, key.user), key.session, encodeEntry(entry)))
      const read = yield* Effect.fork(store.fetch(key))
      yield* eventually(Effect.sync(() => !held), "the first read's reply")
      // another instance deletes the session: the invalidation arrives while the reply is held
      const before = yield* invalidations
      yield* Effect.promise(() => raw.hdel(hashKey(prefix, key.user), key.session))
      yield* eventually(Effect.map(invalidations, (n) => n > before), "the invalidation")
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Fiber.join(read))._tag).toBe("Some")
      // the held reply was not kept: the next read asks Redis, which has nothing
      expect((yield* store.fetch(key))._tag).toBe("None")
    })
  )

  live(
    "random interleavings of A's readers and B's writers read nothing stale once invalidated",
    Effect.gen(function*() {
      const env = yield* pair()
      const issued = yield* env.b.issue(`user-${randomPart()}`, data(0))
      let stop = false
      const readers = yield* Effect.forEach(
        [1, 2, 3, 4],
        () =>
          Effect.fork(
            Effect.whileLoop({
              while: () => !stop,
              body: () =>
                Effect.andThen(Effect.ignore(env.a.get(issued.token)), Effect.sleep(Duration.millis(Math.random()))),
              step: () => {}
            })
          )
      )
      let session = yield* env.b.get(issued.token)
      let stale = 0
      for (let i = 1; i <= 100; i++) {
        session = yield* revokeAndAwaitInvalidation(env.b.update(session, () => data(i)))
        const seen = yield* env.a.get(issued.token)
        if (seen.data.visits !== i) stale++
      }
      stop = true
      yield* Fiber.joinAll(readers)
      expect(stale).toBe(0)
      expect(yield* hits).toBeGreaterThan(0)
    })
  )

  live(
    "the invalidation connection killed: nothing revoked meanwhile is served, and hits resume",
    Effect.gen(function*() {
      const env = yield* pair()
      const issued = yield* cachedOnA(env)
      const other = yield* cachedOnA(env)
      yield* Effect.promise(() => env.raw.call("CLIENT", "KILL", "TYPE", "pubsub"))
      yield* env.b.clear(yield* env.b.get(issued.token))
      expect(yield* refused(env.a, issued.token)).toBe(true)
      yield* resumes(env)
      expect(yield* refused(env.a, issued.token)).toBe(true)
      yield* revokeAndAwaitInvalidation(env.b.clear(yield* env.b.get(other.token)))
      expect(yield* refused(env.a, other.token)).toBe(true)
    })
  )

  live(
    "Redis restarted (with its data): nothing revoked during or after is served, and hits resume",
    Effect.gen(function*() {
      const env = yield* pair(["--appendonly", "yes", "--appendfsync", "always"])
      const during = yield* cachedOnA(env)
      const after = yield* cachedOnA(env)
      yield* env.server.stop
      // A learns of the loss from its sockets' close, a moment after the server's exit (nothing is revoked
      // yet, so a read in that moment is not stale): from then on it answers nothing from memory
      yield* eventually(refused(env.a, during.token), "A's refusal while Redis is down", "2 seconds")
      expect(yield* refused(env.a, during.token)).toBe(true)
      yield* env.server.start
      // revoked as soon as Redis is back, possibly before A's connections are
      yield* eventually(
        Effect.flatMap(env.b.get(during.token), (s) => env.b.clear(s)).pipe(
          Effect.as(true),
          Effect.orElseSucceed(() => false)
        ),
        "B's revocation"
      )
      expect(yield* refused(env.a, during.token)).toBe(true)
      yield* resumes(env)
      expect(yield* refused(env.a, during.token)).toBe(true)
      yield* env.a.get(after.token)
      yield* revokeAndAwaitInvalidation(env.b.clear(yield* env.b.get(after.token)))
      expect(yield* refused(env.a, after.token)).toBe(true)
    })
  )

  live(
    "a silently lost invalidation connection is noticed by the heartbeat, and hits resume",
    Effect.gen(function*() {
      const server = yield* startRedis()
      const raw = yield* rawClient(server.url)
      const proxy = yield* relay(server.port)
      const keys = [Redacted.make(Auth.randomId(48))]
      // A reaches Redis through the relay; the heartbeat every 200 ms, the command timeout 1 s
      const a = yield* instance(`redis://127.0.0.1:${proxy.port}`, keys, near)
      const b = yield* instance(server.url, keys, undefined)
      const env: Pair = { server, raw, a, b }
      const issued = yield* cachedOnA(env)
      const flushes = (reason: string) => count(Metric.tagged(RedisStore.nearCacheMetrics.flushes, "reason", reason))
      const before = (yield* flushes("heartbeat")) + (yield* flushes("broken_redirect"))
      proxy.blackhole()
      // Redis can no longer deliver the invalidation, and A sees no close: only the heartbeat can tell
      yield* b.clear(yield* b.get(issued.token))
      yield* eventually(refused(env.a, issued.token), "A refusing the revoked session", "5 seconds")
      expect((yield* flushes("heartbeat")) + (yield* flushes("broken_redirect"))).toBeGreaterThan(before)
      yield* resumes(env)
      expect(yield* refused(env.a, issued.token)).toBe(true)
    })
  )

  live(
    "FLUSHALL empties the cache at once, and hits resume",
    Effect.gen(function*() {
      const env = yield* pair()
      const issued = yield* cachedOnA(env)
      const flushes = count(Metric.tagged(RedisStore.nearCacheMetrics.flushes, "reason", "flushall"))
      const before = yield* flushes
      yield* Effect.promise(() => env.raw.flushall())
      yield* eventually(Effect.map(flushes, (n) => n > before), "the flush")
      expect((yield* Effect.flip(env.a.get(issued.token)))._tag).toBe("NotFound")
      yield* resumes(env)
    })
  )

  live(
    "an overflowing tracking table costs hits, never a revoked session served",
    Effect.gen(function*() {
      const env = yield* pair()
      yield* Effect.promise(() => env.raw.config("SET", "tracking-table-max-keys", "5"))
      const sessions = yield* Effect.forEach(Array.from({ length: 40 }), () =>
        Effect.gen(function*() {
          const issued = yield* env.b.issue(`user-${randomPart()}`, data(1))
          yield* env.a.get(issued.token)
          return issued
        }))
      // Redis forgets keys past the table's size and invalidates them as it does: let that settle
      yield* Effect.sleep("300 millis")
      for (const issued of sessions) yield* env.b.clear(yield* env.b.get(issued.token))
      yield* Effect.sleep("300 millis")
      const served = yield* Effect.forEach(sessions, (issued) => refused(env.a, issued.token))
      expect(served.filter((r) => !r)).toHaveLength(0)
      yield* resumes(env)
    })
  )

  live(
    "layerConfig turns the near-cache on with REDIS_NEAR_CACHE_CAPACITY",
    Effect.gen(function*() {
      const server = yield* startRedis()
      const provider = ConfigProvider.fromMap(
        new Map([["REDIS_URL", server.url], ["REDIS_NEAR_CACHE_CAPACITY", "10"], [
          "REDIS_NEAR_CACHE_MAX_AGE",
          "1 hour"
        ]])
      )
      const store = Context.get(
        yield* Layer.build(RedisStore.layerConfig()).pipe(Effect.withConfigProvider(provider)),
        Store
      )
      const key = newKey()
      yield* store.save(key, makeEntry({ version: 1, expiresAt: 4_102_444_800_000 }), "create")
      yield* eventually(
        Effect.gen(function*() {
          const before = yield* hits
          expect((yield* store.fetch(key))._tag).toBe("Some")
          return (yield* hits) > before
        }),
        "a hit"
      )
    })
  )

  it.effect("a Cluster, or nonsense options, fail the layer with a StoreError", () =>
    Effect.gen(function*() {
      const cluster = yield* Effect.flip(
        Layer.build(
          RedisStore.layerCluster({
            nodes: ["127.0.0.1:1"],
            // @ts-expect-error: refused by the type too
            nearCache: { capacity: 10 }
          })
        ).pipe(Effect.scoped)
      )
      expect(cluster).toBeInstanceOf(StoreError)
      expect(cluster.message).toMatch(/not supported on a Redis Cluster/)
      const zero = yield* Effect.flip(
        Layer.build(RedisStore.layer({ url: "redis://127.0.0.1:1", nearCache: { capacity: 0 } })).pipe(Effect.scoped)
      )
      expect(zero.message).toMatch(/capacity of at least 1/)
    }))
})
