import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it, layer } from "@effect/vitest"
import { Context, Effect, Layer, Option, Redacted, Schema } from "effect"
import * as Auth from "../../src/Auth.js"
import * as SessionHttp from "../../src/layers/Http.js"
import * as Memory from "../../src/layers/Memory.js"
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

  // A spread copy of the service with its `resolve` wrapped (as a user adds logging or a policy): the
  // middleware must call the wrapper for every token, not the original service's internal fast path.
  // Before the fast path was found through a registry keyed by the service object, it was a member the
  // spread copied, and `wrapped` was never called.
  let resolved: Array<string> = []
  const wrapped = Layer.effectContext(
    Effect.map(Effect.context<AppSession | SessionsTest.Outage | Transport.Transport>(), (context) => {
      const sessions = Context.get(context, AppSession)
      return Context.add(context, AppSession, {
        ...sessions,
        resolve: (token: string) => {
          resolved.push(token)
          return sessions.resolve(token)
        }
      })
    })
  ).pipe(Layer.provide(SessionsTest.layer(AppSession, { ttl: "1 hour" })))

  layer(
    HttpServer.serve(router, AppHttp.middleware).pipe(
      Layer.provideMerge(NodeHttpServer.layerTest),
      Layer.provideMerge(wrapped)
    )
  )("a spread copy of the service with a wrapped resolve", (it) => {
    it.effect("calls the wrapper for every token, and serves, refuses, clears and answers 503 as the service does", () =>
      Effect.gen(function*() {
        resolved = []
        const cookie = yield* login
        const me = yield* get("/me", { cookie })
        expect(me.status).toBe(200)
        expect(yield* me.text).toBe("u1")
        const token = cookie.slice(cookie.indexOf("=") + 1)
        expect(resolved).toEqual([token])
        const forged = yield* get("/me", { cookie: cookie.slice(0, -1) + (cookie.endsWith("A") ? "B" : "A") })
        expect(resolved).toHaveLength(2)
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

// -----------------------------------------------------------------------------
// duplicate cookies, caching headers, login over an existing session, superseded tokens
// -----------------------------------------------------------------------------

/** Whether a response expires the session cookie. */
const expiresCookie = (response: HttpClientResponse.HttpClientResponse) =>
  setCookies(response).some((line) => /^session=;.*(Max-Age=0|Expires=Thu, 01 Jan 1970)/.test(line))

/** The session token a response sets, if it sets one. */
const issuedToken = (response: HttpClientResponse.HttpClientResponse) => {
  const line = setCookies(response).find((line) => line.startsWith("session=") && !line.startsWith("session=;"))
  return line === undefined ? undefined : line.slice("session=".length, line.indexOf(";"))
}

const CacheApp = SessionHttp.make(AppSession)
const cacheRouter = HttpRouter.empty.pipe(
  HttpRouter.get("/login", Effect.as(CacheApp.issue("u1", { visits: 0 }), HttpServerResponse.text("in"))),
  HttpRouter.get(
    "/login-keep",
    Effect.as(CacheApp.issue("u1", { visits: 0 }, { keepPrevious: true }), HttpServerResponse.text("in"))
  ),
  HttpRouter.get("/me", Effect.map(CacheApp.require, (session) => HttpServerResponse.text(session.userId))),
  HttpRouter.get(
    "/optional",
    Effect.map(CacheApp.current, (session) => HttpServerResponse.text(Option.isSome(session) ? "in" : "anonymous"))
  ),
  HttpRouter.get(
    "/cached",
    Effect.as(CacheApp.require, HttpServerResponse.text("x", { headers: { "cache-control": "max-age=60" } }))
  ),
  HttpRouter.get(
    "/varies",
    Effect.as(CacheApp.current, HttpServerResponse.text("x", { headers: { vary: "Accept-Encoding, cookie" } }))
  ),
  HttpRouter.get(
    "/varies-other",
    Effect.as(CacheApp.current, HttpServerResponse.text("x", { headers: { vary: "Accept-Encoding" } }))
  ),
  // a handler that fails after reading the session: its error response depends on the session too
  HttpRouter.get("/fails", Effect.zipRight(CacheApp.require, Effect.fail(new Session.Conflict())))
)

const serveCache = HttpServer.serve(cacheRouter, CacheApp.middleware).pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provideMerge(SessionsTest.layer(AppSession, { ttl: "1 hour" }))
)

const loginToken = Effect.gen(function*() {
  const response = yield* get("/login")
  expect(response.status).toBe(200)
  const token = issuedToken(response)
  expect(token).toBeDefined()
  return token!
})

const forge = (token: string) => token.slice(0, -2) + (token.endsWith("AA") ? "BB" : "AA")

describe("duplicate cookies (a planted cookie beside the real one)", () => {
  it.effect("session=forged; session=valid serves the valid session and leaves the victim's cookie alone", () =>
    Effect.gen(function*() {
      const token = yield* loginToken
      for (
        const cookie of [`session=${forge(token)}; session=${token}`, `session=garbage; other=1; session=${token}`]
      ) {
        const response = yield* get("/me", { cookie })
        expect(response.status).toBe(200)
        expect(yield* response.text).toBe("u1")
        expect(expiresCookie(response)).toBe(false)
        expect(setCookies(response)).toEqual([])
      }
      const validFirst = yield* get("/me", { cookie: `session=${token}; session=${forge(token)}` })
      expect(validFirst.status).toBe(200)
      expect(expiresCookie(validFirst)).toBe(false)
    }).pipe(Effect.provide(serveCache)))

  it.effect("when no candidate resolves: 401 and the cookie is expired", () =>
    Effect.gen(function*() {
      const token = yield* loginToken
      const response = yield* get("/me", { cookie: `session=${forge(token)}; session=another.forgery` })
      expect(response.status).toBe(401)
      expect(expiresCookie(response)).toBe(true)
    }).pipe(Effect.provide(serveCache)))

  it.effect(`at most ${Transport.maxCandidates} candidates are tried`, () =>
    Effect.gen(function*() {
      const token = yield* loginToken
      const forged = Array.from({ length: Transport.maxCandidates }, (_, i) => `session=forged${i}`).join("; ")
      const hidden = yield* get("/me", { cookie: `${forged}; session=${token}` })
      expect(hidden.status).toBe(401)
      // the victim's cookie may be among those left out: it is not expired
      expect(expiresCookie(hidden)).toBe(false)
      expect((yield* get("/me", { cookie: `session=${token}` })).status).toBe(200)
      const fewer = Array.from({ length: Transport.maxCandidates - 1 }, (_, i) => `session=forged${i}`).join("; ")
      expect((yield* get("/me", { cookie: `${fewer}; session=${token}` })).status).toBe(200)
    }).pipe(Effect.provide(serveCache)))

  it.effect("a store outage on the first candidate stops the search: 503, nothing expired", () =>
    Effect.gen(function*() {
      const token = yield* loginToken
      const outage = yield* SessionsTest.Outage
      yield* outage.start
      const during = yield* get("/me", { cookie: `session=${token}; session=${token}` }).pipe(
        Effect.ensuring(outage.end)
      )
      expect(during.status).toBe(503)
      expect(expiresCookie(during)).toBe(false)
    }).pipe(Effect.provide(serveCache)))
})

// The same app with a transport provided without `Transport.layer` (so without the hook its layer
// installs for the server): the middleware then registers a hook of the request's own.
const serveCacheRawTransport = HttpServer.serve(cacheRouter, CacheApp.middleware).pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provideMerge(Layer.effect(Transport.Transport, Transport.makeCookie({ secure: false }))),
  Layer.provideMerge(
    Session.layer(AppSession, { ttl: "1 hour" }).pipe(
      Layer.provide(Layer.merge(Memory.layer(), Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })))
    )
  )
)

describe("caching headers of responses that depend on the session", () => {
  it.effect("a transport provided without Transport.layer: the same headers, from a hook of the request's own", () =>
    Effect.gen(function*() {
      const token = yield* loginToken
      const me = yield* get("/me", { cookie: `session=${token}` })
      expect(me.status).toBe(200)
      expect(me.headers["vary"]).toBe("Cookie")
      expect(me.headers["cache-control"]).toBe("private")
      const failed = yield* get("/fails", { cookie: `session=${token}` })
      expect(failed.status).toBe(409)
      expect(failed.headers["vary"]).toBe("Cookie")
      const anonymous = yield* get("/optional")
      expect(anonymous.headers["vary"]).toBeUndefined()
      expect(anonymous.headers["cache-control"]).toBeUndefined()
    }).pipe(Effect.provide(serveCacheRawTransport)))

  it.effect("a response served with a session gets Vary: Cookie and Cache-Control: private", () =>
    Effect.gen(function*() {
      const cookie = `session=${yield* loginToken}`
      const me = yield* get("/me", { cookie })
      expect(me.status).toBe(200)
      expect(me.headers["vary"]).toBe("Cookie")
      expect(me.headers["cache-control"]).toBe("private")
      const optional = yield* get("/optional", { cookie })
      expect(optional.headers["vary"]).toBe("Cookie")
      expect(optional.headers["cache-control"]).toBe("private")
    }).pipe(Effect.provide(serveCache)))

  it.effect("an existing Cache-Control is kept; an existing Vary is merged without repeating Cookie", () =>
    Effect.gen(function*() {
      const cookie = `session=${yield* loginToken}`
      const cached = yield* get("/cached", { cookie })
      expect(cached.headers["cache-control"]).toBe("max-age=60")
      expect(cached.headers["vary"]).toBe("Cookie")
      expect((yield* get("/varies", { cookie })).headers["vary"]).toBe("Accept-Encoding, cookie")
      expect((yield* get("/varies-other", { cookie })).headers["vary"]).toBe("Accept-Encoding, Cookie")
    }).pipe(Effect.provide(serveCache)))

  it.effect("error responses too: a handler's failure, and the 401 of a refused token (no-store, it expires it)", () =>
    Effect.gen(function*() {
      const token = yield* loginToken
      const failed = yield* get("/fails", { cookie: `session=${token}` })
      expect(failed.status).toBe(409)
      expect(failed.headers["vary"]).toBe("Cookie")
      expect(failed.headers["cache-control"]).toBe("private")
      const refused = yield* get("/optional", { cookie: `session=${forge(token)}` })
      expect(refused.status).toBe(200)
      expect(refused.headers["vary"]).toBe("Cookie")
      expect(refused.headers["cache-control"]).toBe("no-store")
      const unauthorized = yield* get("/me", { cookie: `session=${forge(token)}` })
      expect(unauthorized.status).toBe(401)
      expect(unauthorized.headers["vary"]).toBe("Cookie")
      expect(unauthorized.headers["cache-control"]).toBe("no-store")
      const outage = yield* SessionsTest.Outage
      yield* outage.start
      const unavailable = yield* get("/me", { cookie: `session=${token}` }).pipe(Effect.ensuring(outage.end))
      expect(unavailable.status).toBe(503)
      expect(unavailable.headers["vary"]).toBe("Cookie")
    }).pipe(Effect.provide(serveCache)))

  it.effect("requests without a token are left alone", () =>
    Effect.gen(function*() {
      for (const path of ["/optional", "/me", "/cached", "/varies-other"]) {
        const response = yield* get(path, { cookie: "theme=dark" })
        expect(response.headers["vary"] ?? "").not.toMatch(/cookie/i)
        expect(response.headers["cache-control"] ?? "").not.toMatch(/private|no-store/)
      }
    }).pipe(Effect.provide(serveCache)))

  it.effect("the header transport varies on the header it reads", () =>
    Effect.gen(function*() {
      const login = yield* get("/login")
      const token = login.headers["x-session-token"]!
      expect(login.headers["vary"]).toBe("X-Session")
      expect(login.headers["cache-control"]).toBe("no-store")
      const me = yield* get("/me", { "x-session": token })
      expect(me.status).toBe(200)
      expect(me.headers["vary"]).toBe("X-Session")
      expect(me.headers["cache-control"]).toBe("private")
      expect((yield* get("/optional")).headers["vary"]).toBeUndefined()
    }).pipe(Effect.provide(
      HttpServer.serve(cacheRouter, CacheApp.middleware).pipe(
        Layer.provideMerge(NodeHttpServer.layerTest),
        // the header transport, in place of the test layer's cookie transport
        Layer.provide(Layer.orDie(Transport.layerHeader({ header: "x-session" }))),
        Layer.provideMerge(SessionsTest.layer(AppSession, { ttl: "1 hour" }))
      )
    )))
})

describe("issue on a request that already has a session", () => {
  it.effect("retires the previous session by default: a login on a shared browser ends the previous one", () =>
    Effect.gen(function*() {
      const first = yield* loginToken
      const again = yield* get("/login", { cookie: `session=${first}` })
      expect(again.status).toBe(200)
      const second = issuedToken(again)!
      expect(second).not.toBe(first)
      expect((yield* get("/me", { cookie: `session=${first}` })).status).toBe(401)
      expect((yield* get("/me", { cookie: `session=${second}` })).status).toBe(200)
      expect(yield* Effect.flatMap(AppSession, (sessions) => sessions.list("u1"))).toHaveLength(1)
    }).pipe(Effect.provide(serveCache)))

  it.effect("keepPrevious: true keeps it", () =>
    Effect.gen(function*() {
      const first = yield* loginToken
      const second = issuedToken(yield* get("/login-keep", { cookie: `session=${first}` }))!
      expect((yield* get("/me", { cookie: `session=${first}` })).status).toBe(200)
      expect((yield* get("/me", { cookie: `session=${second}` })).status).toBe(200)
    }).pipe(Effect.provide(serveCache)))

  it.effect("a refused or missing previous token changes nothing", () =>
    Effect.gen(function*() {
      const other = yield* loginToken
      const response = yield* get("/login", { cookie: `session=${forge(other)}` })
      expect(response.status).toBe(200)
      expect(issuedToken(response)).toBeDefined()
      expect((yield* get("/me", { cookie: `session=${other}` })).status).toBe(200)
    }).pipe(Effect.provide(serveCache)))

  // `issue` needs no middleware: it then finds the previous session through the transport itself.
  const bare = HttpRouter.empty.pipe(
    HttpRouter.get("/login", Effect.as(CacheApp.issue("u2", { visits: 0 }), HttpServerResponse.text("in"))),
    HttpRouter.get(
      "/me",
      Effect.map(
        CacheApp.load,
        (session) => HttpServerResponse.text(Option.isSome(session) ? session.value.userId : "anonymous")
      )
    )
  )
  it.effect("without the middleware, through the transport's candidates", () =>
    Effect.gen(function*() {
      const first = yield* loginToken
      const second = issuedToken(yield* get("/login", { cookie: `session=garbage; session=${first}` }))!
      expect(yield* (yield* get("/me", { cookie: `session=${first}` })).text).toBe("anonymous")
      expect(yield* (yield* get("/me", { cookie: `session=${second}` })).text).toBe("u2")
    }).pipe(Effect.provide(
      HttpServer.serve(bare).pipe(
        Layer.provideMerge(NodeHttpServer.layerTest),
        Layer.provideMerge(SessionsTest.layer(AppSession, { ttl: "1 hour" }))
      )
    )))
})

describe("a token refused as superseded", () => {
  it.effect("is no session, but its cookie is not expired; a forged one still is", () =>
    Effect.gen(function*() {
      const token = yield* loginToken
      // another request renews the session's id: `token` is superseded, its session lives on
      const sessions = yield* AppSession
      const renewed = yield* sessions.rotate(yield* sessions.get(token))
      expect((yield* get("/me", { cookie: `session=${renewed.token}` })).status).toBe(200)
      const superseded = yield* get("/me", { cookie: `session=${token}` })
      expect(superseded.status).toBe(401)
      expect(expiresCookie(superseded)).toBe(false)
      expect(superseded.headers["vary"]).toBe("Cookie")
      const forged = yield* get("/me", { cookie: `session=${forge(token)}` })
      expect(forged.status).toBe(401)
      expect(expiresCookie(forged)).toBe(true)
    }).pipe(Effect.provide(
      HttpServer.serve(cacheRouter, CacheApp.middleware).pipe(
        Layer.provideMerge(NodeHttpServer.layerTest),
        Layer.provideMerge(SessionsTest.layer(AppSession, { ttl: "1 hour" }))
      )
    )))
})
