/**
 * `SessionApi` end to end: an `HttpApi` served by `HttpApiBuilder` on `NodeHttpServer.layerTest`, with a
 * public `login`, and `me`, `logout`, `sessions`, `logoutEverywhere` guarded by the sessions middleware;
 * the OpenAPI document of that API; and a bearer-token variant on the header transport.
 *
 * Every test builds its own server (`Effect.provide(layer)` per test rather than @effect/vitest's
 * `layer(...)`, see the header of src/testing/StoreContract.ts), so each one has a fresh store and its own
 * TestClock, which the server's request fibers share.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiClient from "@effect/platform/HttpApiClient"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiError from "@effect/platform/HttpApiError"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpClientRequest from "@effect/platform/HttpClientRequest"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Layer, Logger, Option, Schema, TestClock } from "effect"
import { BadSignature } from "../../src/Auth.js"
import * as Csrf from "../../src/layers/Csrf.js"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionApi from "../../src/layers/HttpApi.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"
import { StoreError } from "../../src/Store.js"
import * as Transport from "../../src/Transport.js"

// -----------------------------------------------------------------------------
// the API
// -----------------------------------------------------------------------------

class AppSession extends Session.Tag<AppSession>()("test/HttpApi/AppSession", {
  data: Schema.Struct({ role: Schema.Literal("user", "admin") })
}) {}

const AppApi = SessionApi.make(AppSession)

const Me = Schema.Struct({ user: Schema.String, role: Schema.String })
const Home = Schema.Struct({ user: Schema.NullOr(Schema.String) })
const Listed = Schema.Struct({ id: Schema.String, userAgent: Schema.NullOr(Schema.String), current: Schema.Boolean })

/** The API under test: the session middleware on everything but `login`. */
class Api extends HttpApi.make("app").add(
  HttpApiGroup.make("auth")
    .add(
      HttpApiEndpoint.post("login", "/login")
        .setPayload(Schema.Struct({ user: Schema.String }))
        .addSuccess(Me)
        .addError(StoreError)
    )
    .add(HttpApiEndpoint.get("me", "/me").addSuccess(Me).middleware(AppApi.Middleware))
    .add(HttpApiEndpoint.post("logout", "/logout").middleware(AppApi.Middleware))
    .add(HttpApiEndpoint.get("sessions", "/sessions").addSuccess(Schema.Array(Listed)).middleware(AppApi.Middleware))
    .add(
      HttpApiEndpoint.post("logoutEverywhere", "/logout-everywhere")
        .addSuccess(Schema.Struct({ cleared: Schema.Number }))
        .middleware(AppApi.Middleware)
    )
    // public, personalised by the session when there is one
    .add(HttpApiEndpoint.get("home", "/home").addSuccess(Home).middleware(AppApi.Optional))
    .add(
      HttpApiEndpoint.post("promote", "/promote")
        .setPayload(Schema.Struct({ keepPrevious: Schema.Boolean }))
        .addSuccess(Me)
        .middleware(AppApi.Middleware)
    )
) {}

const AuthLive = HttpApiBuilder.group(Api, "auth", (handlers) =>
  handlers
    .handle("login", ({ payload }) =>
      Effect.map(
        AppApi.issue(payload.user, { role: "user" }),
        ({ session }) => ({ user: session.userId, role: session.data.role })
      ))
    .handle("me", () => Effect.map(AppApi.Session, (session) => ({ user: session.userId, role: session.data.role })))
    .handle(
      "home",
      () => Effect.map(AppApi.current, (session) => ({ user: Option.getOrNull(session)?.userId ?? null }))
    )
    .handle("logout", () => Effect.flatMap(AppApi.Session, AppApi.clear))
    .handle("sessions", () =>
      Effect.gen(function*() {
        const session = yield* AppApi.Session
        const listed = yield* (yield* AppSession).list(session.userId)
        return listed.map((info) => ({
          id: info.key.session,
          userAgent: info.userAgent ?? null,
          current: info.key.session === session.key.session
        }))
      }).pipe(SessionApi.redactStoreError))
    .handle(
      "logoutEverywhere",
      () => Effect.map(Effect.flatMap(AppApi.Session, AppApi.clearAll), (cleared) => ({ cleared }))
    )
    // a new session from inside a guarded endpoint (a privilege change by re-login)
    .handle("promote", ({ payload }) =>
      Effect.flatMap(AppApi.Session, (session) =>
        Effect.map(
          AppApi.issue(session.userId, { role: "admin" }, { keepPrevious: payload.keepPrevious }),
          ({ session }) => ({ user: session.userId, role: session.data.role })
        )))).pipe(
    Layer.provide(AppApi.layer)
  )

