/**
 * An account page on an `HttpApi`: log in, see who you are, list the devices you are logged in on (with
 * their browser, login time and last use), revoke any of them, log out, or log out everywhere.
 *
 * There is no password: `login` takes a user name and trusts it. A real application checks credentials
 * there (and then calls `AppApi.issue` exactly as below); everything after login is as it would be.
 *
 * - `GET /`                            the page (examples/api/index.html and app.js: no framework, `fetch`)
 * - `POST /api/login`                  `{ "user": "alice" }` → issues a session and sets the `session` cookie
 * - `GET /api/me`                      who the session belongs to
 * - `POST /api/logout`                 ends this session and expires the cookie
 * - `GET /api/sessions`                the user's sessions, oldest first
 * - `DELETE /api/sessions/:id`         ends one of them (this one too, then the cookie is expired)
 * - `POST /api/logout-everywhere`      ends all of them
 * - `GET /openapi.json`                the OpenAPI document: the cookie security scheme, the 401 and 503
 *
 * Every `/api` endpoint but `login` is guarded by the `SessionApi` middleware: it answers 401 without a valid
 * session and 503 (with `Retry-After`) when the store is down. State-changing requests coming from another
 * site are refused with 403 by `Csrf.httpApiMiddleware()`; the page's own requests are same-origin.
 *
 * ```sh
 * npm run example:api          # http://127.0.0.1:3001
 * curl -si -c jar -H 'content-type: application/json' -d '{"user":"alice"}' http://127.0.0.1:3001/api/login
 * curl -si -b jar http://127.0.0.1:3001/api/sessions
 * ```
 *
 * Environment (read through `Config`): `PORT` (3001), `HOST` (127.0.0.1), `SESSION_KEYS` (comma-separated
 * keys of at least 32 bytes, newest first; a random key when unset), the other `SESSION_*` lifecycle
 * variables (`SESSION_TTL`, `SESSION_IDLE_TIMEOUT`, ...) and the `COOKIE_*` variables but `COOKIE_NAME` (the
 * API's security scheme names the cookie `session`). `COOKIE_SECURE` defaults to `true`, except when the
 * server listens on a loopback address, where it defaults to `false` so that every browser keeps the cookie
 * over plain http. The store: Redis when `REDIS_URL` is set (and `REDIS_PREFIX`, `REDIS_CONNECT_TIMEOUT`,
 * ...), otherwise in memory.
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as FileSystem from "@effect/platform/FileSystem"
import * as HttpApi from "@effect/platform/HttpApi"
import * as HttpApiBuilder from "@effect/platform/HttpApiBuilder"
import * as HttpApiEndpoint from "@effect/platform/HttpApiEndpoint"
import * as HttpApiGroup from "@effect/platform/HttpApiGroup"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as OpenApi from "@effect/platform/OpenApi"
import * as Config from "effect/Config"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Http from "node:http"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as Auth from "../src/Auth.js"
import * as Csrf from "../src/layers/Csrf.js"
import * as SessionApi from "../src/layers/HttpApi.js"
import * as Memory from "../src/layers/Memory.js"
import * as Redis from "../src/layers/Redis.js"
import * as Session from "../src/Session.js"
import { StoreError } from "../src/Store.js"
import * as Transport from "../src/Transport.js"

// -----------------------------------------------------------------------------
// the session
// -----------------------------------------------------------------------------

/** Sessions whose data is the name as the user typed it (the user id is its lower-case form). */
export class AppSession extends Session.Tag<AppSession>()("examples/api/AppSession", {
  data: Schema.Struct({ name: Schema.String })
}) {}

/**
 * The `HttpApi` middleware guarding the endpoints, its layer, and `issue` / `clear` / `clearAll` for handlers.
 * The cookie is named `session` whatever `COOKIE_SECURE` says (the OpenAPI document names it, and `Secure` is
 * off on loopback): the name the cookie transport would default to is `__Host-session` when `Secure`.
 */
export const AppApi = SessionApi.make(AppSession, { cookieName: Transport.defaultCookieName })

// -----------------------------------------------------------------------------
// the API
// -----------------------------------------------------------------------------

const UserName = Schema.Trim.pipe(Schema.minLength(1), Schema.maxLength(64), Schema.pattern(/^[\w.@ -]+$/))

