/**
 * What the transports and the HTTP layers share and users never import: the cookie name behind a cookie
 * transport (for messages that must name it), how many candidate tokens a request may hand over, the merge of
 * a `Vary` header, the redaction of a transport's header names in traces, and the registry that keeps two
 * session types off one transport.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import type * as Tracer from "effect/Tracer"
import type { TransportService } from "../Transport.js"

// The cookie a cookie transport reads and writes, keyed by the transport service (a spread copy of the
// service is another object, and is then described by its request header only).
const cookieNames = new WeakMap<object, string>()

/** @internal */
export const registerCookie = (transport: TransportService, name: string): void => {
  cookieNames.set(transport, name)
}

/** @internal The cookie name of a cookie transport made by this package, if `transport` is one. */
export const cookieName = (transport: TransportService): string | undefined => cookieNames.get(transport)

/**
 * @internal At most this many candidate tokens are taken from one request (each costs a signature check):
 * `Transport.maxCandidates`, which the transports read by and the HTTP layer knows of.
 */
export const maxCandidates = 4

/** @internal How messages name a transport: `cookie "session"`, or `header "authorization"`. */
export const describe = (transport: TransportService): string => {
  const cookie = cookieNames.get(transport)
  return cookie !== undefined ? `cookie "${cookie}"` : `header "${transport.requestHeader}"`
}

/** @internal `x-session-token` as `X-Session-Token`: how header names read in a `Vary` value. */
export const canonical = (name: string): string => name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase())

/**
 * @internal `vary` merged with `header` (given canonical): unchanged when it already names the header, case
 * insensitively, or is `*`.
 */
export const mergeVary = (vary: string | undefined, header: string): string => {
  if (vary === undefined || vary.trim() === "") return header
  const wanted = header.toLowerCase()
  for (const part of vary.split(",")) {
    const name = part.trim().toLowerCase()
    if (name === wanted || name === "*") return vary
  }
  return `${vary}, ${header}`
}

/**
 * @internal A response that depends on the request's token: `Vary` on the header that carries it, and
 * `Cache-Control: private` unless the response already says how it may be cached.
 */
export const privateResponse = (
  response: HttpServerResponse.HttpServerResponse,
  header: string
): HttpServerResponse.HttpServerResponse => {
  const vary = response.headers["vary"]
  const merged = mergeVary(vary, header)
  const cacheControl = response.headers["cache-control"]
  if (merged === vary && cacheControl !== undefined) return response
  return HttpServerResponse.setHeaders(
    response,
    cacheControl === undefined ? { vary: merged, "cache-control": "private" } : { vary: merged }
  )
}

/** @internal A response that carries a token, or tells the client to drop one: never stored by any cache. */
export const noStore = (
  response: HttpServerResponse.HttpServerResponse,
  header: string
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.setHeaders(response, {
    "cache-control": "no-store",
    vary: mergeVary(response.headers["vary"], header)
  })

/** @internal Whether `names` (the platform's redacted header names) covers `name`. */
export const isRedacted = (names: ReadonlyArray<string | RegExp>, name: string): boolean =>
  names.some((redacted) => typeof redacted === "string" ? redacted.toLowerCase() === name : redacted.test(name))

/**
 * @internal Adds the transport's header names to `Headers.currentRedactedNames` for the rest of the scope:
 * in a layer, for everything built after it, `HttpServer.serve`'s request fibers included, whose tracer
 * reads them before any middleware runs.
 */
export const redactHeaders = (transport: TransportService): Effect.Effect<void, never, Scope.Scope> =>
  Effect.locallyScopedWith(Headers.currentRedactedNames, (names) => {
    const missing = [transport.requestHeader, transport.responseHeader].filter((name, i, all) =>
      all.indexOf(name) === i && !isRedacted(names, name)
    )
    return missing.length === 0 ? names : [...names, ...missing]
  })

// The session type (its `Session.Tag` key) that reads its tokens through each transport service. Two types
// on one transport would read each other's cookie: each refuses the other's token and expires its cookie.
const owners = new WeakMap<object, string>()

/**
 * @internal Records that the session type `type` reads its tokens through `transport`; answers the message to
 * fail with when another type already does.
 */
export const claim = (transport: TransportService, type: string): string | undefined => {
  const owner = owners.get(transport)
  if (owner === undefined) {
    owners.set(transport, type)
    return undefined
  }
  return owner === type
    ? undefined
    : `the session types "${owner}" and "${type}" read their tokens through one transport (${
      describe(transport)
    }); give each type a transport of its own (the \`transportTag\` option of SessionHttp.make / SessionApi.make, ` +
      "with Transport.under)"
}

/** @internal Logs `message` as an error, then dies with it: a misconfiguration nobody should miss. */
export const dieLoudly = (message: string): Effect.Effect<never> =>
  Effect.zipRight(Effect.logError(`effect-sessions: ${message}`), Effect.dieMessage(`effect-sessions: ${message}`))

/**
 * @internal Fails the layer being built (a defect, after an error log) when another session type already reads
 * through `transport`.
 */
export const claimAtBuild = (transport: TransportService, type: string): Effect.Effect<void> => {
  const conflict = claim(transport, type)
  return conflict === undefined ? Effect.void : dieLoudly(conflict)
}

const redacted = "<redacted>"

/**
 * @internal Overwrites `attribute` with `<redacted>` on `span` and the local spans above it (the platform's
 * request span may sit above the current one), where it holds anything else: for a secret header the
 * tracer recorded because its name was not in `Headers.currentRedactedNames`.
 */
export const redactSpan = (span: Tracer.AnySpan | undefined, attribute: string): void => {
  while (span !== undefined && span._tag === "Span") {
    const value = span.attributes.get(attribute)
    if (value !== undefined && value !== redacted) span.attribute(attribute, redacted)
    span = Option.getOrUndefined(span.parent)
  }
}