const serve = (options: SessionsTest.Options = {}) =>
  HttpApiBuilder.serve().pipe(
    Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(AuthLive))),
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(
      SessionsTest.layer(AppSession, { ttl: "1 hour", memory: { sweepInterval: "30 days" }, ...options })
    )
  )

// -----------------------------------------------------------------------------
// the client side
// -----------------------------------------------------------------------------

const send = (request: HttpClientRequest.HttpClientRequest) =>
  Effect.gen(function*() {
    const response = yield* HttpClient.execute(request)
    const text = yield* response.text
    return { status: response.status, body: text === "" ? undefined : JSON.parse(text) as unknown, response }
  }).pipe(Effect.scoped)

const get = (path: string, headers: Record<string, string> = {}) =>
  send(HttpClientRequest.get(path).pipe(HttpClientRequest.setHeaders(headers)))

const post = (path: string, headers: Record<string, string> = {}, body?: unknown) =>
  send(
    HttpClientRequest.post(path).pipe(
      HttpClientRequest.setHeaders(headers),
      body === undefined ? (request) => request : HttpClientRequest.bodyUnsafeJson(body)
    )
  )

const setCookies = (response: HttpClientResponse.HttpClientResponse): ReadonlyArray<string> => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  return header === undefined ? [] : typeof header === "string" ? [header] : header
}

const sessionCookie = (response: HttpClientResponse.HttpClientResponse) =>
  setCookies(response).find((line) => line.startsWith("session="))

/** The session token a response sets, `""` when it expires the cookie, `undefined` when it does not touch it. */
const tokenSet = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const cookie = sessionCookie(response)
  return cookie === undefined ? undefined : cookie.slice("session=".length, cookie.indexOf(";"))
}

const isExpiring = (response: HttpClientResponse.HttpClientResponse) => {
  const cookie = sessionCookie(response)
  return cookie !== undefined && cookie.startsWith("session=;") && /Max-Age=0|Expires=Thu, 01 Jan 1970/.test(cookie)
}

/** The 503 of a store outage: `Retry-After`, and the error without the store's own message. */
const expectOutage = (
  answer: { readonly status: number; readonly response: HttpClientResponse.HttpClientResponse; readonly body: unknown }
) => {
  expect(answer.status).toBe(503)
  expect(answer.response.headers["retry-after"]).toBe("1")
  expect(answer.body).toEqual({
    _tag: "StoreError",
    reason: "Unavailable",
    message: "the session store is unavailable"
  })
}

const tokenShape = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/

const login = (user: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const { body, response, status } = yield* post("/login", headers, { user })
    expect(status).toBe(200)
    expect(body).toEqual({ user, role: "user" })
    const token = tokenSet(response)
    expect(token).toMatch(tokenShape)
    return { cookie: `session=${token}`, token: token! }
  })

// -----------------------------------------------------------------------------
// tests
// -----------------------------------------------------------------------------

