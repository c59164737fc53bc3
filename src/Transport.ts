/**
 * How a session token travels between client and server.
 *
 * - The cookie transport (the default, for browsers) keeps the token in an `HttpOnly`, `Secure`,
 *   `SameSite=Lax` cookie on `Path=/` named `__Host-session` (`session` when the cookie cannot be a
 *   `__Host-` cookie: not `Secure`, another path, or a domain); every attribute is configurable and checked
 *   when the layer is built.
 * - The header transport (for API and mobile clients) reads `Authorization: Bearer <token>` or a named
 *   header, and hands new tokens out in a response header.
 *
 * A transport only moves strings: it never verifies a token (that is `Auth`) and never fails on what a
 * client sends; a missing or unusable value is simply "no token". A request may carry several candidates
 * (a cookie planted beside the real one, from a sibling subdomain or a longer path): the transport hands
 * them all over, in order, and the HTTP layer serves the first that resolves.
 *
 * Every transport layer here also adds the transport's header names to `Headers.currentRedactedNames`, so
 * that the platform's HTTP tracer (`HttpServer.serve`) records them as `<redacted>` in spans instead of the
 * token. A transport of your own gets the same with {@link layer}.
 *
 * @since 0.1.0
 * @module
 */
import * as Cookies from "@effect/platform/Cookies"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import { dual } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as internal from "./internal/transport.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * The transport port.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransportService {
  /**
   * The candidate tokens the request carries, in the order the client sent them, at most
   * {@link maxCandidates}; empty when it carries none. Never fails. The HTTP layer serves the first that
   * resolves to a session.
   */
  readonly read: (request: HttpServerRequest.HttpServerRequest) => ReadonlyArray<string>
  /**
   * Puts a token on a response. `expiresAt` is the session's expiry, `undefined` when the client should keep
   * the token for its own session only (a session issued with `persistent: false`: a cookie without
   * `Expires`/`Max-Age`); `now` is the current time, both in milliseconds since the epoch. `request` is the
   * request the response answers (the HTTP layer always passes it).
   */
  readonly write: (
    response: HttpServerResponse.HttpServerResponse,
    token: string,
    expiresAt: number | undefined,
    now: number,
    request?: HttpServerRequest.HttpServerRequest | undefined
  ) => HttpServerResponse.HttpServerResponse
  /** Tells the client to forget its token (for cookies: expires the cookie with the same attributes). */
  readonly clear: (
    response: HttpServerResponse.HttpServerResponse,
    request?: HttpServerRequest.HttpServerRequest | undefined
  ) => HttpServerResponse.HttpServerResponse
  /**
   * What a 401 response tells the client about how to authenticate (`WWW-Authenticate`, RFC 7235), if
   * anything; `refused` says whether the request presented a token that was refused. The HTTP layer calls
   * it for 401 responses only. The header transport on `Authorization` answers `Bearer` (RFC 6750), with
   * `error="invalid_token"` when refused; the cookie transport has none.
   */
  readonly challenge?:
    | ((
      response: HttpServerResponse.HttpServerResponse,
      request: HttpServerRequest.HttpServerRequest,
      refused: boolean
    ) => HttpServerResponse.HttpServerResponse)
    | undefined
  /**
   * The request header the token arrives in, lowercase (`cookie` for the cookie transport). Redacted in
   * traces by the transport layers; responses that depend on the session carry `Vary` on it.
   */
  readonly requestHeader: string
  /** The response header a token leaves in, lowercase (`set-cookie` for the cookie transport). Redacted in traces. */
  readonly responseHeader: string
  /**
   * Every request and response header a token travels in, lowercase, for a transport that uses more than
   * `requestHeader` and `responseHeader` ({@link makeCookieOrBearer}). All are redacted in traces, and
   * responses that depend on the session carry `Vary` on every request header.
   */
  readonly headers?: {
    readonly request: ReadonlyArray<string>
    readonly response: ReadonlyArray<string>
  } | undefined
}

/**
 * Options of the cookie transport. Defaults follow current browser guidance for session cookies.
 *
 * @since 0.1.0
 * @category models
 */
