/**
 * Remember-me over real HTTP (issue 12, item 7): a session issued with a lifetime of its own gets a cookie
 * that lives that long, also when it is extended or renewed later; a session issued with
 * `persistent: false` gets a browser-session cookie (no `Expires`, no `Max-Age`), whenever it is written.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, layer } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"
import * as Transport from "../../src/Transport.js"

class AppSession extends Session.Tag<AppSession>()("test/HttpRemember/AppSession", {
  data: Schema.Struct({ n: Schema.Number })
}) {}

const AppHttp = SessionHttp.make(AppSession)

const day = 24 * 60 * 60

const router = HttpRouter.empty.pipe(
  // the login form: "remember me" ticked gives 30 days, unticked a browser-session cookie
  HttpRouter.post(
    "/login",
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const remember = new URL(request.url, "http://localhost").searchParams.get("remember") === "1"
      yield* AppHttp.issue("u1", { n: 0 }, remember ? { ttl: "30 days" } : { persistent: false })
      return HttpServerResponse.text("in")
    })
  ),
  HttpRouter.post("/login-default", Effect.as(AppHttp.issue("u1", { n: 0 }), HttpServerResponse.text("in"))),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId))),
  HttpRouter.post("/extend", Effect.as(Effect.flatMap(AppHttp.require, AppHttp.extend), HttpServerResponse.text("ok"))),
  HttpRouter.post("/rotate", Effect.as(Effect.flatMap(AppHttp.require, AppHttp.rotate), HttpServerResponse.text("ok")))
)

const serve = (options: SessionsTest.Options, cookie: Transport.CookieOptions = {}) =>
  HttpServer.serve(router, AppHttp.middleware).pipe(
    Layer.provideMerge(NodeHttpServer.layerTest),
    Layer.provideMerge(
      Layer.merge(
        SessionsTest.layer(AppSession, options),
        Layer.orDie(Transport.layerCookie({ secure: false, ...cookie }))
      )
    )
  )

const send = (method: "GET" | "POST", path: string, cookie?: string) => {
  const headers = cookie === undefined ? {} : { cookie }
  return (method === "GET" ? HttpClient.get(path, { headers }) : HttpClient.post(path, { headers })).pipe(Effect.scoped)
}

/** The session cookie the response sets; fails the test when there is none. */
const sessionCookie = (response: HttpClientResponse.HttpClientResponse): string => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  const lines = header === undefined ? [] : typeof header === "string" ? [header] : header
  const line = lines.find((cookie) => cookie.startsWith("session="))
  expect(line).toBeDefined()
  return line!
}

const valueOf = (setCookie: string) => setCookie.slice(0, setCookie.indexOf(";"))
const maxAge = (setCookie: string) => Number(/; Max-Age=(\d+)/.exec(setCookie)?.[1])
const isBrowserSession = (setCookie: string) => !/; Expires=/i.test(setCookie) && !/; Max-Age=/i.test(setCookie)

describe("remember me over HTTP", () => {
  layer(serve({ ttl: "1 hour" }))("a service ttl of one hour", (it) => {
    it.effect("ticked: the cookie lives 30 days, and 30 days again when the session is extended", () =>
      Effect.gen(function*() {
        const login = sessionCookie(yield* send("POST", "/login?remember=1"))
        expect(maxAge(login)).toBe(30 * day)
        expect(login).toMatch(/; Expires=/)
        yield* TestClock.adjust("2 hours")
        const extended = sessionCookie(yield* send("POST", "/extend", valueOf(login)))
        expect(maxAge(extended)).toBe(30 * day)
        const rotated = sessionCookie(yield* send("POST", "/rotate", valueOf(extended)))
        expect(maxAge(rotated)).toBe(30 * day)
        expect((yield* send("GET", "/me", valueOf(rotated))).status).toBe(200)
      }))

    it.effect("not ticked: a browser-session cookie, also when extended or rotated", () =>
      Effect.gen(function*() {
        const login = sessionCookie(yield* send("POST", "/login"))
        expect(isBrowserSession(login)).toBe(true)
        const extended = sessionCookie(yield* send("POST", "/extend", valueOf(login)))
        expect(isBrowserSession(extended)).toBe(true)
        const rotated = sessionCookie(yield* send("POST", "/rotate", valueOf(extended)))
        expect(isBrowserSession(rotated)).toBe(true)
        // the session itself still ends with the service's ttl
        yield* TestClock.adjust("61 minutes")
        expect((yield* send("GET", "/me", valueOf(rotated))).status).toBe(401)
      }))

    it.effect("by default: the service's ttl, persistent", () =>
      Effect.gen(function*() {
        const login = sessionCookie(yield* send("POST", "/login-default"))
        expect(maxAge(login)).toBe(60 * 60)
      }))
  })

  // the memory store's sweeper would wake every minute of the 16 days the clock jumps
  layer(serve({ ttl: "1 hour", rolling: true, renewalInterval: "20 minutes", memory: { sweepInterval: "30 days" } }))(
    "with rolling expiry and automatic renewal",
    (it) => {
      it.effect("the middleware's rewrites keep a browser-session cookie without an expiry", () =>
        Effect.gen(function*() {
          const login = sessionCookie(yield* send("POST", "/login"))
          expect(isBrowserSession(login)).toBe(true)
          // the id is due for renewal: the middleware writes a new token
          yield* TestClock.adjust("21 minutes")
          const renewed = sessionCookie(yield* send("GET", "/me", valueOf(login)))
          expect(valueOf(renewed)).not.toBe(valueOf(login))
          expect(isBrowserSession(renewed)).toBe(true)
          // less than half the lifetime left: rolling expiry re-signs it
          yield* TestClock.adjust("35 minutes")
          const rolled = sessionCookie(yield* send("GET", "/me", valueOf(renewed)))
          expect(isBrowserSession(rolled)).toBe(true)
        }))

      it.effect("and a 30-day session rolls by 30 days, at half of 30 days", () =>
        Effect.gen(function*() {
          const login = sessionCookie(yield* send("POST", "/login?remember=1"))
          // renewed at 20 minutes but not rolled: 30 days minus 21 minutes are left
          yield* TestClock.adjust("21 minutes")
          const renewed = sessionCookie(yield* send("GET", "/me", valueOf(login)))
          expect(maxAge(renewed)).toBe(30 * day - 21 * 60)
          // past half of 30 days: the id is due for renewal again (which keeps the expiry), then it rolls
          yield* TestClock.adjust("16 days")
          const again = sessionCookie(yield* send("GET", "/me", valueOf(renewed)))
          expect(maxAge(again)).toBe(14 * day - 21 * 60)
          const rolled = sessionCookie(yield* send("GET", "/me", valueOf(again)))
          expect(maxAge(rolled)).toBe(30 * day)
        }))
    }
  )

  layer(serve({ ttl: "1 hour" }, { persistent: false }))("a transport that is not persistent", (it) => {
    it.effect("wins over a 30-day session: the cookie is a browser-session cookie", () =>
      Effect.gen(function*() {
        expect(isBrowserSession(sessionCookie(yield* send("POST", "/login?remember=1")))).toBe(true)
      }))
  })
})
