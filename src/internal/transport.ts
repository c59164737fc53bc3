/**
 * What the transports and the HTTP layers share and users never import: the cookie name behind a cookie
 * transport (for messages that must name it), how many candidate tokens a request may hand over, the merge of
 * a `Vary` header, the redaction of a transport's header names in traces, and the registry that keeps two
 * session types off one transport.
 *
 * @internal
 */
import * as Headers from "@effect/platform/Headers"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
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

const noCandidates: ReadonlyArray<string> = []

// A cookie value as the browser sent it: trimmed, its quotes stripped, percent-decoded when it decodes
// (the platform's own reading of cookies).
const cookieValue = (raw: string): string => {
  let value = raw.trim()
  if (value.length >= 2 && value.charCodeAt(0) === 0x22 && value.charCodeAt(value.length - 1) === 0x22) {
    value = value.slice(1, -1).trim()
  }
  if (value.indexOf("%") !== -1) {
    try {
      value = decodeURIComponent(value)
    } catch {
      // not percent-encoding after all: kept as sent
    }
  }
  return value
}

/**
 * @internal Every non-empty value of the cookie `name` in a `Cookie` header, in header order, at most
 * {@link maxCandidates}. `request.cookies` keeps only the first of several cookies of one name, which lets a
 * cookie planted by a sibling subdomain (or on a longer path, which browsers send first) hide the real one.
 */
export const cookieCandidates = (header: string | undefined, name: string): ReadonlyArray<string> => {
  if (header === undefined || header.indexOf(name) === -1) return noCandidates
  let found: Array<string> | undefined
  const length = header.length
  let position = 0
  while (position < length) {
    let end = header.indexOf(";", position)
    if (end === -1) end = length
    const equals = header.indexOf("=", position)
    if (equals !== -1 && equals < end && header.slice(position, equals).trim() === name) {
      const value = cookieValue(header.slice(equals + 1, end))
      if (value !== "") {
        if (found === undefined) found = [value]
        else found.push(value)
        if (found.length === maxCandidates) break
      }
    }
    position = end + 1
  }
  return found ?? noCandidates
}

/** @internal How messages name a transport: `cookie "session"`, or `header "authorization"`. */
export const describe = (transport: TransportService): string => {
  const cookie = cookieNames.get(transport)
  return cookie !== undefined ? `cookie "${cookie}"` : `header "${transport.requestHeader}"`
}

/** @internal `x-session-token` as `X-Session-Token`: how header names read in a `Vary` value. */
export const canonical = (name: string): string => name.replace(/(^|-)([a-z])/g, (_, dash, c) => dash + c.toUpperCase())

/** @internal Every request header a token of `transport` arrives in. */
export const requestHeaders = (transport: TransportService): ReadonlyArray<string> =>
  transport.headers?.request ?? [transport.requestHeader]

/** @internal Every response header a token of `transport` leaves in. */
export const responseHeaders = (transport: TransportService): ReadonlyArray<string> =>
  transport.headers?.response ?? [transport.responseHeader]

/**
 * @internal The header list `list` (`Vary`, `Access-Control-Expose-Headers`) merged with `header` (given
 * canonical; several as `A, B`): unchanged when it already names each, case insensitively, or, if `star`
 * covers all, is `*`.
 */
export const mergeList = (list: string | undefined, header: string, star = true): string => {
  if (list === undefined || list.trim() === "") return header
  if (header.indexOf(",") !== -1) {
    let merged = list
    for (const name of header.split(",")) merged = mergeList(merged, name.trim(), star)
    return merged
  }
  const wanted = header.toLowerCase()
  for (const part of list.split(",")) {
    const name = part.trim().toLowerCase()
    if (name === wanted || (star && name === "*")) return list
  }
  return `${list}, ${header}`
}

/** @internal `vary` merged with `header` (given canonical): unchanged when it already names it or is `*`. */
export const mergeVary = (vary: string | undefined, header: string): string => mergeList(vary, header)

/**
 * @internal `response`, which carries a token in the response header(s) of `transport`, named in
 * `Access-Control-Expose-Headers` when the request is cross-origin (an `Origin`, or a response that allows
 * one), so that a browser's `fetch` may read it. `*` is not taken to cover it: it does not for a request
 * with credentials.
 */