export interface CookieOptions {
  /**
   * Default `__Host-session` when the cookie is `secure` on `path: "/"` with no `domain` (the defaults), so
   * that a sibling subdomain cannot plant a cookie the browser sends in its place; otherwise `session` (for
   * example plain-http development with `secure: false`). See {@link cookieName}. A `__Host-` name requires
   * `secure`, `path: "/"` and no `domain`; `__Secure-` requires `secure`.
   */
  readonly name?: string | undefined
  /** Default none: the cookie goes back only to the host that set it. */
  readonly domain?: string | undefined
  /** Default `/`. */
  readonly path?: string | undefined
  /** Default `true`. Set `false` only for plain-http local development. */
  readonly secure?: boolean | undefined
  /** Default `true`: scripts cannot read the token. */
  readonly httpOnly?: boolean | undefined
  /** Default `lax`. `none` requires `secure`. */
  readonly sameSite?: "lax" | "strict" | "none" | undefined
  /** Default `false`. CHIPS partitioned cookie; requires `secure`. */
  readonly partitioned?: boolean | undefined
  /** Default none. */
  readonly priority?: "low" | "medium" | "high" | undefined
  /**
   * Default `true`: the cookie carries `Expires` and `Max-Age` equal to the session's expiry, so it
   * survives a browser restart exactly as long as the session does. `false` makes a browser-session
   * cookie (no `Expires`/`Max-Age`), dropped when the browser closes.
   */
  readonly persistent?: boolean | undefined
}

/**
 * Options of the header transport.
 *
 * @since 0.1.0
 * @category models
 */
export interface HeaderOptions {
  /**
   * The request header that carries the token. Default `authorization`, read as `Bearer <token>`; any
   * other header carries the bare token.
   */
  readonly header?: string | undefined
  /** The response header a new or re-signed token is written to. Default `x-session-token`. */
  readonly responseHeader?: string | undefined
}

// -----------------------------------------------------------------------------
// tags
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category tags
 */
export class Transport extends Context.Tag("effect-sessions/Transport")<Transport, TransportService>() {}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The transport's options contradict each other or the cookie rules (RFC 6265bis). Raised when the layer
 * is built.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTransportOptions extends Data.TaggedError("InvalidTransportOptions")<{
  readonly message: string
}> {}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * The cookie name used when none is given and the cookie cannot be a `__Host-` cookie (it is not `secure`,
 * or has a path other than `/`, or a domain).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCookieName = "session"

/**
 * The cookie name used when none is given and the cookie is `secure` on `/` with no domain, as by default.
 * Browsers accept a `__Host-` cookie only from the host itself, with those attributes, so a sibling
 * subdomain cannot toss in a cookie of that name.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultHostCookieName = "__Host-session"

/**
 * The name of the cookie the cookie transport uses with these options: `options.name` when given, else
 * {@link defaultHostCookieName} for a `secure` cookie on `/` with no domain, else {@link defaultCookieName}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const cookieName = (options: CookieOptions = {}): string =>
  options.name ??
    ((options.secure ?? true) && (options.path ?? "/") === "/" && options.domain === undefined
      ? defaultHostCookieName
      : defaultCookieName)

/**
 * At most this many candidate tokens are taken from one request (each costs a signature check).
 *
 * @since 0.1.0
 * @category constants
 */
export const maxCandidates = internal.maxCandidates

const noCandidates: ReadonlyArray<string> = []

// The attributes of the cookie, defaults filled in.
const cookieAttributes = (options: CookieOptions) =>
  ({
    path: options.path ?? "/",
    secure: options.secure ?? true,
    httpOnly: options.httpOnly ?? true,
    sameSite: options.sameSite ?? "lax",
    ...(options.domain !== undefined ? { domain: options.domain } : {}),
    ...(options.partitioned !== undefined ? { partitioned: options.partitioned } : {}),
    ...(options.priority !== undefined ? { priority: options.priority } : {})
  }) as const

// What breaks the cookie rules (RFC 6265bis, and what the platform's `Cookies` accepts), if anything.
const cookieProblem = (name: string, attributes: ReturnType<typeof cookieAttributes>): string | undefined => {
  const lower = name.toLowerCase()
  if (lower.startsWith("__host-")) {
    if (!attributes.secure || attributes.path !== "/" || attributes.domain !== undefined) {
      return "a __Host- cookie must be secure, have path \"/\" and no domain"
    }
  } else if (lower.startsWith("__secure-") && !attributes.secure) {
    return "a __Secure- cookie must be secure"
  }
  if (!attributes.path.startsWith("/")) return "the path must start with \"/\""
  if (attributes.sameSite === "none" && !attributes.secure) return "SameSite=None requires secure"
  if (attributes.partitioned === true && !attributes.secure) return "a partitioned cookie must be secure"
  const checked = Cookies.makeCookie(name, "x", attributes)
  return Either.isLeft(checked) ? checked.left.message : undefined
}

