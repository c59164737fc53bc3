/**
 * Every store backend, for tests that must hold on each of them: the in-memory store, a single Redis and a
 * real 3-master Redis Cluster, the last two started by the harness (test/support/redis.ts) once per test
 * file that calls {@link backends}, and stopped after it.
 *
 * Each `store` is a new store over a fresh key prefix (Redis) or a new map (memory), so tests need no
 * flushing. The servers live in a `ManagedRuntime` rather than @effect/vitest's `layer(...)` (see the
 * header of src/testing/StoreContract.ts).
 */
import { afterAll, beforeAll } from "@effect/vitest"
import { Context, Effect, Layer, ManagedRuntime, type Scope } from "effect"
import * as Crypto from "node:crypto"
import * as Memory from "../../src/layers/Memory.js"
import * as RedisStore from "../../src/layers/Redis.js"
import type { StoreService } from "../../src/Store.js"
import { startCluster, startRedis } from "./redis.js"

export interface Backend {
  readonly name: "memory" | "redis" | "cluster"
  /** A new, empty store on this backend, released with the scope. */
  readonly store: Effect.Effect<StoreService, never, Scope.Scope>
}

class Servers extends Context.Tag("test/support/backends/Servers")<Servers, {
  readonly url: string
  readonly nodes: ReadonlyArray<string>
}>() {}

const uniquePrefix = () => `test-${Crypto.randomBytes(6).toString("hex")}:`

export interface Backends {
  readonly all: ReadonlyArray<Backend>
  /** The file's single Redis, for tests that look at what a store wrote there. */
  readonly redisUrl: Effect.Effect<string>
  /** The file's cluster nodes (`host:port`). */
  readonly clusterNodes: Effect.Effect<ReadonlyArray<string>>
}

/**
 * Registers the file's servers (started before its first test, stopped after its last) and answers the
 * three backends. `memory` options apply to the memory store (a long sweep interval by default, so that
 * what the store holds is decided by the tests).
 */
export const backends = (memory: Memory.Options = { sweepInterval: "30 days" }): Backends => {
  const runtime = ManagedRuntime.make(
    Layer.scoped(
      Servers,
      Effect.gen(function*() {
        const [redis, cluster] = yield* Effect.all([startRedis(), startCluster()], { concurrency: 2 })
        return { url: redis.url, nodes: cluster.nodes.map(({ host, port }) => `${host}:${port}`) }
      })
    )
  )
  beforeAll(() => runtime.runtime(), 90_000)
  afterAll(() => runtime.dispose(), 60_000)
  const servers = Effect.orDie(Effect.map(runtime.runtimeEffect, (rt) => Context.get(rt.context, Servers)))
  return {
    all: [
      { name: "memory", store: Memory.make(memory) },
      {
        name: "redis",
        store: Effect.flatMap(
          servers,
          ({ url }) => Effect.orDie(RedisStore.makeSingle({ url, prefix: uniquePrefix() }))
        )
      },
      {
        name: "cluster",
        store: Effect.flatMap(
          servers,
          ({ nodes }) => Effect.orDie(RedisStore.makeCluster({ nodes, prefix: uniquePrefix() }))
        )
      }
    ],
    redisUrl: Effect.map(servers, ({ url }) => url),
    clusterNodes: Effect.map(servers, ({ nodes }) => nodes)
  }
}
