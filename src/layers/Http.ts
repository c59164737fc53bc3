/**
 * Sessions in an `@effect/platform` HTTP server.
 *
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { Effect, Schema } from "effect"
 * import * as SessionHttp from "effect-sessions/layers/Http"
 * import * as Session from "effect-sessions/Session"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({}) }) {}
 * const AppHttp = SessionHttp.make(AppSession)
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.post("/login", Effect.as(AppHttp.issue("user-1", {}), HttpServerResponse.empty())),
 *   HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId)))
 * )
 *
 * const Server = HttpServer.serve(router, AppHttp.middleware)
 * ```
 *
 * The middleware reads the token through the `Transport`, asks the sessions service for the session, and
 * provides it (or its absence) to handlers as `AppSession.Current`. A bad, unknown or expired token means
 * "no session" (and its cookie is expired on the way out); a store that cannot answer means 503, never
 * 500. When the request carries several candidates (duplicate cookies of the transport's name), the first
 * that resolves is served, and the cookie is expired only when none does.
 *
 * Every response to a request that carried a token (served with its session or not) gets `Vary` on the
 * transport's request header (`Vary: Cookie`) and, unless it says otherwise, `Cache-Control: private`, so
 * that no shared cache hands one user's page to another; a response that sets or expires the token gets
 * `Cache-Control: no-store`. Requests without a token are left alone.
 *
 * Handlers cannot see the response they are part of, so `issue`, `extend` and `clear` register a
 * pre-response hook (`HttpApp.appendPreResponseHandler`) that writes the token just before the response
 * leaves, error responses included. When a handler calls several of them, the last one wins.
 *
 * Each session type reads its token through a transport of its own: with two types in one application,
 * give the second its own tag (`transportTag`, with `Transport.under`). Two types found reading through one
 * transport fail the layer build (`layerRouterMiddleware`, `SessionApi.layer`) or, for the plain
 * middleware, the first request, loudly: they would refuse each other's tokens and expire each other's
 * cookie.
 *
 * @since 0.1.0
 * @module
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as internal from "../internal/http.js"
import * as HttpError from "../internal/httpError.js"
import * as HttpRead from "../internal/httpRead.js"
import * as HttpWrite from "../internal/httpWrite.js"
import { claimAtBuild } from "../internal/transport.js"
import type * as Sessions from "../Session.js"
import type { Conflict, CurrentSession, Expired, Issued, NotFound, Session, SessionsTag } from "../Session.js"
import type { StoreError } from "../Store.js"
import { Transport, type TransportService } from "../Transport.js"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The request has no valid session. Answered with 401.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends HttpError.TaggedError<Unauthorized>("EffectSessionsUnauthorized")(
  "Unauthorized",
  {},
  { status: 401 }
) {
  override get message(): string {
    return "a valid session is required"
  }
}

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * What the middleware does when the store cannot answer for a request that carries a token.
 *
 * - `"fail"` (the default, fail closed): answer 503 with `Retry-After: 1`; the handler does not run.
 * - `"anonymous"`: serve the request as if it had no session, and log a warning for every such request.
 *
 * @since 0.1.0
 * @category models
 */
export type OutagePolicy = "fail" | "anonymous"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options<T = Transport> {
  readonly onStoreError?: OutagePolicy | undefined
  /**
   * The tag of the transport this session type reads and writes its token through. Default
   * `Transport.Transport`. An application with two session types gives the second a tag of its own:
   *
   * ```ts
   * import { Context, Schema } from "effect"
   * import * as SessionHttp from "effect-sessions/layers/Http"
   * import * as Session from "effect-sessions/Session"
   * import * as Transport from "effect-sessions/Transport"
   *
   * class AdminSession extends Session.Tag<AdminSession>()("app/AdminSession", { data: Schema.Struct({}) }) {}
   * class AdminTransport extends Context.Tag("app/AdminTransport")<AdminTransport, Transport.TransportService>() {}
   *
   * const AdminHttp = SessionHttp.make(AdminSession, { transportTag: AdminTransport })
   * // provided with
   * const AdminTransportLive = Transport.layerCookie({ name: "__Host-admin" }).pipe(Transport.under(AdminTransport))
   * ```
   */
  readonly transportTag?: Context.Tag<T, TransportService> | undefined
}

