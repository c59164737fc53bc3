/**
 * The HTTP layer's handler operations: each runs one operation of the sessions service, then registers the
 * pre-response hook that puts the new token on the response (or tells the client to drop it), since a
 * handler cannot see the response it is part of.
 *
 * @internal
 */
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type { Conflict, Expired, NotFound, Session, Sessions } from "../Session.js"
import type { StoreError } from "../Store.js"
import type { TransportService } from "../Transport.js"
import { clearToken, type Http, writeToken } from "./http.js"

const noSession = Option.none<never>()

const clientInfo = (request: HttpServerRequest.HttpServerRequest) => ({
  userAgent: request.headers["user-agent"]?.slice(0, 512),
  address: Option.getOrUndefined(request.remoteAddress)
})

// The first of `candidates` that is a valid session (read without renewing it); a store outage fails.
const firstValid = <A>(
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
const previous = <Self, A, T>(
  http: Http<Self, A, T>,
  sessions: Sessions<A>,
  transport: TransportService,
  request: HttpServerRequest.HttpServerRequest
) =>
  Effect.flatMap(
    Effect.serviceOption(http.tag.Current),
    (current) => Option.isSome(current) ? Effect.succeed(current.value) : firstValid(sessions, transport.read(request))
  )

/** `SessionHttp.issue`; the request's valid session of this type is cleared first unless `keepPrevious`. */
export const issue = <Self, A, T>(
  http: Http<Self, A, T>,
  userId: string,
  data: A,
  keepPrevious: boolean
): Effect.Effect<Session<A>, StoreError, Self | T | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const sessions = yield* http.tag
    const transport = yield* http.transport
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!keepPrevious) {
      const replaced = yield* previous(http, sessions, transport, request)
      if (Option.isSome(replaced)) yield* sessions.clear(replaced.value)
    }
    const { session, token } = yield* sessions.issue(userId, data, clientInfo(request))
    return yield* written(transport, token, session)
  })

// The sessions service and the checked transport, in that order, for an operation that writes the token.
const withTransport = <Self, A, T, X, E>(
  http: Http<Self, A, T>,
  f: (sessions: Sessions<A>, transport: TransportService) => Effect.Effect<X, E>
): Effect.Effect<X, E, Self | T> =>
  Effect.flatMap(http.tag, (sessions) => Effect.flatMap(http.transport, (transport) => f(sessions, transport)))

// `session`, once the hook that puts its token on the response is registered.
const written = <A>(transport: TransportService, token: string, session: Session<A>): Effect.Effect<Session<A>> =>
  Effect.as(writeToken(transport, token, session.expiresAt.epochMillis), session)

/**
 * `SessionHttp.extend` (a later expiry) and `SessionHttp.rotate` (a new id): the session renewed, and its
 * token (re-signed) on the response.
 */
export const renew = <Self, A, T>(
  http: Http<Self, A, T>,
  session: Session<A>,
  how: "extend" | "rotate"
): Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self | T> =>
  withTransport(http, (sessions, transport) =>
    how === "rotate"
      ? Effect.flatMap(sessions.rotate(session), (renewed) => written(transport, renewed.token, renewed.session))
      : Effect.flatMap(sessions.extend(session), (extended) => written(transport, sessions.token(extended), extended)))

/** `SessionHttp.update`: no token changes, so nothing is written. */
export const update = <Self, A, T>(
  http: Http<Self, A, T>,
  session: Session<A>,
  f: (data: A) => A
): Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self> =>
  Effect.flatMap(http.tag, (sessions) => sessions.update(session, f))

/** `SessionHttp.clear`: the session deleted, its token forgotten. */
export const clear = <Self, A, T>(
  http: Http<Self, A, T>,
  session: Session<A>
): Effect.Effect<void, StoreError, Self | T> =>
  withTransport(http, (sessions, transport) => Effect.zipRight(sessions.clear(session), clearToken(transport)))

/** `SessionHttp.clearAll`: every session of the user deleted, this one's token forgotten. */
export const clearAll = <Self, A, T>(
  http: Http<Self, A, T>,
  session: Session<A>
): Effect.Effect<number, StoreError, Self | T> =>
  withTransport(http, (sessions, transport) => Effect.zipLeft(sessions.clearAll(session.userId), clearToken(transport)))
