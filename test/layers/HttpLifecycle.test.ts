/**
 * The session lifecycle over HTTP (`SessionHttp` on `NodeHttpServer.layerTest`): renewal of the id and
 * rolling expiry written by the middleware, signing-key rotation, what `issue` records of the client and
 * what `list` shows of it, revocation (`revoke`, `clearOthers`, `clearAll`), and the store-outage policy.
 *
 * Every test builds its own server (`Effect.provide(layer)` per test rather than @effect/vitest's
 * `layer(...)`, see the header of src/testing/StoreContract.ts), so each one has a fresh store and its own
 * TestClock, which the server's request fibers share.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Logger, Option, Redacted, Schema, TestClock } from "effect"
import * as Auth from "../../src/Auth.js"
import * as SessionHttp from "../../src/layers/Http.js"
import * as Memory from "../../src/layers/Memory.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"
import { Store } from "../../src/Store.js"
import * as Transport from "../../src/Transport.js"

// -----------------------------------------------------------------------------
// the application
// -----------------------------------------------------------------------------

class AppSession extends Session.Tag<AppSession>()("test/HttpLifecycle/AppSession", {
  data: Schema.Struct({ n: Schema.Number })
}) {}

const minute = 60_000
const hour = 60 * minute

/** What `/sessions` answers for each of the current user's sessions. */
interface Listed {
  readonly session: string
  readonly current: boolean
  readonly userAgent: string | null
  readonly address: string | null
  readonly createdAt: number
  readonly lastSeenAt: number
  readonly expiresAt: number
}

const makeApp = (options: SessionHttp.Options = {}) => {
  const AppHttp = SessionHttp.make(AppSession, options)
  const router = HttpRouter.empty.pipe(
    HttpRouter.get(
      "/login/:user",
      Effect.gen(function*() {
        const { user } = yield* HttpRouter.params
        yield* AppHttp.issue(user!, { n: 0 })
        return HttpServerResponse.text("in")
      })
    ),
    HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId))),
    HttpRouter.get(
      "/optional",
      Effect.map(
        AppHttp.current,
        Option.match({
          onNone: () => HttpServerResponse.text("anonymous"),
          onSome: (session) => HttpServerResponse.text(session.userId)
        })
      )
    ),
    HttpRouter.get(
      "/sessions",
      Effect.gen(function*() {
        const session = yield* AppHttp.require
        const listed = yield* (yield* AppSession).list(session.userId)
        return HttpServerResponse.unsafeJson(listed.map((info): Listed => ({
          session: info.key.session,
          current: info.key.session === session.key.session,
          userAgent: info.userAgent ?? null,
          address: info.address ?? null,
          createdAt: info.createdAt.epochMillis,
          lastSeenAt: info.lastSeenAt.epochMillis,
          expiresAt: info.expiresAt.epochMillis
        })))
      })
    ),
    HttpRouter.get(
      "/revoke/:session",
      Effect.gen(function*() {
        const session = yield* AppHttp.require
        const { session: revoked } = yield* HttpRouter.params
        yield* (yield* AppSession).revoke(session.userId, revoked!)
        return HttpServerResponse.text("revoked")
      })
    ),
    HttpRouter.get(
      "/others",
      Effect.gen(function*() {
        const session = yield* AppHttp.require
        return HttpServerResponse.text(String(yield* (yield* AppSession).clearOthers(session)))
      })
    ),
    HttpRouter.get(
      "/rotate",
      Effect.gen(function*() {
        const { session } = yield* AppHttp.rotate(yield* AppHttp.require)
        return HttpServerResponse.text(String(session.data.n))
      })
    ),
    HttpRouter.get(
      "/increment",
      Effect.gen(function*() {
        const session = yield* AppHttp.update(yield* AppHttp.require, (data) => ({ n: data.n + 1 }))
        return HttpServerResponse.text(String(session.data.n))
      })
    ),
    HttpRouter.get(
      "/logout-all",
      Effect.gen(function*() {
        const session = yield* AppHttp.require
        return HttpServerResponse.text(String(yield* AppHttp.clearAll(session)))
      })
    )
  )
  return HttpServer.serve(router, AppHttp.middleware)
}