/** Who the request's session belongs to. */
export const Me = Schema.Struct({
  user: Schema.String,
  name: Schema.String,
  createdAt: Schema.DateTimeUtc,
  expiresAt: Schema.DateTimeUtc
})

/** One of the user's sessions, as `GET /api/sessions` lists it. `id` is what `DELETE /api/sessions/:id` takes. */
export const SessionView = Schema.Struct({
  id: Schema.String,
  current: Schema.Boolean,
  userAgent: Schema.NullOr(Schema.String),
  address: Schema.NullOr(Schema.String),
  createdAt: Schema.DateTimeUtc,
  lastSeenAt: Schema.DateTimeUtc,
  expiresAt: Schema.DateTimeUtc
})

/** The account API. `CsrfRejected` (403) can answer any state-changing request; `StoreError` (503) any. */
export class Api extends HttpApi.make("accounts").add(
  HttpApiGroup.make("sessions")
    .add(HttpApiEndpoint.post("login", "/api/login").setPayload(Schema.Struct({ user: UserName })).addSuccess(Me))
    .add(HttpApiEndpoint.get("me", "/api/me").addSuccess(Me).middleware(AppApi.Middleware))
    .add(HttpApiEndpoint.post("logout", "/api/logout").middleware(AppApi.Middleware))
    .add(
      HttpApiEndpoint.get("list", "/api/sessions").addSuccess(Schema.Array(SessionView)).middleware(AppApi.Middleware)
    )
    .add(
      HttpApiEndpoint.del("revoke", "/api/sessions/:id")
        .setPath(Schema.Struct({ id: Schema.String }))
        .middleware(AppApi.Middleware)
    )
    .add(
      HttpApiEndpoint.post("logoutEverywhere", "/api/logout-everywhere")
        .addSuccess(Schema.Struct({ cleared: Schema.Number }))
        .middleware(AppApi.Middleware)
    )
).addError(StoreError).addError(Csrf.CsrfRejected).annotate(OpenApi.Title, "effect-sessions example: accounts") {}

// -----------------------------------------------------------------------------
// handlers
// -----------------------------------------------------------------------------

const me = (session: Session.Session<{ readonly name: string }>): typeof Me.Type => ({
  user: session.userId,
  name: session.data.name,
  createdAt: session.createdAt,
  expiresAt: session.expiresAt
})

const HandlersLive = HttpApiBuilder.group(Api, "sessions", (handlers) =>
  handlers
    // No password check: this is where a real application verifies credentials.
    .handle("login", ({ payload }) =>
      Effect.map(AppApi.issue(payload.user.toLowerCase(), { name: payload.user }), ({ session }) =>
        me(session)))
    .handle("me", () =>
      Effect.map(AppApi.Session, me))
    .handle("logout", () => Effect.flatMap(AppApi.Session, AppApi.clear))
    .handle("list", () =>
      Effect.gen(function*() {
        const session = yield* AppApi.Session
        const listed = yield* (yield* AppSession).list(session.userId)
        return listed.map((info) => ({
          id: info.key.session,
          current: info.key.session === session.key.session,
          userAgent: info.userAgent ?? null,
          address: info.address ?? null,
          createdAt: info.createdAt,
          lastSeenAt: info.lastSeenAt,
          expiresAt: info.expiresAt
        }))
      }).pipe(SessionApi.redactStoreError))
    .handle("revoke", ({ path }) =>
      Effect.gen(function*() {
        const session = yield* AppApi.Session
        // Revoking this very session is a logout: also expire the cookie.
        if (path.id === session.key.session) return yield* AppApi.clear(session)
        // `revoke` is bound to the user: an id of another user's session deletes nothing.
        yield* (yield* AppSession).revoke(session.userId, path.id)
      }).pipe(SessionApi.redactStoreError))
    .handle("logoutEverywhere", () =>
      Effect.map(Effect.flatMap(AppApi.Session, AppApi.clearAll), (cleared) => ({ cleared })))).pipe(
    Layer.provide(AppApi.layer)
  )

// -----------------------------------------------------------------------------
// the page
// -----------------------------------------------------------------------------

