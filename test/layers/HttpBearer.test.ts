/**
 * Bearer and SPA backends over real HTTP (issue 12, items 4 and 5): the login answers the token in its body,
 * a 401 of the header transport carries `WWW-Authenticate: Bearer` (RFC 6750), a token in a response
 * header is exposed to cross-origin callers (`Access-Control-Expose-Headers`), and the cookie-or-bearer
 * transport answers each client the way it came.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpMiddleware from "@effect/platform/HttpMiddleware"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Option, Schema, TestClock } from "effect"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"
import * as Transport from "../../src/Transport.js"

class AppSession extends Session.Tag<AppSession>()("test/HttpBearer/AppSession", {
  data: Schema.Struct({ n: Schema.Number })
}) {}

const AppHttp = SessionHttp.make(AppSession)

const router = HttpRouter.empty.pipe(
  // a bearer API's login: the token in the body, as well as in the transport's header
  HttpRouter.post(
    "/login",
    Effect.map(
      AppHttp.issue("u1", { n: 0 }),
      ({ session, token }) => HttpServerResponse.unsafeJson({ user: session.userId, token })
    )
  ),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId))),
  HttpRouter.get(
    "/optional",
    Effect.map(AppHttp.current, (session) => HttpServerResponse.text(Option.isSome(session) ? "in" : "anonymous"))
  ),
  HttpRouter.post(
    "/rotate",
    Effect.map(
      Effect.flatMap(AppHttp.require, AppHttp.rotate),
      ({ token }) => HttpServerResponse.unsafeJson({ token })
    )
  ),
  HttpRouter.post("/extend", Effect.as(Effect.flatMap(AppHttp.require, AppHttp.extend), HttpServerResponse.text("ok")))
)

type Middleware = (app: HttpApp.Default<never, any>) => HttpApp.Default<any, any>

const serve = (
  transport: Layer.Layer<Transport.Transport, Transport.InvalidTransportOptions>,
  middleware: Middleware = AppHttp.middleware,
  options: Session.Options = { ttl: "1 hour" }
) =>
  HttpServer.serve(router, middleware as typeof AppHttp.middleware).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(Layer.merge(SessionsTest.layer(AppSession, options), Layer.orDie(transport)))
  )

const send = (method: "GET" | "POST", path: string, headers: Record<string, string> = {}) =>
  (method === "GET" ? HttpClient.get(path, { headers }) : HttpClient.post(path, { headers })).pipe(Effect.scoped)

const setCookies = (response: HttpClientResponse.HttpClientResponse): ReadonlyArray<string> => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  return header === undefined ? [] : typeof header === "string" ? [header] : header
}

const cookieOf = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const line = setCookies(response).find((cookie) => cookie.startsWith("session="))
  return line === undefined ? undefined : line.slice(0, line.indexOf(";"))
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })
const forged = (token: string) => token.slice(0, -2) + (token.endsWith("AA") ? "BB" : "AA")
const origin = { origin: "https://app.example" }

describe("the header transport (Authorization: Bearer)", () => {
  layer(serve(Transport.layerHeader()))("a bearer API", (it) => {
    it.effect("the login answers the token in its body, the one its header carries, and it works", () =>
      Effect.gen(function*() {
        const login = yield* send("POST", "/login")
        expect(login.status).toBe(200)
        const body = (yield* login.json) as { user: string; token: string }
        expect(body.user).toBe("u1")
        expect(body.token).toBe(login.headers["x-session-token"])
        expect(yield* (yield* send("GET", "/me", bearer(body.token))).text).toBe("u1")
        // rotate too answers the new token, which replaces the old one
        const rotated = yield* send("POST", "/rotate", bearer(body.token))
        const { token } = (yield* rotated.json) as { token: string }
        expect(token).toBe(rotated.headers["x-session-token"])
        expect((yield* send("GET", "/me", bearer(token))).status).toBe(200)
        expect((yield* send("GET", "/me", bearer(body.token))).status).toBe(401)
      }))

    it.effect("a 401 says Bearer, with error=\"invalid_token\" when a token was presented and refused", () =>
      Effect.gen(function*() {
        const missing = yield* send("GET", "/me")
        expect(missing.status).toBe(401)
        expect(missing.headers["www-authenticate"]).toBe("Bearer")
        const { token } = (yield* (yield* send("POST", "/login")).json) as { token: string }
        for (const refused of [forged(token), "garbage", `${token.slice(0, 30)}`]) {
          const response = yield* send("GET", "/me", bearer(refused))
          expect(response.status).toBe(401)
          expect(response.headers["www-authenticate"]).toBe("Bearer error=\"invalid_token\"")
        }
        // not on what is not a 401: a valid token, an optional route without one
        expect((yield* send("GET", "/me", bearer(token))).headers["www-authenticate"]).toBeUndefined()
        const anonymous = yield* send("GET", "/optional")
        expect(anonymous.status).toBe(200)
        expect(anonymous.headers["www-authenticate"]).toBeUndefined()
        const refusedOptional = yield* send("GET", "/optional", bearer(forged(token)))
        expect(refusedOptional.status).toBe(200)
        expect(refusedOptional.headers["www-authenticate"]).toBeUndefined()
      }))

    it.effect("a handler operation's 401 (the session was cleared meanwhile) says invalid_token", () =>
      Effect.gen(function*() {
        const { token } = (yield* (yield* send("POST", "/login")).json) as { token: string }
        const sessions = yield* AppSession
        const session = yield* sessions.get(token)
        // the middleware reads it, then the handler's extend finds it gone
        yield* sessions.clearAll(session.userId)
        const extended = yield* send("POST", "/extend", bearer(token))
        expect(extended.status).toBe(401)
        expect(extended.headers["www-authenticate"]).toBe("Bearer error=\"invalid_token\"")
      }))

    it.effect("a token in the response header is exposed to a cross-origin caller, and only then", () =>
      Effect.gen(function*() {
        const sameOrigin = yield* send("POST", "/login")
        expect(sameOrigin.headers["access-control-expose-headers"]).toBeUndefined()
        const crossOrigin = yield* send("POST", "/login", origin)
        expect(crossOrigin.headers["x-session-token"]).toBeDefined()
        expect(crossOrigin.headers["access-control-expose-headers"]).toBe("X-Session-Token")
        // a response without a token exposes nothing
        const token = crossOrigin.headers["x-session-token"]!
        const read = yield* send("GET", "/me", { ...origin, ...bearer(token) })
        expect(read.status).toBe(200)
        expect(read.headers["access-control-expose-headers"]).toBeUndefined()
      }))
  })

  layer(serve(Transport.layerHeader(), AppHttp.middleware, { ttl: "1 hour", renewalInterval: "10 minutes" }))(
    "with automatic renewal",
    (it) => {
      it.effect("the middleware's renewed token is exposed to a cross-origin caller", () =>
        Effect.gen(function*() {
          const { token } = (yield* (yield* send("POST", "/login")).json) as { token: string }
          yield* TestClock.adjust("11 minutes")
          const renewed = yield* send("GET", "/me", { ...origin, ...bearer(token) })
          expect(renewed.status).toBe(200)
          expect(renewed.headers["x-session-token"]).toBeDefined()
          expect(renewed.headers["x-session-token"]).not.toBe(token)
          expect(renewed.headers["access-control-expose-headers"]).toBe("X-Session-Token")
        }))
    }
  )

  // CORS applied around the sessions middleware: its hook runs first, and the token's header is merged in
  const withCors: Middleware = (app) =>
    HttpMiddleware.cors({ allowedOrigins: ["https://app.example"], exposedHeaders: ["X-Request-Id"] })(
      AppHttp.middleware(app)
    )
  layer(serve(Transport.layerHeader(), withCors))("behind HttpMiddleware.cors", (it) => {
    it.effect("Access-Control-Expose-Headers keeps what CORS exposes and adds the token's header", () =>
      Effect.gen(function*() {
        const login = yield* send("POST", "/login", origin)
        expect(login.headers["access-control-allow-origin"]).toBe("https://app.example")
        expect(login.headers["access-control-expose-headers"]).toBe("X-Request-Id, X-Session-Token")
      }))
  })

  layer(serve(Transport.layerHeader({ header: "x-api-token" })))("on a named header", (it) => {
    it.effect("a 401 names no scheme: Bearer is for Authorization only", () =>
      Effect.gen(function*() {
        const missing = yield* send("GET", "/me")
        expect(missing.status).toBe(401)
        expect(missing.headers["www-authenticate"]).toBeUndefined()
        expect((yield* send("GET", "/me", { "x-api-token": "garbage" })).headers["www-authenticate"]).toBeUndefined()
      }))
  })
})

describe("the cookie transport", () => {
  layer(serve(Transport.layerCookie({ secure: false })))("a browser app", (it) => {
    it.effect("a 401 carries no WWW-Authenticate, and a cookie is never named in Expose-Headers", () =>
      Effect.gen(function*() {
        const missing = yield* send("GET", "/me")
        expect(missing.status).toBe(401)
        expect(missing.headers["www-authenticate"]).toBeUndefined()
        const refused = yield* send("GET", "/me", { cookie: "session=garbage" })
        expect(refused.status).toBe(401)
        expect(refused.headers["www-authenticate"]).toBeUndefined()
        const login = yield* send("POST", "/login", origin)
        expect(cookieOf(login)).toBeDefined()
        expect(login.headers["access-control-expose-headers"]).toBeUndefined()
      }))
  })
})

describe("Transport.layerCookieOrBearer", () => {
  layer(serve(Transport.layerCookieOrBearer({ secure: false })))(
    "browsers and API clients on the same routes",
    (it) => {
      it.effect("a login without a token is answered in the cookie; the cookie works, and is answered in the cookie", () =>
        Effect.gen(function*() {
          const login = yield* send("POST", "/login")
          const cookie = cookieOf(login)
          expect(cookie).toBeDefined()
          expect(login.headers["x-session-token"]).toBeUndefined()
          expect(yield* (yield* send("GET", "/me", { cookie: cookie! })).text).toBe("u1")
          const rotated = yield* send("POST", "/rotate", { cookie: cookie! })
          expect(rotated.headers["x-session-token"]).toBeUndefined()
          const next = cookieOf(rotated)
          expect(next).toBeDefined()
          expect(next).not.toBe(cookie)
          expect((yield* send("GET", "/me", { cookie: next! })).status).toBe(200)
        }))

      it.effect("a login that asks for the header (X-Session-Transport: header) and a bearer token are answered in the header", () =>
        Effect.gen(function*() {
          const login = yield* send("POST", "/login", { [Transport.transportRequestHeader]: "header" })
          expect(cookieOf(login)).toBeUndefined()
          const token = login.headers["x-session-token"]!
          expect(token).toBeDefined()
          expect(((yield* login.json) as { token: string }).token).toBe(token)
          expect(yield* (yield* send("GET", "/me", bearer(token))).text).toBe("u1")
          const rotated = yield* send("POST", "/rotate", bearer(token))
          expect(setCookies(rotated)).toEqual([])
          const next = rotated.headers["x-session-token"]!
          expect(next).not.toBe(token)
          expect((yield* send("GET", "/me", bearer(next))).status).toBe(200)
        }))

      it.effect("responses vary on both headers; a token-carrying one is not stored", () =>
        Effect.gen(function*() {
          const login = yield* send("POST", "/login")
          expect(login.headers["vary"]).toBe("Cookie, Authorization")
          expect(login.headers["cache-control"]).toBe("no-store")
          const me = yield* send("GET", "/me", { cookie: cookieOf(login)! })
          expect(me.headers["vary"]).toBe("Cookie, Authorization")
          expect(me.headers["cache-control"]).toBe("private")
        }))

      it.effect("a 401 challenges API clients (Bearer, invalid_token when refused) but not a browser's cookie", () =>
        Effect.gen(function*() {
          const missing = yield* send("GET", "/me")
          expect(missing.headers["www-authenticate"]).toBe("Bearer")
          const refusedBearer = yield* send("GET", "/me", bearer("garbage"))
          expect(refusedBearer.status).toBe(401)
          expect(refusedBearer.headers["www-authenticate"]).toBe("Bearer error=\"invalid_token\"")
          // a refused bearer token has no cookie to expire
          expect(setCookies(refusedBearer)).toEqual([])
          const refusedCookie = yield* send("GET", "/me", { cookie: "session=garbage" })
          expect(refusedCookie.status).toBe(401)
          expect(refusedCookie.headers["www-authenticate"]).toBeUndefined()
          // the refused cookie is expired
          expect(setCookies(refusedCookie).some((line) => line.startsWith("session=;"))).toBe(true)
        }))

      it.effect("a request with both is served by the bearer token first, and answered in the header", () =>
        Effect.gen(function*() {
          const browser = cookieOf(yield* send("POST", "/login"))!
          const api = (yield* send("POST", "/login", { [Transport.transportRequestHeader]: "header" })).headers[
            "x-session-token"
          ]!
          const rotated = yield* send("POST", "/rotate", { cookie: browser, ...bearer(api) })
          expect(setCookies(rotated)).toEqual([])
          const next = rotated.headers["x-session-token"]!
          expect((yield* send("GET", "/me", bearer(api))).status).toBe(401)
          expect((yield* send("GET", "/me", bearer(next))).status).toBe(200)
          expect((yield* send("GET", "/me", { cookie: browser })).status).toBe(200)
        }))

      it.effect("the bearer token is exposed to a cross-origin caller; the cookie never", () =>
        Effect.gen(function*() {
          const api = yield* send("POST", "/login", { ...origin, [Transport.transportRequestHeader]: "header" })
          expect(api.headers["access-control-expose-headers"]).toBe("X-Session-Token")
          const browser = yield* send("POST", "/login", origin)
          expect(cookieOf(browser)).toBeDefined()
          expect(browser.headers["access-control-expose-headers"]).toBeUndefined()
        }))
    }
  )

  layer(Layer.empty)("options", (it) => {
    it.effect("a header transport on the cookie headers is refused", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Transport.makeCookieOrBearer({}, { header: "cookie" }))
        expect(error._tag).toBe("InvalidTransportOptions")
      }))
  })
})