export const exposeToken = (
  transport: TransportService,
  request: HttpServerRequest.HttpServerRequest,
  response: HttpServerResponse.HttpServerResponse
): HttpServerResponse.HttpServerResponse => {
  if (request.headers["origin"] === undefined && response.headers["access-control-allow-origin"] === undefined) {
    return response
  }
  let exposed = response.headers["access-control-expose-headers"]
  const before = exposed
  for (const name of responseHeaders(transport)) {
    if (name !== "set-cookie" && response.headers[name] !== undefined) {
      exposed = mergeList(exposed, canonical(name), false)
    }
  }
  return exposed === before || exposed === undefined
    ? response
    : HttpServerResponse.setHeader(response, "access-control-expose-headers", exposed)
}

/** @internal The header transport's challenge on `Authorization` (RFC 6750 §3), unless the response has one. */
export const bearerChallenge = (
  response: HttpServerResponse.HttpServerResponse,
  _request: HttpServerRequest.HttpServerRequest,
  refused: boolean
): HttpServerResponse.HttpServerResponse =>
  response.headers["www-authenticate"] !== undefined
    ? response
    : HttpServerResponse.setHeader(response, "www-authenticate", refused ? "Bearer error=\"invalid_token\"" : "Bearer")

/** @internal `Transport.transportRequestHeader`. */
export const transportRequestHeader = "x-session-transport"

/**
 * @internal The transport of `Transport.makeCookieOrBearer`, over a cookie transport and a header transport:
 * which one answers is decided by what the request carried (see there).
 */
export const cookieOrHeader = (cookie: TransportService, header: TransportService): TransportService => {
  const vary = `${canonical(cookie.requestHeader)}, ${canonical(header.requestHeader)}`
  const inHeader = (request: HttpServerRequest.HttpServerRequest | undefined) =>
    request !== undefined && (header.read(request).length > 0 ||
      (cookie.read(request).length === 0 && request.headers[transportRequestHeader]?.toLowerCase() === "header"))
  return {
    read: (request) => {
      const fromHeader = header.read(request)
      const fromCookie = cookie.read(request)
      if (fromCookie.length === 0) return fromHeader
      if (fromHeader.length === 0) return fromCookie
      return [...fromHeader, ...fromCookie].slice(0, maxCandidates)
    },
    write: (response, token, expiresAt, now, request) =>
      noStore((inHeader(request) ? header : cookie).write(response, token, expiresAt, now, request), vary),
    clear: (response, request) => noStore((inHeader(request) ? header : cookie).clear(response, request), vary),
    challenge: (response, request, refused) =>
      header.challenge === undefined || cookie.read(request).length > 0
        ? response
        : header.challenge(response, request, refused),
    requestHeader: cookie.requestHeader,
    responseHeader: cookie.responseHeader,
    headers: {
      request: [cookie.requestHeader, header.requestHeader],
      response: [cookie.responseHeader, header.responseHeader]
    }
  }
}

/**
 * @internal A response that depends on the request's token: `Vary` on the header that carries it, and
 * `Cache-Control: private` unless the response already says how it may be cached. Header by header with
 * `setHeader`, not `HttpServerResponse.setHeaders` (`Headers.setAll`, two object spreads): this runs on
 * every response to a request with a token, and the CPU profile of the HTTP benchmark (`npm run bench --
 * profile`, bench/PROFILE.md at afac9b5) had `Headers.setAll` as the frame of session/memory that grew most over
 * the floor (5.9 µs of wall time per request); it is absent from the profile since (464c758).
 */
export const privateResponse = (
  response: HttpServerResponse.HttpServerResponse,
  header: string
): HttpServerResponse.HttpServerResponse => {
  const vary = response.headers["vary"]
  const merged = mergeVary(vary, header)
  const withVary = merged === vary ? response : HttpServerResponse.setHeader(response, "vary", merged)
  return response.headers["cache-control"] === undefined
    ? HttpServerResponse.setHeader(withVary, "cache-control", "private")
    : withVary
}

/** @internal A response that carries a token, or tells the client to drop one: never stored by any cache. */
export const noStore = (
  response: HttpServerResponse.HttpServerResponse,
  header: string
): HttpServerResponse.HttpServerResponse =>
  HttpServerResponse.setHeader(
    HttpServerResponse.setHeader(response, "cache-control", "no-store"),
    "vary",
    mergeVary(response.headers["vary"], header)
  )

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
    const missing = [...requestHeaders(transport), ...responseHeaders(transport)].filter((name, i, all) =>
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
