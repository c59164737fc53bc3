/**
 * The CSRF example on the Redis store: `REDIS_URL` points at a throwaway `redis-server` from the harness,
 * and a raw ioredis client looks at what the example wrote under its `REDIS_PREFIX`.
 */
import * as HttpServer from "@effect/platform/HttpServer"
import { describe, expect, it } from "@effect/vitest"
import * as ConfigProvider from "effect/ConfigProvider"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schedule from "effect/Schedule"
import { Redis } from "ioredis"
import * as Csrf from "../../examples/csrf.js"
import * as Auth from "../../src/Auth.js"
import { type RedisServer, startCluster, startRedis } from "../support/redis.js"

// -----------------------------------------------------------------------------
// a tiny HTTP client over real sockets
// -----------------------------------------------------------------------------

interface Reply {
  readonly status: number
  /** `Set-Cookie` by cookie name: the value and the attributes (names in lower case). */
  readonly cookies: ReadonlyMap<string, { readonly value: string; readonly attributes: ReadonlyMap<string, string> }>
}

/** What one request may take, even while Redis is down. */
const requestDeadline = Duration.seconds(3)

const parseSetCookie = (header: string) => {
  const [pair = "", ...rest] = header.split(";").map((part) => part.trim())
  const eq = pair.indexOf("=")
  const attributes = new Map<string, string>()
  for (const attribute of rest) {
    const at = attribute.indexOf("=")
    if (at === -1) attributes.set(attribute.toLowerCase(), "")
    else attributes.set(attribute.slice(0, at).toLowerCase(), attribute.slice(at + 1))
  }
  return [pair.slice(0, eq), { value: pair.slice(eq + 1), attributes }] as const
}

const request = (baseUrl: string, path: string, headers: Record<string, string> = {}) =>
  Effect.tryPromise(async (): Promise<Reply> => {
    const response = await fetch(baseUrl + path, {
      redirect: "manual",
      headers,
      signal: AbortSignal.timeout(Duration.toMillis(requestDeadline))
    })
    await response.arrayBuffer()
    return { status: response.status, cookies: new Map(response.headers.getSetCookie().map(parseSetCookie)) }
  }).pipe(Effect.orDie)

const cookieOf = (reply: Reply, name: string) => {
  const found = reply.cookies.get(name)
  expect(found, `Set-Cookie ${name}`).toBeDefined()
  return found!
}

/** What a browser sends back after `reply`: both cookies, and the csrf token copied into the header. */
const credentials = (reply: Reply) => {
  const session = cookieOf(reply, "session").value
  const csrf = cookieOf(reply, "csrf").value
  return { token: session, headers: { cookie: `session=${session}; csrf=${csrf}`, "x-csrf-token": csrf } }
}

/** Every 16-character window of `token`: a store that holds one gives part of the token away. */
const windows = (token: string) => Array.from({ length: token.length - 15 }, (_, i) => token.slice(i, i + 16))

/** The hash tag of a Redis key (`{...}`): keys that share it live in one Cluster slot. */
const hashTag = (key: string) => /\{([^}]*)\}/.exec(key)?.[1]

// -----------------------------------------------------------------------------
// the example on a harness Redis
// -----------------------------------------------------------------------------

/** `SESSION_TTL` below, in one place for the assertions. */
const ttl = Duration.hours(1)
const password = "not-a-real-password-9f2c"

const scanAll = (raw: Redis, pattern: string) =>
  Effect.promise(async () => {
    const keys: Array<string> = []
    let cursor = "0"
    do {
      const [next, batch] = await raw.scan(cursor, "MATCH", pattern, "COUNT", 1000)
      cursor = next
      keys.push(...batch)
    } while (cursor !== "0")
    return keys.sort()
  })

/**
 * Everything stored under `keys`, whatever the store's layout (strings, hashes, sorted sets): what a dump
 * of the database would show.
 */
const contents = (raw: Redis, keys: ReadonlyArray<string>) =>
  Effect.promise(async () => {
    const parts: Array<string> = []
    for (const key of keys) {
      const type = await raw.type(key)
      if (type === "string") parts.push((await raw.get(key)) ?? "")
      else if (type === "hash") parts.push(...Object.entries(await raw.hgetall(key)).flat())
      else if (type === "zset") parts.push(...await raw.zrange(key, "0", "-1"))
      else if (type === "set") parts.push(...await raw.smembers(key))
      else if (type === "list") parts.push(...await raw.lrange(key, 0, -1))
    }
    return parts.join("\n")
  })