describe("SessionApi (HttpApi middleware), cookie transport", () => {
  it.effect("login sets the session cookie from inside an HttpApi handler; me answers with the session", () =>
    Effect.gen(function*() {
      const { body, response, status } = yield* post("/login", {}, { user: "alice" })
      expect(status).toBe(200)
      expect(body).toEqual({ user: "alice", role: "user" })
      const cookie = sessionCookie(response)!
      expect(cookie).toMatch(/^session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}; /)
      expect(cookie).toMatch(/; HttpOnly/)
      expect(cookie).toMatch(/; SameSite=Lax/)
      expect(cookie).toMatch(/; Max-Age=3600/)
      expect(response.headers["cache-control"]).toBe("no-store")
      expect(response.headers["vary"]).toMatch(/Cookie/)

      const me = yield* get("/me", { cookie: `session=${tokenSet(response)}` })
      expect(me.status).toBe(200)
      expect(me.body).toEqual({ user: "alice", role: "user" })
      // nothing to renew: the cookie is left alone
      expect(setCookies(me.response)).toEqual([])
    }).pipe(Effect.provide(serve())))

  it.effect("answers 401 with the Unauthorized error without a cookie, with an empty one and with a bad one", () =>
    Effect.gen(function*() {
      const none = yield* get("/me")
      expect(none.status).toBe(401)
      expect(none.body).toEqual({ _tag: "Unauthorized" })
      expect(setCookies(none.response)).toEqual([])

      // HttpApiSecurity decodes a missing and an empty cookie alike (Redacted(""))
      expect((yield* get("/me", { cookie: "session=" })).status).toBe(401)

      const { token } = yield* login("alice")
      const flipped = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A")
      for (const bad of [flipped, "garbage", token.slice(0, 40), "x".repeat(5000)]) {
        const reply = yield* get("/me", { cookie: `session=${bad}` })
        expect(reply.status).toBe(401)
        expect(reply.body).toEqual({ _tag: "Unauthorized" })
        // a token that will never work is expired on the 401, as the plain middleware does
        expect(isExpiring(reply.response)).toBe(true)
      }
      expect((yield* get("/sessions", { cookie: `session=${flipped}` })).status).toBe(401)
      expect((yield* post("/logout", { cookie: `session=${flipped}` })).status).toBe(401)
      expect((yield* post("/logout-everywhere")).status).toBe(401)
    }).pipe(Effect.provide(serve())))

  it.effect("logout clears the session and expires the cookie; the old cookie is then refused", () =>
    Effect.gen(function*() {
      const { cookie } = yield* login("alice")
      const out = yield* post("/logout", { cookie })
      expect(out.status).toBe(204)
      expect(isExpiring(out.response)).toBe(true)
      expect(sessionCookie(out.response)).toMatch(/; Path=\//)
      const replay = yield* get("/me", { cookie })
      expect(replay.status).toBe(401)
    }).pipe(Effect.provide(serve())))

  it.effect("sessions lists the user's sessions with their user agents; logoutEverywhere ends them all", () =>
    Effect.gen(function*() {
      const laptop = yield* login("alice", { "user-agent": "Laptop/1.0" })
      const phone = yield* login("alice", { "user-agent": "Phone/2.0" })
      const bob = yield* login("bob")

      const listed = yield* get("/sessions", { cookie: phone.cookie })
      expect(listed.status).toBe(200)
      const sessions = listed.body as ReadonlyArray<typeof Listed.Type>
      expect(sessions.map((s) => s.userAgent)).toEqual(["Laptop/1.0", "Phone/2.0"])
      expect(sessions.map((s) => s.current)).toEqual([false, true])

      const everywhere = yield* post("/logout-everywhere", { cookie: laptop.cookie })
      expect(everywhere.status).toBe(200)
      expect(everywhere.body).toEqual({ cleared: 2 })
      expect(isExpiring(everywhere.response)).toBe(true)
      expect((yield* get("/me", { cookie: laptop.cookie })).status).toBe(401)
      expect((yield* get("/me", { cookie: phone.cookie })).status).toBe(401)
      // another user's session is untouched
      expect((yield* get("/me", { cookie: bob.cookie })).status).toBe(200)
    }).pipe(Effect.provide(serve())))

  it.effect("answers 503 with Retry-After and a redacted StoreError while the store is down", () =>
    Effect.gen(function*() {
      const { cookie } = yield* login("alice")
      const outage = yield* SessionsTest.Outage
      yield* outage.start
      const during = yield* get("/me", { cookie })
      const loginDuring = yield* post("/login", {}, { user: "bob" })
      // without a cookie, the store is not asked: still a plain 401
      const anonymous = yield* get("/me")
      yield* outage.end

      // the store's own message (here "the test store is down (Outage.start)") never reaches the client
      expectOutage(during)
      expect(loginDuring.status).toBe(503)
      expect(loginDuring.response.headers["retry-after"]).toBe("1")
      expect(loginDuring.body).toEqual(during.body)
      expect(setCookies(loginDuring.response)).toEqual([])
      expect(anonymous.status).toBe(401)

      expect((yield* get("/me", { cookie })).status).toBe(200)
    }).pipe(Effect.provide(serve())))

  it.effect("a token due for renewal gets a new one on the response of a guarded endpoint; the old one dies", () =>
    Effect.gen(function*() {
      const old = yield* login("alice")
      yield* TestClock.adjust("16 minutes")
      const due = yield* get("/me", { cookie: old.cookie })
      expect(due.status).toBe(200)
      const renewed = tokenSet(due.response)
      expect(renewed).toMatch(tokenShape)
      expect(renewed).not.toBe(old.token)
      expect((yield* get("/me", { cookie: `session=${renewed}` })).status).toBe(200)
      // past the old id's renewal grace (for requests in flight), it is refused
      yield* TestClock.adjust("61 seconds")
      expect((yield* get("/me", { cookie: old.cookie })).status).toBe(401)
    }).pipe(Effect.provide(serve({ renewalInterval: "15 minutes" }))))

  it.effect("rolling expiry: a guarded endpoint writes the cookie again with the later expiry", () =>
    Effect.gen(function*() {
      const { cookie } = yield* login("alice")
      yield* TestClock.adjust("40 minutes")
      const rolled = yield* get("/me", { cookie })
      expect(rolled.status).toBe(200)
      // same session, same token, a new Max-Age of the whole hour again (TestClock time starts at 0)
      expect(`session=${tokenSet(rolled.response)}`).toBe(cookie)
      expect(sessionCookie(rolled.response)).toMatch(/; Max-Age=3600/)
      expect(sessionCookie(rolled.response)).toMatch(/; Expires=Thu, 01 Jan 1970 01:40:00 GMT/)
    }).pipe(Effect.provide(serve({ rolling: true }))))

  it.effect("logs a misconfiguration when the security scheme names a cookie the Transport does not read", () => {
    const logs: Array<string> = []
    const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String(message))))
    return Effect.gen(function*() {
      // the scheme's default name is the secure default transport's; the transport here reads `sid`
      const reply = yield* get("/me", { cookie: "__Host-session=whatever" })
      expect(reply.status).toBe(401)
      expect(logs.some((line) => line.includes("make `cookieName` the Transport's cookie name"))).toBe(true)
      expect(logs.some((line) => line.includes("the Transport reads \"sid\""))).toBe(true)
    }).pipe(Effect.provide(serve({ cookie: { name: "sid" } })), Effect.provide(capture))
  })
})

