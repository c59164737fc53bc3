/**
 * Cross-site request forgery (CSRF) protection for the cookie transport: a cookie goes along with every
 * request a browser makes to the site, whichever page asked for it, so a state-changing request must also
 * show that it comes from the site itself.
 *
 * Two defences, which can be combined:
 *
 * - {@link middleware} checks where a state-changing request comes from, with the headers browsers set
 *   and pages cannot forge: `Sec-Fetch-Site`, else `Origin`, else `Referer`. It needs nothing stored and
 *   protects every route at once.
 * - The synchronizer-token pattern: {@link token} makes a random token to keep in the session data (and
 *   hand to the page), and {@link requireToken} checks that the request repeats it in a header, which
 *   another site cannot read and therefore cannot fill in.
 *
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { Effect, Schema } from "effect"
 * import * as Csrf from "effect-sessions/layers/Csrf"
 * import * as SessionHttp from "effect-sessions/layers/Http"
 * import * as Session from "effect-sessions/Session"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", {
 *   data: Schema.Struct({ csrf: Schema.String })
 * }) {}
 * const AppHttp = SessionHttp.make(AppSession)
 *
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.post("/login", Effect.as(AppHttp.issue("user-1", { csrf: Csrf.token() }), HttpServerResponse.empty())),
 *   HttpRouter.post(
 *     "/transfer",
 *     Effect.as(Csrf.requireToken(AppHttp.require, (data) => data.csrf), HttpServerResponse.empty())
 *   )
 * )
 *
 * const Server = HttpServer.serve(router.pipe(Csrf.middleware()), AppHttp.middleware)
 * ```
 *
 * A rejected request fails with {@link CsrfRejected}, which the server answers with an empty 403.
 *
 * @since 0.1.0
 * @module
 */
import type * as HttpApp from "@effect/platform/HttpApp"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import * as Crypto from "node:crypto"
import { randomId } from "../Auth.js"
import * as HttpError from "../internal/httpError.js"
import type { Session } from "../Session.js"

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * A request refused as a possible cross-site request forgery. Answered with an empty 403.
 *
 * - `CrossSite`: `Sec-Fetch-Site` says the request comes from another site (or `same-site` when that is
 *   not allowed, or a value the middleware does not know).
 * - `OriginMismatch`: `Origin` (or, without it, `Referer`) names another origin, `null`, or is malformed.
 * - `MissingOrigin`: the request carries none of those headers and `requireOrigin` is set.
 * - `TokenMismatch`: the CSRF token header is missing or does not match the session's token.
 *
 * @since 0.1.0
 * @category errors
 */
export class CsrfRejected extends HttpError.TaggedError<CsrfRejected>("EffectSessionsCsrfRejected")(
  "CsrfRejected",
  { reason: Schema.Literal("CrossSite", "OriginMismatch", "MissingOrigin", "TokenMismatch") },
  { status: 403 }
) {
  override get message(): string {
    switch (this.reason) {
      case "CrossSite":
        return "the browser reports a cross-site request"
      case "OriginMismatch":
        return "the request's origin is not allowed"
      case "MissingOrigin":
        return "the request does not tell where it comes from"
      case "TokenMismatch":
        return "the CSRF token is missing or does not match the session's"
    }
  }
}

