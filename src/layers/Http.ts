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
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import type { Expired, NotFound, Session, SessionsTag } from "../Session.js"
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
 * The HTTP side of a sessions service.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionHttp<Self, A> {
  /**
   * Reads the request's session and provides it to `app` as the current session. Usable with
   * `HttpServer.serve(app, middleware)`, `HttpRouter.use(middleware)` or `app.pipe(middleware)`.
   */
  readonly middleware: <E, R>(
    app: HttpApp.Default<E, R>
  ) => HttpApp.Default<E, Exclude<R, CurrentSession<Self>> | Self | Transport>
  /** The request's session, if it has a valid one. */
  readonly current: Effect.Effect<Option.Option<Session<A>>, never, CurrentSession<Self>>
  /** The request's session, or `Unauthorized` (401). */
  readonly require: Effect.Effect<Session<A>, Unauthorized, CurrentSession<Self>>
  /** Issues a session and puts its token on the response. */
  readonly issue: (userId: string, data: A) => Effect.Effect<Session<A>, StoreError, Self | Transport>
  /** Extends a session and puts its (re-signed) token, with the later expiry, on the response. */
  readonly extend: (
    session: Session<A>
  ) => Effect.Effect<Session<A>, NotFound | Expired | StoreError, Self | Transport>
  /** Deletes a session and tells the client to forget its token. */
  readonly clear: (session: Session<A>) => Effect.Effect<void, StoreError, Self | Transport>
}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

const unavailable = HttpServerResponse.empty({ status: 503, headers: { "retry-after": "1" } })
const unauthorized = new Unauthorized()

const writeToken = (transport: Transport["Type"], token: string, expiresAt: number) =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.map(Clock.currentTimeMillis, (now) => transport.write(response, token, expiresAt, now))
  )

const clearToken = (transport: Transport["Type"]) =>
  HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(transport.clear(response)))

/**
 * The middleware and handler operations of the sessions service declared by `tag`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <Self, A, I>(tag: SessionsTag<Self, A, I>): SessionHttp<Self, A> => {
  const middleware = <E, R>(
    app: HttpApp.Default<E, R>
  ): HttpApp.Default<E, Exclude<R, CurrentSession<Self>> | Self | Transport> =>
    Effect.gen(function*() {
      const request = yield* HttpServerRequest.HttpServerRequest
      const transport = yield* Transport
      const token = transport.read(request)
      if (Option.isNone(token)) return yield* Effect.provideService(app, tag.Current, Option.none())
      const sessions = yield* tag
      const result = yield* Effect.either(sessions.get(token.value))
      if (Either.isRight(result)) return yield* Effect.provideService(app, tag.Current, Option.some(result.right))
      if (result.left._tag === "StoreError") {
        yield* Effect.logError("session store unavailable; answering 503", result.left)
        return unavailable
      }
      // The client holds a token that will never work again: tell it to drop it. A handler that issues a
      // new session later in this request registers its write after this, so the new token wins.
      yield* clearToken(transport)
      return yield* Effect.provideService(app, tag.Current, Option.none())
    })

  const current = tag.Current
  const require = Effect.flatMap(
    tag.Current,
    Option.match({ onNone: () => Effect.fail(unauthorized), onSome: Effect.succeed })
  )

  const issue = (userId: string, data: A) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* Transport
      const { session, token } = yield* sessions.issue(userId, data)
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

  const clear = (session: Session<A>) =>
    Effect.gen(function*() {
      const sessions = yield* tag
      const transport = yield* Transport
      yield* sessions.clear(session)
      yield* clearToken(transport)
    })

  return { middleware, current, require, issue, extend, clear }
}
