import { describe, expect, it, layer } from "@effect/vitest"
import { Effect } from "effect"
import { Cluster, Redis, type RedisOptions } from "ioredis"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { RedisClusterTest, redisUrl, startCluster, startRedis, startReplica } from "./redis.js"

// One attempt, no retries, no offline queue: a down server shows up as an error instead of a hang.
const clientOptions: Omit<RedisOptions, "replyMapping"> = {
  lazyConnect: true,
  connectTimeout: 2_000,
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  retryStrategy: () => null
}

const connect = (url: string) =>
  Effect.acquireRelease(
    Effect.tryPromise(async () => {
      const client = new Redis(url, clientOptions)
      // connect() only rejects with "Connection is closed."; the socket's own error is the useful one
      let socketError: unknown
      client.on("error", (error) => {
        socketError = error
      })
      try {
        await client.connect()
        return client
      } catch (error) {
        client.disconnect()
        throw socketError ?? error
      }
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

const connectCluster = (nodes: ReadonlyArray<{ readonly host: string; readonly port: number }>) =>
  Effect.acquireRelease(
    Effect.tryPromise(async () => {
      const client = new Cluster(nodes.map(({ host, port }) => ({ host, port })), {
        lazyConnect: true,
        clusterRetryStrategy: () => null,
        redisOptions: { connectTimeout: 2_000 }
      })
      client.on("error", () => {})
      try {
        await client.connect()
        return client
      } catch (error) {
        client.disconnect()
        throw error
      }
    }),
    (client) => Effect.sync(() => client.disconnect())
  )

const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Whether a plain TCP connect to the port is refused (nothing listens there). */
const refuses = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = Net.connect({ host: "127.0.0.1", port })
    socket.once("connect", () => {
      socket.destroy()
      resume(Effect.succeed(false))
    })
    socket.once("error", (error: NodeJS.ErrnoException) => {
      socket.destroy()
      resume(Effect.succeed(error.code === "ECONNREFUSED"))
    })
  })

const emptyDir = Effect.acquireRelease(
  Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-sessions-empty-path-"))),
  (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
)

/** Sets (or with `undefined`, removes) REDIS_URL for the rest of the scope. */
const withRedisUrl = (value: string | undefined) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const previous = process.env["REDIS_URL"]
      if (value === undefined) delete process.env["REDIS_URL"]
      else process.env["REDIS_URL"] = value
      return previous
    }),
    (previous) =>
      Effect.sync(() => {
        if (previous === undefined) delete process.env["REDIS_URL"]
        else process.env["REDIS_URL"] = previous
      })
  )