/** The test layer of the sessions service: memory store with an Outage switch, a random key, plain-http cookies. */
const testSessions = (options: SessionsTest.Options = {}) =>
  SessionsTest.layer(AppSession, { ttl: "1 hour", memory: { sweepInterval: "30 days" }, ...options })

const serve = <R>(
  sessions: Layer.Layer<R | AppSession | Transport.Transport>,
  options: SessionHttp.Options = {}
) => makeApp(options).pipe(Layer.provideMerge(NodeHttpServer.layerTest), Layer.provideMerge(sessions))

// -----------------------------------------------------------------------------
// the client side
// -----------------------------------------------------------------------------

const get = (path: string, headers: Record<string, string> = {}) =>
  HttpClient.get(path, { headers }).pipe(Effect.scoped)

const setCookies = (response: HttpClientResponse.HttpClientResponse): ReadonlyArray<string> => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  return header === undefined ? [] : typeof header === "string" ? [header] : header
}

/** The session token a response sets, `""` when it expires the cookie, `undefined` when it does not touch it. */
const tokenSet = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const cookie = setCookies(response).find((line) => line.startsWith("session="))
  return cookie === undefined ? undefined : cookie.slice("session=".length, cookie.indexOf(";"))
}

const isExpiring = (response: HttpClientResponse.HttpClientResponse) => {
  const cookie = setCookies(response).find((line) => line.startsWith("session="))
  return cookie !== undefined && cookie.startsWith("session=;") && /Max-Age=0|Expires=Thu, 01 Jan 1970/.test(cookie)
}

const withToken = (token: string, headers: Record<string, string> = {}) => ({ ...headers, cookie: `session=${token}` })

const login = (user: string, userAgent?: string) =>
  Effect.gen(function*() {
    const response = yield* get(`/login/${user}`, userAgent === undefined ? {} : { "user-agent": userAgent })
    expect(response.status).toBe(200)
    const token = tokenSet(response)
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/)
    return token!
  })

/** Status and body of a request made with `token`. */
const as = (token: string, path: string) =>
  Effect.gen(function*() {
    const response = yield* get(path, withToken(token))
    return { status: response.status, body: yield* response.text, response }
  })

const idOf = (token: string) => token.slice(0, token.lastIndexOf("."))

// -----------------------------------------------------------------------------
// tests
// -----------------------------------------------------------------------------

