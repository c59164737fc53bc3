/**
 * The plain `SessionHttp` middleware in every router style of @effect/platform, end to end over HTTP
 * (`NodeHttpServer.layerTest`): the classic `HttpRouter` (`HttpRouter.use` and
 * `HttpRouter.provideServiceEffect`), `HttpLayerRouter` (with `SessionHttp.layerRouterMiddleware`), and a
 * bare `HttpApp` served with `HttpServer.serve(app, middleware)`.
 *
 * The same client script runs against each: login sets the cookie, the protected route answers 200 with it
 * and 401 without it (or with a forged one, whose cookie is expired), logout expires the cookie, and a
 * store outage answers 503. Every test builds its own server (see the header of src/testing/StoreContract.ts).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema } from "effect"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"

class AppSession extends Session.Tag<AppSession>()("test/Routers/AppSession", {
  data: Schema.Struct({ name: Schema.String })
}) {}

const AppHttp = SessionHttp.make(AppSession)

// The three handlers every style serves.
const login = Effect.as(AppHttp.issue("alice", { name: "Alice" }), HttpServerResponse.text("in"))
const me = Effect.map(AppHttp.require, (session) => HttpServerResponse.text(`${session.userId}/${session.data.name}`))
const logout = Effect.as(Effect.flatMap(AppHttp.require, AppHttp.clear), HttpServerResponse.text("out"))

const sessions = SessionsTest.layer(AppSession, { ttl: "1 hour", memory: { sweepInterval: "30 days" } })

// -----------------------------------------------------------------------------
// the styles
// -----------------------------------------------------------------------------

const routes = HttpRouter.empty.pipe(
  HttpRouter.post("/login", login),
  HttpRouter.get("/me", me),
  HttpRouter.post("/logout", logout)
)

/** Classic `HttpRouter`, the middleware applied with `HttpRouter.use`. */
const classicUse = HttpServer.serve(routes.pipe(HttpRouter.use(AppHttp.middleware)))

/** Classic `HttpRouter`, the current session provided per request with `HttpRouter.provideServiceEffect`. */
const classicProvide = HttpServer.serve(routes.pipe(HttpRouter.provideServiceEffect(AppSession.Current, AppHttp.load)))

/** `HttpLayerRouter`: routes as layers, the session middleware as a layer they are provided with. */
const layerRouter = HttpLayerRouter.serve(
  HttpLayerRouter.addAll([
    HttpLayerRouter.route("POST", "/login", login),
    HttpLayerRouter.route("GET", "/me", me),
    HttpLayerRouter.route("POST", "/logout", logout)
  ]).pipe(Layer.provide(SessionHttp.layerRouterMiddleware(AppSession).layer)),
  { disableLogger: true, disableListenLog: true }
)

/** A bare `HttpApp`, no router at all: `HttpServer.serve(app, middleware)`. */
const app = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  const route = `${request.method} ${request.url}`
  if (route === "POST /login") return yield* login
  if (route === "GET /me") return yield* me
  if (route === "POST /logout") return yield* logout
  return HttpServerResponse.empty({ status: 404 })
})
const plain = HttpServer.serve(app, AppHttp.middleware)

// -----------------------------------------------------------------------------
// the client script
// -----------------------------------------------------------------------------

const request = (method: "GET" | "POST", path: string, headers: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const response = method === "GET" ? yield* client.get(path, { headers }) : yield* client.post(path, { headers })
    return { status: response.status, body: yield* response.text, response }
  }).pipe(Effect.scoped)

const sessionCookie = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  const lines = header === undefined ? [] : typeof header === "string" ? [header] : header
  return lines.find((line) => line.startsWith("session="))
}

const isExpiring = (response: HttpClientResponse.HttpClientResponse) =>
  /^session=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/.test(sessionCookie(response) ?? "")

const styles = [
  ["HttpRouter.use(middleware)", classicUse],
  ["HttpRouter.provideServiceEffect(Tag.Current, load)", classicProvide],
  ["HttpLayerRouter with layerRouterMiddleware", layerRouter],
  ["HttpServer.serve(app, middleware)", plain]
] as const

describe.each(styles)("%s", (_name, server) => {
  const serve = server.pipe(Layer.provideMerge(NodeHttpServer.layerTest), Layer.provideMerge(sessions))

  it.effect("login sets the cookie; the protected route answers 200 with it and 401 without it", () =>
    Effect.gen(function*() {
      const anonymous = yield* request("GET", "/me")
      expect(anonymous.status).toBe(401)

      const signedIn = yield* request("POST", "/login")
      expect(signedIn.status).toBe(200)
      const cookie = sessionCookie(signedIn.response)
      expect(cookie).toMatch(/^session=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}; .*HttpOnly/)
      const jar = cookie!.slice(0, cookie!.indexOf(";"))

      const mine = yield* request("GET", "/me", { cookie: jar })
      expect(mine.status).toBe(200)
      expect(mine.body).toBe("alice/Alice")
      // it depended on the cookie: no shared cache may keep it for another user
      expect(mine.response.headers["vary"]).toBe("Cookie")
      expect(mine.response.headers["cache-control"]).toBe("private")

      // a cookie planted beside the real one neither hides it nor gets it expired
      const planted = yield* request("GET", "/me", { cookie: `session=planted; ${jar}` })
      expect(planted.status).toBe(200)
      expect(sessionCookie(planted.response)).toBeUndefined()

      // logging in again over the session retires it
      const again = yield* request("POST", "/login", { cookie: jar })
      const renewed = sessionCookie(again.response)!
      const next = renewed.slice(0, renewed.indexOf(";"))
      expect(next).not.toBe(jar)
      expect((yield* request("GET", "/me", { cookie: jar })).status).toBe(401)
      expect((yield* request("GET", "/me", { cookie: next })).status).toBe(200)

      // a forged token is no session, and the client is told to drop it
      const forged = yield* request("GET", "/me", { cookie: `${jar.slice(0, -2)}xx` })
      expect(forged.status).toBe(401)
      expect(isExpiring(forged.response)).toBe(true)

      const out = yield* request("POST", "/logout", { cookie: next })
      expect(out.status).toBe(200)
      expect(isExpiring(out.response)).toBe(true)
      expect((yield* request("GET", "/me", { cookie: next })).status).toBe(401)
    }).pipe(Effect.provide(serve)))

  it.effect("answers 503 with Retry-After while the store is down", () =>
    Effect.gen(function*() {
      const signedIn = yield* request("POST", "/login")
      const cookie = sessionCookie(signedIn.response)!
      const outage = yield* SessionsTest.Outage
      yield* outage.start
      const during = yield* request("GET", "/me", { cookie: cookie.slice(0, cookie.indexOf(";")) })
      yield* outage.end
      expect(during.status).toBe(503)
      expect(during.response.headers["retry-after"]).toBe("1")
    }).pipe(Effect.provide(serve)))
})
