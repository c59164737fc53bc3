import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option, Schema } from "effect"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"
import * as Transport from "../../src/Transport.js"

class AppSession extends Session.Tag<AppSession>()("test/AppSession", {
  data: Schema.Struct({ visits: Schema.Number })
}) {}

const AppHttp = SessionHttp.make(AppSession)

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/login", Effect.as(AppHttp.issue("u1", { visits: 0 }), HttpServerResponse.text("in"))),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId))),
  HttpRouter.get(
    "/optional",
    Effect.map(AppHttp.current, Option.match({ onNone: () => "anonymous", onSome: (session) => session.userId }))
      .pipe(Effect.map((body) => HttpServerResponse.text(body)))
  ),
  HttpRouter.get(
    "/extend",
    Effect.gen(function*() {
      const session = yield* AppHttp.extend(yield* AppHttp.require)
      return HttpServerResponse.text(String(session.expiresAt.epochMillis))
    })
  ),
  HttpRouter.get("/logout", Effect.as(Effect.flatMap(AppHttp.require, AppHttp.clear), HttpServerResponse.text("out")))
)

const serve = (transport: Layer.Layer<Transport.Transport, Transport.InvalidTransportOptions>) =>
  HttpServer.serve(router, AppHttp.middleware).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(Layer.merge(SessionsTest.layer(AppSession, { ttl: "1 hour" }), transport))
  )

const get = (path: string, headers: Record<string, string> = {}) =>
  HttpClient.get(path, { headers }).pipe(Effect.scoped)

const setCookies = (response: HttpClientResponse.HttpClientResponse): ReadonlyArray<string> => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  return header === undefined ? [] : typeof header === "string" ? [header] : header
}

const sessionCookie = (response: HttpClientResponse.HttpClientResponse): string => {
  const cookie = setCookies(response).find((line) => line.startsWith("session="))
  expect(cookie).toBeDefined()
  return cookie!
}

const cookieValue = (setCookie: string) => setCookie.slice(0, setCookie.indexOf(";"))

const login = Effect.gen(function*() {
  const response = yield* get("/login")
  expect(response.status).toBe(200)
  return cookieValue(sessionCookie(response))
})

