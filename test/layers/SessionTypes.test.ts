/**
 * Two session types in one application (a user session and an admin session): each reads and writes its
 * token through a transport of its own (`transportTag`, `Transport.under`), in every integration style;
 * two types found on one transport fail the layer build (HttpLayerRouter, HttpApi) or, for the plain
 * middleware, the first request, with an error log that names both types and the cookie. Over real HTTP
 * (`NodeHttpServer.layerTest`); every test builds its own server.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, flow, Layer, Logger, Redacted, Schema } from "effect"
import { expectTypeOf } from "vitest"
import * as Auth from "../../src/Auth.js"
import * as SessionHttp from "../../src/layers/Http.js"
import * as SessionApi from "../../src/layers/HttpApi.js"
import * as Memory from "../../src/layers/Memory.js"
import * as Session from "../../src/Session.js"
import type { StoreError } from "../../src/Store.js"
import * as Transport from "../../src/Transport.js"

class UserSession extends Session.Tag<UserSession>()("test/SessionTypes/UserSession", {
  data: Schema.Struct({})
}) {}

class AdminSession extends Session.Tag<AdminSession>()("test/SessionTypes/AdminSession", {
  data: Schema.Struct({})
}) {}

/** The admin session's transport: its own cookie. */
class AdminTransport extends Context.Tag("test/SessionTypes/AdminTransport")<
  AdminTransport,
  Transport.TransportService
>() {}

// One store and one key for both types, as an application would have.
const sessions = Layer.mergeAll(Session.layer(UserSession), Session.layer(AdminSession)).pipe(
  Layer.provide(Memory.layer({ sweepInterval: "30 days" })),
  Layer.provide(Layer.suspend(() => Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }))),
  Layer.orDie
)

const userCookie = Layer.orDie(Transport.layerCookie({ secure: false }))
const adminCookie = Layer.orDie(
  Transport.layerCookie({ secure: false, name: "admin" }).pipe(
    Transport.under(AdminTransport)
  )
)

const UserHttp = SessionHttp.make(UserSession)
const AdminHttp = SessionHttp.make(AdminSession, { transportTag: AdminTransport })
/** The mistake the registry catches: the admin type on the default transport, beside the user type. */
const SharedAdminHttp = SessionHttp.make(AdminSession)

// The default case types exactly as before; the per-type transport replaces `Transport` in requirements.
expectTypeOf(UserHttp).toEqualTypeOf<SessionHttp.SessionHttp<UserSession, {}>>()
expectTypeOf(UserHttp.clear).returns.toEqualTypeOf<Effect.Effect<void, StoreError, UserSession | Transport.Transport>>()
expectTypeOf(AdminHttp.issue).returns.toEqualTypeOf<
  Effect.Effect<Session.Issued<{}>, StoreError, AdminSession | AdminTransport | HttpServerRequest.HttpServerRequest>
>()

// -----------------------------------------------------------------------------
// the client side
// -----------------------------------------------------------------------------

const get = (path: string, cookie?: string) =>
  Effect.gen(function*() {
    const response = yield* HttpClient.get(path, { headers: cookie === undefined ? {} : { cookie } })
    return { status: response.status, body: yield* response.text, response }
  }).pipe(Effect.scoped)

const post = (path: string, cookie?: string) =>
  Effect.gen(function*() {
    const response = yield* HttpClient.post(path, { headers: cookie === undefined ? {} : { cookie } })
    return { status: response.status, body: yield* response.text, response }
  }).pipe(Effect.scoped)

/** The `name=value` pair of the cookie `name` a response sets. */
const cookieSet = (response: HttpClientResponse.HttpClientResponse, name: string): string | undefined => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  const lines = header === undefined ? [] : typeof header === "string" ? [header] : header
  const line = lines.find((line) => line.startsWith(`${name}=`))
  return line === undefined ? undefined : line.slice(0, line.indexOf(";"))
}