// Failures are values without fields that vary, so the rejection path allocates nothing.
const rejected = {
  CrossSite: new CsrfRejected({ reason: "CrossSite" }),
  OriginMismatch: new CsrfRejected({ reason: "OriginMismatch" }),
  MissingOrigin: new CsrfRejected({ reason: "MissingOrigin" }),
  TokenMismatch: new CsrfRejected({ reason: "TokenMismatch" })
} as const

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * Options of {@link middleware}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Methods that never change state and are let through unchecked. Default `GET`, `HEAD`, `OPTIONS`,
   * `TRACE`: every other method (and any unknown one) is checked.
   */
  readonly safeMethods?: ReadonlyArray<string> | undefined
  /**
   * Default `false`. Whether `Sec-Fetch-Site: same-site` (another subdomain of the same registrable
   * domain, such as `blog.example.com` to `app.example.com`) is let through.
   */
  readonly allowSameSite?: boolean | undefined
  /**
   * The origins (`scheme://host[:port]`, compared after URL normalisation) allowed to send state-changing
   * requests. Default: none, and a request is compared with its own `Host` header instead (see
   * {@link middleware}).
   *
   * When given, the list replaces the `Host` comparison, scheme included, so it must name the site's own
   * origins too; and a request whose `Origin` is listed is let through even when the browser reports it as
   * cross-site, which is how a trusted front end on another site is allowed.
   */
  readonly allowedOrigins?: ReadonlyArray<string> | undefined
  /** Default `true`. Whether `Referer` is checked when a request has neither `Sec-Fetch-Site` nor `Origin`. */
  readonly checkReferer?: boolean | undefined
  /**
   * Default `false`: a request with none of `Sec-Fetch-Site`, `Origin` and `Referer` is let through, since
   * it does not come from a current browser (a script, `curl`, a mobile app), and those cannot be made to
   * send another site's cookies. `true` refuses it, at the price of refusing such clients.
   */
  readonly requireOrigin?: boolean | undefined
}

/**
 * Options of {@link requireToken}.
 *
 * @since 0.1.0
 * @category models
 */
export interface TokenOptions {
  /** The request header that carries the token. Default `x-csrf-token`. */
  readonly header?: string | undefined
}

// -----------------------------------------------------------------------------
// origin check
// -----------------------------------------------------------------------------

const defaultSafeMethods: ReadonlyArray<string> = ["GET", "HEAD", "OPTIONS", "TRACE"]

const parseUrl = (value: string): URL | undefined => {
  try {
    const url = new URL(value)
    return url.protocol === "http:" || url.protocol === "https:" ? url : undefined
  } catch {
    return undefined
  }
}

// An `Origin` header is a bare origin: anything more (a path, credentials, a query) is malformed.
const parseOrigin = (value: string): URL | undefined => {
  const url = parseUrl(value)
  return url !== undefined && url.username === "" && url.password === "" && url.pathname === "/" &&
      url.search === "" && url.hash === ""
    ? url
    : undefined
}

// A `Host` header is `host[:port]` and nothing else; URL parsing would otherwise read `evil.test/@a.test`
// or `a.test#x` as a host other than the one they seem to name.
const hostHeader = /^(?:[\w.-]+|\[[\da-fA-F:.]+\])(?::\d+)?$/

// The request's own host, normalised as if it were reached with `protocol` (so that `example.com:443`
// matches `https://example.com`).
const ownHost = (host: string | undefined, protocol: string): string | undefined => {
  if (host === undefined || !hostHeader.test(host)) return undefined
  return parseUrl(`${protocol}//${host}`)?.host
}

/**
 * Refuses state-changing requests that a browser sent on behalf of another site. Usable with
 * `HttpServer.serve(app, Csrf.middleware())`, `HttpRouter.use(Csrf.middleware())` or
 * `app.pipe(Csrf.middleware())`. Requests with a method in `safeMethods` pass unchecked; for the others:
 *
 * 1. With `allowedOrigins`, a request whose `Origin` is listed passes.
 * 2. If `Sec-Fetch-Site` is present (every current browser sends it), `same-origin` and `none` (the user
 *    typed the address or used a bookmark) pass, `same-site` passes only with `allowSameSite`, and anything
 *    else is refused (`CrossSite`).
 * 3. Else, if `Origin` is present, it must be allowed (below); `Origin: null` and malformed values are
 *    refused (`OriginMismatch`).
 * 4. Else, if `Referer` is present and `checkReferer` is on (the default), the origin of the page it names
 *    must be allowed (below).
 * 5. Else the request carries no browser signal at all: it passes, unless `requireOrigin` is set
 *    (`MissingOrigin`).
 *
 * An origin is allowed when it is one of `allowedOrigins`, compared exactly (scheme, host and port). Without
 * `allowedOrigins`, when its host and port equal the request's `Host` header: the scheme is not compared,
 * because a server behind a TLS-terminating proxy cannot tell which scheme the browser used, and a guess
 * would refuse genuine requests; matching the host is what shows that the page belongs to this site (as in
 * Go's `net/http.CrossOriginProtection`). The difference matters only to browsers too old to send
 * `Sec-Fetch-Site`, and only against an attacker who can serve pages from the plain-http version of the
 * site; to compare schemes too, list the site's origins in `allowedOrigins`. Behind a proxy that rewrites
 * `Host` and sets `X-Forwarded-Host`, apply `HttpMiddleware.xForwardedHeaders` outside this middleware, or
 * list the public origins.
 *
 * A refused request fails with {@link CsrfRejected}, answered with an empty 403; unusual or malformed
 * headers are refusals, never defects.
 *
 * Throws `IllegalArgumentException` when an entry of `allowedOrigins` is not an http(s) origin.
 *
 * @since 0.1.0
 * @category middleware
 */