const asset = (name: string) => fileURLToPath(new URL(`./api/${name}`, import.meta.url))

// The script is a file of its own so that the page's Content-Security-Policy can forbid inline scripts.
const security = {
  "content-security-policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "cache-control": "no-cache"
}

/** `GET /` and `GET /app.js` (read once when the server starts), and an empty `GET /favicon.ico`. */
const PageLive = HttpApiBuilder.Router.use((router) =>
  Effect.gen(function*() {
    const fs = yield* FileSystem.FileSystem
    const html = yield* fs.readFileString(asset("index.html"))
    const script = yield* fs.readFileString(asset("app.js"))
    yield* router.get(
      "/",
      Effect.succeed(HttpServerResponse.text(html, { contentType: "text/html; charset=utf-8", headers: security }))
    )
    yield* router.get(
      "/app.js",
      Effect.succeed(
        HttpServerResponse.text(script, { contentType: "text/javascript; charset=utf-8", headers: security })
      )
    )
    // No icon: answered so that browsers do not log a 404 on every visit.
    yield* router.get("/favicon.ico", Effect.succeed(HttpServerResponse.empty({ status: 204 })))
  })
)

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

// The signing keys come from `SESSION_KEYS`; without it a random key (every restart logs everyone out).
const AuthLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const keys = yield* Config.option(Auth.keysConfig("SESSION_KEYS"))
    if (Option.isSome(keys)) return Auth.layer({ keys: keys.value })
    yield* Effect.logWarning("SESSION_KEYS is not set: using a random key, so sessions will not survive a restart")
    return Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })
  })
)

const isLoopback = (host: string) => host === "localhost" || host === "::1" || host.startsWith("127.")

// The `COOKIE_*` variables, with the name the API's security scheme documents, and `Secure` off by default on
// loopback only (Safari refuses `Secure` cookies from http://127.0.0.1; no browser sends them to a LAN address).
const CookieLive = (host: string) =>
  Layer.unwrapEffect(
    Effect.gen(function*() {
      const options = yield* Config.unwrap(Transport.cookieConfig)
      const secure = options.secure ?? !isLoopback(host)
      if (!secure && options.secure === undefined) {
        yield* Effect.logInfo("cookies without Secure: plain http on loopback (set COOKIE_SECURE=true to change)")
      }
      return Transport.layerCookie({ ...options, name: Transport.defaultCookieName, secure })
    })
  )

// Redis when `REDIS_URL` names one (an empty value counts as unset), otherwise in memory.
const StoreLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const url = Option.filter(yield* Config.option(Config.redacted("REDIS_URL")), (url) => Redacted.value(url) !== "")
    if (Option.isSome(url)) {
      yield* Effect.logInfo("session store: Redis (REDIS_URL)")
      return Redis.layerConfig()
    }
    yield* Effect.logInfo("session store: in memory (set REDIS_URL to use Redis)")
    return Memory.layerConfig()
  })
)

/**
 * The example served on `port` and `host` (port `0` picks a free port). The layer also provides the
 * `HttpServer`, whose `address` tells which port was bound, and the sessions service with its store (so
 * that tests can look at it); nothing listens until it is built.
 */
export const layer = (listen: { readonly port: number; readonly host: string }) =>
  // Cross-site writes are refused with 403 (the `CsrfRejected` the API declares, so the document shows it).
  HttpApiBuilder.serve(Csrf.httpApiMiddleware()).pipe(
    Layer.provide(HttpApiBuilder.middlewareOpenApi()),
    Layer.provide(PageLive),
    Layer.provide(HttpApiBuilder.api(Api).pipe(Layer.provide(HandlersLive))),
    Layer.provideMerge(Session.layerConfig(AppSession).pipe(Layer.provideMerge(Layer.merge(StoreLive, AuthLive)))),
    Layer.provideMerge(CookieLive(listen.host)),
    Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), listen))
  )

const MainLive = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      port: Config.withDefault(Config.port("PORT"), 3001),
      host: Config.withDefault(Config.string("HOST"), "127.0.0.1")
    }),
    (listen) => HttpServer.withLogAddress(layer(listen))
  )
)

// Serve only when this file is run (`npm run example:api`), not when a test imports it.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(Layer.launch(MainLive))
}
