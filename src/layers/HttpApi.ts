/**
 * Sessions in an `@effect/platform` `HttpApi`: a ready `HttpApiMiddleware` whose security scheme is the
 * session cookie (or a bearer token), which gives guarded endpoints the request's session and refuses the
 * others with 401.
 *
 * ```ts
 * import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { Effect, Layer, Schema } from "effect"
 * import * as SessionApi from "effect-sessions/layers/HttpApi"
 * import * as Session from "effect-sessions/Session"
 * import { StoreError } from "effect-sessions/Store"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({}) }) {}
 * const AppApi = SessionApi.make(AppSession) // the session cookie, named `__Host-session`
 *
 * class Api extends HttpApi.make("app").add(
 *   HttpApiGroup.make("auth")
 *     .add(HttpApiEndpoint.post("login", "/login").setPayload(Schema.Struct({ user: Schema.String })))
 *     .add(HttpApiEndpoint.get("me", "/me").addSuccess(Schema.String).middleware(AppApi.Middleware))
 *     .add(HttpApiEndpoint.post("logout", "/logout").middleware(AppApi.Middleware))
 *     .addError(StoreError) // what `login` fails with when the store is down (503)
 * ) {}
 *
 * const AuthLive = HttpApiBuilder.group(Api, "auth", (handlers) =>
 *   handlers
 *     .handle("login", ({ payload }) => Effect.asVoid(AppApi.issue(payload.user, {})))
 *     .handle("me", () => Effect.map(AppApi.Session, (session) => session.userId))
 *     .handle("logout", () => Effect.flatMap(AppApi.Session, AppApi.clear))
 * ).pipe(Layer.provide(AppApi.layer))
 * ```
 *
 * - `AppApi.Middleware` is the `HttpApiMiddleware` to put on endpoints, groups or the whole API. Its
 *   security scheme (`HttpApiSecurity.apiKey({ key: "__Host-session", in: "cookie" })`, or
 *   `HttpApiSecurity.bearer`) and its failures (`Unauthorized`, 401; `StoreError`, 503) appear in the
 *   OpenAPI document (`OpenApi.fromApi`).
 * - `AppApi.Session` is the tag it provides: a guarded endpoint always has a session, `Session<A>`, not an
 *   `Option`.
 * - `AppApi.Optional` is the middleware of public endpoints that a session personalises: it never answers
 *   401, and provides the request's session or none as the tag's `Current` (`yield* AppApi.current`).
 * - `AppApi.layer` implements both middlewares on the sessions service and the `Transport` in context (or
 *   the tag `transportTag` names); its build fails when another session type reads through that transport.
 * - `AppApi.issue`, `extend`, `rotate`, `update`, `clear`, `clearAll` are the operations of
 *   `SessionHttp.make`: they put the token on the response (or expire it) from inside an `HttpApi`
 *   handler, public endpoints such as `login` included.
 *
 * The middleware behaves as `SessionHttp`'s: the token is read by the `Transport` layer, a renewed or
 * re-signed token goes out with the response, a token that will never work again is expired (with the
 * 401), and a store outage answers 503 with `Retry-After: 1` (or, with `onStoreError: "anonymous"`, 401
 * after a logged warning).
 *
 * `HttpApi` encodes errors into the response body, so a `StoreError` would show the store's own message
 * (driver errors, addresses) to clients. The middleware and the operations here fail instead with a
 * `StoreError` carrying only its `reason` and a generic message, after logging the original; wrap other
 * calls of the sessions service (`list`, `revoke`) with {@link redactStoreError}.
 *
 * @since 0.1.0
 * @module
 */
import * as HttpApiMiddleware from "@effect/platform/HttpApiMiddleware"
import * as HttpApiSecurity from "@effect/platform/HttpApiSecurity"
import * as HttpApp from "@effect/platform/HttpApp"
import type * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { claimAtBuild, cookieName as cookieNameOf } from "../internal/transport.js"
import type { CurrentSession, Session, SessionsTag } from "../Session.js"
import { StoreError } from "../Store.js"
import { defaultHostCookieName, Transport, type TransportService } from "../Transport.js"
import * as SessionHttp from "./Http.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category type ids
 */
export const AuthenticatedTypeId: unique symbol = Symbol.for("effect-sessions/HttpApi/Authenticated")

/**
 * @since 0.1.0
 * @category type ids
 */
export type AuthenticatedTypeId = typeof AuthenticatedTypeId

/**
 * The identifier of the tag under which the middleware provides the request's session to the endpoints it
 * guards (`SessionApi<Self, A>["Session"]`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Authenticated<Self> {
  readonly [AuthenticatedTypeId]: Self
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const MiddlewareTypeId: unique symbol = Symbol.for("effect-sessions/HttpApi/Middleware")

/**
 * @since 0.1.0
 * @category type ids
 */