describe("SessionApi: login over a session, and the caching headers", () => {
  it.effect("login with a valid session cookie retires that session (a shared browser)", () =>
    Effect.gen(function*() {
      const first = yield* login("alice")
      const again = yield* post("/login", { cookie: first.cookie }, { user: "bob" })
      expect(again.status).toBe(200)
      const second = tokenSet(again.response)!
      expect(second).toMatch(tokenShape)
      expect((yield* get("/me", { cookie: first.cookie })).status).toBe(401)
      expect((yield* get("/me", { cookie: `session=${second}` })).body).toEqual({ user: "bob", role: "user" })
      expect(yield* Effect.flatMap(AppSession, (sessions) => sessions.list("alice"))).toEqual([])
    }).pipe(Effect.provide(serve())))

  it.effect("issue inside a guarded endpoint retires the session it guards, unless keepPrevious", () =>
    Effect.gen(function*() {
      const first = yield* login("alice")
      const promoted = yield* post("/promote", { cookie: first.cookie }, { keepPrevious: false })
      expect(promoted.body).toEqual({ user: "alice", role: "admin" })
      expect((yield* get("/me", { cookie: first.cookie })).status).toBe(401)
      const admin = `session=${tokenSet(promoted.response)}`
      const kept = yield* post("/promote", { cookie: admin }, { keepPrevious: true })
      expect(kept.status).toBe(200)
      expect((yield* get("/me", { cookie: admin })).status).toBe(200)
      expect((yield* get("/me", { cookie: `session=${tokenSet(kept.response)}` })).status).toBe(200)
    }).pipe(Effect.provide(serve())))

  it.effect("guarded responses vary on Cookie and are private; a refused token's 401 too; no token, no change", () =>
    Effect.gen(function*() {
      const { cookie, token } = yield* login("alice")
      const me = yield* get("/me", { cookie })
      expect(me.response.headers["vary"]).toBe("Cookie")
      expect(me.response.headers["cache-control"]).toBe("private")
      const refused = yield* get("/me", { cookie: `session=${token.slice(0, -2)}xx` })
      expect(refused.status).toBe(401)
      expect(refused.response.headers["vary"]).toBe("Cookie")
      expect(refused.response.headers["cache-control"]).toBe("no-store")
      const none = yield* get("/me")
      expect(none.status).toBe(401)
      expect(none.response.headers["vary"]).toBeUndefined()
      expect(none.response.headers["cache-control"]).toBeUndefined()
    }).pipe(Effect.provide(serve())))

  it.effect("the default cookie name follows the secure transport's: __Host-session, read from a planted duplicate too", () =>
    Effect.gen(function*() {
      const { response } = yield* post("/login", {}, { user: "alice" })
      const line = setCookies(response).find((line) => line.startsWith("__Host-session="))!
      expect(line).toMatch(/; Secure/)
      const token = line.slice("__Host-session=".length, line.indexOf(";"))
      const me = yield* get("/me", { cookie: `__Host-session=forged; __Host-session=${token}` })
      expect(me.status).toBe(200)
      expect(setCookies(me.response)).toEqual([])
    }).pipe(Effect.provide(
      HttpApiBuilder.serve().pipe(
        Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(AuthLive))),
        Layer.provideMerge(NodeHttpServer.layerTest),
        // the cookie transport with its defaults (Secure): the name the security scheme documents
        Layer.provide(Layer.orDie(Transport.layerCookie())),
        Layer.provideMerge(SessionsTest.layer(AppSession, { ttl: "1 hour" }))
      )
    )))
})