describe("HTTP middleware", () => {
  layer(serve(Transport.layerCookie({ secure: false })))("cookie transport", (it) => {
    it.effect("answers 401 to a protected route without a session and serves optional routes", () =>
      Effect.gen(function*() {
        expect((yield* get("/me")).status).toBe(401)
        const optional = yield* get("/optional")
        expect(optional.status).toBe(200)
        expect(yield* optional.text).toBe("anonymous")
        expect(setCookies(optional)).toEqual([])
      }))

    it.effect("concurrent requests each see their own session, or none, never another request's", () =>
      Effect.gen(function*() {
        const cookie = yield* login
        const answers = yield* Effect.forEach(
          Array.from({ length: 40 }, (_, i) => i % 2 === 0),
          (withCookie) =>
            Effect.flatMap(
              get("/optional", withCookie ? { cookie } : {}),
              (response) => Effect.map(response.text, (body) => ({ withCookie, body }))
            ),
          { concurrency: "unbounded" }
        )
        for (const { body, withCookie } of answers) expect(body).toBe(withCookie ? "u1" : "anonymous")
      }))

    it.effect("issues a cookie with the session attributes and accepts it back", () =>
      Effect.gen(function*() {
        const response = yield* get("/login")
        expect(response.status).toBe(200)
        const cookie = sessionCookie(response)
        expect(cookie).toMatch(/; HttpOnly/)
        expect(cookie).toMatch(/; SameSite=Lax/)
        expect(cookie).toMatch(/; Path=\//)
        expect(cookie).toMatch(/; Max-Age=3600/)
        expect(cookie).toMatch(/; Expires=/)
        expect(cookie).not.toMatch(/; Secure/)
        expect(response.headers["vary"]).toMatch(/Cookie/)
        expect(response.headers["cache-control"]).toBe("no-store")

        const me = yield* get("/me", { cookie: cookieValue(cookie) })
        expect(me.status).toBe(200)
        expect(yield* me.text).toBe("u1")
        expect(setCookies(me)).toEqual([])
      }))

    it.effect("extends: writes the cookie again with the new expiry", () =>
      Effect.gen(function*() {
        const cookie = yield* login
        const response = yield* get("/extend", { cookie })
        expect(response.status).toBe(200)
        const expiresAt = Number(yield* response.text)
        const written = sessionCookie(response)
        expect(cookieValue(written)).toBe(cookie)
        expect(written).toMatch(/; Max-Age=3600/)
        expect(Date.parse(/Expires=([^;]+)/.exec(written)![1]!)).toBe(Math.floor(expiresAt / 1000) * 1000)
      }))

    it.effect("clears: expires the cookie, and the old cookie no longer works", () =>
      Effect.gen(function*() {
        const cookie = yield* login
        const response = yield* get("/logout", { cookie })
        expect(response.status).toBe(200)
        const expired = sessionCookie(response)
        expect(expired).toMatch(/^session=;/)
        expect(expired).toMatch(/Max-Age=0|Expires=Thu, 01 Jan 1970/)
        expect(expired).toMatch(/; Path=\//)

        const replay = yield* get("/me", { cookie })
        expect(replay.status).toBe(401)
        // the client is told to drop a token that can never work again
        expect(sessionCookie(replay)).toMatch(/^session=;/)
      }))

    it.effect("treats forged, tampered and garbage cookies as no session, never as an error", () =>
      Effect.gen(function*() {
        const cookie = yield* login
        const value = cookie.slice("session=".length)
        const flipped = value.slice(0, -1) + (value.endsWith("A") ? "B" : "A")
        for (const bad of [flipped, value.slice(0, 40), "x".repeat(10_000), "%00%ff", "a.b.c", "é"]) {
          const response = yield* get("/me", { cookie: `session=${encodeURIComponent(bad)}` })
          expect(response.status).toBe(401)
          const optional = yield* get("/optional", { cookie: `session=${encodeURIComponent(bad)}` })
          expect(optional.status).toBe(200)
          expect(yield* optional.text).toBe("anonymous")
        }
      }))

    it.effect("answers 503 while the store is down and recovers when it returns", () =>
      Effect.gen(function*() {
        const cookie = yield* login
        const outage = yield* SessionsTest.Outage
        yield* outage.start
        try {
          const during = yield* get("/me", { cookie })
          expect(during.status).toBe(503)
          expect(during.headers["retry-after"]).toBe("1")
          // fail closed: a request with a session cookie is not served as anonymous either
          expect((yield* get("/optional", { cookie })).status).toBe(503)
          // issuing needs the store too: 503, not 500
          const login = yield* get("/login")
          expect(login.status).toBe(503)
          expect(login.headers["retry-after"]).toBe("1")
          // requests without a session do not touch the store
          expect((yield* get("/optional")).status).toBe(200)
        } finally {
          yield* outage.end
        }
        const after = yield* get("/me", { cookie })
        expect(after.status).toBe(200)
      }))
  })

  // A sessions service without the internal fast path the middleware prefers (a service written or
  // wrapped by hand): the middleware falls back to `resolve` and behaves the same.
  const withoutFastPath = Layer.effectContext(
    Effect.map(Effect.context<AppSession | SessionsTest.Outage | Transport.Transport>(), (context) => {
      const { [Session.ResolveWith]: _, ...sessions } = Context.get(context, AppSession)
      return Context.add(context, AppSession, sessions)
    })
  ).pipe(Layer.provide(SessionsTest.layer(AppSession, { ttl: "1 hour" })))

  layer(
    HttpServer.serve(router, AppHttp.middleware).pipe(
      Layer.provideMerge(NodeHttpServer.layerTest),
      Layer.provideMerge(withoutFastPath)
    )
  )("a sessions service without the fast path", (it) => {
    it.effect("serves, refuses, clears and answers 503 exactly as with it", () =>
      Effect.gen(function*() {
        expect(Session.ResolveWith in (yield* AppSession)).toBe(false)
        const cookie = yield* login
        const me = yield* get("/me", { cookie })
        expect(me.status).toBe(200)
        expect(yield* me.text).toBe("u1")
        const forged = yield* get("/me", { cookie: cookie.slice(0, -1) + (cookie.endsWith("A") ? "B" : "A") })
        expect(forged.status).toBe(401)
        expect(sessionCookie(forged)).toMatch(/^session=;/)
        const outage = yield* SessionsTest.Outage
        yield* outage.start
        const during = yield* get("/me", { cookie }).pipe(Effect.ensuring(outage.end))
        expect(during.status).toBe(503)
        expect((yield* get("/logout", { cookie })).status).toBe(200)
        expect((yield* get("/me", { cookie })).status).toBe(401)
      }))
  })

  layer(serve(Transport.layerHeader()))("header transport", (it) => {
    it.effect("hands out the token in a header and reads it back as a bearer token", () =>
      Effect.gen(function*() {
        const response = yield* get("/login")
        expect(response.status).toBe(200)
        const token = response.headers["x-session-token"]
        expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/)
        expect(response.headers["cache-control"]).toBe("no-store")
        expect(setCookies(response)).toEqual([])

        const me = yield* get("/me", { authorization: `Bearer ${token}` })
        expect(me.status).toBe(200)
        expect(yield* me.text).toBe("u1")
        expect((yield* get("/me", { authorization: `Basic ${token}` })).status).toBe(401)
        expect((yield* get("/me", { cookie: `session=${token}` })).status).toBe(401)
      }))
  })
})
