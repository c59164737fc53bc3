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
import type { Conflict, Expired, Issued, IssueOptions, NotFound, Session, Sessions } from "../Session.js"
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

/**
 * `SessionHttp.issue`; the request's valid session of this type is cleared first unless `keepPrevious`.
 * `lifetime` is the session's own `ttl` and `persistent`, if given.
 */
export const issue = <Self, A, T>(
  http: Http<Self, A, T>,
  userId: string,
  data: A,
  keepPrevious: boolean,
  lifetime: Pick<IssueOptions, "ttl" | "persistent">
): Effect.Effect<Issued<A>, StoreError, Self | T | HttpServerRequest.HttpServerRequest> =>
  Effect.gen(function*() {
    const sessions = yield* http.tag
    const transport = yield* http.transport
    const request = yield* HttpServerRequest.HttpServerRequest
    if (!keepPrevious) {
      const replaced = yield* previous(http, sessions, transport, request)
      if (Option.isSome(replaced)) yield* sessions.clear(replaced.value)
    }
    const issued = yield* sessions.issue(userId, data, { ...lifetime, ...clientInfo(request) })
    return yield* written(transport, issued.token, issued.session, issued)
  })

// The sessions service and the checked transport, in that order, for an operation that writes the token.
const withTransport = <Self, A, T, X, E>(
  http: Http<Self, A, T>,
  f: (sessions: Sessions<A>, transport: TransportService) => Effect.Effect<X, E>
): Effect.Effect<X, E, Self | T> =>
  Effect.flatMap(http.tag, (sessions) => Effect.flatMap(http.transport, (transport) => f(sessions, transport)))

// `answer`, once the hook that puts the token of `session` on the response is registered.
const written = <A, X>(transport: TransportService, token: string, session: Session<A>, answer: X): Effect.Effect<X> =>
  Effect.as(writeToken(transport, token, session), answer)

// A 401 of the operation (the session was cleared or expired meanwhile) carries the transport's challenge.
const challenged = <Self, A, T, X, E extends { readonly _tag: string }, R>(
  http: Http<Self, A, T>,
  effect: Effect.Effect<X, E, R>
): Effect.Effect<X, E, R> =>
  Effect.tapError(effect, (error) => {
    const hook = http.prepared?.challengeRefused
    return hook !== undefined && (error._tag === "NotFound" || error._tag === "Expired") ? hook : Effect.void
  })

type Renewal = NotFound | Expired | Conflict | StoreError

// An operation that changes the session's token or expiry: run, its token put on the response, and a 401
// challenged. `issued` tells the token and the session of what `run` answered.
const rewrite = <Self, A, T, X>(
  http: Http<Self, A, T>,
  run: (sessions: Sessions<A>) => Effect.Effect<X, Renewal>,
  issued: (sessions: Sessions<A>, answer: X) => Issued<A>
): Effect.Effect<X, Renewal, Self | T> =>
  challenged(
    http,
    withTransport(http, (sessions, transport) =>
      Effect.flatMap(run(sessions), (answer) => {
        const { session, token } = issued(sessions, answer)
        return written(transport, token, session, answer)
      }))
  )

/** `SessionHttp.extend`: a later expiry, and the session's token (re-signed) on the response. */
export const extend = <Self, A, T>(
  http: Http<Self, A, T>,
  session: Session<A>
): Effect.Effect<Session<A>, Renewal, Self | T> =>
  rewrite(http, (sessions) => sessions.extend(session), (sessions, extended) => ({
    session: extended,
    token: sessions.token(extended)
  }))

/** `SessionHttp.rotate`: a new id, and its token on the response. */
export const rotate = <Self, A, T>(
  http: Http<Self, A, T>,
  session: Session<A>
): Effect.Effect<Issued<A>, Renewal, Self | T> =>
  rewrite(http, (sessions) => sessions.rotate(session), (_, issued) => issued)

/** `SessionHttp.update`: no token changes, so nothing is written. */
export const update = <Self, A, T>(
  http: Http<Self, A, T>,
  session: Session<A>,
  f: (data: A) => A
): Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError, Self> =>
  challenged(http, Effect.flatMap(http.tag, (sessions) => sessions.update(session, f)))

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