// The same API's `home` and `login` with the outage policy "anonymous".
const AnonymousApi = SessionApi.make(AppSession, { onStoreError: "anonymous" })

class PublicApi extends HttpApi.make("public").add(
  HttpApiGroup.make("auth")
    .add(
      HttpApiEndpoint.post("login", "/login").setPayload(Schema.Struct({ user: Schema.String })).addSuccess(Me)
        .addError(StoreError)
    )
    .add(HttpApiEndpoint.get("home", "/home").addSuccess(Home).middleware(AnonymousApi.Optional))
) {}

const PublicLive = HttpApiBuilder.group(PublicApi, "auth", (handlers) =>
  handlers
    .handle("login", ({ payload }) =>
      Effect.map(AnonymousApi.issue(payload.user, { role: "user" }), ({ session }) => ({
        user: session.userId,
        role: session.data.role
      })))
    .handle("home", () =>
      Effect.map(AnonymousApi.current, (session) => ({ user: Option.getOrNull(session)?.userId ?? null })))).pipe(
    Layer.provide(AnonymousApi.layer)
  )

const serveAnonymousOnOutage = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(PublicApi).pipe(Layer.provide(PublicLive))),
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provideMerge(SessionsTest.layer(AppSession, { ttl: "1 hour", memory: { sweepInterval: "30 days" } }))
)