/** The longest store-side expiry of `keys`, in milliseconds. */
const longestPttl = (raw: Redis, keys: ReadonlyArray<string>) =>
  Effect.promise(async () => Math.max(...await Promise.all(keys.map((key) => raw.pttl(key)))))

/**
 * Starts a Redis, the example on it (port 0, config from a map, not process.env) and a raw client; the
 * scope stops all three. The URL carries a password Redis does not require, to check it stays out of logs.
 */
const setup = Effect.gen(function*() {
  const redis = yield* startRedis()
  const prefix = `csrf-redis:${Auth.randomId(6)}:`
  const logs: Array<string> = []
  const logger = Logger.replace(
    Logger.defaultLogger,
    Logger.map(Logger.logfmtLogger, (line) => {
      logs.push(line)
    })
  )
  const app = Csrf.layer({ port: 0, host: "127.0.0.1" }).pipe(
    Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
      new Map([
        ["SESSION_KEYS", Auth.randomId(48)],
        ["SESSION_TTL", `${Duration.toSeconds(ttl)} seconds`],
        ["COOKIE_SECURE", "false"],
        ["REDIS_URL", `redis://:${password}@127.0.0.1:${redis.port}`],
        ["REDIS_PREFIX", prefix],
        ["REDIS_COMMAND_TIMEOUT", "500 millis"],
        ["REDIS_CONNECT_TIMEOUT", "2 seconds"]
      ])
    )))
  )
  const context = yield* Layer.build(app).pipe(Effect.provide(logger))
  const address = Context.get(context, HttpServer.HttpServer).address
  if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
  const baseUrl = `http://${address.hostname}:${address.port}`
  const raw = yield* Effect.acquireRelease(
    Effect.promise(async () => {
      const raw = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 })
      raw.on("error", () => {})
      await raw.connect()
      return raw
    }),
    (raw) => Effect.sync(() => raw.disconnect())
  )
  return {
    redis,
    raw,
    prefix,
    logs,
    get: (path: string, headers: Record<string, string> = {}) => request(baseUrl, path, headers)
  }
})

/** `/issue` until it answers 200, for at most 10 seconds (ioredis reconnects with a backoff of up to 2 s). */
const issueWhenBack = (get: (path: string) => Effect.Effect<Reply>) =>
  get("/issue").pipe(
    Effect.filterOrFail((reply) => reply.status === 200, (reply) => `GET /issue answered ${reply.status}`),
    Effect.retry({ schedule: Schedule.spaced("200 millis"), while: (e) => typeof e === "string" }),
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("the example did not recover") })
  )

const stopAndExpect503 = (redis: RedisServer, get: Effect.Effect<Reply>) =>
  Effect.gen(function*() {
    yield* redis.stop
    const [elapsed, reply] = yield* Effect.timed(get)
    expect(reply.status).toBe(503)
    expect(Duration.toMillis(elapsed)).toBeLessThan(Duration.toMillis(requestDeadline))
  })