/**
 * Options of `issue`: the session's own lifetime (`ttl`, `persistent`: "remember me"; see
 * `Session.IssueOptions`), and what becomes of the session the request already has.
 *
 * ```ts
 * import { Schema } from "effect"
 * import * as SessionHttp from "effect-sessions/layers/Http"
 * import * as Session from "effect-sessions/Session"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({}) }) {}
 * const AppHttp = SessionHttp.make(AppSession)
 *
 * // "remember me" ticked: 30 days; otherwise a browser-session cookie with the service's ttl
 * const login = (user: string, rememberMe: boolean) =>
 *   AppHttp.issue(user, {}, rememberMe ? { ttl: "30 days" } : { persistent: false })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export interface IssueOptions extends Pick<Sessions.IssueOptions, "ttl" | "persistent"> {
  /**
   * Default `false`: a valid session of this type that the request already carries is cleared before the
   * new one is issued, so that a login on a shared browser ends the previous user's session instead of
   * leaving it alive (and listed) with no cookie pointing at it. `true` keeps it.
   */
  readonly keepPrevious?: boolean | undefined
}

/**
 * The HTTP side of a sessions service.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionHttp<Self, A, T = Transport> {
  /**
   * Reads the request's session and provides it to `app` as the current session. Usable with
   * `HttpServer.serve(app, middleware)`, `HttpRouter.use(middleware)` or `app.pipe(middleware)`. When the
   * session's id is due for renewal, its expiry moved (rolling, idle) or an older key signed it, the new
   * token goes out with the response. The session joins the request fiber's context (what `app` sees,
   * and what runs after it in the same request) rather than being provided to `app` alone, which is
   * cheaper and, since each request has its own fiber, never shows it to another request.
   */
  readonly middleware: <E, R>(
    app: HttpApp.Default<E, R>
  ) => HttpApp.Default<E, Exclude<R, CurrentSession<Self>> | Self | T>
  /**
   * What the middleware does for each request, as an effect: reads the token through the `Transport`,
   * resolves it, puts a renewed or re-signed token on the response and expires a token that will never
   * work again. `None` when the request has no valid session. When the store cannot answer it fails with
   * `StoreError` (503), or, with `onStoreError: "anonymous"`, logs a warning and answers `None`. The core
   * of every integration: `HttpRouter.provideServiceEffect(Tag.Current, AppHttp.load)`, the
   * `HttpLayerRouter` middleware of {@link layerRouterMiddleware} and the `HttpApi` middleware of
   * `layers/HttpApi`.
   */
  readonly load: Effect.Effect<
    Option.Option<Session<A>>,
    StoreError,
    Self | T | HttpServerRequest.HttpServerRequest
  >
  /** The request's session, if it has a valid one. */
  readonly current: Effect.Effect<Option.Option<Session<A>>, never, CurrentSession<Self>>
  /** The request's session, or `Unauthorized` (401). */
  readonly require: Effect.Effect<Session<A>, Unauthorized, CurrentSession<Self>>
  /**
   * Issues a session (recording the client's `User-Agent` and address) and puts its token on the
   * response; answers it with its token, as `Sessions.issue` does (a bearer API returns the token in the
   * login response's body too). At login, prefer it over keeping an anonymous session: a new id defeats
   * session fixation. `options.ttl` and `options.persistent` give the session a lifetime of its own,
   * kept when the token is rewritten later (a non-persistent session's cookie never gets an expiry).
   *
   * A valid session of this type that the request already carries (the current session the middleware
   * provides, or without the middleware the first of the transport's candidates that validates) is
   * cleared first, unless `options.keepPrevious` is set.
   */
  readonly issue: (
    userId: string,
    data: A,
    options?: IssueOptions
  ) => Effect.Effect<Issued<A>, StoreError, Self | T | HttpServerRequest.HttpServerRequest>
  /** Extends a session and puts its (re-signed) token, with the later expiry, on the response. */
  readonly extend: (
    session: Session<A>
  ) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self | T>
  /**
   * Gives the session a new id (at a privilege change) and puts the new token on the response; answers it
   * with its new token, as `Sessions.rotate` does.
   */
  readonly rotate: (
    session: Session<A>
  ) => Effect.Effect<Issued<A>, NotFound | Expired | Conflict | StoreError, Self | T>
  /** Changes the session's data safely under concurrency (see `Sessions.update`). */
  readonly update: (
    session: Session<A>,
    f: (data: A) => A
  ) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self>
  /** Deletes a session and tells the client to forget its token. */
  readonly clear: (session: Session<A>) => Effect.Effect<void, StoreError, Self | T>
  /** Deletes every session of the session's user, this one included, and forgets the token. */
  readonly clearAll: (session: Session<A>) => Effect.Effect<number, StoreError, Self | T>
}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

