/**
 * The Redis store on a real 3-master Redis Cluster started by the harness (test/support/redis.ts), once for
 * the whole file: the Store contract (also with every revocation followed by WAIT), each user's hash in
 * one slot with users spread over the masters, WAIT run on the user's node, `layerClusterConfig`, and the
 * `Sessions` service end to end with many users spread over the slots.
 *
 * The cluster lives in a `ManagedRuntime` rather than @effect/vitest's `layer(...)` (see the header of
 * src/testing/StoreContract.ts); tests run with `it.live`, since Redis expires keys by its own clock.
 */
import { afterAll, beforeAll, describe, expect } from "@effect/vitest"
import { ConfigError, ConfigProvider, Context, Duration, Effect, Layer, Logger, ManagedRuntime, Option } from "effect"
import { Cluster, Redis } from "ioredis"
import * as Crypto from "node:crypto"
import * as RedisStore from "../../src/layers/Redis.js"
import * as Session from "../../src/Session.js"
import { expiredRetention, Store, StoreError } from "../../src/Store.js"
import * as StoreContract from "../../src/testing/StoreContract.js"
import { makeEntry } from "../../src/testing/StoreContract.js"
import { RedisClusterTest } from "../support/redis.js"
import {
  call,
  type Data,
  expectClearAllWins,
  expectListed,
  freePort,
  liveTest,
  newKey,
  newUser,
  sessionsOn,
  view
} from "../support/redisStore.js"

const uniquePrefix = () => `test-${Crypto.randomBytes(6).toString("hex")}:`

// -----------------------------------------------------------------------------
// one cluster for the file, a raw cluster client and a plain client beside the store
// -----------------------------------------------------------------------------

class Env extends Context.Tag("test/layers/RedisCluster/Env")<Env, {
  /** `host:port` of every master. */
  readonly nodes: ReadonlyArray<string>
  /** A cluster client, to look at what the store writes. */
  readonly raw: Cluster
  /** A plain client to one node, for `CLUSTER …` commands. */
  readonly node: Redis
}>() {}

const env = ManagedRuntime.make(
  Layer.scoped(
    Env,
    Effect.gen(function*() {
      const cluster = yield* RedisClusterTest
      const nodes = cluster.nodes.map(({ host, port }) => `${host}:${port}`)
      const raw = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })), { lazyConnect: true })
          client.on("error", () => {})
          await client.connect()
          return client
        }),
        (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
      )
      const node = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Redis(cluster.nodes[0]!.url, { lazyConnect: true })
          client.on("error", () => {})
          await client.connect()
          return client
        }),
        (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
      )
      return { nodes, raw, node }
    })
  ).pipe(Layer.provide(RedisClusterTest.layer))
)
beforeAll(() => env.runtime(), 60_000)
afterAll(() => env.dispose(), 60_000)

const test = liveTest(env)

// -----------------------------------------------------------------------------
// the contract
// -----------------------------------------------------------------------------

const clusterStore = (options: Omit<RedisStore.ClusterConnectionOptions, "nodes" | "prefix"> = {}) =>
  Layer.unwrapEffect(
    Effect.map(
      env.runtimeEffect,
      (rt) => RedisStore.layerCluster({ nodes: Context.get(rt.context, Env).nodes, prefix: uniquePrefix(), ...options })
    )
  )

StoreContract.suite("redis cluster", clusterStore())
// revocations as a pipeline (the script, then WAIT) on a second Cluster client: routed to the user's node
StoreContract.suite(
  "redis cluster (waitForReplicas 0)",
  clusterStore({ waitForReplicas: { replicas: 0, timeout: "1 second" } })
)

// -----------------------------------------------------------------------------
// layout and replicas
// -----------------------------------------------------------------------------

/** The master serving each slot, from `CLUSTER SLOTS`. */
const slotOwners = (node: Redis) =>
  Effect.map(call(node, "CLUSTER", "SLOTS"), (reply) => {
    const ranges = (reply as Array<[number, number, [string, number, ...Array<unknown>]]>).map(
      ([from, to, [host, port]]) => ({ from, to, owner: `${host}:${port}` })
    )
    return (slot: number) => ranges.find(({ from, to }) => from <= slot && slot <= to)?.owner
  })