describe("SessionApi.Optional: public endpoints personalised by the session", () => {
  it.effect("serves with the session, without one, and with a bad token (expired on the way out): never 401", () =>
    Effect.gen(function*() {
      const anonymous = yield* get("/home")
      expect(anonymous.status).toBe(200)
      expect(anonymous.body).toEqual({ user: null })
      expect(setCookies(anonymous.response)).toEqual([])

      const { cookie, token } = yield* login("alice")
      const personal = yield* get("/home", { cookie })
      expect(personal.status).toBe(200)
      expect(personal.body).toEqual({ user: "alice" })
      expect(personal.response.headers["vary"]).toBe("Cookie")
      expect(setCookies(personal.response)).toEqual([])

      for (const bad of [token.slice(0, -2) + "xx", "garbage", "", "x".repeat(5000)]) {
        const reply = yield* get("/home", { cookie: `session=${bad}` })
        expect(reply.status).toBe(200)
        expect(reply.body).toEqual({ user: null })
        if (bad !== "") expect(isExpiring(reply.response)).toBe(true)
      }
      yield* post("/logout", { cookie })
      expect((yield* get("/home", { cookie })).body).toEqual({ user: null })
    }).pipe(Effect.provide(serve())))

  it.effect("renews a token due for renewal, as the required middleware does", () =>
    Effect.gen(function*() {
      const old = yield* login("alice")
      yield* TestClock.adjust("16 minutes")
      const due = yield* get("/home", { cookie: old.cookie })
      expect(due.body).toEqual({ user: "alice" })
      const renewed = tokenSet(due.response)
      expect(renewed).toMatch(tokenShape)
      expect(renewed).not.toBe(old.token)
      expect((yield* get("/home", { cookie: `session=${renewed}` })).body).toEqual({ user: "alice" })
    }).pipe(Effect.provide(serve({ renewalInterval: "15 minutes" }))))

  it.effect("answers 503 with Retry-After and a redacted StoreError while the store is down", () =>
    Effect.gen(function*() {
      const { cookie } = yield* login("alice")
      const outage = yield* SessionsTest.Outage
      yield* outage.start
      const during = yield* get("/home", { cookie })
      // no token, no store call: still served
      const anonymous = yield* get("/home")
      yield* outage.end
      expectOutage(during)
      expect(anonymous.status).toBe(200)
    }).pipe(Effect.provide(serve())))

  it.effect("with onStoreError: \"anonymous\", an outage serves the page without the session, after a warning", () => {
    const logs: Array<string> = []
    const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ message }) => logs.push(String(message))))
    return Effect.gen(function*() {
      const { cookie } = yield* login("alice")
      const outage = yield* SessionsTest.Outage
      yield* outage.start
      const during = yield* get("/home", { cookie })
      yield* outage.end
      expect(during.status).toBe(200)
      expect(during.body).toEqual({ user: null })
      // the session lives on: the cookie is not expired
      expect(setCookies(during.response)).toEqual([])
      expect(logs.some((line) => line.includes("serving the request as anonymous"))).toBe(true)
      expect((yield* get("/home", { cookie })).body).toEqual({ user: "alice" })
    }).pipe(Effect.provide(serveAnonymousOnOutage), Effect.provide(capture))
  })

  it("is public in the OpenAPI document: no security, no 401, the 503", () => {
    const home = OpenApi.fromApi(Api).paths["/home"]!.get!
    expect(home.security).toEqual([])
    expect(Object.keys(home.responses)).not.toContain("401")
    expect(Object.keys(home.responses)).toContain("503")
  })
})

describe("SessionApi OpenAPI document", () => {
  const spec = OpenApi.fromApi(Api)

  it("declares the session cookie as an apiKey security scheme", () => {
    expect(spec.components.securitySchemes["session"]).toEqual({
      type: "apiKey",
      in: "cookie",
      name: "__Host-session",
      description: "The session cookie set at login."
    })
  })

  it("puts the scheme, a 401 and a 503 on guarded endpoints, and none of them on login", () => {
    for (
      const [path, method] of [["/me", "get"], ["/logout", "post"], ["/sessions", "get"], [
        "/logout-everywhere",
        "post"
      ], ["/promote", "post"]] as const
    ) {
      const operation = (spec.paths[path] as Record<string, OpenApi.OpenAPISpecOperation>)[method]!
      expect(operation.security).toEqual([{ session: [] }])
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(["401", "503"]))
    }
    const login = spec.paths["/login"]!.post!
    expect(login.security).toEqual([])
    expect(Object.keys(login.responses)).not.toContain("401")
    expect(Object.keys(login.responses)).toContain("503")
  })

  it("describes the 401 body as the Unauthorized error", () => {
    const me = spec.paths["/me"]!.get!
    const body = JSON.stringify(me.responses["401"])
    expect(body).toContain("Unauthorized")
  })
})

