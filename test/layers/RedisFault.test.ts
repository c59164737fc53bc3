/**
 * What the HTTP app does when its Redis goes away and comes back, against a real `redis-server` started by
 * the harness (never `REDIS_URL`: these tests kill it) and a real HTTP listener on 127.0.0.1.
 *
 * - Redis stopped: requests that need the store answer 503 quickly (commands fail fast while the client is
 *   disconnected), requests that do not still work, and the app keeps serving.
 * - Redis frozen (SIGSTOP, the connection stays open but nothing answers): 503 after `commandTimeout`.
 * - Redis back on the same port: the app recovers by itself (ioredis reconnects), without a restart.
 *
 * And what the store's errors say (store level, no HTTP): a failed write never carries the entry's contents
 * (ioredis errors keep the command's arguments), refused credentials are `Authentication` (at connect time
 * and after a reconnection), a full Redis is `Capacity`.
 *
 * Everything runs on the real clock and is bounded: each request has a deadline, each poll a limit.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import { Redis as RawRedis } from "ioredis"
import * as Crypto from "node:crypto"
import * as Auth from "../../src/Auth.js"
import * as SessionHttp from "../../src/layers/Http.js"
import * as Redis from "../../src/layers/Redis.js"
import * as Session from "../../src/Session.js"
import { Store, StoreError } from "../../src/Store.js"
import { makeEntry } from "../../src/testing/StoreContract.js"
import * as Transport from "../../src/Transport.js"
import { rawClient, type RedisServer, startRedis } from "../support/redis.js"

class AppSession extends Session.Tag<AppSession>()("test/RedisFault/AppSession", {
  data: Schema.Struct({ csrf: Schema.String })
}) {}

const AppHttp = SessionHttp.make(AppSession)

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/login", Effect.as(AppHttp.issue("u1", { csrf: Auth.randomId(16) }), HttpServerResponse.text("in"))),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId))),
  // touches no store: shows the app itself is alive during an outage
  HttpRouter.get("/health", Effect.succeed(HttpServerResponse.text("ok")))
)

const commandTimeout = Duration.millis(500)
/** What a single request may take during an outage: the command timeout plus generous slack. */
const requestDeadline = Duration.seconds(3)
/** How long ioredis may take to reconnect once Redis is back (its backoff tops out at 2 s). */
const recoveryDeadline = Duration.seconds(10)

const appLayer = (redis: RedisServer) =>
  HttpServer.serve(router, AppHttp.middleware).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provide(
      Session.layer(AppSession, { ttl: "1 hour" }).pipe(
        Layer.provideMerge(Layer.mergeAll(
          Redis.layer({ url: redis.url, commandTimeout, connectTimeout: "2 seconds", prefix: "fault:" }),
          Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }),
          Transport.layerCookie({ secure: false })
        ))
      )
    )
  )

// The app's logs, kept so a test can check what was logged (and that no token was).
const captureLogs = Effect.gen(function*() {
  const lines: Array<string> = []
  const logger = Logger.map(Logger.logfmtLogger, (line) => {
    lines.push(line)
  })
  return { lines, layer: Logger.replace(Logger.defaultLogger, logger) }
})

/** A request with its wall-clock duration; fails the test if it takes longer than `requestDeadline`. */
const get = (path: string, cookie?: string) =>
  HttpClient.get(path, { headers: cookie === undefined ? {} : { cookie } }).pipe(
    Effect.flatMap((response) => Effect.as(response.text, response)),
    Effect.scoped,
    Effect.timed,
    Effect.timeoutFail({
      duration: requestDeadline,
      onTimeout: () => new Error(`GET ${path} took longer than ${Duration.format(requestDeadline)}`)
    }),
    Effect.map(([elapsed, response]) => ({ response, elapsed: Duration.toMillis(elapsed) }))
  )

const sessionCookie = (response: HttpClientResponse.HttpClientResponse): string => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  const lines = header === undefined ? [] : typeof header === "string" ? [header] : header
  const line = lines.find((line) => line.startsWith("session="))
  expect(line, "a session cookie").toBeDefined()
  return line!.slice(0, line!.indexOf(";"))
}

const login = Effect.gen(function*() {
  const { response } = yield* get("/login")
  expect(response.status).toBe(200)
  return sessionCookie(response)
})

/** Retries `login` until it answers 200, for at most `recoveryDeadline`. */
const loginWhenBack = Effect.gen(function*() {
  const { response } = yield* get("/login")
  if (response.status !== 200) return yield* Effect.fail(`login answered ${response.status}`)
  return sessionCookie(response)
}).pipe(
  Effect.retry({ schedule: Schedule.spaced("200 millis"), while: (e) => typeof e === "string" }),
  Effect.timeoutFail({
    duration: recoveryDeadline,
    onTimeout: () => new Error(`the app did not recover within ${Duration.format(recoveryDeadline)}`)
  })
)

