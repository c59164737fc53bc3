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
import type { CurrentSession, Session, Sessions, SessionsTag } from "../Session.js"
import type { TransportService } from "../Transport.js"
import { canonical, claim, dieLoudly, privateResponse } from "./transport.js"

/**
 * What the middleware knows of one transport, worked out at its first request: the pre-response hook that
 * marks responses as depending on the token (`Vary`, `Cache-Control: private`), and the span attribute
 * under which the platform's tracer records the token's request header.
 */
export interface Prepared {
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

/** Registers the pre-response hook that puts `token` on the response. */
export const writeToken = (transport: TransportService, token: string, expiresAt: number): Effect.Effect<void> =>
  HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.map(Clock.currentTimeMillis, (now) => transport.write(response, token, expiresAt, now))
  )

/** Registers the pre-response hook that tells the client to forget its token. */
export const clearToken = (transport: TransportService): Effect.Effect<void> =>
  HttpApp.appendPreResponseHandler((_request, response) => Effect.succeed(transport.clear(response)))