export type MiddlewareTypeId = typeof MiddlewareTypeId

/**
 * The identifier of the `HttpApiMiddleware` of the sessions service `Self`: what an endpoint, group or
 * API it is added to requires, and what {@link SessionApi.layer} provides.
 *
 * @since 0.1.0
 * @category models
 */
export interface Middleware<Self>
  extends MiddlewareIdentifier<Authenticated<Self>, SessionHttp.Unauthorized | StoreError>
{
  readonly [MiddlewareTypeId]: Self
}

/**
 * What `HttpApiBuilder` reads off a middleware's identifier: what it provides and fails with.
 *
 * @since 0.1.0
 * @category models
 */
export interface MiddlewareIdentifier<Provides, Failure> {
  readonly [HttpApiMiddleware.TypeId]: {
    readonly provides: Provides
    readonly failure: Failure
    readonly failureContext: never
  }
}

/**
 * The identifier of the optional-session `HttpApiMiddleware` of the sessions service `Self`
 * ({@link SessionApi.Optional}): it provides the tag's `Current`, the request's session or none, and
 * fails only with `StoreError` (503).
 *
 * @since 0.1.0
 * @category models
 */
export interface OptionalMiddleware<Self> extends MiddlewareIdentifier<CurrentSession<Self>, StoreError> {
  readonly [MiddlewareTypeId]: { readonly optional: Self }
}

/**
 * What the middleware fails with: `Unauthorized` (401) when the request has no valid session, `StoreError`
 * (503) when the store cannot answer.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Failure: Schema.Union<[typeof SessionHttp.Unauthorized, typeof StoreError]> = Schema.Union(
  SessionHttp.Unauthorized,
  StoreError
)

/**
 * The middleware's security schemes, as the OpenAPI document shows them under the name `session`: the
 * session cookie (`apiKey` in `cookie`) or a bearer token.
 *
 * @since 0.1.0
 * @category models
 */
export interface Security {
  readonly session: HttpApiSecurity.ApiKey | HttpApiSecurity.Bearer
}

/**
 * The `HttpApiMiddleware` tag class of the sessions service `Self` with session data `A`.
 *
 * @since 0.1.0
 * @category models
 */
export type MiddlewareTag<Self, A> = HttpApiMiddleware.TagClass<
  Middleware<Self>,
  string,
  {
    readonly failure: typeof Failure
    readonly provides: Context.Tag<Authenticated<Self>, Session<A>>
    readonly security: Security
  }
>

/**
 * The optional-session `HttpApiMiddleware` tag class of the sessions service `Self` with session data `A`.
 *
 * @since 0.1.0
 * @category models
 */
export type OptionalMiddlewareTag<Self, A> = HttpApiMiddleware.TagClass<
  OptionalMiddleware<Self>,
  string,
  {
    readonly failure: typeof StoreError
    readonly provides: Context.Tag<CurrentSession<Self>, Option.Option<Session<A>>>
  }
>

/**
 * Options of {@link make}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<T = Transport> extends SessionHttp.Options<T> {
  /**
   * How clients send the token, for the OpenAPI security scheme: `"cookie"` (default) or `"bearer"`
   * (`Authorization: Bearer <token>`). Provide the matching `Transport` layer (`Transport.layerCookie` or
   * `Transport.layerHeader`): the token is read and written by it.
   */
  readonly transport?: "cookie" | "bearer" | undefined
  /**
   * The cookie's name in the security scheme. Default `__Host-session`, the name of the cookie transport
   * with its default options (`Transport.cookieName(options)` tells the name for other options: `session`
   * with `secure: false`, for plain-http development). It must be the name the `Transport` layer uses; a
   * request that carries this cookie when the transport reads another one is logged as a
   * misconfiguration.
   */
  readonly cookieName?: string | undefined
}

/**
 * The `HttpApi` side of a sessions service.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionApi<Self, A, T = Transport> extends
  Pick<
    SessionHttp.SessionHttp<Self, A, T>,
    "issue" | "extend" | "rotate" | "update" | "clear" | "clearAll"
  >
{
  /**
   * The `HttpApiMiddleware` to add to endpoints, groups or an API (`.middleware(AppApi.Middleware)`).
   * Endpoints it guards get the session from {@link SessionApi.Session} and can fail with `Unauthorized`
   * (401) and `StoreError` (503).
   */
  readonly Middleware: MiddlewareTag<Self, A>
  /** The request's session in an endpoint the middleware guards: `yield* AppApi.Session`. */
  readonly Session: Context.Tag<Authenticated<Self>, Session<A>>
  /**
   * The `HttpApiMiddleware` for public endpoints that a session personalises (a home page that greets the
   * user): it never answers 401. It provides the request's session, or none, as the tag's `Current`
   * ({@link SessionApi.current}); a bad, unknown or expired token is "no session" (and its cookie is
   * expired), a renewed or re-signed token goes out with the response, and a store outage answers 503 as
   * the required middleware does (with `onStoreError: "anonymous"`, none after a logged warning). It
   * declares no security scheme: the OpenAPI document shows the endpoint as public, which it is.
   */
  readonly Optional: OptionalMiddlewareTag<Self, A>
  /** The request's session, if any, in an endpoint {@link SessionApi.Optional} serves: `yield* AppApi.current`. */
  readonly current: Effect.Effect<Option.Option<Session<A>>, never, CurrentSession<Self>>
  /** The implementation of both middlewares, on the sessions service and the `Transport` in context. */
  readonly layer: Layer.Layer<Middleware<Self> | OptionalMiddleware<Self>, never, Self | T>
  /** The middleware's security scheme, as the OpenAPI document shows it. */
  readonly security: HttpApiSecurity.ApiKey | HttpApiSecurity.Bearer
}

