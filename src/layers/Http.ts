/**
 * Sessions in an `@effect/platform` HTTP server.
 *
 * ```ts
 * const AppHttp = SessionHttp.make(AppSession)
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/login", Effect.as(AppHttp.issue("user-1", { csrf }), HttpServerResponse.empty())),
 *   HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId)))
 * )
 *
 * HttpServer.serve(router, AppHttp.middleware)
 * ```
 *
 * The middleware reads the token through the `Transport`, asks the sessions service for the session, and
 * provides it (or its absence) to handlers as `AppSession.Current`. A bad, unknown or expired token means
 * "no session" (and its cookie is expired on the way out); a store that cannot answer means 503, never
 * 500.
 *
 * Handlers cannot see the response they are part of, so `issue`, `extend` and `clear` register a
 * pre-response hook (`HttpApp.appendPreResponseHandler`) that writes the token just before the response
 * leaves, error responses included. When a handler calls several of them, the last one wins.
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Conflict, Expired, NotFound, ReadContinuation, Session, SessionsTag } from "../Session.js"
import { ResolveWith } from "../Session.js"
import type { CurrentSession } from "../Session.js"
import type { StoreError } from "../Store.js"
import { Transport } from "../Transport.js"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The request has no valid session. Answered with 401.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>("effect-sessions/Unauthorized")(
  "Unauthorized",
  {},
  HttpApiSchema.annotations({ status: 401 })
) {
  override get message(): string {
    return "a valid session is required"
  }

  /** @since 0.1.0 */
  [HttpServerRespondable.symbol]() {
    return Effect.succeed(HttpServerResponse.empty({ status: 401 }))
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
export interface Options {
  readonly onStoreError?: OutagePolicy | undefined
}

/**
 * The HTTP side of a sessions service.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionHttp<Self, A> {
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
  ) => HttpApp.Default<E, Exclude<R, CurrentSession<Self>> | Self | Transport>
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
    Self | Transport | HttpServerRequest.HttpServerRequest
  >
  /** The request's session, if it has a valid one. */
  readonly current: Effect.Effect<Option.Option<Session<A>>, never, CurrentSession<Self>>
  /** The request's session, or `Unauthorized` (401). */
  readonly require: Effect.Effect<Session<A>, Unauthorized, CurrentSession<Self>>
  /**
   * Issues a session (recording the client's `User-Agent` and address) and puts its token on the
   * response. At login, prefer it over keeping an anonymous session: a new id defeats session fixation.
   */
  readonly issue: (
    userId: string,
    data: A
  ) => Effect.Effect<Session<A>, StoreError, Self | Transport | HttpServerRequest.HttpServerRequest>
  /** Extends a session and puts its (re-signed) token, with the later expiry, on the response. */
  readonly extend: (
    session: Session<A>
  ) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self | Transport>
  /** Gives the session a new id (at a privilege change) and puts the new token on the response. */
  readonly rotate: (
    session: Session<A>
  ) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self | Transport>
  /** Changes the session's data safely under concurrency (see `Sessions.update`). */
  readonly update: (
    session: Session<A>,
    f: (data: A) => A
  ) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self>
  /** Deletes a session and tells the client to forget its token. */
  readonly clear: (session: Session<A>) => Effect.Effect<void, StoreError, Self | Transport>
  /** Deletes every session of the session's user, this one included, and forgets the token. */
  readonly clearAll: (session: Session<A>) => Effect.Effect<number, StoreError, Self | Transport>
}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

const unauthorized = new Unauthorized()

const writeToken = (transport: Transport["Type"], token: string, expiresAt: number) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.map(Clock.currentTimeMillis, (now) => transport.write(response, token, expiresAt, now))
  )

const clearToken = (transport: Transport["Type"]) =>
  HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(transport.clear(response)))

const clientInfo = (request: HttpServerRequest.HttpServerRequest) => ({
  userAgent: request.headers["user-agent"]?.slice(0, 512),
  address: Option.getOrUndefined(request.remoteAddress)
})

