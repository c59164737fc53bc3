/**
 * The CSRF example of the original Go library (adam-hanna/sessions), on Effect's Node HTTP server.
 *
 * A session carries a random CSRF token in its data. The session cookie is `HttpOnly`; the same token is
 * also sent in a readable `csrf` cookie, which the page's script copies into an `X-CSRF-Token` header. A
 * request counts only when the header matches the token stored with the session: another site can make a
 * browser send the cookies, but cannot read them to fill in the header. `Csrf.token()` makes the token and
 * `Csrf.requireToken` checks it; `Csrf.middleware()` also refuses state-changing requests (any method but
 * GET, HEAD, OPTIONS and TRACE) that a browser reports as coming from another site.
 *
 * - `GET /issue`   starts a session (at login) and sets both cookies.
 * - `GET /require` needs the session and the header; extends the session and both cookies.
 * - `GET /clear`   needs the session and the header; ends the session and expires both cookies (logout).
 *
 * ```sh
 * COOKIE_SECURE=false npm start
 * curl -i -c jar http://127.0.0.1:3000/issue
 * curl -i -b jar -H "X-CSRF-Token: $(awk '$6 == "csrf" { print $7 }' jar)" http://127.0.0.1:3000/require
 * ```
 *
 * Environment (read through `Config`): `PORT` (3000), `HOST` (127.0.0.1), `SESSION_KEYS` (comma-separated
 * keys of at least 32 bytes, newest first; a random key when unset), `SESSION_TTL` (`3 days`),
 * `COOKIE_SECURE` (`true`; `false` for plain-http local use) and the other `COOKIE_*` variables of
 * `Transport.cookieConfig`.
 *
 * The store: Redis when `REDIS_URL` is set (`redis://[[user]:password@]host[:port][/db]`), a Redis Cluster
 * when `REDIS_CLUSTER_NODES` is set (`host:port,host:port`), otherwise in memory (sessions then live in this
 * process only). The Redis stores also read `REDIS_PREFIX`, `REDIS_CONNECT_TIMEOUT`,
 * `REDIS_COMMAND_TIMEOUT` and `REDIS_AUTO_PIPELINING`; the in-memory store `SESSION_MEMORY_CAPACITY` and
 * `SESSION_MEMORY_SWEEP_INTERVAL`.
 *
 * Else the SQL store when `DATABASE_URL` is set (`postgres://…`, `mysql://…`, `sqlite:<path>`; its driver
 * must be installed), with the `SESSION_SQL_*` variables of `Sql.layerConfig`; the example creates the
 * table at start (`SESSION_SQL_MIGRATE=false` leaves it to your migrations).
 *
 * ```sh
 * REDIS_URL=redis://127.0.0.1:6379 COOKIE_SECURE=false npm start
 * DATABASE_URL=sqlite:sessions.db COOKIE_SECURE=false npm start
 * ```
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { flow } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Http from "node:http"
import { pathToFileURL } from "node:url"
import * as Auth from "../src/Auth.js"
import * as Csrf from "../src/layers/Csrf.js"
import * as SessionHttp from "../src/layers/Http.js"
import * as Memory from "../src/layers/Memory.js"
import * as Redis from "../src/layers/Redis.js"
import * as Sql from "../src/layers/Sql.js"
import * as Session from "../src/Session.js"
import * as Transport from "../src/Transport.js"

// -----------------------------------------------------------------------------
// the session
// -----------------------------------------------------------------------------

/** Sessions whose data is the CSRF token (the Go example kept it in the session's JSON field). */
export class AppSession extends Session.Tag<AppSession>()("examples/csrf/AppSession", {
  data: Schema.Struct({ csrf: Schema.String })
}) {}

/** The middleware and the handler operations (`require`, `issue`, `extend`, `clear`) for `AppSession`. */
export const AppHttp = SessionHttp.make(AppSession)

/**
 * The readable `csrf` cookie. It is a second cookie transport: the session cookie's options with another
 * name and without `HttpOnly`, so it gets the same path, domain, `Secure` flag and expiry, and its options
 * are checked when the layer is built like the session cookie's.
 */
export class CsrfCookie extends Context.Tag("examples/csrf/CsrfCookie")<CsrfCookie, Transport.TransportService>() {}

// -----------------------------------------------------------------------------
// handlers
// -----------------------------------------------------------------------------

const ok = HttpServerResponse.empty({ status: 200 })

// The request's session, provided it has one and its `X-CSRF-Token` header matches the session's token
// (compared in constant time); otherwise `Unauthorized`, which the server answers with 401. `requireToken`
// fails with `CsrfRejected` (403) on a bad token; the Go example answers 401 to both, and so does this one.
const requireCsrf = Csrf.requireToken(AppHttp.require, (data) => data.csrf).pipe(
  Effect.catchTag("CsrfRejected", () => new SessionHttp.Unauthorized())
)

// An empty 200 response, as in the Go example, with the `csrf` cookie set to the session's expiry.
const okWithCsrfCookie = (csrf: string, session: Session.Session<{ readonly csrf: string }>) =>
  Effect.gen(function*() {
    const cookie = yield* CsrfCookie
    const now = yield* Clock.currentTimeMillis
    return cookie.write(ok, csrf, session.expiresAt.epochMillis, now)
  })

const issueSession = Effect.gen(function*() {
  // A secret, so it comes from the platform CSPRNG (never from Effect's seeded `Random`).
  const csrf = Csrf.token()
  // At login: store the session and put its signed token in the session cookie.
  const { session } = yield* AppHttp.issue("user-1", { csrf })
  // The page's script reads this cookie and copies the token into `X-CSRF-Token`; the server only ever
  // checks the header, since a cross-site request sends the cookie too.
  return yield* okWithCsrfCookie(csrf, session)
})

