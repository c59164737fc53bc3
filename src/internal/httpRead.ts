/**
 * The HTTP layer's read path, run on every request: the transport check, the redaction of the token's
 * header in the request span, the caching headers, and the search for the first candidate token that
 * resolves. Written as plain code around the one `resolve`, continued on the request's fiber: a refactor
 * here must not add an Effect step, a closure or a context lookup per request (`npm run bench` measures it).
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import * as FiberRef from "effect/FiberRef"
import * as Option from "effect/Option"
import type { CurrentSession, Rejected, Session } from "../Session.js"
import type { StoreError } from "../Store.js"
import { check, clearToken, type Http, type Prepared, writeToken } from "./http.js"
import { isSuperseded } from "./refusal.js"
import { fastPath, type ReadContinuation } from "./registry.js"
import {
  describe,
  dieLoudly,
  isRedacted,
  maxCandidates,
  privateResponse,
  redactSpan,
  responseHeaders
} from "./transport.js"

/** How a request goes on once its session is known: on the fiber the read started on. */
export type Next<A, X, E, R> = (
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  session: Option.Option<Session<A>>
) => Effect.Effect<X, E, R>

const noSession = Option.none<never>()

/**
 * The first candidate token that resolves, continued by `next` (with the session, or none) or by `outage`
 * (the store could not answer: the search stops there). Refused candidates are tried in turn; the client is
 * told to drop its token only when none resolved and none was refused as superseded (an id that another
 * request just renewed: the client may already hold its successor).
 */
export const resolveFirst = <Self, A, T, X, E, R>(
  http: Http<Self, A, T>,
  fiber: Fiber.RuntimeFiber<unknown, unknown>,
  context: Context.Context<Self>,
  prepared: Prepared,
  candidates: ReadonlyArray<string>,
  next: Next<A, X, E, R>,
  outage: (error: StoreError) => Effect.Effect<X, E, R>
): Effect.Effect<X, E, R> => {
  const sessions = Context.get(context, http.tag)
  const transport = prepared.transport
  const resolveWith = fastPath(sessions)
  let superseded = false
  const attempt = (index: number): Effect.Effect<X, E, R> => {
    const refused = (error: Rejected | StoreError): Effect.Effect<X, E, R> => {
      if (error._tag === "StoreError") {
        return http.anonymousOnOutage
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
      // one it left out, behind cookies planted ahead of it, and expiring would delete it. A 401 that
      // follows carries the transport's challenge (a token was presented and refused).
      const rest = prepared.challengeRefused === undefined
        ? next(fiber, noSession)
        : Effect.zipRight(prepared.challengeRefused, next(fiber, noSession))
      return superseded || candidates.length >= maxCandidates ? rest : Effect.zipRight(clearToken(transport), rest)
    }
    const k: ReadContinuation<A, X, E, R> = {
      valid: ({ session, token }) =>
        token === undefined
          ? next(fiber, Option.some(session))
          : Effect.zipRight(
            writeToken(transport, token, session),
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

/**
 * What the middleware does for one request: a request without a token costs a few context lookups, one
 * with a token one match on the result. The continuations run on the fiber this starts on, which `next`
 * is given.
 */
export const withSession = <Self, A, T, X, E, R>(
  http: Http<Self, A, T>,
  next: Next<A, X, E, R>,
  outage: (error: StoreError, prepared: Prepared) => Effect.Effect<X, E, R>
): Effect.Effect<X, E, R | Self | T | HttpServerRequest.HttpServerRequest> =>
  Effect.withFiberRuntime((fiber) => {
    const context = fiber.currentContext as Context.Context<Self | T | HttpServerRequest.HttpServerRequest>
    const transport = Context.get(context, http.transportTag)
    const request = Context.get(context, HttpServerRequest.HttpServerRequest)
    const prepared = http.prepared
    const checked = prepared !== undefined && prepared.transport === transport ? prepared : check(http, transport)
    if (typeof checked === "string") return dieLoudly(checked)
    const names = fiber.getFiberRef(Headers.currentRedactedNames)
    if (names !== checked.names) {
      checked.names = names
      checked.requestHeaderRedacted = checked.requestHeaders.every((header) => isRedacted(names, header))
    }
    // Defence in depth: the transport layers redact their header names in traces, but a transport
    // provided some other way would leave the token in the request span.
    if (!checked.requestHeaderRedacted) {
      for (let i = 0; i < checked.requestHeaders.length; i++) {
        if (request.headers[checked.requestHeaders[i]!] !== undefined) {
          redactSpan(fiber.currentSpan, checked.attributes[i]!)
        }
      }
    }
    const candidates = transport.read(request)
    const go = candidates.length === 0
      ? checked.challengeMissing === undefined
        ? next(fiber, noSession)
        : Effect.zipRight(checked.challengeMissing, next(fiber, noSession))
      : Effect.zipRight(
        checked.vary,
        resolveFirst(http, fiber, context, checked, candidates, next, (error) => outage(error, checked))
      )
    if (checked.redactionChecked) return go
    checked.redactionChecked = true
    return checked.requestHeaderRedacted && responseHeaders(transport).every((header) => isRedacted(names, header))
      ? go
      : Effect.zipRight(
        Effect.logWarning(
          `SessionHttp: the headers of the ${describe(transport)} transport of "${http.tag.key}" are not ` +
            "redacted in traces; provide it with Transport.layer (or a Transport.layer* constructor)"
        ),
        go
      )
  })

const answer = <A>(_fiber: Fiber.RuntimeFiber<unknown, unknown>, session: Option.Option<Session<A>>) =>
  Effect.succeed(session)

/** `SessionHttp.load`: the request's session as an effect; a store outage fails with the `StoreError`. */
export const load = <Self, A, T>(
  http: Http<Self, A, T>
): Effect.Effect<Option.Option<Session<A>>, StoreError, Self | T | HttpServerRequest.HttpServerRequest> =>
  withSession(http, answer<A>, Effect.fail)

// The StoreError's own response (503, Retry-After), the same one a handler's StoreError gets. `app` does
// not run, and with it neither do the pre-response hooks: the caching headers go on here.
const outageResponse = (error: StoreError, prepared: Prepared) =>
  Effect.map(error[HttpServerRespondable.symbol](), (response) => privateResponse(response, prepared.header))

/** `SessionHttp.middleware`: `app` with the request's session in its context. */
export const middleware = <Self, A, T, E, R>(
  http: Http<Self, A, T>,
  app: HttpApp.Default<E, R>
): HttpApp.Default<E, Exclude<R, CurrentSession<Self>> | Self | T> =>
  withSession(
    http,
    (fiber, session) => {
      // The request's fiber ends with its response, so the session joins the fiber's context for the
      // rest of it instead of being provided around `app` and taken back after: `Effect.provideService`
      // wraps `app` in an acquire/use/release, about 3 µs more per request (bench/RESULTS.md, "The
      // request path in-process"). Routers and `HttpLayerRouter` restore their
      // own context around what they run, so the session never reaches another request's code.
      return Effect.zipRight(
        FiberRef.set(FiberRef.currentContext, Context.add(fiber.currentContext, http.tag.Current, session)),
        app as HttpApp.Default<E, Exclude<R, CurrentSession<Self>>>
      )
    },
    outageResponse
  )