/** Logs in as a user and as an admin, then uses both sessions side by side through their own cookies. */
const bothTypes = (paths: { readonly user: string; readonly admin: string }) =>
  Effect.gen(function*() {
    const user = cookieSet((yield* post(`${paths.user}/login`)).response, "session")
    const admin = cookieSet((yield* post(`${paths.admin}/login`)).response, "admin")
    expect(user).toMatch(/^session=.+\..+$/)
    expect(admin).toMatch(/^admin=.+\..+$/)
    const jar = `${user}; ${admin}`
    expect(yield* get(`${paths.user}/me`, jar)).toMatchObject({ status: 200, body: "alice" })
    expect(yield* get(`${paths.admin}/me`, jar)).toMatchObject({ status: 200, body: "root" })
    // logging out of one type leaves the other alone
    const out = yield* post(`${paths.admin}/logout`, jar)
    expect(cookieSet(out.response, "admin")).toBe("admin=")
    expect(cookieSet(out.response, "session")).toBeUndefined()
    expect((yield* get(`${paths.admin}/me`, jar)).status).toBe(401)
    expect(yield* get(`${paths.user}/me`, jar)).toMatchObject({ status: 200, body: "alice" })
  })

const captureLogs = () => {
  const lines: Array<string> = []
  const layer = Logger.replace(
    Logger.defaultLogger,
    Logger.make((options) => lines.push(Logger.logfmtLogger.log(options)))
  )
  return { lines, layer }
}

/** The message of the defect `exit` died with. */
const defect = <A, E>(exit: Exit.Exit<A, E>): string => {
  expect(Exit.isFailure(exit)).toBe(true)
  if (Exit.isSuccess(exit)) return ""
  const defects = [...Cause.defects(exit.cause)]
  expect(defects).toHaveLength(1)
  return String((defects[0] as Error).message)
}

// both types, in the order they reached the transport, and the cookie they share
const conflictMessage =
  /"test\/SessionTypes\/(User|Admin)Session" and "test\/SessionTypes\/(User|Admin)Session".*cookie "session"/

// -----------------------------------------------------------------------------
// HttpServer.serve(router, middleware), HttpRouter
// -----------------------------------------------------------------------------

const routes = <SU, SA, TU, TA>(
  user: SessionHttp.SessionHttp<SU, {}, TU>,
  admin: SessionHttp.SessionHttp<SA, {}, TA>
) =>
  HttpRouter.empty.pipe(
    HttpRouter.post("/user/login", Effect.as(user.issue("alice", {}), HttpServerResponse.text("in"))),
    HttpRouter.get("/user/me", Effect.map(user.require, (session) => HttpServerResponse.text(session.userId))),
    HttpRouter.post("/admin/login", Effect.as(admin.issue("root", {}), HttpServerResponse.text("in"))),
    HttpRouter.get("/admin/me", Effect.map(admin.require, (session) => HttpServerResponse.text(session.userId))),
    HttpRouter.post(
      "/admin/logout",
      Effect.as(Effect.flatMap(admin.require, admin.clear), HttpServerResponse.text("out"))
    )
  )

