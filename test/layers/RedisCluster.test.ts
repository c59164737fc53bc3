/**
 * The Redis store on a real 3-master Redis Cluster started by the harness (test/support/redis.ts), once for
 * the whole file: the Store contract, the `Sessions` service end to end with many users spread over the
 * slots (each user's keys in one slot, so every script stays on one node), and `layerClusterConfig`.
 *
 * The cluster lives in a `ManagedRuntime` rather than @effect/vitest's `layer(...)` (see the header of
 * test/contract/Store.ts); tests run with `it.live`, since Redis expires keys by its own clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  ConfigError,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Layer,
  ManagedRuntime,
  Option,
  Redacted,
  Schema,
  type Scope
} from "effect"
import { Cluster, Redis } from "ioredis"
import * as Crypto from "node:crypto"
import * as Net from "node:net"
import * as Auth from "../../src/Auth.js"
import * as RedisStore from "../../src/layers/Redis.js"
import * as Session from "../../src/Session.js"
import { type Key, Store, StoreError } from "../../src/Store.js"
import { revokeMidway, storeContract } from "../contract/Store.js"
import { makeEntry } from "../support/entry.js"
import { RedisClusterTest } from "../support/redis.js"

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

const test = (title: string, self: () => Effect.Effect<void, unknown, Env | Scope.Scope>, timeout?: number) =>
  it.live(
    title,
    () => Effect.flatMap(env.runtimeEffect, (rt) => Effect.scoped(Effect.provide(self(), rt.context))),
    timeout
  )

const call = (client: Redis | Cluster, command: string, ...args: Array<string | number>) =>
  Effect.promise(() => client.call(command, ...args))

// -----------------------------------------------------------------------------
// the contract
// -----------------------------------------------------------------------------

storeContract(
  "redis cluster",
  Layer.unwrapEffect(
    Effect.map(
      env.runtimeEffect,
      (rt) => RedisStore.layerCluster({ nodes: Context.get(rt.context, Env).nodes, prefix: uniquePrefix() })
    )
  )
)

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

const newKey = (): Key => ({
  user: `u${Crypto.randomBytes(16).toString("base64url")}`,
  session: `s${Crypto.randomBytes(16).toString("base64url")}`
})

const entry = makeEntry({ userId: "u", createdAt: 0, expiresAt: Date.UTC(2100, 0, 1), data: null })

/** A loopback port nothing listens on (bound, then released). */
const freePort = Effect.async<number>((resume) => {
  const server = Net.createServer()
  server.listen({ host: "127.0.0.1", port: 0 }, () => {
    const port = (server.address() as Net.AddressInfo).port
    server.close(() => resume(Effect.succeed(port)))
  })
})

describe("Redis Cluster store: layers", () => {
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
        expect(yield* call(raw, "EXISTS", `${prefix}{${key.user}}:${key.session}`, `${prefix}{${key.user}}`)).toBe(2)
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