export const middleware = (
  options: Options = {}
): <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E | CsrfRejected, R> => {
  const check = checker(options, "Csrf.middleware")
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E | CsrfRejected, R> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const rejection = check(request)
      return rejection === undefined ? app : Effect.fail<E | CsrfRejected>(rejection)
    })
}

// What `HttpApi` answers for a `CsrfRejected` its API declares: the encoded error as JSON, with its 403.
// One response per reason, made once: refusing allocates nothing.
const encoded = Schema.encodeSync(CsrfRejected)
const rejectedResponses = Object.fromEntries(
  Object.entries(rejected).map(([reason, error]) => [
    reason,
    Effect.succeed(HttpServerResponse.unsafeJson(encoded(error), { status: 403 }))
  ])
) as Record<CsrfRejected["reason"], Effect.Effect<HttpServerResponse.HttpServerResponse>>

/**
 * {@link middleware} for an `HttpApi` app, in one line:
 *
 * ```ts
 * import { HttpApiBuilder } from "@effect/platform"
 * import * as Csrf from "effect-sessions/layers/Csrf"
 *
 * const Server = HttpApiBuilder.serve(Csrf.httpApiMiddleware())
 * ```
 *
 * `HttpApiBuilder.serve` takes only a middleware that adds no error, so this one answers a refused request
 * itself, with the response an `HttpApi` gives a `CsrfRejected` it declares: 403 and the encoded error,
 * `{"_tag":"CsrfRejected","reason":"CrossSite"}`. The checks and the options are {@link middleware}'s; it
 * covers everything the server serves (the API and `HttpApiBuilder.Router` routes alike), and works as well
 * with `HttpServer.serve(app, Csrf.httpApiMiddleware())`. Add `CsrfRejected` to the API
 * (`.addError(Csrf.CsrfRejected)`) for the OpenAPI document and `HttpApiClient` to know the 403.
 *
 * Throws `IllegalArgumentException` when an entry of `allowedOrigins` is not an http(s) origin.
 *
 * @since 0.1.0
 * @category middleware
 */
export const httpApiMiddleware = (
  options: Options = {}
): <E, R>(app: HttpApp.Default<E, R>) => HttpApp.Default<E, R> => {
  const check = checker(options, "Csrf.httpApiMiddleware")
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, R> =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const rejection = check(request)
      return rejection === undefined ? app : rejectedResponses[rejection.reason]
    })
}