describe("HTTP session lifecycle", () => {
  describe("renewal and rolling, written by the middleware", () => {
    it.effect("a token older than renewalInterval gets a new one on that request; the old one dies", () =>
      Effect.gen(function*() {
        const old = yield* login("alice")

        yield* TestClock.adjust(15 * minute - 1)
        const young = yield* as(old, "/me")
        expect(young.status).toBe(200)
        expect(tokenSet(young.response)).toBeUndefined()

        yield* TestClock.adjust(1)
        const due = yield* as(old, "/me")
        expect(due.status).toBe(200)
        expect(due.body).toBe("alice")
        const renewed = tokenSet(due.response)
        expect(renewed).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/)
        expect(idOf(renewed!)).not.toBe(idOf(old))
        expect(due.response.headers["cache-control"]).toBe("no-store")

        // The old id may keep serving requests already in flight for a short renewal grace; past it, it is
        // refused. (Whether its cookie is expired then is test/layers/HttpRenewal.test.ts's business: the
        // browser may already hold the new one.)
        yield* TestClock.adjust(minute + 1)
        const replay = yield* as(old, "/me")
        expect(replay.status).toBe(401)
        const next = yield* as(renewed!, "/me")
        expect(next.status).toBe(200)
        expect(tokenSet(next.response)).toBeUndefined()
      }).pipe(Effect.provide(serve(testSessions({ renewalInterval: "15 minutes" })))))

    it.effect("with rolling expiry, the first request below half the lifetime gets the cookie with the later expiry", () =>
      Effect.gen(function*() {
        const token = yield* login("alice")
        yield* TestClock.adjust(30 * minute)
        const early = yield* as(token, "/me")
        expect(tokenSet(early.response)).toBeUndefined()

        yield* TestClock.adjust(1)
        const late = yield* as(token, "/me")
        expect(late.status).toBe(200)
        expect(tokenSet(late.response)).toBe(token)
        const cookie = setCookies(late.response).find((line) => line.startsWith("session="))!
        expect(cookie).toMatch(/; Max-Age=3600/)
        expect(Date.parse(/Expires=([^;]+)/.exec(cookie)![1]!)).toBe(
          Math.floor((30 * minute + 1 + hour) / 1000) * 1000
        )
        expect(tokenSet((yield* as(token, "/me")).response)).toBeUndefined()
      }).pipe(Effect.provide(serve(testSessions({ rolling: true })))))
  })

  describe("handler operations", () => {
    it.effect("rotate puts the new token on the response; the old one dies, the data stays", () =>
      Effect.gen(function*() {
        const old = yield* login("alice")
        expect((yield* as(old, "/increment")).body).toBe("1")
        const rotated = yield* as(old, "/rotate")
        expect(rotated.status).toBe(200)
        expect(rotated.body).toBe("1")
        const renewed = tokenSet(rotated.response)
        expect(renewed).toBeDefined()
        expect(idOf(renewed!)).not.toBe(idOf(old))
        expect((yield* as(old, "/me")).status).toBe(401)
        expect((yield* as(renewed!, "/increment")).body).toBe("2")
      }).pipe(Effect.provide(serve(testSessions()))))

    it.effect("concurrent updates over HTTP: every 200 counts, every other answer is 409", () =>
      Effect.gen(function*() {
        const token = yield* login("alice")
        const answers = yield* Effect.all(
          Array.from({ length: 50 }, () => Effect.map(as(token, "/increment"), (answer) => answer.status)),
          { concurrency: "unbounded" }
        )
        const ok = answers.filter((status) => status === 200).length
        expect(ok).toBeGreaterThanOrEqual(1)
        expect(answers.filter((status) => status !== 200 && status !== 409)).toEqual([])
        // one more increment tells the count
        expect((yield* as(token, "/increment")).body).toBe(String(ok + 1))
      }).pipe(Effect.provide(serve(testSessions()))))
  })

  describe("signing-key rotation", () => {
    const key1 = Redacted.make(Auth.randomId(48))
    const key2 = Redacted.make(Auth.randomId(48))

    it.scoped("a cookie signed by the old key is re-signed with the new key on the request that shows it", () =>
      Effect.gen(function*() {
        // one store, seen first by a deployment with [K1], then by one with [K2, K1]
        const store = Layer.succeed(Store, yield* Memory.make({ sweepInterval: "30 days" }))
        const sessionsWith = (keys: ReadonlyArray<Redacted.Redacted<string>>) =>
          Session.layer(AppSession, { ttl: "1 hour" }).pipe(
            Layer.provideMerge(
              Layer.mergeAll(store, Auth.layer({ keys }), Transport.layerCookie({ secure: false }))
            ),
            Layer.orDie
          )
        const { session, token } = yield* Effect.flatMap(AppSession, (sessions) => sessions.issue("alice", { n: 0 }))
          .pipe(Effect.provide(sessionsWith([key1])))

        const k2Only = yield* Auth.make({ keys: [key2] })
        const k1Only = yield* Auth.make({ keys: [key1] })
        yield* Effect.gen(function*() {
          const first = yield* as(token, "/me")
          expect(first.status).toBe(200)
          expect(first.body).toBe("alice")
          const resigned = tokenSet(first.response)
          expect(resigned).toBeDefined()
          expect(resigned).not.toBe(token)
          expect(yield* k2Only.verify(resigned!, AppSession.key)).toEqual({
            id: Redacted.value(session.id),
            keyIndex: 0
          })
          expect((yield* Effect.flip(k1Only.verify(resigned!, AppSession.key))).reason).toBe("Signature")

          const second = yield* as(resigned!, "/me")
          expect(second.status).toBe(200)
          expect(tokenSet(second.response)).toBeUndefined()
        }).pipe(Effect.provide(serve(sessionsWith([key2, key1]))))
      }))
  })

  describe("what issue records and list shows", () => {
    it.effect("the User-Agent and the remote address, with createdAt, lastSeenAt and expiresAt", () =>
      Effect.gen(function*() {
        yield* TestClock.adjust(5 * minute)
        const phone = yield* login("alice", "LifecycleTest/1.0 (phone)")
        yield* TestClock.adjust(5 * minute)
        const laptop = yield* login("alice", "LifecycleTest/2.0 (laptop)")
        yield* login("bob", "LifecycleTest/3.0 (bob)")

        const response = yield* as(laptop, "/sessions")
        expect(response.status).toBe(200)
        const listed = JSON.parse(response.body) as ReadonlyArray<Listed>
        expect(listed).toHaveLength(2)
        const [first, second] = listed
        expect(first).toMatchObject({
          current: false,
          userAgent: "LifecycleTest/1.0 (phone)",
          createdAt: 5 * minute,
          lastSeenAt: 5 * minute,
          expiresAt: 5 * minute + hour
        })
        expect(second).toMatchObject({
          current: true,
          userAgent: "LifecycleTest/2.0 (laptop)",
          createdAt: 10 * minute,
          lastSeenAt: 10 * minute,
          expiresAt: 10 * minute + hour
        })
        for (const info of listed) expect(info.address).toMatch(/^(::1|(::ffff:)?127\.0\.0\.1)$/)
        // the phone sees the same list, itself marked current
        const fromPhone = JSON.parse((yield* as(phone, "/sessions")).body) as ReadonlyArray<Listed>
        expect(fromPhone.map((info) => info.current)).toEqual([true, false])
      }).pipe(Effect.provide(serve(testSessions()))))
  })

  describe("revocation", () => {
    it.effect("revoke deletes exactly the session named, and never another user's", () =>
      Effect.gen(function*() {
        const phone = yield* login("alice", "phone")
        yield* TestClock.adjust(minute)
        const laptop = yield* login("alice", "laptop")
        const bob = yield* login("bob", "bob")
        const phoneKey = (JSON.parse((yield* as(laptop, "/sessions")).body) as ReadonlyArray<Listed>)
          .find((info) => info.userAgent === "phone")!.session
        const bobKey = (JSON.parse((yield* as(bob, "/sessions")).body) as ReadonlyArray<Listed>)[0]!.session

        // Alice names Bob's session: under her user id it is no session of hers, and nothing happens to Bob
        expect((yield* as(laptop, `/revoke/${bobKey}`)).status).toBe(200)
        expect((yield* as(bob, "/me")).status).toBe(200)
        expect(JSON.parse((yield* as(bob, "/sessions")).body)).toHaveLength(1)

        expect((yield* as(laptop, `/revoke/${phoneKey}`)).status).toBe(200)
        const revoked = yield* as(phone, "/me")
        expect(revoked.status).toBe(401)
        expect(isExpiring(revoked.response)).toBe(true)
        expect((yield* as(laptop, "/me")).status).toBe(200)
        const left = JSON.parse((yield* as(laptop, "/sessions")).body) as ReadonlyArray<Listed>
        expect(left.map((info) => info.userAgent)).toEqual(["laptop"])
        expect((yield* as(bob, "/me")).status).toBe(200)
      }).pipe(Effect.provide(serve(testSessions()))))

    it.effect("clearOthers keeps the current session and logs out the user's other devices", () =>
      Effect.gen(function*() {
        const tokens = [yield* login("alice"), yield* login("alice"), yield* login("alice")]
        const bob = yield* login("bob")
        const others = yield* as(tokens[1]!, "/others")
        expect(others.status).toBe(200)
        expect(others.body).toBe("2")
        expect(tokenSet(others.response)).toBeUndefined()
        expect((yield* as(tokens[0]!, "/me")).status).toBe(401)
        expect((yield* as(tokens[2]!, "/me")).status).toBe(401)
        expect((yield* as(tokens[1]!, "/me")).status).toBe(200)
        expect((yield* as(bob, "/me")).status).toBe(200)
      }).pipe(Effect.provide(serve(testSessions()))))

    it.effect("clearAll expires the cookie and kills every token of the user, and only of that user", () =>
      Effect.gen(function*() {
        const tokens = [yield* login("alice"), yield* login("alice"), yield* login("alice")]
        const bob = yield* login("bob")
        const response = yield* as(tokens[0]!, "/logout-all")
        expect(response.status).toBe(200)
        expect(response.body).toBe("3")
        expect(isExpiring(response.response)).toBe(true)
        const cookie = setCookies(response.response).find((line) => line.startsWith("session="))!
        expect(cookie).toMatch(/; Path=\//)
        for (const token of tokens) {
          expect((yield* as(token, "/me")).status).toBe(401)
          expect((yield* as(token, "/optional")).body).toBe("anonymous")
        }
        expect((yield* as(bob, "/me")).body).toBe("bob")
      }).pipe(Effect.provide(serve(testSessions()))))
  })

  describe("store outage", () => {
    /** A logger that keeps every line (logfmt, with the cause) and its level. */
    const captureLogs = () => {
      const lines: Array<{ readonly level: string; readonly line: string }> = []
      const layer = Logger.replace(
        Logger.defaultLogger,
        Logger.make((options) => {
          lines.push({ level: options.logLevel.label, line: Logger.logfmtLogger.log(options) })
        })
      )
      return { lines, layer }
    }

    it.effect("onStoreError \"fail\" answers 503", () =>
      Effect.gen(function*() {
        const token = yield* login("alice")
        const outage = yield* SessionsTest.Outage
        yield* outage.start
        const during = yield* as(token, "/optional")
        yield* outage.end
        expect(during.status).toBe(503)
        expect(during.response.headers["retry-after"]).toBe("1")
      }).pipe(Effect.provide(serve(testSessions(), { onStoreError: "fail" }))))

    const logs = captureLogs()
    it.effect("onStoreError \"anonymous\" serves the request without a session and logs a warning without the token", () =>
      Effect.gen(function*() {
        const token = yield* login("alice")
        const outage = yield* SessionsTest.Outage
        logs.lines.length = 0
        yield* outage.start
        const optional = yield* as(token, "/optional")
        const protectedRoute = yield* as(token, "/me")
        const anonymousRequest = yield* get("/optional")
        yield* outage.end

        // the handler ran, without a session
        expect(optional.status).toBe(200)
        expect(optional.body).toBe("anonymous")
        expect(protectedRoute.status).toBe(401)
        expect(anonymousRequest.status).toBe(200)
        // the token is still good: the client is not told to drop it
        expect(tokenSet(optional.response)).toBeUndefined()
        expect(tokenSet(protectedRoute.response)).toBeUndefined()

        const warnings = logs.lines.filter((entry) => entry.level === "WARN")
        // one per request that carried a token
        expect(warnings).toHaveLength(2)
        for (const { line } of warnings) {
          expect(line).toContain("session store unavailable; serving the request as anonymous")
        }
        for (const { line } of logs.lines) {
          expect(line).not.toContain(token)
          expect(line).not.toContain(idOf(token))
          expect(line).not.toContain(token.slice(token.lastIndexOf(".") + 1))
        }

        // and when the store is back, the same token works
        const after = yield* as(token, "/me")
        expect(after.status).toBe(200)
        expect(after.body).toBe("alice")
      }).pipe(Effect.provide(serve(testSessions(), { onStoreError: "anonymous" }).pipe(Layer.provide(logs.layer)))))
  })
})