/** How many times each master ran `command`, from `INFO commandstats`, by `host:port`. */
const callsByNode = (nodes: ReadonlyArray<string>, command: string) =>
  Effect.forEach(nodes, (address) =>
    Effect.acquireUseRelease(
      Effect.promise(async () => {
        const [host, port] = address.split(":")
        const client = new Redis(Number(port), host!, { lazyConnect: true })
        client.on("error", () => {})
        await client.connect()
        return client
      }),
      (client) =>
        Effect.map(call(client, "INFO", "commandstats"), (info) => {
          const match = new RegExp(`^cmdstat_${command}:calls=(\\d+)`, "m").exec(String(info))
          return [address, match === null ? 0 : Number(match[1])] as const
        }),
      (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
    )).pipe(Effect.map((pairs) => new Map(pairs)))

describe("Redis Cluster store: layout and replicas", () => {
  test("every user is one hash in one slot, and users spread over the masters", () =>
    Effect.gen(function*() {
      const { node, nodes, raw } = yield* Env
      const prefix = uniquePrefix()
      const store = yield* RedisStore.makeCluster({ nodes, prefix })
      const ownerOf = yield* slotOwners(node)
      const owners = new Set<string>()
      for (let i = 0; i < 24; i++) {
        const user = newUser()
        for (let j = 0; j < 3; j++) {
          expect(yield* store.save({ user, session: `s${j}` }, entry, "create")).toBe(true)
        }
        expect(yield* call(raw, "TYPE", `${prefix}{${user}}`)).toBe("hash")
        expect(yield* call(raw, "HLEN", `${prefix}{${user}}`)).toBe(3)
        owners.add(ownerOf(Number(yield* call(node, "CLUSTER", "KEYSLOT", `${prefix}{${user}}`)))!)
        expect(yield* store.deleteUser(user, "s1")).toBe(2)
        expect(yield* store.list(user, 0)).toEqual([{ key: { user, session: "s1" }, entry }])
      }
      expect(owners.size).toBe(3)
    }))

  // The harness's cluster has no replicas: WAIT 1 cannot be satisfied, WAIT 0 always is. Running WAIT on the
  // key's node is what makes it mean anything: the commandstats show which node ran it.
  test("waitForReplicas runs WAIT on the node that owns the user, after the revocation", () =>
    Effect.gen(function*() {
      const { node, nodes } = yield* Env
      const prefix = uniquePrefix()
      const ownerOf = yield* slotOwners(node)
      const none = yield* RedisStore.makeCluster({
        nodes,
        prefix,
        waitForReplicas: { replicas: 0, timeout: "1 second" }
      })
      const one = yield* RedisStore.makeCluster({
        nodes,
        prefix,
        waitForReplicas: { replicas: 1, timeout: "200 millis" }
      })
      const seen = new Set<string>()
      for (let i = 0; i < 6; i++) {
        const user = newUser()
        const owner = ownerOf(Number(yield* call(node, "CLUSTER", "KEYSLOT", `${prefix}{${user}}`)))!
        seen.add(owner)
        for (const session of ["a", "b", "c"]) yield* none.save({ user, session }, entry, "create")

        const before = yield* callsByNode(nodes, "wait")
        yield* none.delete({ user, session: "a" })
        expect(yield* none.deleteUser(user, "b")).toBe(1)
        const after = yield* callsByNode(nodes, "wait")
        for (const address of nodes) {
          expect(after.get(address)! - before.get(address)!, address).toBe(address === owner ? 2 : 0)
        }

        for (const revoke of [one.delete({ user, session: "b" }), one.deleteUser(user)]) {
          const [elapsed, error] = yield* Effect.timed(Effect.flip(revoke))
          expect(error).toBeInstanceOf(StoreError)
          expect(error.reason).toBe("Timeout")
          expect(error.message).toContain("0 of 1 replica")
          expect(Duration.toMillis(elapsed)).toBeGreaterThanOrEqual(190)
          expect(Duration.toMillis(elapsed)).toBeLessThan(2_000)
        }
        // applied on the primary all the same
        expect(yield* none.list(user, 0)).toEqual([])
      }
      expect(seen.size).toBeGreaterThanOrEqual(2)
    }), 30_000)
})

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

const entry = makeEntry({ userId: "u", createdAt: 0, expiresAt: Date.UTC(2100, 0, 1), data: null })

describe("Redis Cluster store: layers", () => {
  test("the layer warns when any master has an evicting maxmemory-policy", () =>
    Effect.gen(function*() {
      const { node, nodes } = yield* Env
      const warningsWhenBuilt = Effect.gen(function*() {
        const warnings: Array<string> = []
        const logger = Logger.make(({ logLevel, message }) => {
          if (logLevel._tag === "Warning") warnings.push(Array.isArray(message) ? message.join(" ") : String(message))
        })
        yield* Effect.scoped(
          Layer.build(RedisStore.layerCluster({ nodes })).pipe(
            Effect.provide(Logger.replace(Logger.defaultLogger, logger))
          )
        )
        return warnings
      })
      expect(yield* warningsWhenBuilt).toEqual([])
      // one master of three (the one the file's plain client talks to)
      yield* Effect.acquireRelease(
        call(node, "CONFIG", "SET", "maxmemory-policy", "volatile-lfu"),
        () => call(node, "CONFIG", "SET", "maxmemory-policy", "noeviction")
      )
      const warnings = yield* warningsWhenBuilt
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toContain("maxmemory-policy volatile-lfu")
    }))

  test("layerClusterConfig reads REDIS_CLUSTER_NODES and REDIS_PREFIX", () =>
    Effect.gen(function*() {
      const { nodes, raw } = yield* Env
      for (const seeds of [nodes, nodes.slice(1, 2)]) {
        const prefix = uniquePrefix()
        const key = newKey()
        yield* Effect.scoped(Effect.gen(function*() {
          const store = Context.get(yield* Layer.build(RedisStore.layerClusterConfig()), Store)
          expect(yield* store.save(key, entry, "create")).toBe(true)
          expect(yield* store.fetch(key)).toEqual(Option.some(entry))
        })).pipe(withEnv([["REDIS_CLUSTER_NODES", seeds.join(",")], ["REDIS_PREFIX", prefix]]))
        expect(yield* call(raw, "HEXISTS", `${prefix}{${key.user}}`, key.session)).toBe(1)
      }
    }))

  test("layerClusterConfig without REDIS_CLUSTER_NODES is a ConfigError naming it", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(RedisStore.layerClusterConfig())).pipe(
        withEnv([["REDIS_URL", "redis://127.0.0.1:1"]])
      )
      expect(ConfigError.isConfigError(error)).toBe(true)
      expect(String(error)).toContain("REDIS_CLUSTER_NODES")
    }))

  // Fails against src/layers/Redis.ts as of this writing: ioredis's Cluster rejects with "None of startup
  // nodes is available", which `toStoreError` does not recognise, so the reason is "Unknown".
  test(
    "an unreachable cluster fails the layer with an Unavailable or Timeout StoreError within a bounded time",
    () =>
      Effect.gen(function*() {
        const port = yield* freePort
        const [elapsed, error] = yield* Effect.timed(
          Effect.flip(
            Layer.build(RedisStore.layerCluster({ nodes: [`127.0.0.1:${port}`], connectTimeout: "1 second" }))
          )
        )
        expect(error).toBeInstanceOf(StoreError)
        expect(["Unavailable", "Timeout"]).toContain(error.reason)
        expect(error.message).toContain(`127.0.0.1:${port}`)
        expect(Duration.toMillis(elapsed)).toBeLessThan(6_000)
      }),
    20_000
  )
})