const unauthorized = new Unauthorized()

/**
 * The middleware and handler operations of the sessions service declared by `tag`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Self, A, I, T = Transport>(
  tag: SessionsTag<Self, A, I>,
  options: Options<T> = {}
): SessionHttp<Self, A, T> => {
  // What the read path and the operations share; each is a function over it (src/internal/http*.ts).
  const http = internal.make(
    tag,
    (options.transportTag ?? Transport) as Context.Tag<T, TransportService>,
    options.onStoreError === "anonymous"
  )
  return {
    middleware: (app) => HttpRead.middleware(http, app),
    load: HttpRead.load(http),
    current: tag.Current,
    require: Effect.contextWithEffect((context: Context.Context<CurrentSession<Self>>) => {
      const session = Context.get(context, tag.Current)
      return Option.isSome(session) ? Effect.succeed(session.value) : Effect.fail(unauthorized)
    }),
    issue: (userId, data, issueOptions = {}) => {
      const { keepPrevious, ...lifetime } = issueOptions
      return HttpWrite.issue(http, userId, data, keepPrevious === true, lifetime)
    },
    extend: (session) => HttpWrite.extend(http, session),
    rotate: (session) => HttpWrite.rotate(http, session),
    update: (session, f) => HttpWrite.update(http, session, f),
    clear: (session) => HttpWrite.clear(http, session),
    clearAll: (session) => HttpWrite.clearAll(http, session)
  }
}

// -----------------------------------------------------------------------------
// routers
// -----------------------------------------------------------------------------

/**
 * The middleware of {@link make} for `HttpLayerRouter`: provides `Tag.Current` to the routes it is
 * applied to, with the same behaviour (renewed tokens, expired cookies, 503 on a store outage). The
 * sessions service and the `Transport` (or the tag `options.transportTag` names) are taken from the layer's
 * context when it is built; the build fails when another session type already reads through that transport.
 *
 * ```ts
 * import { HttpLayerRouter, HttpServerResponse } from "@effect/platform"
 * import { NodeHttpServer } from "@effect/platform-node"
 * import { Effect, Layer, Schema } from "effect"
 * import { createServer } from "node:http"
 * import * as Auth from "effect-sessions/Auth"
 * import * as SessionHttp from "effect-sessions/layers/Http"
 * import * as Memory from "effect-sessions/layers/Memory"
 * import * as Session from "effect-sessions/Session"
 * import * as Transport from "effect-sessions/Transport"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({}) }) {}
 * const AppHttp = SessionHttp.make(AppSession)
 * const SessionMiddleware = SessionHttp.layerRouterMiddleware(AppSession)
 *
 * const Routes = HttpLayerRouter.addAll([
 *   HttpLayerRouter.route("GET", "/me", Effect.map(AppHttp.require, (s) => HttpServerResponse.text(s.userId)))
 * ]).pipe(Layer.provide(SessionMiddleware.layer))
 *
 * const SessionsLive = Session.layerConfig(AppSession).pipe(
 *   Layer.provide(Auth.layerConfig()),
 *   Layer.provide(Memory.layer()),
 *   Layer.provideMerge(Transport.layerCookieConfig())
 * )
 *
 * const Server = HttpLayerRouter.serve(Routes).pipe(
 *   Layer.provide(SessionsLive),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 }))
 * )
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const layerRouterMiddleware = <Self, A, I, T = Transport>(
  tag: SessionsTag<Self, A, I>,
  options: Options<T> = {}
): HttpLayerRouter.Middleware<{
  provides: CurrentSession<Self>
  handles: never
  error: never
  requires: never
  layerError: never
  layerRequires: Self | T
}> => {
  const { middleware } = make(tag, options)
  const transportTag = (options.transportTag ?? Transport) as Context.Tag<T, TransportService>
  return HttpLayerRouter.middleware<{ provides: CurrentSession<Self> }>()(
    Effect.gen(function*() {
      const context = yield* Effect.context<Self | T>()
      // Two session types on one transport fail here, when the router is built, rather than at a request.
      yield* claimAtBuild(Context.get(context, transportTag), tag.key)
      return (effect) => Effect.provide(middleware(effect), context)
    })
  )
}