// -----------------------------------------------------------------------------
// combinators
// -----------------------------------------------------------------------------

const publicMessage = "the session store is unavailable"

const retryAfter = HttpApp.appendPreResponseHandler((_request, response) =>
  Effect.succeed(HttpServerResponse.setHeader(response, "retry-after", "1"))
)

// The error a client may see: the reason, and no message or cause from the store.
const redact = (error: StoreError) =>
  Effect.zipRight(retryAfter, Effect.fail(new StoreError({ reason: error.reason, message: publicMessage })))

/**
 * Replaces a `StoreError` that `effect` fails with by one that carries only its `reason` and a generic
 * message (the original is logged), and adds `Retry-After: 1` to the response. `HttpApi` encodes errors
 * into the response body, and a store's message can name its address or its driver's internals.
 *
 * ```ts
 * import { HttpApi, HttpApiBuilder, HttpApiEndpoint, HttpApiGroup } from "@effect/platform"
 * import { Effect, Layer, Schema } from "effect"
 * import * as SessionApi from "effect-sessions/layers/HttpApi"
 * import * as Session from "effect-sessions/Session"
 * import { StoreError } from "effect-sessions/Store"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({}) }) {}
 * const AppApi = SessionApi.make(AppSession)
 *
 * class Api extends HttpApi.make("app").add(
 *   HttpApiGroup.make("account").add(
 *     HttpApiEndpoint.get("devices", "/devices").addSuccess(Schema.Number).addError(StoreError)
 *       .middleware(AppApi.Middleware)
 *   )
 * ) {}
 *
 * // how many devices the user is logged in on
 * const AccountLive = HttpApiBuilder.group(Api, "account", (handlers) =>
 *   handlers.handle("devices", () =>
 *     Effect.flatMap(AppApi.Session, (session) =>
 *       Effect.flatMap(AppSession, (sessions) => sessions.list(session.userId))).pipe(
 *         Effect.map((list) => list.length),
 *         SessionApi.redactStoreError
 *       ))
 * ).pipe(Layer.provide(AppApi.layer))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const redactStoreError = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.catchIf(
    effect,
    (error): error is E & StoreError => error instanceof StoreError && error.message !== publicMessage,
    (error) => Effect.zipRight(Effect.logError("session store unavailable", error), redact(error))
  ) as Effect.Effect<A, E, R>

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

const unauthorized = new SessionHttp.Unauthorized()

// The scheme the OpenAPI document shows: the session cookie, or a bearer token.
const securityOf = (cookieName: string | undefined): HttpApiSecurity.ApiKey | HttpApiSecurity.Bearer =>
  cookieName !== undefined
    ? HttpApiSecurity.apiKey({ key: cookieName, in: "cookie" }).pipe(
      HttpApiSecurity.annotate(OpenApi.Description, "The session cookie set at login.")
    )
    : HttpApiSecurity.bearer.pipe(
      HttpApiSecurity.annotate(OpenApi.Description, "A session token, handed out in a response header at login.")
    )

// What `HttpApiBuilder` calls for each request to an endpoint the middleware guards.
interface MiddlewareService<A> {
  readonly session: (
    credential: Redacted.Redacted
  ) => Effect.Effect<Session<A>, SessionHttp.Unauthorized | StoreError, HttpRouter.HttpRouter.Provided>
}

// The tags of the two middlewares, as `HttpApiBuilder` looks their implementations up.
interface Tags<Self, A> {
  readonly Middleware: Context.Tag<Middleware<Self>, MiddlewareService<A>>
  readonly Optional: Context.Tag<OptionalMiddleware<Self>, OptionalService<A>>
}

// What `HttpApiBuilder` runs for each request to an endpoint the optional middleware serves.
type OptionalService<A> = Effect.Effect<Option.Option<Session<A>>, StoreError, HttpRouter.HttpRouter.Provided>

// Both middlewares on the sessions service and the transport of the layer's context. `cookieName` is the
// scheme's cookie (none for a bearer scheme).
const middlewareLayer = <Self, A, I, T>(
  tag: SessionsTag<Self, A, I>,
  transportTag: Context.Tag<T, TransportService>,
  http: SessionHttp.SessionHttp<Self, A, T>,
  tags: Tags<Self, A>,
  cookieName: string | undefined
): Layer.Layer<Middleware<Self> | OptionalMiddleware<Self>, never, Self | T> =>
  Layer.effectContext(
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* transportTag
      // Two session types on one transport fail here, when the API is built, rather than at a request.
      yield* claimAtBuild(transport, tag.key)
      // `load` logged the original error already; none after a warning with `onStoreError: "anonymous"`.
      const optional: OptionalService<A> = http.load.pipe(
        Effect.catchTag("StoreError", redact),
        Effect.provideService(tag, sessions),
        Effect.provideService(transportTag, transport)
      )
      // The name the transport reads, when it is a cookie transport of this package (otherwise unknown).
      const transportCookie = cookieNameOf(transport)
      const mismatch = cookieName !== undefined && transportCookie !== cookieName
      // The credential `HttpApiBuilder` decoded for the scheme is not used: the token is read by the
      // `Transport`, the same layer that writes it (one parser for cookies and bearer tokens), and the
      // scheme documents it. The credential only serves to detect a scheme that names another cookie.
      const session = (credential: Redacted.Redacted) =>
        Effect.gen(function*() {
          const current = yield* http.load
          if (Option.isSome(current)) return current.value
          if (mismatch && Redacted.value(credential) !== "") {
            const request = yield* HttpServerRequest.HttpServerRequest
            if (transport.read(request).length === 0) {
              yield* Effect.logWarning(
                `SessionApi: the request has a "${cookieName}" cookie but the Transport reads ` +
                  (transportCookie === undefined ? "another one" : `"${transportCookie}"`) +
                  "; make `cookieName` the Transport's cookie name"
              )
            }
          }
          return yield* Effect.fail(unauthorized)
        }).pipe(
          // `load` logged the original error already.
          Effect.catchTag("StoreError", redact),
          Effect.provideService(tag, sessions),
          Effect.provideService(transportTag, transport)
        )
      return Context.make(tags.Middleware, { session }).pipe(Context.add(tags.Optional, optional))
    })
  )

/**
 * The `HttpApi` middleware, its layer and the handler operations of the sessions service declared by
 * `tag`. Make it once per sessions service.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Self, A, I, T = Transport>(
  tag: SessionsTag<Self, A, I>,
  options: Options<T> = {}
): SessionApi<Self, A, T> => {
  const http = SessionHttp.make(tag, options)
  const transportTag = (options.transportTag ?? Transport) as Context.Tag<T, TransportService>
  const cookieName = options.transport === "bearer" ? undefined : options.cookieName ?? defaultHostCookieName
  const security = securityOf(cookieName)
  const Current = Context.GenericTag<Authenticated<Self>, Session<A>>(`${tag.key}/Authenticated`)
  const Middleware = HttpApiMiddleware.Tag<Middleware<Self>>()(`${tag.key}/HttpApiMiddleware`, {
    failure: Failure,
    provides: Current,
    security: { session: security } satisfies Security
  })
  const Optional = HttpApiMiddleware.Tag<OptionalMiddleware<Self>>()(`${tag.key}/HttpApiOptionalMiddleware`, {
    failure: StoreError,
    provides: tag.Current
  })
  const layer = middlewareLayer(
    tag,
    transportTag,
    http,
    { Middleware, Optional } as unknown as Tags<Self, A>,
    cookieName
  )

  // In an endpoint the middleware guards, the session it provided is the request's current one: `issue`
  // retires it (unless `keepPrevious`) as it retires the middleware's `Tag.Current` elsewhere.
  const issue: SessionApi<Self, A, T>["issue"] = (userId, data, issueOptions) =>
    redactStoreError(Effect.flatMap(Effect.serviceOption(Current), (authenticated) =>
      Option.isSome(authenticated)
        ? Effect.provideService(http.issue(userId, data, issueOptions), tag.Current, authenticated)
        : http.issue(userId, data, issueOptions)))

  return {
    Middleware: Middleware as unknown as MiddlewareTag<Self, A>,
    Session: Current,
    Optional: Optional as unknown as OptionalMiddlewareTag<Self, A>,
    current: tag.Current,
    layer,
    security,
    issue,
    extend: (session) => redactStoreError(http.extend(session)),
    rotate: (session) => redactStoreError(http.rotate(session)),
    update: (session, f) => redactStoreError(http.update(session, f)),
    clear: (session) => redactStoreError(http.clear(session)),
    clearAll: (session) => redactStoreError(http.clearAll(session))
  }
}