/**
 * The middleware and handler operations of the sessions service declared by `tag`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Self, A, I>(tag: SessionsTag<Self, A, I>, options: Options = {}): SessionHttp<Self, A> => {
  const anonymousOnOutage = options.onStoreError === "anonymous"

  const noSession = Option.none<Session<A>>()

  // What the middleware does for one request, continued by `next` (with the session, or none) or by
  // `outage` (the store could not answer). Written as plain code around the one `resolve`: a request
  // without a token costs a context lookup, one with a token one match on the result. The continuations
  // run on the fiber this starts on, which `next` is given.
  const withSession = <X, E, R>(
    next: (fiber: Fiber.RuntimeFiber<unknown, unknown>, session: Option.Option<Session<A>>) => Effect.Effect<X, E, R>,
    outage: (error: StoreError) => Effect.Effect<X, E, R>
  ): Effect.Effect<X, E, R | Self | Transport | HttpServerRequest.HttpServerRequest> =>
    Effect.withFiberRuntime((fiber) => {
      const context = fiber.currentContext as Context.Context<Self | Transport | HttpServerRequest.HttpServerRequest>
      const transport = Context.get(context, Transport)
      const token = transport.read(Context.get(context, HttpServerRequest.HttpServerRequest))
      if (Option.isNone(token)) return next(fiber, noSession)
      const k: ReadContinuation<A, X, E, R> = {
        valid: ({ session, token }) =>
          token === undefined
            ? next(fiber, Option.some(session))
            : Effect.zipRight(
              writeToken(transport, token, session.expiresAt.epochMillis),
              next(fiber, Option.some(session))
            ),
        refused: (error) =>
          error._tag === "StoreError"
            ? anonymousOnOutage
              ? Effect.zipRight(
                Effect.logWarning("session store unavailable; serving the request as anonymous", error),
                next(fiber, noSession)
              )
              : Effect.zipRight(Effect.logError("session store unavailable; answering 503", error), outage(error))
            // The client holds a token that will never work again: tell it to drop it. A handler that
            // issues a new session later in this request registers its write after this, so the new
            // token wins.
            : Effect.zipRight(clearToken(transport), next(fiber, noSession))
      }
      const sessions = Context.get(context, tag)
      const resolveWith = sessions[ResolveWith]
      return resolveWith !== undefined
        ? resolveWith(fiber, token.value, k)
        : Effect.matchEffect(sessions.resolve(token.value), {
          onFailure: (error) => k.refused(error, false),
          onSuccess: k.valid
        })
    })

  const load: SessionHttp<Self, A>["load"] = withSession((_, session) => Effect.succeed(session), Effect.fail)

  const middleware = <E, R>(
    app: HttpApp.Default<E, R>
  ): HttpApp.Default<E, Exclude<R, CurrentSession<Self>> | Self | Transport> =>
    withSession(
      (fiber, session) => {
        // The request's fiber ends with its response, so the session joins the fiber's context for the
        // rest of it instead of being provided around `app` and taken back after: `Effect.provideService`
        // wraps `app` in an acquire/use/release, about 3 µs more per request (bench/RESULTS.md, "The
        // request path in-process"). Routers and `HttpLayerRouter` restore their
        // own context around what they run, so the session never reaches another request's code.
        return Effect.zipRight(
          FiberRef.set(FiberRef.currentContext, Context.add(fiber.currentContext, tag.Current, session)),
          app as HttpApp.Default<E, Exclude<R, CurrentSession<Self>>>
        )
      },
      // the StoreError's own response (503, Retry-After), the same one a handler's StoreError gets
      (error) => error[HttpServerRespondable.symbol]()
    )

  const current = tag.Current
  const require = Effect.contextWithEffect((context: Context.Context<CurrentSession<Self>>) => {
    const session = Context.get(context, tag.Current)
    return Option.isSome(session) ? Effect.succeed(session.value) : Effect.fail(unauthorized)
  })

  const issue = (userId: string, data: A) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* Transport
      const request = yield* HttpServerRequest.HttpServerRequest
      const { session, token } = yield* sessions.issue(userId, data, clientInfo(request))
      yield* writeToken(transport, token, session.expiresAt.epochMillis)
      return session
    })

  const extend = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* Transport
      const extended = yield* sessions.extend(session)
      yield* writeToken(transport, sessions.token(extended), extended.expiresAt.epochMillis)
      return extended
    })

  const rotate = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* Transport
      const renewed = yield* sessions.rotate(session)
      yield* writeToken(transport, renewed.token, renewed.session.expiresAt.epochMillis)
      return renewed.session
    })

  const update = (session: Session<A>, f: (data: A) => A) =>
    Effect.flatMap(tag, (sessions) => sessions.update(session, f))

  const clear = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* Transport
      yield* sessions.clear(session)
      yield* clearToken(transport)
    })

  const clearAll = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* Transport
      const cleared = yield* sessions.clearAll(session.userId)
      yield* clearToken(transport)
      return cleared
    })

  return { middleware, load, current, require, issue, extend, rotate, update, clear, clearAll }
}

// -----------------------------------------------------------------------------
// routers
// -----------------------------------------------------------------------------

/**
 * The middleware of {@link make} for `HttpLayerRouter`: provides `Tag.Current` to the routes it is
 * applied to, with the same behaviour (renewed tokens, expired cookies, 503 on a store outage). The
 * sessions service and the `Transport` are taken from the layer's context when it is built.
 *
 * ```ts
 * const SessionMiddleware = SessionHttp.layerRouterMiddleware(AppSession)
 *
 * const Routes = HttpLayerRouter.addAll([
 *   HttpLayerRouter.route("GET", "/me", Effect.map(AppHttp.require, (s) => HttpServerResponse.text(s.userId)))
 * ]).pipe(Layer.provide(SessionMiddleware.layer))
 *
 * HttpLayerRouter.serve(Routes).pipe(Layer.provide(SessionsLive), Layer.provide(NodeHttpServer.layer(...)))
 * ```
 *
 * @since 0.1.0
 * @category middleware
 */
export const layerRouterMiddleware = <Self, A, I>(
  tag: SessionsTag<Self, A, I>,
  options: Options = {}
): HttpLayerRouter.Middleware<{
  provides: CurrentSession<Self>
  handles: never
  error: never
  requires: never
  layerError: never
  layerRequires: Self | Transport
}> => {
  const { middleware } = make(tag, options)
  return HttpLayerRouter.middleware<{ provides: CurrentSession<Self> }>()(
    Effect.map(
      Effect.context<Self | Transport>(),
      (context) => (effect) => Effect.provide(middleware(effect), context)
    )
  )
}