// The checks of `middleware`, with its options read once: the refusal for a request, or `undefined`.
const checker = (
  options: Options,
  caller: string
): (request: HttpServerRequest.HttpServerRequest) => CsrfRejected | undefined => {
  const safeMethods = new Set((options.safeMethods ?? defaultSafeMethods).map((method) => method.toUpperCase()))
  const allowSameSite = options.allowSameSite ?? false
  const checkReferer = options.checkReferer ?? true
  const requireOrigin = options.requireOrigin ?? false
  const allowedOrigins = options.allowedOrigins === undefined ? undefined : new Set(
    options.allowedOrigins.map((origin) => {
      const url = parseOrigin(origin)
      if (url === undefined) {
        throw new Cause.IllegalArgumentException(`${caller}: "${origin}" is not an http(s) origin`)
      }
      return url.origin
    })
  )

  const isAllowed = (url: URL | undefined, host: string | undefined): boolean =>
    url !== undefined &&
    (allowedOrigins !== undefined ? allowedOrigins.has(url.origin) : url.host === ownHost(host, url.protocol))

  return (request: HttpServerRequest.HttpServerRequest): CsrfRejected | undefined => {
    if (safeMethods.has(request.method)) return undefined
    const headers = request.headers
    const origin = headers["origin"]
    if (allowedOrigins !== undefined && origin !== undefined) {
      const url = parseOrigin(origin)
      if (url !== undefined && allowedOrigins.has(url.origin)) return undefined
    }
    const site = headers["sec-fetch-site"]
    if (site !== undefined) {
      return site === "same-origin" || site === "none" || (allowSameSite && site === "same-site")
        ? undefined
        : rejected.CrossSite
    }
    if (origin !== undefined) {
      return isAllowed(parseOrigin(origin), headers["host"]) ? undefined : rejected.OriginMismatch
    }
    const referer = headers["referer"]
    if (checkReferer && referer !== undefined) {
      return isAllowed(parseUrl(referer), headers["host"]) ? undefined : rejected.OriginMismatch
    }
    return requireOrigin ? rejected.MissingOrigin : undefined
  }
}

// -----------------------------------------------------------------------------
// synchronizer token
// -----------------------------------------------------------------------------

/**
 * Bytes of randomness in a token made by {@link token}: 256 bits.
 *
 * @since 0.1.0
 * @category constants
 */
export const tokenBytes = 32

/**
 * A fresh CSRF token: {@link tokenBytes} bytes from the platform CSPRNG (`crypto.getRandomValues`, never
 * Effect's seeded `Random`), base64url-encoded (43 characters). Keep it in the session data at login and
 * hand it to the page (in a readable cookie or in the HTML).
 *
 * @since 0.1.0
 * @category constructors
 */
export const token = (): string => randomId(tokenBytes)

/**
 * Whether `given` is the token `expected`, compared in constant time so that the response time does not
 * tell how much of a guess was right (only the length can show, and every token from {@link token} has the
 * same length). `false` when `given` is missing, and when `expected` is empty: an empty token protects
 * nothing.
 *
 * @since 0.1.0
 * @category combinators
 */
export const verify = (expected: string, given: string | undefined): boolean => {
  if (given === undefined || expected.length === 0 || given.length !== expected.length) return false
  // UTF-16 code units, not UTF-8: UTF-8 encodes every lone surrogate as U+FFFD, so different strings could
  // compare equal.
  return Crypto.timingSafeEqual(Buffer.from(expected, "utf16le"), Buffer.from(given, "utf16le"))
}

/**
 * The session `current` yields, provided the request's token header (default `X-CSRF-Token`) matches the
 * token `select` finds in the session's data; otherwise `CsrfRejected` with reason `TokenMismatch`
 * (answered 403). The session is required first, so a request without one fails as `current` does.
 *
 * ```ts
 * import { HttpRouter, HttpServerResponse } from "@effect/platform"
 * import { Effect, Schema } from "effect"
 * import * as Csrf from "effect-sessions/layers/Csrf"
 * import * as SessionHttp from "effect-sessions/layers/Http"
 * import * as Session from "effect-sessions/Session"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({ csrf: Schema.String }) }) {}
 * const AppHttp = SessionHttp.make(AppSession)
 *
 * const transfer = HttpRouter.post(
 *   "/transfer",
 *   Effect.gen(function*() {
 *     const session = yield* Csrf.requireToken(AppHttp.require, (data) => data.csrf)
 *     return HttpServerResponse.text(`sent by ${session.userId}`)
 *   })
 * )
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const requireToken = <A, E, R>(
  current: Effect.Effect<Session<A>, E, R>,
  select: (data: A) => string,
  options: TokenOptions = {}
): Effect.Effect<Session<A>, E | CsrfRejected, R | HttpServerRequest.HttpServerRequest> => {
  const header = (options.header ?? "x-csrf-token").toLowerCase()
  return Effect.flatMap(
    current,
    (session) =>
      Effect.flatMap(
        HttpServerRequest.HttpServerRequest,
        (request) =>
          verify(select(session.data), request.headers[header])
            ? Effect.succeed(session)
            : Effect.fail(rejected.TokenMismatch)
      )
  )
}