// Every error of the package next to `@effect/platform`'s own `Unauthorized`.
class ErrorsApi extends HttpApi.make("errors").add(
  HttpApiGroup.make("errors")
    .add(
      HttpApiEndpoint.get("fail", "/fail/:which")
        .setPath(Schema.Struct({ which: Schema.Literal("ours", "platform") }))
        .addError(HttpApiError.Unauthorized)
        .addError(SessionHttp.Unauthorized)
        .addError(BadSignature)
        .addError(Session.NotFound)
        .addError(Session.Expired)
        .addError(Session.Conflict)
        .addError(Csrf.CsrfRejected)
    )
    .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String).middleware(AppApi.Middleware))
) {}

const ErrorsLive = HttpApiBuilder.group(ErrorsApi, "errors", (handlers) =>
  handlers
    .handle("fail", ({ path }) =>
      path.which === "ours"
        ? Effect.fail(new SessionHttp.Unauthorized())
        : Effect.fail(new HttpApiError.Unauthorized()))
    .handle("me", () => Effect.map(AppApi.Session, (session) => session.userId))).pipe(Layer.provide(AppApi.layer))

describe("the package's errors in an OpenAPI document next to @effect/platform's", () => {
  const spec = OpenApi.fromApi(ErrorsApi)

  // Fails on identifiers such as "effect-sessions/Unauthorized", which the document names
  // `effect-sessions~1Unauthorized` (seen before the fix).
  it("names every schema without a slash, and apart from platform's Unauthorized", () => {
    const names = Object.keys(spec.components.schemas)
    for (const name of names) expect(name).toMatch(/^[A-Za-z0-9._-]+$/)
    expect(JSON.stringify(spec)).not.toContain("~1")
    expect(names).toEqual(expect.arrayContaining([
      "Unauthorized",
      "EffectSessionsUnauthorized",
      "EffectSessionsStoreError",
      "EffectSessionsBadSignature",
      "EffectSessionsNotFound",
      "EffectSessionsExpired",
      "EffectSessionsConflict",
      "EffectSessionsCsrfRejected"
    ]))
    const unauthorized = JSON.stringify(spec.paths["/fail/{which}"]!.get!.responses["401"])
    expect(unauthorized).toContain("#/components/schemas/Unauthorized\"")
    expect(unauthorized).toContain("#/components/schemas/EffectSessionsUnauthorized\"")
  })

  // The two share `_tag: "Unauthorized"` on purpose (a `_tag` change would break every
  // `catchTag("Unauthorized")`): on the wire they are one error, a 401 whose body is that tag, and a client
  // decodes either as the one its API declares first. What it can rely on is the status and the tag.
  it.effect("answers both with 401 {\"_tag\":\"Unauthorized\"}, which a client catches by the one tag", () =>
    Effect.gen(function*() {
      const client = yield* HttpApiClient.make(ErrorsApi)
      for (const which of ["ours", "platform"] as const) {
        const reply = yield* get(`/fail/${which}`)
        expect(reply.status).toBe(401)
        expect(reply.body).toEqual({ _tag: "Unauthorized" })
        const caught = yield* client.errors.fail({ path: { which } }).pipe(
          Effect.as("succeeded"),
          Effect.catchTag("Unauthorized", (error) => Effect.succeed(error._tag))
        )
        expect(caught).toBe("Unauthorized")
      }
      const me = yield* Effect.flip(client.errors.me())
      expect(me._tag).toBe("Unauthorized")
    }).pipe(
      Effect.provide(
        HttpApiBuilder.serve().pipe(
          Layer.provide(HttpApiBuilder.api(ErrorsApi).pipe(Layer.provide(ErrorsLive))),
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provideMerge(SessionsTest.layer(AppSession))
        )
      )
    ))

  it.effect("a refusal a middleware logs carries its name and message, not the stack of the module's import", () => {
    const logged: Array<string> = []
    const capture = Logger.replace(Logger.defaultLogger, Logger.make(({ cause }) => logged.push(Cause.pretty(cause))))
    return Effect.gen(function*() {
      expect((yield* get("/me")).status).toBe(401)
      expect(logged).toHaveLength(1)
      // Before the fix: "Unauthorized: a valid session is required\n    at .../src/layers/HttpApi.ts:..." and
      // the import chain that loaded the module.
      expect(logged[0]).toMatch(/^Unauthorized: a valid session is required/)
      expect(logged[0]).not.toMatch(/\.ts:\d+/)
    }).pipe(
      Effect.provide(
        HttpApiBuilder.serve().pipe(
          // what an application that logs its failures does
          Layer.provide(HttpApiBuilder.middleware(ErrorsApi, (app) => Effect.tapErrorCause(app, Effect.logError))),
          Layer.provide(HttpApiBuilder.api(ErrorsApi).pipe(Layer.provide(ErrorsLive))),
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provideMerge(SessionsTest.layer(AppSession))
        )
      ),
      Effect.provide(capture)
    )
  })
})