// -----------------------------------------------------------------------------
// the Sessions service on the cluster
// -----------------------------------------------------------------------------

const retention = Duration.toMillis(expiredRetention)

/** The sessions service on its own cluster store (fresh prefix) and a fresh signing key. */
const makeSessions = (ttl: Duration.DurationInput = "1 hour") =>
  Effect.gen(function*() {
    const { node, nodes, raw } = yield* Env
    const prefix = uniquePrefix()
    const sessions = yield* sessionsOn(RedisStore.layerCluster({ nodes, prefix }), ttl)
    return { sessions, raw, node, userKey: (user: string) => `${prefix}{${user}}` }
  })

describe("Redis Cluster store: Sessions end to end", () => {
  test("issue, get, extend and clear", () =>
    Effect.gen(function*() {
      const { raw, sessions, userKey } = yield* makeSessions()
      const { session, token } = yield* sessions.issue("alice", { csrf: "c", visits: 1 })
      expect(view(yield* sessions.get(token))).toEqual(view(session))
      const key = userKey(session.key.user)
      expect(yield* call(raw, "HEXISTS", key, session.key.session)).toBe(1)
      expect(yield* call(raw, "PEXPIRETIME", key)).toBe(session.expiresAt.epochMillis + retention)
      yield* Effect.sleep("10 millis")
      const extended = yield* sessions.extend(session)
      expect(extended.expiresAt.epochMillis).toBeGreaterThan(session.expiresAt.epochMillis)
      expect(view(yield* sessions.get(token))).toEqual(view(extended))
      expect(yield* call(raw, "PEXPIRETIME", key)).toBe(extended.expiresAt.epochMillis + retention)
      yield* sessions.clear(extended)
      expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
      expect((yield* Effect.flip(sessions.extend(extended)))._tag).toBe("NotFound")
      // the user's only session was its hash's only field: the key is gone
      expect(yield* call(raw, "EXISTS", key)).toBe(0)
    }))

  test(
    "list, clearOthers and clearAll for many users spread over the slots, each user's sessions in one key",
    () =>
      Effect.gen(function*() {
        const { node, raw, sessions, userKey } = yield* makeSessions()
        const ownerOf = yield* slotOwners(node)
        const users = Array.from({ length: 24 }, (_, i) => `user-${i}-${Crypto.randomBytes(4).toString("hex")}`)
        const issued = new Map<string, Array<Session.Issued<Data>>>()
        for (const userId of users) {
          const mine: Array<Session.Issued<Data>> = []
          for (let i = 0; i < 3; i++) {
            mine.push(yield* sessions.issue(userId, { csrf: `${userId}-${i}`, visits: i }))
            yield* Effect.sleep("1 millis")
          }
          issued.set(userId, mine)
        }

        const slots = new Set<number>()
        const owners = new Set<string>()
        for (const userId of users) {
          const mine = issued.get(userId)!
          // one key, one slot, per user, whatever key each session had
          expect(new Set(mine.map(({ session }) => session.key.user)).size).toBe(1)
          const key = userKey(mine[0]!.session.key.user)
          const slot = Number(yield* call(node, "CLUSTER", "KEYSLOT", key))
          slots.add(slot)
          owners.add(ownerOf(slot)!)
          expect(yield* call(raw, "HLEN", key)).toBe(3)
          expectListed(yield* sessions.list(userId), mine.map(({ session }) => session))
        }
        expect(slots.size).toBeGreaterThanOrEqual(2)
        expect(owners.size).toBeGreaterThanOrEqual(2)

        // half the users log out their other devices, then everyone logs out everywhere
        for (const userId of users.slice(0, 12)) {
          const mine = issued.get(userId)!
          expect(yield* sessions.clearOthers(mine[1]!.session)).toBe(2)
          expect((yield* sessions.list(userId)).map(view)).toEqual([view(mine[1]!.session)])
          expect((yield* Effect.flip(sessions.get(mine[0]!.token)))._tag).toBe("NotFound")
          expect(view(yield* sessions.get(mine[1]!.token))).toEqual(view(mine[1]!.session))
        }
        const cleared = yield* Effect.forEach(users, (userId) => sessions.clearAll(userId), {
          concurrency: "unbounded"
        })
        expect(cleared).toEqual(users.map((_, i) => i < 12 ? 1 : 3))
        for (const userId of users) {
          const mine = issued.get(userId)!
          expect(yield* sessions.list(userId)).toEqual([])
          for (const { token } of mine) expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
          expect(yield* call(raw, "EXISTS", userKey(mine[0]!.session.key.user))).toBe(0)
        }
      }),
    30_000
  )

  test("a token issued before clearAll was called never validates after it", () =>
    Effect.flatMap(makeSessions(), ({ sessions }) => expectClearAllWins(sessions)))
})