/**
 * The cookie transport, failing with `InvalidTransportOptions` when the options break the cookie rules.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCookie = (options: CookieOptions = {}): Effect.Effect<TransportService, InvalidTransportOptions> =>
  Effect.suspend(() => {
    const name = cookieName(options)
    const attributes = cookieAttributes(options)
    const problem = cookieProblem(name, attributes)
    if (problem !== undefined) {
      return Effect.fail(new InvalidTransportOptions({ message: `cookie "${name}": ${problem}` }))
    }
    const persistent = options.persistent ?? true

    const transport = Transport.of({
      read: (request) => internal.cookieCandidates(request.headers["cookie"], name),
      write: (response, token, expiresAt, now) =>
        internal.noStore(
          HttpServerResponse.unsafeSetCookie(
            response,
            name,
            token,
            persistent && expiresAt !== undefined
              ? {
                ...attributes,
                expires: new Date(expiresAt),
                // `now` is read as the response leaves, a few milliseconds after the expiry was set: round so
                // that Max-Age and Expires agree
                maxAge: Duration.seconds(Math.max(0, Math.round((expiresAt - now) / 1000)))
              }
              : attributes
          ),
          "Cookie"
        ),
      clear: (response) => internal.noStore(response.pipe(HttpServerResponse.expireCookie(name, attributes)), "Cookie"),
      requestHeader: "cookie",
      responseHeader: "set-cookie"
    })
    internal.registerCookie(transport, name)
    return Effect.succeed(transport)
  })

const bearer = /^bearer +([^\s]+) *$/i

/**
 * The header transport.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeHeader = (options: HeaderOptions = {}): Effect.Effect<TransportService, InvalidTransportOptions> =>
  Effect.suspend(() => {
    const header = (options.header ?? "authorization").toLowerCase()
    const responseHeader = (options.responseHeader ?? "x-session-token").toLowerCase()
    const token = /^[!#$%&'*+.^_`|~0-9a-z-]+$/
    if (!token.test(header) || !token.test(responseHeader)) {
      return Effect.fail(new InvalidTransportOptions({ message: "header names must be valid HTTP tokens" }))
    }
    const isAuthorization = header === "authorization"
    const vary = internal.canonical(header)
    return Effect.succeed(Transport.of({
      read: (request) => {
        const value = request.headers[header]
        if (value === undefined || value === "") return noCandidates
        if (isAuthorization) {
          const match = bearer.exec(value)
          return match === null ? noCandidates : [match[1]!]
        }
        // Node joins repeated headers of one name with ", ", and a token never contains a comma.
        const candidates = value.split(",").map((part) => part.trim()).filter((part) => part !== "")
        return candidates.length > maxCandidates ? candidates.slice(0, maxCandidates) : candidates
      },
      write: (response, value) => internal.noStore(HttpServerResponse.setHeader(response, responseHeader, value), vary),
      clear: (response) => internal.noStore(response, vary),
      // RFC 6750 names the `Bearer` scheme for `Authorization` only: another header has no scheme to name.
      challenge: isAuthorization ? internal.bearerChallenge : undefined,
      requestHeader: header,
      responseHeader
    }))
  })

/**
 * The request header with which a client that sends no token asks to be given one in the response header
 * rather than the cookie, by the transport of {@link makeCookieOrBearer}: `X-Session-Transport: header`
 * (at login, say).
 *
 * @since 0.1.0
 * @category constants
 */
export const transportRequestHeader = internal.transportRequestHeader

