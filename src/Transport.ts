/**
 * How a session token travels between client and server.
 *
 * - The cookie transport (the default, for browsers) keeps the token in an `HttpOnly`, `Secure`,
 *   `SameSite=Lax` cookie named `session` on `Path=/`; every attribute is configurable and checked when
 *   the layer is built.
 * - The header transport (for API and mobile clients) reads `Authorization: Bearer <token>` or a named
 *   header, and hands new tokens out in a response header.
 *
 * A transport only moves strings: it never verifies a token (that is `Auth`) and never fails on what a
 * client sends; a missing or unusable value is simply "no token".
 *
 * @since 0.1.0
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
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"

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
  /** The token the request carries, if any. Never fails. */
  readonly read: (request: HttpServerRequest.HttpServerRequest) => Option.Option<string>
  /**
   * Puts a token on a response. `expiresAt` is the session's expiry and `now` the current time, both in
   * milliseconds since the epoch.
   */
  readonly write: (
    response: HttpServerResponse.HttpServerResponse,
    token: string,
    expiresAt: number,
    now: number
  ) => HttpServerResponse.HttpServerResponse
  /** Tells the client to forget its token (for cookies: expires the cookie with the same attributes). */
  readonly clear: (response: HttpServerResponse.HttpServerResponse) => HttpServerResponse.HttpServerResponse
}

/**
 * Options of the cookie transport. Defaults follow current browser guidance for session cookies.
 *
 * @since 0.1.0
 * @category models
 */
export interface CookieOptions {
  /** Default `session`. A `__Host-` name requires `secure`, `path: "/"` and no `domain`; `__Secure-` requires `secure`. */
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
 * The cookie name used when none is given.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultCookieName = "session"

const noStore = (response: HttpServerResponse.HttpServerResponse): HttpServerResponse.HttpServerResponse => {
  const vary = response.headers["vary"]
  return HttpServerResponse.setHeaders(response, {
    "cache-control": "no-store",
    vary: vary === undefined || vary === "" ? "Cookie" : /\bcookie\b/i.test(vary) ? vary : `${vary}, Cookie`
  })
}

/**
 * The cookie transport, failing with `InvalidTransportOptions` when the options break the cookie rules.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCookie = (options: CookieOptions = {}): Effect.Effect<TransportService, InvalidTransportOptions> =>
  Effect.suspend(() => {
    const name = options.name ?? defaultCookieName
    const attributes = {
      path: options.path ?? "/",
      secure: options.secure ?? true,
      httpOnly: options.httpOnly ?? true,
      sameSite: options.sameSite ?? "lax",
      ...(options.domain !== undefined ? { domain: options.domain } : {}),
      ...(options.partitioned !== undefined ? { partitioned: options.partitioned } : {}),
      ...(options.priority !== undefined ? { priority: options.priority } : {})
    } as const
    const invalid = (message: string) => Effect.fail(new InvalidTransportOptions({ message }))
    const lower = name.toLowerCase()
    if (lower.startsWith("__host-")) {
      if (!attributes.secure || attributes.path !== "/" || attributes.domain !== undefined) {
        return invalid(`cookie "${name}": a __Host- cookie must be secure, have path "/" and no domain`)
      }
    } else if (lower.startsWith("__secure-") && !attributes.secure) {
      return invalid(`cookie "${name}": a __Secure- cookie must be secure`)
    }
    if (!attributes.path.startsWith("/")) {
      return invalid(`cookie "${name}": the path must start with "/"`)
    }
    if (attributes.sameSite === "none" && !attributes.secure) {
      return invalid(`cookie "${name}": SameSite=None requires secure`)
    }
    if (attributes.partitioned === true && !attributes.secure) {
      return invalid(`cookie "${name}": a partitioned cookie must be secure`)
    }
    const checked = Cookies.makeCookie(name, "x", attributes)
    if (Either.isLeft(checked)) return invalid(`cookie "${name}": ${checked.left.message}`)
    const persistent = options.persistent ?? true

    return Effect.succeed(Transport.of({
      read: (request) => {
        const value = request.cookies[name]
        return value === undefined || value === "" ? Option.none() : Option.some(value)
      },
      write: (response, token, expiresAt, now) =>
        noStore(HttpServerResponse.unsafeSetCookie(
          response,
          name,
          token,
          persistent
            ? {
              ...attributes,
              expires: new Date(expiresAt),
              // `now` is read as the response leaves, a few milliseconds after the expiry was set: round so
              // that Max-Age and Expires agree
              maxAge: Duration.seconds(Math.max(0, Math.round((expiresAt - now) / 1000)))
            }
            : attributes
        )),
      clear: (response) => noStore(response.pipe(HttpServerResponse.expireCookie(name, attributes)))
    }))
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
    return Effect.succeed(Transport.of({
      read: (request) => {
        const value = request.headers[header]
        if (value === undefined || value === "") return Option.none()
        if (!isAuthorization) return Option.some(value.trim())
        const match = bearer.exec(value)
        return match === null ? Option.none() : Option.some(match[1]!)
      },
      write: (response, value) =>
        HttpServerResponse.setHeaders(response, { [responseHeader]: value, "cache-control": "no-store" }),
      clear: (response) => HttpServerResponse.setHeader(response, "cache-control", "no-store")
    }))
  })

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category layers
 */
export const layerCookie = (options: CookieOptions = {}): Layer.Layer<Transport, InvalidTransportOptions> =>
  Layer.effect(Transport, makeCookie(options))

/**
 * The cookie transport with its options read from `Config`. By default: `COOKIE_NAME`, `COOKIE_DOMAIN`,
 * `COOKIE_PATH`, `COOKIE_SECURE`, `COOKIE_HTTPONLY`, `COOKIE_SAMESITE`, `COOKIE_PARTITIONED`,
 * `COOKIE_PRIORITY`, `COOKIE_PERSISTENT`, each optional (`COOKIE_SAMESITE` and `COOKIE_PRIORITY` in any
 * case).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCookieConfig = (
  config: Config.Config.Wrap<CookieOptions> = cookieConfig
): Layer.Layer<Transport, InvalidTransportOptions | ConfigError.ConfigError> =>
  Layer.effect(Transport, Effect.flatMap(Config.unwrap(config), makeCookie))

/**
 * @since 0.1.0
 * @category layers
 */
export const layerHeader = (options: HeaderOptions = {}): Layer.Layer<Transport, InvalidTransportOptions> =>
  Layer.effect(Transport, makeHeader(options))

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