describe("HttpServer.serve with both middlewares", () => {
  it.effect("each type on its own transport: both sessions live side by side, each in its cookie", () =>
    bothTypes({ user: "/user", admin: "/admin" }).pipe(
      Effect.provide(
        HttpServer.serve(routes(UserHttp, AdminHttp), flow(UserHttp.middleware, AdminHttp.middleware)).pipe(
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provide(Layer.mergeAll(sessions, userCookie, adminCookie))
        )
      )
    ))

  it.effect("two types on one transport: the first request fails loudly, naming both types and the cookie", () => {
    const logs = captureLogs()
    return Effect.gen(function*() {
      const response = yield* get("/user/me")
      expect(response.status).toBe(500)
      const errors = logs.lines.filter((line) => line.includes("level=ERROR"))
      expect(errors.some((line) => conflictMessage.test(line.replaceAll("\\\"", "\"")))).toBe(true)
      // and every request after it, not only the first
      expect((yield* post("/user/login")).status).toBe(500)
    }).pipe(
      Effect.provide(
        HttpServer.serve(routes(UserHttp, SharedAdminHttp), flow(UserHttp.middleware, SharedAdminHttp.middleware)).pipe(
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provide(Layer.mergeAll(sessions, userCookie))
        )
      ),
      Effect.provide(logs.layer)
    )
  })

  it.effect("the handler operations check too: issuing the other type's session through one transport dies", () =>
    Effect.gen(function*() {
      // the user type reads through the transport (its middleware), the admin type writes to it
      expect((yield* get("/user/me")).status).toBe(401)
      expect((yield* post("/admin/login")).status).toBe(500)
    }).pipe(
      Effect.provide(
        HttpServer.serve(
          HttpRouter.empty.pipe(
            HttpRouter.get("/user/me", Effect.map(UserHttp.require, (s) => HttpServerResponse.text(s.userId))),
            HttpRouter.post("/admin/login", Effect.as(SharedAdminHttp.issue("root", {}), HttpServerResponse.text("in")))
          ),
          UserHttp.middleware
        ).pipe(
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provide(Layer.mergeAll(sessions, userCookie))
        )
      )
    ))
})

// -----------------------------------------------------------------------------
// HttpLayerRouter
// -----------------------------------------------------------------------------

describe("HttpLayerRouter with layerRouterMiddleware", () => {
  const UserMiddleware = SessionHttp.layerRouterMiddleware(UserSession)
  const AdminMiddleware = SessionHttp.layerRouterMiddleware(AdminSession, { transportTag: AdminTransport })
  const SharedAdminMiddleware = SessionHttp.layerRouterMiddleware(AdminSession)

  const layerRoutes = <SU, SA, TU, TA>(
    user: SessionHttp.SessionHttp<SU, {}, TU>,
    admin: SessionHttp.SessionHttp<SA, {}, TA>
  ) => ({
    user: HttpLayerRouter.addAll([
      HttpLayerRouter.route("POST", "/user/login", Effect.as(user.issue("alice", {}), HttpServerResponse.text("in"))),
      HttpLayerRouter.route("GET", "/user/me", Effect.map(user.require, (s) => HttpServerResponse.text(s.userId)))
    ]),
    admin: HttpLayerRouter.addAll([
      HttpLayerRouter.route("POST", "/admin/login", Effect.as(admin.issue("root", {}), HttpServerResponse.text("in"))),
      HttpLayerRouter.route("GET", "/admin/me", Effect.map(admin.require, (s) => HttpServerResponse.text(s.userId))),
      HttpLayerRouter.route(
        "POST",
        "/admin/logout",
        Effect.as(Effect.flatMap(admin.require, admin.clear), HttpServerResponse.text("out"))
      )
    ])
  })

  it.effect("each type on its own transport", () => {
    const { admin, user } = layerRoutes(UserHttp, AdminHttp)
    return bothTypes({ user: "/user", admin: "/admin" }).pipe(
      Effect.provide(
        HttpLayerRouter.serve(
          Layer.mergeAll(
            user.pipe(Layer.provide(UserMiddleware.layer)),
            admin.pipe(Layer.provide(AdminMiddleware.layer))
          ),
          { disableLogger: true, disableListenLog: true }
        ).pipe(
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provide(Layer.mergeAll(sessions, userCookie, adminCookie))
        )
      )
    )
  })

  it.effect("two types on one transport fail the build", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(
        Layer.mergeAll(UserMiddleware.layer, SharedAdminMiddleware.layer).pipe(
          Layer.provide(Layer.mergeAll(sessions, userCookie))
        )
      )))
      expect(defect(exit)).toMatch(
        /"test\/SessionTypes\/(User|Admin)Session" and "test\/SessionTypes\/(User|Admin)Session"/
      )
      expect(defect(exit)).toContain("cookie \"session\"")
    }))
})

