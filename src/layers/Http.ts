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
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpLayerRouter from "@effect/platform/HttpLayerRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import * as HttpError from "../internal/httpError.js"
import { isSuperseded } from "../internal/refusal.js"
import { fastPath, type ReadContinuation } from "../internal/registry.js"
import {
  canonical,
  claim,
  claimAtBuild,
  describe,
  dieLoudly,
  isRedacted,
  privateResponse,
  redactSpan
} from "../internal/transport.js"
import type { Conflict, Expired, NotFound, Rejected, Session, Sessions, SessionsTag } from "../Session.js"
import type { CurrentSession } from "../Session.js"
import type { StoreError } from "../Store.js"
import { maxCandidates, Transport, type TransportService } from "../Transport.js"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The request has no valid session. Answered with 401.
 *
 * @since 0.1.0
 * @category errors
 */
export class Unauthorized extends HttpError.TaggedError<Unauthorized>("effect-sessions/Unauthorized")(
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
   * class AdminTransport extends Context.Tag("app/AdminTransport")<AdminTransport, Transport.TransportService>() {}
   * const AdminHttp = SessionHttp.make(AdminSession, { transportTag: AdminTransport })
   * // provided with
   * Transport.layerCookie({ name: "__Host-admin" }).pipe(Transport.under(AdminTransport))
   * ```
   */
  readonly transportTag?: Context.Tag<T, TransportService> | undefined
}

/**
 * Options of `issue`.
 *
 * @since 0.1.0
 * @category models
 */
export interface IssueOptions {
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
   * response. At login, prefer it over keeping an anonymous session: a new id defeats session fixation.
   *
   * A valid session of this type that the request already carries (the current session the middleware
   * provides, or without the middleware the first of the transport's candidates that validates) is
   * cleared first, unless `options.keepPrevious` is set.
   */
  readonly issue: (
    userId: string,
    data: A,
    options?: IssueOptions
  ) => Effect.Effect<Session<A>, StoreError, Self | T | HttpServerRequest.HttpServerRequest>
  /** Extends a session and puts its (re-signed) token, with the later expiry, on the response. */
  readonly extend: (
    session: Session<A>
  ) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self | T>
  /** Gives the session a new id (at a privilege change) and puts the new token on the response. */
  readonly rotate: (
    session: Session<A>
  ) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self | T>
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

const writeToken = (transport: TransportService, token: string, expiresAt: number) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.map(Clock.currentTimeMillis, (now) => transport.write(response, token, expiresAt, now))
  )

const clearToken = (transport: TransportService) =>
  HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(transport.clear(response)))

const clientInfo = (request: HttpServerRequest.HttpServerRequest) => ({
  userAgent: request.headers["user-agent"]?.slice(0, 512),
  address: Option.getOrUndefined(request.remoteAddress)
})

/**
 * What the middleware knows of one transport, worked out at its first request: the pre-response hook that
 * marks responses as depending on the token (`Vary`, `Cache-Control: private`), and the span attribute
 * under which the platform's tracer records the token's request header.
 */
interface Prepared {
  readonly transport: TransportService
  readonly header: string
  readonly vary: Effect.Effect<void>
  readonly attribute: string
  // whether the middleware has checked that the transport's headers are redacted in traces
  redactionChecked: boolean
  // the redacted header names last seen, and whether they cover the request header: when they do, the
  // tracer recorded `<redacted>` and the span needs no look
  names: ReadonlyArray<string | RegExp> | undefined
  requestHeaderRedacted: boolean
}

const prepare = (transport: TransportService): Prepared => {
  const header = canonical(transport.requestHeader)
  return {
    transport,
    header,
    vary: HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(privateResponse(response, header))),
    attribute: `http.request.header.${transport.requestHeader}`,
    redactionChecked: false,
    names: undefined,
    requestHeaderRedacted: false
  }
}

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
  const anonymousOnOutage = options.onStoreError === "anonymous"
  const transportTag = (options.transportTag ?? Transport) as Context.Tag<T, TransportService>

  const noSession = Option.none<Session<A>>()

  // The transport this session type was last seen reading through, checked: the registry that keeps two
  // session types off one transport is asked once per transport, not on every request.
  let prepared: Prepared | undefined
  const check = (transport: TransportService): Prepared | string => {
    if (prepared !== undefined && prepared.transport === transport) return prepared
    const conflict = claim(transport, tag.key)
    if (conflict !== undefined) return conflict
    return prepared = prepare(transport)
  }
  const transportFor = Effect.flatMap(transportTag, (transport) => {
    const checked = check(transport)
    return typeof checked === "string" ? dieLoudly(checked) : Effect.succeed(transport)
  })

  // The first candidate token that resolves, continued by `next` (with the session, or none) or by
  // `outage` (the store could not answer: the search stops there). Refused candidates are tried in turn;
  // the client is told to drop its token only when none resolved and none was refused as superseded (an id
  // that another request just renewed: the client may already hold its successor).
  const resolveFirst = <X, E, R>(
    fiber: Fiber.RuntimeFiber<unknown, unknown>,
    context: Context.Context<Self>,
    transport: TransportService,
    candidates: ReadonlyArray<string>,
    next: (fiber: Fiber.RuntimeFiber<unknown, unknown>, session: Option.Option<Session<A>>) => Effect.Effect<X, E, R>,
    outage: (error: StoreError) => Effect.Effect<X, E, R>
  ): Effect.Effect<X, E, R> => {
    const sessions = Context.get(context, tag)
    const resolveWith = fastPath(sessions)
    let superseded = false
    const attempt = (index: number): Effect.Effect<X, E, R> => {
      const refused = (error: Rejected | StoreError): Effect.Effect<X, E, R> => {
        if (error._tag === "StoreError") {
          return anonymousOnOutage
            ? Effect.zipRight(
              Effect.logWarning("session store unavailable; serving the request as anonymous", error),
              next(fiber, noSession)
            )
            : Effect.zipRight(Effect.logError("session store unavailable; answering 503", error), outage(error))
        }
        if (isSuperseded(error)) superseded = true
        if (index + 1 < candidates.length) return attempt(index + 1)
        // The client holds a token that will never work again: tell it to drop it. A handler that issues a
        // new session later in this request registers its write after this, so the new token wins. Not
        // when the transport handed over as many candidates as it takes: the client's own token may be
        // one it left out, behind cookies planted ahead of it, and expiring would delete it.
        return superseded || candidates.length >= maxCandidates
          ? next(fiber, noSession)
          : Effect.zipRight(clearToken(transport), next(fiber, noSession))
      }
      const k: ReadContinuation<A, X, E, R> = {
        valid: ({ session, token }) =>
          token === undefined
            ? next(fiber, Option.some(session))
            : Effect.zipRight(
              writeToken(transport, token, session.expiresAt.epochMillis),
              next(fiber, Option.some(session))
            ),
        refused
      }
      const token = candidates[index]!
      return resolveWith !== undefined
        ? resolveWith(fiber, token, k)
        : Effect.matchEffect(sessions.resolve(token), { onFailure: refused, onSuccess: k.valid })
    }
    return attempt(0)
  }

  // What the middleware does for one request. Written as plain code around the one `resolve`: a request
  // without a token costs a few context lookups, one with a token one match on the result. The
  // continuations run on the fiber this starts on, which `next` is given.
  const withSession = <X, E, R>(
    next: (fiber: Fiber.RuntimeFiber<unknown, unknown>, session: Option.Option<Session<A>>) => Effect.Effect<X, E, R>,
    outage: (error: StoreError, prepared: Prepared) => Effect.Effect<X, E, R>
  ): Effect.Effect<X, E, R | Self | T | HttpServerRequest.HttpServerRequest> =>
    Effect.withFiberRuntime((fiber) => {
      const context = fiber.currentContext as Context.Context<Self | T | HttpServerRequest.HttpServerRequest>
      const transport = Context.get(context, transportTag)
      const request = Context.get(context, HttpServerRequest.HttpServerRequest)
      const checked = prepared !== undefined && prepared.transport === transport ? prepared : check(transport)
      if (typeof checked === "string") return dieLoudly(checked)
      const names = fiber.getFiberRef(Headers.currentRedactedNames)
      if (names !== checked.names) {
        checked.names = names
        checked.requestHeaderRedacted = isRedacted(names, transport.requestHeader)
      }
      // Defence in depth: the transport layers redact their header names in traces, but a transport
      // provided some other way would leave the token in the request span.
      if (!checked.requestHeaderRedacted && request.headers[transport.requestHeader] !== undefined) {
        redactSpan(fiber.currentSpan, checked.attribute)
      }
      const candidates = transport.read(request)
      const go = candidates.length === 0
        ? next(fiber, noSession)
        : Effect.zipRight(
          checked.vary,
          resolveFirst(fiber, context, transport, candidates, next, (error) => outage(error, checked))
        )
      if (checked.redactionChecked) return go
      checked.redactionChecked = true
      return checked.requestHeaderRedacted && isRedacted(names, transport.responseHeader)
        ? go
        : Effect.zipRight(
          Effect.logWarning(
            `SessionHttp: the headers of the ${describe(transport)} transport of "${tag.key}" are not ` +
              "redacted in traces; provide it with Transport.layer (or a Transport.layer* constructor)"
          ),
          go
        )
    })

  const load: SessionHttp<Self, A, T>["load"] = withSession((_, session) => Effect.succeed(session), Effect.fail)

  const middleware = <E, R>(
    app: HttpApp.Default<E, R>
  ): HttpApp.Default<E, Exclude<R, CurrentSession<Self>> | Self | T> =>
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
      // The StoreError's own response (503, Retry-After), the same one a handler's StoreError gets. `app`
      // does not run, and with it neither do the pre-response hooks: the caching headers go on here.
      (error, prepared) =>
        Effect.map(error[HttpServerRespondable.symbol](), (response) => privateResponse(response, prepared.header))
    )

  const current = tag.Current
  const require = Effect.contextWithEffect((context: Context.Context<CurrentSession<Self>>) => {
    const session = Context.get(context, tag.Current)
    return Option.isSome(session) ? Effect.succeed(session.value) : Effect.fail(unauthorized)
  })

  // The first of `candidates` that is a valid session (read without renewing it); a store outage fails.
  const firstValid = (
    sessions: Sessions<A>,
    candidates: ReadonlyArray<string>,
    index = 0
  ): Effect.Effect<Option.Option<Session<A>>, StoreError> =>
    index >= candidates.length
      ? Effect.succeed(noSession)
      : Effect.matchEffect(sessions.get(candidates[index]!), {
        onFailure: (error) =>
          error._tag === "StoreError" ? Effect.fail(error) : firstValid(sessions, candidates, index + 1),
        onSuccess: (session) => Effect.succeed(Option.some(session))
      })

  // The session the request already has: the one the middleware provided when it ran (none included),
  // otherwise the first candidate of the transport that validates.
  const previous = (
    sessions: Sessions<A>,
    transport: TransportService,
    request: HttpServerRequest.HttpServerRequest
  ) =>
    Effect.flatMap(
      Effect.serviceOption(tag.Current),
      (current) =>
        Option.isSome(current) ? Effect.succeed(current.value) : firstValid(sessions, transport.read(request))
    )

  const issue = (userId: string, data: A, options?: IssueOptions) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* transportFor
      const request = yield* HttpServerRequest.HttpServerRequest
      if (options?.keepPrevious !== true) {
        const replaced = yield* previous(sessions, transport, request)
        if (Option.isSome(replaced)) yield* sessions.clear(replaced.value)
      }
      const { session, token } = yield* sessions.issue(userId, data, clientInfo(request))
      yield* writeToken(transport, token, session.expiresAt.epochMillis)
      return session
    })

  const extend = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* transportFor
      const extended = yield* sessions.extend(session)
      yield* writeToken(transport, sessions.token(extended), extended.expiresAt.epochMillis)
      return extended
    })

  const rotate = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* transportFor
      const renewed = yield* sessions.rotate(session)
      yield* writeToken(transport, renewed.token, renewed.session.expiresAt.epochMillis)
      return renewed.session
    })

  const update = (session: Session<A>, f: (data: A) => A) =>
    Effect.flatMap(tag, (sessions) => sessions.update(session, f))

  const clear = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* transportFor
      yield* sessions.clear(session)
      yield* clearToken(transport)
    })

  const clearAll = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* transportFor
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
 * sessions service and the `Transport` (or the tag `options.transportTag` names) are taken from the layer's
 * context when it is built; the build fails when another session type already reads through that transport.
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