// -----------------------------------------------------------------------------
// bearer tokens on the header transport
// -----------------------------------------------------------------------------

class TokenSession extends Session.Tag<TokenSession>()("test/HttpApi/TokenSession", {
  data: Schema.Struct({})
}) {}

const TokenApi = SessionApi.make(TokenSession, { transport: "bearer" })

class BearerApi extends HttpApi.make("tokens").add(
  HttpApiGroup.make("auth")
    .add(
      HttpApiEndpoint.post("login", "/login").setPayload(Schema.Struct({ user: Schema.String })).addError(StoreError)
    )
    .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String).middleware(TokenApi.Middleware))
) {}

const BearerLive = HttpApiBuilder.group(BearerApi, "auth", (handlers) =>
  handlers
    .handle("login", ({ payload }) => Effect.asVoid(TokenApi.issue(payload.user, {})))
    .handle("me", () => Effect.map(TokenApi.Session, (session) => session.userId))).pipe(Layer.provide(TokenApi.layer))

const serveBearer = HttpApiBuilder.serve().pipe(
  Layer.provide(HttpApiBuilder.api(BearerApi).pipe(Layer.provide(BearerLive))),
  Layer.provideMerge(NodeHttpServer.layerTest),
  // the header transport, in place of the test layer's cookie transport
  Layer.provide(Layer.orDie(Transport.layerHeader())),
  Layer.provideMerge(SessionsTest.layer(TokenSession))
)

describe("SessionApi, bearer tokens on the header transport", () => {
  it.effect("hands the token out in a header and accepts it back as Authorization: Bearer", () =>
    Effect.gen(function*() {
      const { response, status } = yield* post("/login", {}, { user: "carol" })
      expect(status).toBe(204)
      const token = response.headers["x-session-token"]
      expect(token).toMatch(tokenShape)
      expect(setCookies(response)).toEqual([])

      const me = yield* get("/me", { authorization: `Bearer ${token}` })
      expect(me.status).toBe(200)
      expect(me.body).toBe("carol")
      expect((yield* get("/me")).status).toBe(401)
      // HttpApiSecurity.bearer would take any scheme's credentials; the transport insists on Bearer
      expect((yield* get("/me", { authorization: `Basic ${token}` })).status).toBe(401)
      expect((yield* get("/me", { cookie: `session=${token}` })).status).toBe(401)
    }).pipe(Effect.provide(serveBearer)))

  it("declares an http bearer security scheme", () => {
    const spec = OpenApi.fromApi(BearerApi)
    expect(spec.components.securitySchemes["session"]).toMatchObject({ type: "http", scheme: "bearer" })
    expect(spec.paths["/me"]!.get!.security).toEqual([{ session: [] }])
    expect(Object.keys(spec.paths["/me"]!.get!.responses)).toEqual(expect.arrayContaining(["401", "503"]))
  })
})
