import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Cookies from "@effect/platform/Cookies"
import * as HttpClient from "@effect/platform/HttpClient"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { expect, it } from "@effect/vitest"
import { Effect, Layer, Schema, TestClock } from "effect"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionsTest from "../../src/layers/Test.js"
import * as Session from "../../src/Session.js"

// the app under test: its session type, its routes, its middleware
class AppSession extends Session.Tag<AppSession>()("app/Session", {
  data: Schema.Struct({ name: Schema.String })
}) {}
const AppHttp = SessionHttp.make(AppSession)
const routes = HttpRouter.empty.pipe(
  HttpRouter.post("/login", Effect.as(AppHttp.issue("u1", { name: "Ada" }), HttpServerResponse.text("in"))),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.data.name)))
)

// the app on a test server (a real socket on a free port), with the test layers' store, key and cookie
const TestApp = HttpServer.serve(routes, AppHttp.middleware).pipe(
  Layer.provideMerge(NodeHttpServer.layerTest),
  Layer.provide(SessionsTest.layer(AppSession, { idleTimeout: "30 minutes" }))
)

it.effect("a session ends after 30 idle minutes", () =>
  Effect.gen(function*() {
    const login = yield* HttpClient.post("/login")
    const cookie = Cookies.toCookieHeader(login.cookies) // the session cookie, as a browser sends it back
    const me = (yield* HttpClient.get("/me", { headers: { cookie } })).status
    yield* TestClock.adjust("29 minutes") // used again before the idle timeout: still valid
    const stillIn = (yield* HttpClient.get("/me", { headers: { cookie } })).status
    yield* TestClock.adjust("31 minutes") // then idle for longer than it
    const after = (yield* HttpClient.get("/me", { headers: { cookie } })).status
    expect([login.status, me, stillIn, after]).toEqual([200, 200, 200, 401])
  }).pipe(Effect.scoped, Effect.provide(TestApp)))
