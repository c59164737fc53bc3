/**
 * Renewal must not log users out (issue 10, item 4). With `renewalInterval` set and the default
 * `rotationGrace`, a browser that sends several requests at once when its session id falls due (a page
 * loading its resources, a few `fetch` calls) must get every one of them served, and must end up holding a
 * valid session cookie: whichever request renews the id, the others are served too, and none of them tells
 * the browser to drop its cookie (which, arriving last, would log the user out).
 *
 * Over real HTTP (`NodeHttpServer.layerTest`): 8 parallel requests at renewal time, in 20 trials. The
 * responses are taken in the order they arrive, as a browser applies their `Set-Cookie` headers.
 *
 * This needs the core's handling of a token whose id was just renewed by another request (it is answered
 * as "superseded", not as unknown: see `ReadContinuation.refused`); the HTTP side already keeps the cookie
 * of a superseded token (test/layers/Http.test.ts, "a token refused as superseded").
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"

class AppSession extends Session.Tag<AppSession>()("test/HttpRenewal/AppSession", {
  data: Schema.Struct({})
}) {}

const AppHttp = SessionHttp.make(AppSession)

const router = HttpRouter.empty.pipe(
  HttpRouter.get("/login", Effect.as(AppHttp.issue("alice", {}), HttpServerResponse.text("in"))),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId)))
)

const interval = "15 minutes"

const serve = HttpServer.serve(router, AppHttp.middleware).pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  // the defaults but the renewal: `rotationGrace` is not set
  Layer.provideMerge(
    SessionsTest.layer(AppSession, { ttl: "1 hour", renewalInterval: interval, memory: { sweepInterval: "30 days" } })
  )
)

/** The `session` cookie a response sets: its value (`""` when it expires it), or `undefined`. */
const cookieSet = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  const lines = header === undefined ? [] : typeof header === "string" ? [header] : header
  const line = lines.find((line) => line.startsWith("session="))
  return line === undefined ? undefined : line.slice("session=".length, line.indexOf(";"))
}

const get = (path: string, token?: string) =>
  Effect.gen(function*() {
    const response = yield* HttpClient.get(path, { headers: token === undefined ? {} : { cookie: `session=${token}` } })
    yield* response.text
    return { status: response.status, cookie: cookieSet(response) }
  }).pipe(Effect.scoped)

const parallel = 8
const trials = 20

// The same app with `traceReads: true`, whose reads open a span of their own and so go through the
// service's `resolve` rather than the middleware's fast path.
const serveTraced = HttpServer.serve(router, AppHttp.middleware).pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provideMerge(
    SessionsTest.layer(AppSession, {
      ttl: "1 hour",
      renewalInterval: interval,
      traceReads: true,
      memory: { sweepInterval: "30 days" }
    })
  )
)

describe("renewal with parallel requests (renewalInterval, default rotationGrace)", () => {
  it.effect(`${parallel} parallel requests at renewal time: no 401, and the browser ends with a valid cookie`, () =>
    Effect.gen(function*() {
      const failures: Array<string> = []
      for (let trial = 0; trial < trials; trial++) {
        const login = yield* get("/login")
        let jar = login.cookie!
        yield* TestClock.adjust(interval)
        // in the order they arrive, as the browser applies them
        const arrived: Array<{ readonly status: number; readonly cookie: string | undefined }> = []
        yield* Effect.all(
          Array.from(
            { length: parallel },
            () => Effect.tap(get("/me", jar), (reply) => Effect.sync(() => arrived.push(reply)))
          ),
          { concurrency: "unbounded" }
        )
        for (const reply of arrived) if (reply.cookie !== undefined) jar = reply.cookie
        const refused = arrived.filter((reply) => reply.status !== 200).length
        const after = jar === "" ? 401 : (yield* get("/me", jar)).status
        if (refused > 0 || after !== 200) {
          failures.push(
            `trial ${trial}: ${refused} of ${parallel} refused; the cookie left is ${after === 200 ? "valid" : "dead"}`
          )
        }
      }
      expect(failures).toEqual([])
    }).pipe(Effect.provide(serve)))

  it.effect("the replaced token, once refused, is not expired: the browser may already hold its successor", () =>
    Effect.gen(function*() {
      const old = (yield* get("/login")).cookie!
      yield* TestClock.adjust(interval)
      const renewal = yield* get("/me", old)
      expect(renewal.status).toBe(200)
      const renewed = renewal.cookie!
      expect(renewed).not.toBe(old)
      // long after any grace for requests in flight, but well before the new id falls due
      yield* TestClock.adjust("5 minutes")
      const replay = yield* get("/me", old)
      expect(replay.status).toBe(401)
      expect(replay.cookie).toBeUndefined()
      expect((yield* get("/me", renewed)).status).toBe(200)
    }).pipe(Effect.provide(serve)))

  it.effect("with traceReads too, the replaced token's cookie is not expired", () =>
    Effect.gen(function*() {
      const old = (yield* get("/login")).cookie!
      yield* TestClock.adjust(interval)
      const renewed = (yield* get("/me", old)).cookie!
      expect(renewed).not.toBe(old)
      yield* TestClock.adjust("5 minutes")
      const replay = yield* get("/me", old)
      expect(replay.status).toBe(401)
      expect(replay.cookie).toBeUndefined()
      expect((yield* get("/me", renewed)).status).toBe(200)
    }).pipe(Effect.provide(serveTraced)))
})