const expectUnavailable = (path: string, cookie?: string) =>
  Effect.gen(function*() {
    const { elapsed, response } = yield* get(path, cookie)
    expect(response.status, `GET ${path} during the outage`).toBe(503)
    // the middleware's own 503 (a session could not be read) tells the client when to retry
    if (cookie !== undefined) expect(response.headers["retry-after"]).toBe("1")
    return elapsed
  })

describe("Redis store faults over HTTP", () => {
  it.scopedLive(
    "a stopped Redis gives fast 503s, and the app recovers when it returns on the same port",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis()
        const logs = yield* captureLogs
        const app = yield* Layer.build(appLayer(redis)).pipe(Effect.provide(logs.layer))
        yield* Effect.gen(function*() {
          const cookie = yield* login
          expect((yield* get("/me", cookie)).response.status).toBe(200)

          yield* redis.stop
          expect(yield* redis.pid).toBeUndefined()
          const elapsed: Array<number> = []
          for (let i = 0; i < 10; i++) elapsed.push(yield* expectUnavailable("/me", cookie))
          // a login needs the store too
          elapsed.push(yield* expectUnavailable("/login"))
          // requests that need no store are unaffected: no session is 401, not 503; the app is alive
          expect((yield* get("/me")).response.status).toBe(401)
          expect((yield* get("/health")).response.status).toBe(200)
          // concurrent requests during the outage, all answered
          const burst = yield* Effect.forEach(
            Array.from({ length: 20 }, () => expectUnavailable("/me", cookie)),
            (request) => request,
            { concurrency: "unbounded" }
          )
          elapsed.push(...burst)
          // commands fail at once while ioredis is disconnected (no offline queue), well within the timeout
          expect(Math.max(...elapsed)).toBeLessThan(Duration.toMillis(requestDeadline))

          // Redis returns empty (no persistence): the app needs no restart, the old session is gone (401,
          // not 503: the store answers again) and a new login works
          yield* redis.start
          const fresh = yield* loginWhenBack
          expect((yield* get("/me", fresh)).response.status).toBe(200)
          const old = yield* get("/me", cookie)
          expect(old.response.status).toBe(401)
          expect(yield* old.response.text).toBe("")

          // the outage was logged, without the token
          const logged = logs.lines.join("\n")
          expect(logged).toContain("session store unavailable")
          const token = decodeURIComponent(cookie.slice("session=".length))
          expect(logged).not.toContain(token)
          expect(logged).not.toContain(token.slice(0, token.indexOf(".")))
        }).pipe(Effect.provide(app))
      }),
    60_000
  )

  it.scopedLive(
    "a frozen Redis (SIGSTOP) gives 503 after the command timeout, and recovers on SIGCONT",
    () =>
      Effect.gen(function*() {
        const redis = yield* startRedis()
        const app = yield* Layer.build(appLayer(redis)).pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))
        yield* Effect.gen(function*() {
          const cookie = yield* login
          const pid = yield* redis.pid
          expect(pid).toBeDefined()
          // however the test ends, the process must be able to receive the harness's SIGTERM
          yield* Effect.acquireRelease(
            Effect.sync(() => process.kill(pid!, "SIGSTOP")),
            () => Effect.sync(() => process.kill(pid!, "SIGCONT"))
          )
          const elapsed = yield* Effect.forEach(
            [...Array.from({ length: 5 }, () => expectUnavailable("/me", cookie)), expectUnavailable("/login")],
            (request) => request,
            { concurrency: "unbounded" }
          )
          // The connection is open, so the commands are sent and wait until the command timeout. With
          // auto-pipelining ioredis sends one batch per connection at a time and starts a command's timer when
          // its batch is sent: a command queued behind a stuck batch can wait up to twice the timeout.
          for (const ms of elapsed) {
            expect(ms).toBeGreaterThanOrEqual(Duration.toMillis(commandTimeout) - 50)
            expect(ms).toBeLessThan(Duration.toMillis(requestDeadline))
          }
          expect((yield* get("/health")).response.status).toBe(200)

          yield* Effect.sync(() => process.kill(pid!, "SIGCONT"))
          // Redis kept its data: the session survives the freeze
          const me = yield* get("/me", cookie).pipe(
            Effect.filterOrFail((reply) => reply.response.status === 200, (reply) => reply.response.status),
            Effect.retry({ schedule: Schedule.spaced("200 millis"), while: (e) => typeof e === "number" }),
            Effect.timeoutFail({
              duration: recoveryDeadline,
              onTimeout: () => new Error(`the app did not recover within ${Duration.format(recoveryDeadline)}`)
            })
          )
          expect(me.response.status).toBe(200)
          expect((yield* get("/me", yield* login)).response.status).toBe(200)
        }).pipe(Effect.provide(app))
      }),
    60_000
  )
})