// -----------------------------------------------------------------------------
// HttpApi
// -----------------------------------------------------------------------------

describe("HttpApi with a SessionApi per type", () => {
  const UserApi = SessionApi.make(UserSession, { cookieName: "session" })
  const AdminApi = SessionApi.make(AdminSession, { cookieName: "admin", transportTag: AdminTransport })
  const SharedAdminApi = SessionApi.make(AdminSession, { cookieName: "session" })

  expectTypeOf(AdminApi.layer).toEqualTypeOf<
    Layer.Layer<
      SessionApi.Middleware<AdminSession> | SessionApi.OptionalMiddleware<AdminSession>,
      never,
      AdminSession | AdminTransport
    >
  >()

  class Api extends HttpApi.make("types").add(
    HttpApiGroup.make("user")
      .add(HttpApiEndpoint.post("login", "/user/login"))
      .add(HttpApiEndpoint.get("me", "/user/me").addSuccess(Schema.String).middleware(UserApi.Middleware))
  ).add(
    HttpApiGroup.make("admin")
      .add(HttpApiEndpoint.post("login", "/admin/login"))
      .add(HttpApiEndpoint.get("me", "/admin/me").addSuccess(Schema.String).middleware(AdminApi.Middleware))
      .add(HttpApiEndpoint.post("logout", "/admin/logout").middleware(AdminApi.Middleware))
  ) {}

  const UserLive = HttpApiBuilder.group(Api, "user", (handlers) =>
    handlers
      .handle("login", () => Effect.orDie(Effect.asVoid(UserApi.issue("alice", {}))))
      .handle("me", () => Effect.map(UserApi.Session, (session) => session.userId))).pipe(Layer.provide(UserApi.layer))

  const AdminLive = HttpApiBuilder.group(Api, "admin", (handlers) =>
    handlers
      .handle("login", () => Effect.orDie(Effect.asVoid(AdminApi.issue("root", {}))))
      .handle("me", () => Effect.map(AdminApi.Session, (session) => session.userId))
      .handle("logout", () => Effect.orDie(Effect.flatMap(AdminApi.Session, AdminApi.clear)))).pipe(
      Layer.provide(AdminApi.layer)
    )

  it.effect("each type on its own transport", () =>
    Effect.gen(function*() {
      const user = cookieSet((yield* post("/user/login")).response, "session")
      const admin = cookieSet((yield* post("/admin/login")).response, "admin")
      const jar = `${user}; ${admin}`
      expect(yield* get("/user/me", jar)).toMatchObject({ status: 200, body: "\"alice\"" })
      expect(yield* get("/admin/me", jar)).toMatchObject({ status: 200, body: "\"root\"" })
      const out = yield* post("/admin/logout", jar)
      expect(cookieSet(out.response, "admin")).toBe("admin=")
      expect((yield* get("/admin/me", jar)).status).toBe(401)
      expect((yield* get("/user/me", jar)).status).toBe(200)
    }).pipe(
      Effect.provide(
        HttpApiBuilder.serve().pipe(
          Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(Layer.merge(UserLive, AdminLive)))),
          Layer.provideMerge(NodeHttpServer.layerTest),
          Layer.provide(Layer.mergeAll(sessions, userCookie, adminCookie))
        )
      )
    ))

  it.effect("two types on one transport fail the build", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(
        Layer.mergeAll(UserApi.layer, SharedAdminApi.layer).pipe(Layer.provide(Layer.mergeAll(sessions, userCookie)))
      )))
      expect(defect(exit)).toMatch(
        /"test\/SessionTypes\/(User|Admin)Session" and "test\/SessionTypes\/(User|Admin)Session"/
      )
      expect(defect(exit)).toContain("cookie \"session\"")
    }))
})
