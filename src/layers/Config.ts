/**
 * The whole stack from the environment, in one layer: the sessions service, its signing keys, its store
 * and its transport, each read through Effect `Config`.
 *
 * ```ts
 * import { HttpRouter, HttpServer, HttpServerResponse } from "@effect/platform"
 * import { NodeHttpServer, NodeRuntime } from "@effect/platform-node"
 * import { Effect, Layer, Schema } from "effect"
 * import { createServer } from "node:http"
 * import * as SessionsConfig from "effect-sessions/layers/Config"
 * import * as SessionHttp from "effect-sessions/layers/Http"
 * import * as Session from "effect-sessions/Session"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({}) }) {}
 * const AppHttp = SessionHttp.make(AppSession)
 * const router = HttpRouter.empty.pipe(
 *   HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId)))
 * )
 *
 * HttpServer.serve(router, AppHttp.middleware).pipe(
 *   Layer.provide(SessionsConfig.layer(AppSession)),
 *   Layer.provide(NodeHttpServer.layer(createServer, { port: 3000 })),
 *   Layer.launch,
 *   NodeRuntime.runMain
 * )
 * ```
 *
 * | variable | read by |
 * | --- | --- |
 * | `SESSION_KEYS` (required, `Redacted`) | `Auth.layerConfig` |
 * | `SESSION_TTL`, `SESSION_IDLE_TIMEOUT`, `SESSION_ABSOLUTE_LIFETIME`, `SESSION_ROLLING`, `SESSION_RENEWAL_INTERVAL`, `SESSION_RENEWAL_GRACE`, `SESSION_ROTATION_GRACE`, `SESSION_MAX_PER_USER` | `Session.layerConfig` |
 * | `REDIS_URL` (`Redacted`) or `REDIS_CLUSTER_NODES`, with `REDIS_PREFIX`, `REDIS_CONNECT_TIMEOUT`, `REDIS_COMMAND_TIMEOUT`, `REDIS_AUTO_PIPELINING`, `REDIS_WAIT_REPLICAS`, `REDIS_WAIT_TIMEOUT`; else `DATABASE_URL` (`Redacted`), with `SESSION_SQL_TABLE`, `SESSION_SQL_QUERY_TIMEOUT`, `SESSION_SQL_MIGRATE`; none: the in-memory store (`SESSION_MEMORY_CAPACITY`, `SESSION_MEMORY_SWEEP_INTERVAL`, `SESSION_MEMORY_WHEN_FULL`) | {@link layerStore} |
 * | `SESSION_TRANSPORT` (`cookie`, the default, or `header`), then `COOKIE_*` or `SESSION_HEADER` | {@link layerTransport} |
 *
 * Bad configuration fails the layer at startup with a `ConfigError` that names the variable (a malformed
 * `REDIS_URL` included, which is never repeated) or a typed error such as a `StoreError` naming the
 * unreachable Redis address, never its password.
 *
 * @since 0.1.0
 * @module
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Auth from "../Auth.js"
import * as Session from "../Session.js"
import type { Store, StoreError } from "../Store.js"
import * as Transport from "../Transport.js"
import * as Memory from "./Memory.js"

const nonEmpty = <A>(config: Config.Config<A>, isEmpty: (a: A) => boolean) =>
  Config.map(Config.option(config), Option.filter((a) => !isEmpty(a)))

/**
 * The store the environment names: Redis when `REDIS_URL` is set, a Redis Cluster when
 * `REDIS_CLUSTER_NODES` is, the SQL store when `DATABASE_URL` is, otherwise the in-memory store (an empty
 * variable counts as unset). The Redis and SQL modules, and with them their drivers, are loaded only when
 * asked for. See `Redis.layerConfig`, `Sql.layerConfig` and `Memory.layerConfig` for the variables each
 * reads.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerStore: Layer.Layer<Store, ConfigError.ConfigError | StoreError> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const url = yield* nonEmpty(Config.redacted("REDIS_URL"), (url) => Redacted.value(url) === "")
    if (Option.isSome(url)) {
      const Redis = yield* Effect.promise(() => import("./Redis.js"))
      yield* Effect.logInfo("session store: Redis (REDIS_URL)")
      return Redis.layerConfig()
    }
    const nodes = yield* nonEmpty(Config.string("REDIS_CLUSTER_NODES"), (nodes) => nodes.trim() === "")
    if (Option.isSome(nodes)) {
      const Redis = yield* Effect.promise(() => import("./Redis.js"))
      yield* Effect.logInfo("session store: Redis Cluster (REDIS_CLUSTER_NODES)")
      return Redis.layerClusterConfig()
    }
    const database = yield* nonEmpty(Config.redacted("DATABASE_URL"), (url) => Redacted.value(url) === "")
    if (Option.isSome(database)) {
      const Sql = yield* Effect.promise(() => import("./Sql.js"))
      yield* Effect.logInfo("session store: SQL (DATABASE_URL)")
      return Sql.layerConfig()
    }
    yield* Effect.logInfo(
      "session store: in memory (set REDIS_URL or REDIS_CLUSTER_NODES to use Redis, DATABASE_URL to use SQL)"
    )
    return Memory.layerConfig()
  })
)

/**
 * The transport the environment names: `SESSION_TRANSPORT=cookie` (the default; `COOKIE_*` variables) or
 * `header` (`SESSION_HEADER`, default `authorization` read as a bearer token).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerTransport: Layer.Layer<
  Transport.Transport,
  ConfigError.ConfigError | Transport.InvalidTransportOptions
> = Layer.unwrapEffect(
  Effect.gen(function*() {
    const kind = yield* Config.withDefault(Config.literal("cookie", "header")("SESSION_TRANSPORT"), "cookie")
    if (kind === "cookie") return Transport.layerCookieConfig()
    const header = yield* Config.option(Config.string("SESSION_HEADER"))
    return Transport.layerHeader({ header: Option.getOrUndefined(header) })
  })
)

/**
 * The sessions service declared by `tag`, with its keys, store and transport, all from the environment.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Self, A, I>(
  tag: Session.SessionsTag<Self, A, I>
): Layer.Layer<
  Self | Store | Auth.Auth | Transport.Transport,
  | ConfigError.ConfigError
  | Auth.InvalidKey
  | Session.InvalidOptions
  | Transport.InvalidTransportOptions
  | StoreError
> =>
  Session.layerConfig(tag).pipe(
    Layer.provideMerge(Layer.mergeAll(layerStore, Auth.layerConfig(), layerTransport))
  )