// -----------------------------------------------------------------------------
// what the store's errors say
// -----------------------------------------------------------------------------

const storeOn = (options: Redis.SingleOptions) =>
  Effect.map(Layer.build(Redis.layer({ commandTimeout: "500 millis", ...options })), Context.get(Store))

/** An entry whose every field a leak would show: each holds a marker no message may contain. */
const markers = {
  data: `data-${Crypto.randomBytes(6).toString("hex")}`,
  userId: `alice-${Crypto.randomBytes(6).toString("hex")}@example.com`,
  userAgent: `Mozilla/5.0 Agent-${Crypto.randomBytes(6).toString("hex")}`,
  address: `198.51.100.${Crypto.randomInt(1, 255)}-${Crypto.randomBytes(4).toString("hex")}`,
  secret: `secret-${Crypto.randomBytes(12).toString("hex")}`
}
const leaky = makeEntry({
  userId: markers.userId,
  createdAt: Date.now(),
  expiresAt: Date.now() + 3_600_000,
  secret: markers.secret,
  userAgent: markers.userAgent,
  address: markers.address,
  data: { csrf: markers.data, note: markers.data }
})
const leakyKey = { user: `u${Crypto.randomBytes(16).toString("base64url")}`, session: "s1" }

/** Every way an application might print or log the error, checked for every marker. */
const expectNoContents = (error: StoreError) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const logger = Logger.map(Logger.logfmtLogger, (line) => {
      lines.push(line)
    })
    yield* Effect.logError("session store failed", error).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    yield* Effect.logError(Cause.fail(error)).pipe(Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
    const renderings = [
      error.message,
      String(error),
      JSON.stringify(error),
      Cause.pretty(Cause.fail(error)),
      error.stack ?? "",
      Object.keys(error).join(","),
      ...lines
    ]
    for (const rendering of renderings) {
      for (const [field, marker] of Object.entries(markers)) expect(rendering, field).not.toContain(marker)
    }
    expect(error.message.length).toBeLessThan(400)
    expect("cause" in error).toBe(false)
  })

/** A maxmemory below what Redis already uses: with noeviction, every write is refused with OOM. */
const fillUp = (raw: RawRedis) => Effect.promise(() => raw.config("SET", "maxmemory", "1"))