/**
 * A transport for routes that serve browsers and API clients alike: it reads the token from the cookie
 * (`cookieOptions`, as {@link makeCookie}) and from the header (`headerOptions`, as {@link makeHeader}:
 * `Authorization: Bearer <token>` by default), the header's first. A request that carries a token in the
 * header is answered in the header (a new token in `responseHeader`, nothing to expire); any other in the
 * cookie, except a request that carries no token but asks for the header with
 * `X-Session-Transport: header` ({@link transportRequestHeader}), as an API client's login does. A 401
 * answers the header transport's challenge unless the request carried the cookie (a browser). Responses
 * vary on both request headers, and all four header names are redacted in traces.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCookieOrBearer = (
  cookieOptions: CookieOptions = {},
  headerOptions: HeaderOptions = {}
): Effect.Effect<TransportService, InvalidTransportOptions> =>
  Effect.flatMap(makeCookie(cookieOptions), (cookie) =>
    Effect.flatMap(makeHeader(headerOptions), (header) => {
      if (header.requestHeader === "cookie" || header.responseHeader === "set-cookie") {
        return Effect.fail(
          new InvalidTransportOptions({ message: "the header transport cannot use the cookie headers" })
        )
      }
      const transport = Transport.of(internal.cookieOrHeader(cookie, header))
      internal.registerCookie(transport, cookieName(cookieOptions))
      return Effect.succeed(transport)
    }))

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * A transport of your own (or one made by {@link makeCookie} / {@link makeHeader}) as a layer: provides it,
 * and adds its `requestHeader` and `responseHeader` (and every name in `headers`) to
 * `Headers.currentRedactedNames` for everything built after it, so that the platform's HTTP tracer never records a token. Every transport layer here is made
 * with it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(make: Effect.Effect<TransportService, E, R>): Layer.Layer<Transport, E, R> =>
  Layer.scoped(Transport, Effect.tap(make, internal.redactHeaders))

/**
 * A transport layer under another tag, for an application with several session types (each type reads its
 * own cookie: `SessionHttp.make(AdminSession, { transportTag: AdminTransport })`). The header names stay
 * redacted in traces.
 *
 * ```ts
 * import { Context } from "effect"
 * import * as Transport from "effect-sessions/Transport"
 *
 * class AdminTransport extends Context.Tag("app/AdminTransport")<AdminTransport, Transport.TransportService>() {}
 *
 * const AdminTransportLive = Transport.layerCookie({ name: "__Host-admin" }).pipe(Transport.under(AdminTransport))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const under: {
  <I>(tag: Context.Tag<I, TransportService>): <E, R>(self: Layer.Layer<Transport, E, R>) => Layer.Layer<I, E, R>
  <E, R, I>(self: Layer.Layer<Transport, E, R>, tag: Context.Tag<I, TransportService>): Layer.Layer<I, E, R>
} = dual(
  2,
  <E, R, I>(self: Layer.Layer<Transport, E, R>, tag: Context.Tag<I, TransportService>): Layer.Layer<I, E, R> =>
    Layer.map(self, (context) => Context.make(tag, Context.get(context, Transport)))
)

/**
 * @since 0.1.0
 * @category layers
 */
export const layerCookie = (options: CookieOptions = {}): Layer.Layer<Transport, InvalidTransportOptions> =>
  layer(makeCookie(options))

/**
 * The cookie transport with its options read from `Config`. By default: `COOKIE_NAME`, `COOKIE_DOMAIN`,
 * `COOKIE_PATH`, `COOKIE_SECURE`, `COOKIE_HTTPONLY`, `COOKIE_SAMESITE`, `COOKIE_PARTITIONED`,
 * `COOKIE_PRIORITY`, `COOKIE_PERSISTENT`, each optional (`COOKIE_SAMESITE` and `COOKIE_PRIORITY` in any
 * case). Without `COOKIE_NAME` the name is {@link cookieName}'s: `__Host-session`, or `session` with
 * `COOKIE_SECURE=false`, a `COOKIE_PATH` other than `/` or a `COOKIE_DOMAIN`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCookieConfig = (
  config: Config.Config.Wrap<CookieOptions> = cookieConfig
): Layer.Layer<Transport, InvalidTransportOptions | ConfigError.ConfigError> =>
  layer(Effect.flatMap(Config.unwrap(config), makeCookie))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerHeader = (options: HeaderOptions = {}): Layer.Layer<Transport, InvalidTransportOptions> =>
  layer(makeHeader(options))

/**
 * The transport of {@link makeCookieOrBearer}: the cookie for browsers, `Authorization: Bearer` for API
 * clients, on the same routes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCookieOrBearer = (
  cookieOptions: CookieOptions = {},
  headerOptions: HeaderOptions = {}
): Layer.Layer<Transport, InvalidTransportOptions> => layer(makeCookieOrBearer(cookieOptions, headerOptions))

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

const caseInsensitive = <const L extends string>(name: string, literals: ReadonlyArray<L>): Config.Config<L> =>
  Config.string().pipe(
    Config.map((value) => value.toLowerCase()),
    Config.validate({
      message: `expected one of ${literals.join(", ")}`,
      validation: (value): value is L => (literals as ReadonlyArray<string>).includes(value)
    }),
    Config.nested(name)
  )

/**
 * The default environment variables of {@link layerCookieConfig}.
 *
 * @since 0.1.0
 * @category config
 */
export const cookieConfig: Config.Config.Wrap<CookieOptions> = {
  name: optional(Config.string("COOKIE_NAME")),
  domain: optional(Config.string("COOKIE_DOMAIN")),
  path: optional(Config.string("COOKIE_PATH")),
  secure: optional(Config.boolean("COOKIE_SECURE")),
  httpOnly: optional(Config.boolean("COOKIE_HTTPONLY")),
  sameSite: optional(caseInsensitive("COOKIE_SAMESITE", ["lax", "strict", "none"])),
  partitioned: optional(Config.boolean("COOKIE_PARTITIONED")),
  priority: optional(caseInsensitive("COOKIE_PRIORITY", ["low", "medium", "high"])),
  persistent: optional(Config.boolean("COOKIE_PERSISTENT"))
}