const requireSession = Effect.gen(function*() {
  const session = yield* requireCsrf
  // Expiry is never extended automatically: this writes the later expiry to the store and a fresh cookie.
  const extended = yield* AppHttp.extend(session)
  // The csrf cookie must live as long as the session cookie.
  return yield* okWithCsrfCookie(extended.data.csrf, extended)
})

const clearSession = Effect.gen(function*() {
  const session = yield* requireCsrf
  // At logout: delete the session and expire its cookie...
  yield* AppHttp.clear(session)
  // ...and the csrf cookie with it.
  const cookie = yield* CsrfCookie
  return cookie.clear(ok)
})

/** The routes; any other path is answered 404 by the router. */
export const router = HttpRouter.empty.pipe(
  HttpRouter.get("/issue", issueSession),
  HttpRouter.get("/require", requireSession),
  HttpRouter.get("/clear", clearSession)
)

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

// The signing keys come from `SESSION_KEYS`. Without it, the example makes a random key: fine to try it
// out, but every restart then logs everyone out. A malformed `SESSION_KEYS` (a key that is too short) is
// an error, not a reason to fall back.
const AuthLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const keys = yield* Config.option(Auth.keysConfig("SESSION_KEYS"))
    if (Option.isSome(keys)) return Auth.layer({ keys: keys.value })
    yield* Effect.logWarning("SESSION_KEYS is not set: using a random key, so sessions will not survive a restart")
    return Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })
  })
)

// The session cookie and the csrf cookie, both from one read of the `COOKIE_*` variables.
const CookiesLive = Layer.unwrapEffect(
  Effect.map(Config.unwrap(Transport.cookieConfig), (options) =>
    Layer.merge(
      Transport.layerCookie(options),
      Transport.layerCookie({ ...options, name: "csrf", httpOnly: false }).pipe(Transport.under(CsrfCookie))
    ))
)

// `host:port` of a Redis URL, for the log: the URL itself may carry a password.
const redisAddress = (url: string): string => {
  try {
    const parsed = new URL(url)
    return ` at ${parsed.hostname}:${parsed.port === "" ? "6379" : parsed.port}`
  } catch {
    return ""
  }
}

// The store is chosen by what the environment names: a Redis node, a Redis Cluster, a SQL database, or none
// (in memory).
// The Redis layers read their own variables again, with the options that go with them. An empty variable
// counts as unset.
const StoreLive = Layer.unwrapEffect(
  Effect.gen(function*() {
    const url = Option.filter(yield* Config.option(Config.redacted("REDIS_URL")), (url) => Redacted.value(url) !== "")
    if (Option.isSome(url)) {
      yield* Effect.logInfo(`session store: Redis${redisAddress(Redacted.value(url.value))}`)
      return Redis.layerConfig()
    }
    const nodes = Option.filter(yield* Config.option(Config.string("REDIS_CLUSTER_NODES")), (nodes) => nodes !== "")
    if (Option.isSome(nodes)) {
      // seed nodes are `host:port`; anything else (a typo, a password pasted in) is left out of the log
      const seeds = nodes.value.split(",").map((node) => node.trim()).filter((node) =>
        /^(?:[\w.-]+|\[[\da-fA-F:.]+\]):\d+$/.test(node)
      )
      yield* Effect.logInfo(`session store: Redis Cluster (seed nodes ${seeds.join(", ")})`)
      return Redis.layerClusterConfig()
    }
    const database = Option.filter(
      yield* Config.option(Config.redacted("DATABASE_URL")),
      (url) => Redacted.value(url) !== ""
    )
    if (Option.isSome(database)) {
      // the scheme only: the rest of the URL can hold a password
      const scheme = /^[a-z]+/i.exec(Redacted.value(database.value))?.[0] ?? "?"
      yield* Effect.logInfo(`session store: SQL (${scheme}), its table created at start if missing`)
      // the SQL store's own variables, but the table is created at start unless SESSION_SQL_MIGRATE=false
      return Sql.layerConfig({
        ...Sql.defaultConfig,
        migrate: Config.withDefault(Config.boolean("SESSION_SQL_MIGRATE"), true)
      })
    }
    yield* Effect.logInfo(
      "session store: in memory (set REDIS_URL or REDIS_CLUSTER_NODES to use Redis, DATABASE_URL for SQL)"
    )
    return Memory.layerConfig()
  })
)

/** Everything the routes need: the sessions service (lifetime from `SESSION_TTL`) on its ports. */
export const SessionsLive = Session.layerConfig(AppSession).pipe(
  Layer.provideMerge(Layer.mergeAll(StoreLive, AuthLive, CookiesLive))
)

/**
 * The example served on `port` and `host` (port `0` picks a free port). The layer also provides the
 * `HttpServer`, whose `address` tells which port was bound; nothing listens until it is built.
 */
export const layer = (listen: { readonly port: number; readonly host: string }) =>
  // The origin check runs first, so a forged request is refused before the session is looked up. It checks
  // only state-changing methods: the routes here are GETs, as in the Go example, and rely on the token.
  HttpServer.serve(router, flow(AppHttp.middleware, Csrf.middleware())).pipe(
    Layer.provide(SessionsLive),
    Layer.provideMerge(NodeHttpServer.layer(() => Http.createServer(), listen))
  )

const MainLive = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      port: Config.withDefault(Config.port("PORT"), 3000),
      host: Config.withDefault(Config.string("HOST"), "127.0.0.1")
    }),
    (listen) => HttpServer.withLogAddress(layer(listen))
  )
)

// Serve only when this file is run (`npm start`), not when a test imports it.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(Layer.launch(MainLive))
}
