/**
 * What the parts of the HTTP layer share for one session type: the record `SessionHttp.make` builds once
 * (the sessions tag, the transport tag, the outage policy, the transport last checked), the check that
 * keeps two session types off one transport, and the pre-response hooks that put a token on the response
 * or tell the client to drop it. The read path (`httpRead.ts`) and the handler operations
 * (`httpWrite.ts`) are functions over this record.
 *
 * @internal
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { CurrentSession, Session, SessionInfo, Sessions, SessionsTag } from "../Session.js"
import type { TransportService } from "../Transport.js"
import { canonical, claim, dieLoudly, exposeToken, privateResponse, requestHeaders } from "./transport.js"

/**
 * What the middleware knows of one transport, worked out at its first request: the pre-response hook that
 * marks responses as depending on the token (`Vary`, `Cache-Control: private`), the hooks that put the
 * transport's challenge on a 401, and the span attributes under which the platform's tracer records the
 * token's request headers.
 */
export interface Prepared {
  readonly transport: TransportService
  /** The request headers a token arrives in, canonical, as `Vary` names them (`Cookie, Authorization`). */
  readonly header: string
  readonly vary: Effect.Effect<void>
  /** The transport's challenge on a 401 to a request without a token, and to one whose token was refused. */
  readonly challengeMissing: Effect.Effect<void> | undefined
  readonly challengeRefused: Effect.Effect<void> | undefined
  readonly requestHeaders: ReadonlyArray<string>
  /** The span attribute of each of `requestHeaders`. */
  readonly attributes: ReadonlyArray<string>
  // whether the middleware has checked that the transport's headers are redacted in traces
  redactionChecked: boolean
  // the redacted header names last seen, and whether they cover the request header: when they do, the
  // tracer recorded `<redacted>` and the span needs no look
  names: ReadonlyArray<string | RegExp> | undefined
  requestHeaderRedacted: boolean
}

/** What the read path and the handler operations of one session type share. */
export interface Http<Self, A, T> {
  /** The sessions service's tag: its key names the session type, `Current` is what handlers read. */
  readonly tag: Context.Tag<Self, Sessions<A>> & {
    readonly Current: Context.Tag<CurrentSession<Self>, Option.Option<Session<A>>>
  }
  readonly transportTag: Context.Tag<T, TransportService>
  /** `onStoreError: "anonymous"`: an outage serves the request as anonymous instead of answering 503. */
  readonly anonymousOnOutage: boolean
  /** The transport in context, checked as the middleware checks it (for the handler operations). */
  readonly transport: Effect.Effect<TransportService, never, T>
  // The transport this session type was last seen reading through, checked: the registry that keeps two
  // session types off one transport is asked once per transport, not on every request.
  prepared: Prepared | undefined
}

const prepare = (transport: TransportService): Prepared => {
  const headers = requestHeaders(transport)
  const header = headers.map(canonical).join(", ")
  return {
    transport,
    header,
    vary: HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(privateResponse(response, header))),
    challengeMissing: challenge(transport, false),
    challengeRefused: challenge(transport, true),
    requestHeaders: headers,
    attributes: headers.map((name) => `http.request.header.${name}`),
    redactionChecked: false,
    names: undefined,
    requestHeaderRedacted: false
  }
}

/**
 * `transport` prepared for `http`'s session type, or the message to die with when another session type
 * already reads through it.
 */
export const check = <Self, A, T>(http: Http<Self, A, T>, transport: TransportService): Prepared | string => {
  const prepared = http.prepared
  if (prepared !== undefined && prepared.transport === transport) return prepared
  const conflict = claim(transport, http.tag.key)
  if (conflict !== undefined) return conflict
  return http.prepared = prepare(transport)
}

/** The record of the session type `tag`, reading through the transport `transportTag` names. */
export const make = <Self, A, I, T>(
  tag: SessionsTag<Self, A, I>,
  transportTag: Context.Tag<T, TransportService>,
  anonymousOnOutage: boolean
): Http<Self, A, T> => {
  const http: Http<Self, A, T> = {
    tag,
    transportTag,
    anonymousOnOutage,
    transport: Effect.flatMap(transportTag, (transport) => {
      const checked = check(http, transport)
      return typeof checked === "string" ? dieLoudly(checked) : Effect.succeed(transport)
    }),
    prepared: undefined
  }
  return http
}

/**
 * The pre-response hook that puts the transport's challenge on a 401 response, made once per transport
 * (none for a transport without one).
 */
const challenge = (transport: TransportService, refused: boolean): Effect.Effect<void> | undefined => {
  const f = transport.challenge
  return f === undefined ?
    undefined :
    HttpApp.appendPreResponseHandler((request, response) =>
      Effect.succeed(response.status === 401 ? f(response, request, refused) : response)
    )
}

/**
 * Registers the pre-response hook that puts the token of `session` on the response: with the session's
 * expiry when its token is persistent, for the client's session only otherwise; named in
 * `Access-Control-Expose-Headers` when the request is cross-origin and the token is in a readable header.
 */
export const writeToken = (
  transport: TransportService,
  token: string,
  session: Pick<SessionInfo<unknown>, "expiresAt" | "persistent">
): Effect.Effect<void> => {
  const expiresAt = session.persistent ? session.expiresAt.epochMillis : undefined
  return HttpApp.appendPreResponseHandler((request, response) =>
    Effect.map(
      Clock.currentTimeMillis,
      (now) => exposeToken(transport, request, transport.write(response, token, expiresAt, now, request))
    )
  )
}

/** Registers the pre-response hook that tells the client to forget its token. */
export const clearToken = (transport: TransportService): Effect.Effect<void> =>
  HttpApp.appendPreResponseHandler((request, response) => Effect.succeed(transport.clear(response, request)))