describe("startRedis", () => {
  it.scoped("starts a server that answers PING and SET/GET", () =>
    Effect.gen(function*() {
      const server = yield* startRedis()
      expect(server.host).toBe("127.0.0.1")
      expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
      expect(server.port).not.toBe(6379)
      const client = yield* connect(server.url)
      expect(yield* Effect.promise(() => client.ping())).toBe("PONG")
      yield* Effect.promise(() => client.set("greeting", "hello"))
      expect(yield* Effect.promise(() => client.get("greeting"))).toBe("hello")
    }))

  it.scoped("gives every server its own port and data", () =>
    Effect.gen(function*() {
      const [one, two] = yield* Effect.all([startRedis(), startRedis()], { concurrency: "unbounded" })
      expect(one.port).not.toBe(two.port)
      const a = yield* connect(one.url)
      const b = yield* connect(two.url)
      yield* Effect.promise(() => a.set("k", "one"))
      expect(yield* Effect.promise(() => b.get("k"))).toBeNull()
    }))

  it.scoped("stop refuses connections and start brings it back on the same port, empty", () =>
    Effect.gen(function*() {
      const server = yield* startRedis()
      const firstPid = yield* server.pid
      expect(firstPid).toBeTypeOf("number")
      const before = yield* connect(server.url)
      yield* Effect.promise(() => before.set("k", "v"))

      yield* server.stop
      expect(yield* server.pid).toBeUndefined()
      expect(isAlive(firstPid!)).toBe(false)
      const failure = yield* Effect.flip(connect(server.url))
      expect(String(failure.error)).toMatch(/ECONNREFUSED/)
      expect(yield* refuses(server.port)).toBe(true)
      yield* server.stop // stopping twice is a no-op

      yield* server.start
      const secondPid = yield* server.pid
      expect(secondPid).toBeTypeOf("number")
      expect(secondPid).not.toBe(firstPid)
      const after = yield* connect(server.url)
      expect(yield* Effect.promise(() => after.ping())).toBe("PONG")
      // no persistence: the restarted server starts empty
      expect(yield* Effect.promise(() => after.get("k"))).toBeNull()
      yield* server.start // starting a running server is a no-op
      expect(yield* server.pid).toBe(secondPid)
    }))

  it.effect("kills the server when its scope closes", () =>
    Effect.gen(function*() {
      const { pid, port } = yield* Effect.scoped(Effect.gen(function*() {
        const server = yield* startRedis()
        const pid = yield* server.pid
        expect(pid).toBeTypeOf("number")
        expect(isAlive(pid!)).toBe(true)
        expect(yield* refuses(server.port)).toBe(false)
        return { pid: pid!, port: server.port }
      }))
      expect(isAlive(pid)).toBe(false)
      expect(yield* refuses(port)).toBe(true)
    }))

  it.effect("kills the server when the test fails inside its scope", () =>
    Effect.gen(function*() {
      let pid: number | undefined
      const result = yield* Effect.scoped(Effect.gen(function*() {
        const server = yield* startRedis()
        pid = yield* server.pid
        return yield* Effect.fail("boom")
      })).pipe(Effect.flip)
      expect(result).toBe("boom")
      expect(pid).toBeTypeOf("number")
      expect(isAlive(pid!)).toBe(false)
    }))

  it.scoped("fails with the server's own complaint when it exits early", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(startRedis({ args: ["--no-such-directive", "yes"] }))
      expect(error.reason).toBe("EarlyExit")
      expect(error.message).toMatch(/no-such-directive/)
    }))

  it.scoped("names the missing binary and how to install it when redis-server is not on PATH", () =>
    Effect.gen(function*() {
      const path = yield* emptyDir
      const error = yield* Effect.flip(startRedis({ env: { PATH: path } }))
      expect(error.reason).toBe("MissingBinary")
      expect(error.message).toContain("redis-server was not found on PATH")
      expect(error.message).toContain("apt-get install redis-server")
      expect(error.message).toContain("brew install redis")
      expect(error.message).toContain("REDIS_URL")

      const absolute = yield* Effect.flip(startRedis({ binary: Path.join(path, "redis-server") }))
      expect(absolute.reason).toBe("MissingBinary")
      expect(absolute.message).toContain(`${path}/redis-server was not found`)
    }))
})

describe("startReplica", () => {
  it.scoped("starts a synced replica of a server: writes reach it, and stopping it leaves the primary alone", () =>
    Effect.gen(function*() {
      const primary = yield* startRedis()
      const replica = yield* startReplica(primary)
      expect(replica.port).not.toBe(primary.port)
      const writer = yield* connect(primary.url)
      const reader = yield* connect(replica.url)
      yield* Effect.promise(() => writer.set("k", "v"))
      // WAIT answers how many replicas acknowledged the write
      expect(yield* Effect.promise(() => writer.call("WAIT", 1, 2_000))).toBe(1)
      expect(yield* Effect.promise(() => reader.get("k"))).toBe("v")
      expect(((yield* Effect.promise(() => reader.call("ROLE"))) as Array<unknown>).slice(0, 3)).toEqual([
        "slave",
        "127.0.0.1",
        primary.port
      ])

      const pid = yield* replica.pid
      yield* replica.stop
      expect(isAlive(pid!)).toBe(false)
      yield* Effect.promise(() => writer.set("k", "w"))
      expect(yield* Effect.promise(() => writer.call("WAIT", 1, 100))).toBe(0)
      // started again, it is a replica of the same primary and catches up
      yield* replica.start
      expect(yield* Effect.promise(() => writer.call("WAIT", 1, 5_000))).toBe(1)
    }))
})