describe("Redis store errors", () => {
  // Fails on the pre-fix store (f4cef2e): StoreError.cause kept the ioredis error, whose command arguments
  // are the encoded entry (session data, user id, user agent, address).
  it.scopedLive("a write refused by a full Redis (OOM) is a Capacity StoreError without the entry's contents", () =>
    Effect.gen(function*() {
      const server = yield* startRedis({ args: ["--maxmemory-policy", "noeviction"] })
      const raw = yield* rawClient(server.url)
      const store = yield* storeOn({ url: server.url })
      yield* fillUp(raw)
      // the premise: the driver's own error for such a write carries the arguments
      const driverError = yield* Effect.flip(
        Effect.tryPromise(() => raw.eval("return redis.call('HSET', KEYS[1], 'f', ARGV[1])", 1, "k", markers.data))
      )
      expect(JSON.stringify((driverError.error as { command?: unknown }).command)).toContain(markers.data)

      const error = yield* Effect.flip(store.save(leakyKey, leaky, "create"))
      expect(error).toBeInstanceOf(StoreError)
      expect(error.reason).toBe("Capacity")
      expect(error.message).toContain("OOM")
      yield* expectNoContents(error)
      // the failure as the application sees it, with its trace
      const exit = yield* Effect.exit(store.save(leakyKey, leaky, "create").pipe(Effect.withSpan("login")))
      expect(Exit.isFailure(exit)).toBe(true)
      if (Exit.isFailure(exit)) {
        const pretty = Cause.pretty(exit.cause)
        for (const marker of Object.values(markers)) expect(pretty).not.toContain(marker)
      }
      // reads still work on a full Redis
      expect((yield* store.fetch(leakyKey))._tag).toBe("None")
    }))

  it.scopedLive("a write that times out (CLIENT PAUSE) is a Timeout StoreError without the entry's contents", () =>
    Effect.gen(function*() {
      const server = yield* startRedis()
      const raw = yield* rawClient(server.url)
      const store = yield* storeOn({ url: server.url, commandTimeout: "200 millis" })
      expect(yield* store.save(leakyKey, leaky, "create")).toBe(true)
      yield* Effect.promise(() => raw.call("CLIENT", "PAUSE", "600", "WRITE"))
      const update = { ...leaky, version: 1 }
      const error = yield* Effect.flip(store.save(leakyKey, update, "update"))
      expect(error.reason).toBe("Timeout")
      yield* expectNoContents(error)
      const revoked = yield* Effect.flip(store.deleteUser(leakyKey.user))
      expect(revoked.reason).toBe("Timeout")
      yield* expectNoContents(revoked)
    }))

  // Fails on the pre-fix store (f4cef2e): a refused password was "Unavailable: Connection is closed."
  it.scopedLive("a wrong or missing password fails the layer with an Authentication StoreError saying so", () =>
    Effect.gen(function*() {
      const server = yield* startRedis({ args: ["--requirepass", "right-password-1"] })
      for (
        const [url, code] of [
          [`redis://:wrong-password-2@127.0.0.1:${server.port}`, "WRONGPASS"],
          [`redis://127.0.0.1:${server.port}`, "NOAUTH"],
          [Redacted.make(`redis://:wrong-password-2@127.0.0.1:${server.port}`), "WRONGPASS"]
        ] as const
      ) {
        const [elapsed, error] = yield* Effect.timed(Effect.flip(storeOn({ url, connectTimeout: "3 seconds" })))
        expect(error).toBeInstanceOf(StoreError)
        expect(error.reason).toBe("Authentication")
        expect(error.message).toContain("credentials were refused")
        expect(error.message).toContain(code)
        expect(error.message).toContain(`127.0.0.1:${server.port}`)
        expect(error.message).not.toContain("Connection is closed")
        expect(`${error.message} ${JSON.stringify(error)}`).not.toContain("password-")
        expect(Duration.toMillis(elapsed)).toBeLessThan(3_000)
      }
      // the right one works
      const store = yield* storeOn({ url: `redis://:right-password-1@127.0.0.1:${server.port}` })
      expect(yield* store.save(leakyKey, leaky, "create")).toBe(true)
    }))

  it.scopedLive(
    "credentials refused on reconnection make operations fail with Authentication, until they work",
    () =>
      Effect.gen(function*() {
        const server = yield* startRedis({ args: ["--requirepass", "first-password-1"] })
        const admin = yield* rawClient(`redis://:first-password-1@127.0.0.1:${server.port}`)
        const store = yield* storeOn({ url: `redis://:first-password-1@127.0.0.1:${server.port}` })
        expect(yield* store.save(leakyKey, leaky, "create")).toBe(true)
        // the password changes and the store's connection drops: every reconnection is refused
        yield* Effect.promise(() => admin.config("SET", "requirepass", "second-password-2"))
        yield* Effect.promise(() => admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
        const error = yield* store.fetch(leakyKey).pipe(
          Effect.flip,
          Effect.filterOrFail((error) => error.reason === "Authentication"),
          Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 60 })
        )
        expect(error.message).toContain("credentials were refused")
        expect(error.message).toContain("WRONGPASS")
        expect(error.message).not.toContain("password-")
        expect((yield* Effect.flip(store.save(leakyKey, { ...leaky, version: 1 }, "update"))).reason).toBe(
          "Authentication"
        )
        expect((yield* Effect.flip(store.deleteUser(leakyKey.user))).reason).toBe("Authentication")
        // the old password is valid again: ioredis reconnects by itself and the store works
        yield* Effect.promise(() => admin.config("SET", "requirepass", "first-password-1"))
        const found = yield* store.fetch(leakyKey).pipe(
          Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 60 })
        )
        expect(found._tag).toBe("Some")
      }),
    30_000
  )

  it.scopedLive(
    "a password required after the store connected without one: Authentication (NOAUTH) on reconnection",
    () =>
      Effect.gen(function*() {
        const server = yield* startRedis()
        const admin = yield* rawClient(server.url)
        const store = yield* storeOn({ url: server.url })
        expect(yield* store.save(leakyKey, leaky, "create")).toBe(true)
        yield* Effect.promise(() => admin.config("SET", "requirepass", "new-password-3"))
        yield* Effect.promise(() => admin.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
        const error = yield* store.fetch(leakyKey).pipe(
          Effect.flip,
          Effect.filterOrFail((error) => error.reason === "Authentication"),
          Effect.retry({ schedule: Schedule.spaced("50 millis"), times: 60 })
        )
        expect(error.message).toContain("NOAUTH")
        expect(error.message).not.toContain("password-")
      }),
    30_000
  )
})