describe("examples/csrf.ts on Redis (REDIS_URL)", () => {
  it.scopedLive("logs that it uses Redis, with host:port and without the password", () =>
    Effect.gen(function*() {
      const { logs, redis } = yield* setup
      const all = logs.join("\n")
      expect(all).toContain(`session store: Redis at 127.0.0.1:${redis.port}`)
      expect(all).not.toContain(password)
    }))

  // Written for any store layout (a key per session and an index, or a hash per user): the checks are what
  // the example promises, not how the store arranges it.
  it.scopedLive("GET /issue writes under REDIS_PREFIX only, in one slot per user, expiring with the session", () =>
    Effect.gen(function*() {
      const { get, prefix, raw } = yield* setup
      const issued = yield* get("/issue")
      expect(issued.status).toBe(200)
      const { token } = credentials(issued)
      const keys = yield* scanAll(raw, `${prefix}*`)
      expect(keys.length).toBeGreaterThanOrEqual(1)
      // nothing outside the prefix, and every key of the user in one Cluster slot
      expect(yield* Effect.promise(() => raw.dbsize())).toBe(keys.length)
      const tag = hashTag(keys[0]!)
      expect(tag).toBeDefined()
      for (const key of keys) expect(hashTag(key)).toBe(tag)

      // the store-side expiry is the session's (the cookie's Max-Age, whole seconds), or a retention after it
      const maxAge = Number(cookieOf(issued, "session").attributes.get("max-age"))
      expect(maxAge).toBe(Duration.toSeconds(ttl))
      const pttl = yield* longestPttl(raw, keys)
      expect(pttl).toBeGreaterThan(maxAge * 1000 - 2000)
      expect(pttl).toBeLessThan(maxAge * 1000 + Duration.toMillis("10 minutes") + 2000)

      // what is stored does not give the token away, but holds the session's data
      const stored = yield* contents(raw, keys)
      expect(windows(token).filter((window) => stored.includes(window))).toEqual([])
      expect(stored).toContain(credentials(issued).headers["x-csrf-token"])

      // the session works, and /require moves the store-side expiry with the session's
      yield* Effect.sleep("1100 millis")
      const required = yield* get("/require", credentials(issued).headers)
      expect(required.status).toBe(200)
      expect(Number(cookieOf(required, "session").attributes.get("max-age"))).toBe(maxAge)
      expect(yield* longestPttl(raw, keys)).toBeGreaterThan(pttl)

      // a second session of the same user: in the same slot
      const second = credentials(yield* get("/issue"))
      const after = yield* scanAll(raw, `${prefix}*`)
      for (const key of after) expect(hashTag(key)).toBe(tag)
      const both = yield* contents(raw, after)
      expect(windows(second.token).filter((window) => both.includes(window))).toEqual([])
    }))

  it.scopedLive("GET /clear removes what the session stored", () =>
    Effect.gen(function*() {
      const { get, prefix, raw } = yield* setup
      const issued = yield* get("/issue")
      const { headers } = credentials(issued)
      expect((yield* scanAll(raw, `${prefix}*`)).length).toBeGreaterThanOrEqual(1)
      expect((yield* get("/clear", headers)).status).toBe(200)
      // the user's last session: nothing is left
      expect(yield* scanAll(raw, `${prefix}*`)).toEqual([])
      expect((yield* get("/require", headers)).status).toBe(401)
    }))

  it.scopedLive("Redis stopped: /require answers 503; Redis back: a fresh /issue + /require answers 200", () =>
    Effect.gen(function*() {
      const { get, logs, redis } = yield* setup
      const before = credentials(yield* get("/issue"))
      expect((yield* get("/require", before.headers)).status).toBe(200)

      yield* stopAndExpect503(redis, get("/require", before.headers))
      expect((yield* get("/issue")).status).toBe(503)
      // no session cookie: nothing to look up, so 401 rather than 503
      expect((yield* get("/require")).status).toBe(401)

      // no persistence: Redis comes back empty, and the example recovers without a restart
      yield* redis.start
      const after = credentials(yield* issueWhenBack(get))
      expect((yield* get("/require", after.headers)).status).toBe(200)
      expect((yield* get("/require", before.headers)).status).toBe(401)
      // the outage was logged, and the password of the URL was not
      expect(logs.join("\n")).toContain("session store unavailable")
      expect(logs.join("\n")).not.toContain(password)
    }))
})

describe("examples/csrf.ts on Redis Cluster (REDIS_CLUSTER_NODES)", () => {
  it.scopedLive("serves /issue and /require from the cluster and logs its seed nodes", () =>
    Effect.gen(function*() {
      const cluster = yield* startCluster()
      const nodes = cluster.nodes.map((node) => `${node.host}:${node.port}`)
      const logs: Array<string> = []
      const logger = Logger.replace(
        Logger.defaultLogger,
        Logger.map(Logger.logfmtLogger, (line) => {
          logs.push(line)
        })
      )
      const context = yield* Layer.build(
        Csrf.layer({ port: 0, host: "127.0.0.1" }).pipe(
          Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
            new Map([
              ["SESSION_KEYS", Auth.randomId(48)],
              ["COOKIE_SECURE", "false"],
              ["REDIS_CLUSTER_NODES", nodes.join(",")],
              ["REDIS_PREFIX", `csrf-cluster:${Auth.randomId(6)}:`]
            ])
          )))
        )
      ).pipe(Effect.provide(logger))
      const address = Context.get(context, HttpServer.HttpServer).address
      if (address._tag !== "TcpAddress") return yield* Effect.dieMessage("expected a TCP address")
      const baseUrl = `http://${address.hostname}:${address.port}`
      const issued = yield* request(baseUrl, "/issue")
      expect(issued.status).toBe(200)
      expect((yield* request(baseUrl, "/require", credentials(issued).headers)).status).toBe(200)
      expect((yield* request(baseUrl, "/clear", credentials(issued).headers)).status).toBe(200)
      expect((yield* request(baseUrl, "/require", credentials(issued).headers)).status).toBe(401)
      expect(logs.join("\n")).toContain(`session store: Redis Cluster (seed nodes ${nodes.join(", ")})`)
    }), 60_000)
})