describe("startRedis with a password", () => {
  it.scoped("waits for a server started with --requirepass, which refuses clients without the password", () =>
    Effect.gen(function*() {
      const server = yield* startRedis({ args: ["--requirepass", "harness-pw"] })
      const client = yield* connect(`redis://:harness-pw@127.0.0.1:${server.port}`)
      expect(yield* Effect.promise(() => client.ping())).toBe("PONG")
      const refused = yield* Effect.flip(connect(server.url))
      expect(String(refused.error)).toMatch(/NOAUTH/)
    }))
})

describe("redisUrl", () => {
  it.scoped("uses REDIS_URL without starting anything", () =>
    Effect.gen(function*() {
      yield* withRedisUrl("redis://example.invalid:1")
      expect(yield* redisUrl).toBe("redis://example.invalid:1")
    }))

  it.scoped("starts a throwaway server when REDIS_URL is unset", () =>
    Effect.gen(function*() {
      yield* withRedisUrl(undefined)
      const url = yield* redisUrl
      expect(url).toMatch(/^redis:\/\/127\.0\.0\.1:\d+$/)
      expect(url).not.toBe("redis://127.0.0.1:6379")
      const client = yield* connect(url)
      expect(yield* Effect.promise(() => client.ping())).toBe("PONG")
    }))
})

describe("startCluster failures", () => {
  it.scoped("refuses fewer than 3 masters", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(startCluster({ masters: 2 }))
      expect(error.reason).toBe("ClusterCreate")
      expect(error.message).toMatch(/at least 3 masters/)
    }))

  it.scoped("names redis-cli and how to install it when it is missing", () =>
    Effect.gen(function*() {
      const path = yield* emptyDir
      const error = yield* Effect.flip(startCluster({ cli: Path.join(path, "redis-cli") }))
      expect(error.reason).toBe("MissingBinary")
      expect(error.message).toContain("redis-cli was not found")
      expect(error.message).toContain("apt-get install redis-tools")
      expect(error.message).toContain("brew install redis")
    }))
})

layer(RedisClusterTest.layer)("startCluster", (it) => {
  it.scoped("every node reports cluster_state:ok and knows all 3 masters", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisClusterTest
      expect(cluster.nodes).toHaveLength(3)
      expect(new Set(cluster.nodes.map((node) => node.port)).size).toBe(3)
      for (const node of cluster.nodes) {
        expect(node.port + 10_000).toBeLessThan(65_536)
        const client = yield* connect(node.url)
        const info = String(yield* Effect.promise(() => client.call("CLUSTER", "INFO")))
        expect(info).toMatch(/^cluster_state:ok\r?$/m)
        expect(info).toMatch(/^cluster_known_nodes:3\r?$/m)
        expect(info).toMatch(/^cluster_slots_assigned:16384\r?$/m)
      }
    }))

  it.scoped("a Cluster client reads and writes keys that live on every master", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisClusterTest
      const client = yield* connectCluster(cluster.nodes)
      const keys = ["a", "b", "c", "{user1}:x"]
      for (const key of keys) yield* Effect.promise(() => client.set(key, `value of ${key}`))
      for (const key of keys) expect(yield* Effect.promise(() => client.get(key))).toBe(`value of ${key}`)
      // a, b and c hash to slots 15495, 3300 and 7365: one in each third of the slot space
      for (const node of cluster.nodes) {
        const direct = yield* connect(node.url)
        expect(yield* Effect.promise(() => direct.dbsize())).toBeGreaterThan(0)
      }
    }))

  it.scoped("multi-key commands need a shared hash tag", () =>
    Effect.gen(function*() {
      const cluster = yield* RedisClusterTest
      const client = yield* connectCluster(cluster.nodes)
      const crossSlot = yield* Effect.flip(Effect.tryPromise(() => client.mset("x1", "1", "x2", "2")))
      expect(String(crossSlot.error)).toMatch(/CROSSSLOT/)
      yield* Effect.promise(() => client.mset("{t}:x1", "1", "{t}:x2", "2"))
      expect(yield* Effect.promise(() => client.mget("{t}:x1", "{t}:x2"))).toEqual(["1", "2"])
    }))
})
