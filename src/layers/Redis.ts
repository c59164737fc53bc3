/**
 * The Redis store, on ioredis (5.4 or 6): the production default. Single node, Sentinel (through the
 * ioredis options) and Redis Cluster. Needs Redis 6.2 or later.
 *
 * Layout, with the default prefix `session:`: one hash per user, `session:{<user>}`, whose fields are the
 * user's session parts and whose values are the entries encoded by `Store.encodeEntry`. The key expires
 * at the latest `expiresAt + Store.expiredRetention` of its fields (a write never shortens it), and a
 * create first prunes the fields dead for longer than the retention.
 *
 * - Everything of one user is one key: one Cluster slot, so every operation is one command or one Lua
 *   script on one node, never cross-slot; `fetch` is one `HGET`, `delete` one `HDEL`, `list` one `HGETALL`.
 * - Nothing indexes the sessions apart from the sessions themselves: Redis can evict a user's key only
 *   whole (under an evicting `maxmemory-policy`), which logs that user out but can never make
 *   `deleteUser` miss a session. The layer still warns at start when the policy is an evicting one:
 *   `noeviction` makes a full Redis refuse new logins (a `"Capacity"` `StoreError`) instead of logging
 *   users out.
 * - `save` is one script: the compare-and-set of an update, or a create with the per-user cap (it deletes
 *   the user's least recently seen live sessions in the same script).
 *
 * `fetch` judges expiry by Effect's `Clock`, as the `Sessions` service does: a field whose `expiresAt +
 * Store.expiredRetention` has passed is no session, even while the user's key lives on for another one
 * (the next create prunes it, by Redis's own clock, the one its key expiry follows).
 *
 * Failures map to `StoreError`: commands fail fast while the connection is down (no offline queue) and
 * time out after `commandTimeout`; ioredis reconnects in the background, so the store recovers by itself
 * when Redis returns. Refused credentials are reason `"Authentication"`, a full Redis (`OOM`)
 * `"Capacity"`. A `StoreError` never carries the driver's error (which holds the command's arguments, the
 * session's contents): its message keeps the error's name and the first line of its text.
 *
 * Replication is asynchronous: a revocation Redis acknowledged can be lost if the primary fails before
 * a replica received it. `waitForReplicas` makes `delete` and `deleteUser` wait (Redis `WAIT`) for
 * replicas to confirm, and fail with a `"Timeout"` `StoreError` when they do not.
 *
 * @since 0.1.0
 * @module
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import { makeBackend, userOfHashKey, type Wait } from "../internal/redisBackend.js"
import { addressOf, connect, malformedUrl, warnIfEvicting } from "../internal/redisConnection.js"
import type { Connection, Failure } from "../internal/redisErrors.js"
import * as NearCache from "../internal/redisNearCache.js"
import type { Client } from "../internal/redisScripts.js"
import { expiredRetention, makeStringOnly, maxEncodedLength, Store, StoreError, type StoreService } from "../Store.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * Wait for replicas to confirm every revocation (`delete`, `deleteUser`) with Redis `WAIT`: the
 * revocation fails with a `"Timeout"` `StoreError` when fewer than `replicas` confirm within `timeout`
 * (at least 1 ms). It then still holds on the primary, but a failover could undo it.
 *
 * @since 0.1.0
 * @category models
 */
export interface WaitForReplicas {
  readonly replicas: number
  readonly timeout: Duration.DurationInput
}

/**
 * Options of the store itself, whoever owns the connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prepended to every key. Default `session:`. */
  readonly prefix?: string | undefined
  /**
   * Wait for replicas after every revocation. `WAIT` blocks the connection it runs on until it answers:
   * the constructors that open their own connection run revocations on a second one, so that reads never
   * wait behind it; on a client you own (`layerClient`) they share it, and its `commandTimeout` must
   * exceed the wait's `timeout`.
   */
  readonly waitForReplicas?: WaitForReplicas | undefined
}

/**
 * The near-cache (see {@link SingleOptions.nearCache}): sessions answered from process memory while
 * Redis has not invalidated them.
 *
 * @since 0.1.0
 * @category models
 */
export interface NearCacheOptions {
  /** The most sessions kept (the least recently read users go first). At least 1. */
  readonly capacity: number
  /** The longest a session is answered from memory without asking Redis. Default 1 minute. */
  readonly maxAge?: Duration.DurationInput | undefined
  /**
   * How often the invalidation connection is PINGed and the redirect checked (`CLIENT TRACKINGINFO`).
   * A connection lost silently (no close seen) is noticed within this plus `commandTimeout`. Default 1
   * second.
   */
  readonly heartbeat?: Duration.DurationInput | undefined
}

/**
 * Options shared by the constructors that open their own connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConnectionOptions extends Options {
  /** How long to wait for Redis at start before the layer fails. Default 5 seconds. */
  readonly connectTimeout?: Duration.DurationInput | undefined
  /**
   * How long one command may take once sent before it fails with a `Timeout` `StoreError`. Default 2
   * seconds. With auto-pipelining a command waits for the batch ahead of it to be answered before it is
   * sent, so against a Redis that stopped answering a request can wait up to about twice this.
   */
  readonly commandTimeout?: Duration.DurationInput | undefined
  /**
   * Batch concurrent commands into one write (ioredis `enableAutoPipelining`). Default `true`; see
   * bench/RESULTS.md for what it is worth.
   */
  readonly autoPipelining?: boolean | undefined
}

/**
 * Options of {@link layer}: a URL and/or ioredis options (Sentinel settings pass through as they are).
 *
 * @since 0.1.0
 * @category models
 */
export interface SingleOptions extends ConnectionOptions {
  /**
   * `redis://[[user]:password@]host[:port][/db]`, `rediss://…`, or the path of a Unix socket. A `Redacted`
   * URL keeps its password out of logs; a malformed one fails the layer without being repeated.
   */
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly redis?: Omit<RedisOptions, "replyMapping"> | undefined
  /**
   * Off by default. Answers verified, unchanged sessions from process memory: Redis tells this process
   * (`CLIENT TRACKING`, on one more connection of the store's own) when anyone writes, deletes or expires
   * a user's key, and the user's cached sessions are dropped before the next request can read them. The
   * cache is emptied and bypassed while either connection is down or the redirect is broken, until
   * tracking is established again; this process's own writes drop what they touch before they return;
   * every entry also has a maximum age. See the README, "Near-cache".
   */
  readonly nearCache?: NearCacheOptions | undefined
}

/**
 * Options of {@link layerCluster}.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClusterConnectionOptions extends ConnectionOptions {
  /** Seed nodes: `host:port` strings or ioredis nodes. */
  readonly nodes: ReadonlyArray<string | ClusterNode>
  readonly cluster?: Omit<ClusterOptions, "redisOptions"> | undefined
  readonly redis?: Omit<RedisOptions, "replyMapping"> | undefined
  /**
   * Not supported on a Cluster (Redis tracks reads per node, and a topology change would move keys away
   * from the tracking node unseen): a near-cache given anyway fails the layer with a `StoreError`.
   */
  readonly nearCache?: undefined
}

/**
 * What {@link layerConfig} and {@link layerClusterConfig} read.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions extends ConnectionOptions {
  readonly url: Redacted.Redacted<string>
  readonly nearCache?: NearCacheOptions | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClusterConfigOptions extends ConnectionOptions {
  readonly nodes: ReadonlyArray<string>
}

// -----------------------------------------------------------------------------
// constants
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultPrefix = "session:"

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultConnectTimeout: Duration.Duration = Duration.seconds(5)

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultCommandTimeout: Duration.Duration = Duration.seconds(2)

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultWaitTimeout: Duration.Duration = Duration.seconds(1)

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultNearCacheMaxAge: Duration.Duration = Duration.minutes(1)

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultNearCacheHeartbeat: Duration.Duration = Duration.seconds(1)

/**
 * The near-cache's counters: `effect_sessions_near_cache_hits_total` (reads answered from memory),
 * `…_misses_total` (reads sent to Redis while the cache was on), `…_bypassed_total` (reads sent to Redis
 * while it was off: tracking not established), `…_invalidations_total` (keys Redis invalidated) and
 * `…_flushes_total` (the cache emptied, by `reason`: `disconnect`, `broken_redirect`, `heartbeat`,
 * `flushall`).
 *
 * @since 0.1.0
 * @category constants
 */
export const nearCacheMetrics = NearCache.metrics

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * The store on a connected client (a `Redis` or a `Cluster`). The client stays the caller's: it is
 * neither connected nor closed here, and no listener is added to it (so a refused password shows as
 * `"Unavailable"` rather than `"Authentication"` once the connection is lost; the store's own
 * connections tell them apart).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (client: Redis | Cluster, options: Options = {}): StoreService => makeOn(client, client, options)

/**
 * A store on its own connection to one Redis (or a Sentinel-managed master), closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSingle = (options: SingleOptions = {}): Effect.Effect<StoreService, StoreError, Scope.Scope> =>
  Effect.suspend(() => {
    const url = options.url === undefined
      ? undefined
      : typeof options.url === "string"
      ? options.url
      : Redacted.value(options.url)
    const malformed = url === undefined ? undefined : malformedUrl(url)
    if (malformed !== undefined) {
      return Effect.fail(new StoreError({ reason: "Unavailable", message: `The Redis URL ${malformed}` }))
    }
    const address = addressOf(url, options.redis)
    const timeout = options.connectTimeout ?? defaultConnectTimeout
    const open = (
      extraCommandMillis: number,
      extra?: Pick<RedisOptions, "protocol" | "autoResubscribe" | "enableAutoPipelining">
    ) => {
      const settings = { ...options.redis, ...clientOptions(options, extraCommandMillis), ...extra }
      return connect(url === undefined ? new Redis(settings) : new Redis(url, settings), address, timeout).pipe(
        Effect.mapError(toStoreError)
      )
    }
    const near = options.nearCache
    if (near === undefined) return openStore(open, options, address, undefined)
    return Effect.flatMap(
      nearCacheSettings(near, options.prefix ?? defaultPrefix),
      (settings) =>
        openStore(open, options, address, (client) =>
          Effect.flatMap(
            // RESP2 (ioredis 5 speaks nothing else): invalidations arrive as messages of a subscription.
            // Resubscribed by the near-cache itself, which needs the connection's new id first.
            open(0, { protocol: 2, autoResubscribe: false, enableAutoPipelining: false }),
            ({ client: invalidation }) => Effect.mapError(NearCache.make(settings, client, invalidation), toStoreError)
          ))
    )
  })

/**
 * A store on its own connection to a Redis Cluster, closed with the scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeCluster = (options: ClusterConnectionOptions): Effect.Effect<StoreService, StoreError, Scope.Scope> =>
  Effect.suspend(() => {
    if ((options as { readonly nearCache?: unknown }).nearCache !== undefined) {
      return Effect.fail(
        new StoreError({
          reason: "Unknown",
          message: "The Redis near-cache is not supported on a Redis Cluster (Redis tracks reads per node): " +
            "remove the nearCache option, or use a single node or Sentinel"
        })
      )
    }
    const nodes = options.nodes.map((node) => typeof node === "string" ? parseNode(node) : node)
    const address = `cluster ${nodes.map((node) => typeof node === "object" ? `${node.host}:${node.port}` : node)}`
    const timeout = options.connectTimeout ?? defaultConnectTimeout
    const open = (extraCommandMillis: number) => {
      const { commandTimeout, connectTimeout, maxRetriesPerRequest, ...shared } = clientOptions(
        options,
        extraCommandMillis
      )
      const client = new Cluster(nodes, {
        ...options.cluster,
        ...shared,
        redisOptions: { ...options.redis, maxRetriesPerRequest, commandTimeout, connectTimeout }
      })
      return Effect.mapError(connect(client, address, timeout), toStoreError)
    }
    return openStore(open, options, address, undefined)
  })

/**
 * Parses `host:port` (IPv6 as `[::1]:6379`) into an ioredis cluster node.
 *
 * @since 0.1.0
 * @category constructors
 */
export const parseNode = (node: string): ClusterNode => {
  const match = /^\[?([^\]]+?)\]?:(\d+)$/.exec(node.trim())
  return match === null ? node.trim() : { host: match[1]!, port: Number(match[2]) }
}

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * The store on its own connection to one Redis, from a URL and/or ioredis options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SingleOptions = {}): Layer.Layer<Store, StoreError> =>
  Layer.scoped(Store, makeSingle(options))

/**
 * The store on a client the application already owns and keeps owning: it must be connected (or
 * connect by itself), and is not closed when the layer is released. The eviction-policy warning is
 * checked in the background, once the client answers.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (client: Redis | Cluster, options: Options = {}): Layer.Layer<Store> =>
  Layer.scoped(
    Store,
    Effect.as(
      Effect.forkScoped(Effect.suspend(() => warnIfEvicting(client, "(the application's client)"))),
      make(client, options)
    )
  )

/**
 * The store on its own connection to a Redis Cluster.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: ClusterConnectionOptions): Layer.Layer<Store, StoreError> =>
  Layer.scoped(Store, makeCluster(options))

/**
 * The single-node store from `Config`: by default `REDIS_URL` (required, kept `Redacted`), and the
 * optional `REDIS_PREFIX`, `REDIS_CONNECT_TIMEOUT`, `REDIS_COMMAND_TIMEOUT`, `REDIS_AUTO_PIPELINING`,
 * `REDIS_WAIT_REPLICAS` (wait for that many replicas after every revocation), `REDIS_WAIT_TIMEOUT`
 * (default 1 second), and `REDIS_NEAR_CACHE_CAPACITY` (turns the near-cache on) with
 * `REDIS_NEAR_CACHE_MAX_AGE` and `REDIS_NEAR_CACHE_HEARTBEAT`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConfigOptions> = { ...connectionConfig, url: urlConfig, nearCache: nearCacheConfig }
): Layer.Layer<Store, StoreError | ConfigError.ConfigError> =>
  Layer.scoped(Store, Effect.flatMap(Config.unwrap(config), makeSingle))

/**
 * The cluster store from `Config`: by default `REDIS_CLUSTER_NODES` (`host:port,host:port`, required)
 * and the same optional variables as {@link layerConfig}.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClusterConfig = (
  config: Config.Config.Wrap<ClusterConfigOptions> = {
    ...connectionConfig,
    nodes: Config.array(Config.nonEmptyString(), "REDIS_CLUSTER_NODES")
  }
): Layer.Layer<Store, StoreError | ConfigError.ConfigError> =>
  Layer.scoped(Store, Effect.flatMap(Config.unwrap(config), makeCluster))

// -----------------------------------------------------------------------------
// the store on its connections
// -----------------------------------------------------------------------------

const toStoreError = (failure: Failure) => new StoreError(failure)

/**
 * The store on `client`, running revocations on `revoker` (the same client, or one of its own when it
 * waits for replicas).
 */
const makeOn = (
  client: Client,
  revoker: Client,
  options: Options,
  connection?: Connection,
  cache?: NearCache.NearCache
): StoreService => {
  const backend = makeBackend({
    client,
    revoker,
    prefix: options.prefix ?? defaultPrefix,
    retention: Duration.toMillis(expiredRetention),
    longest: maxEncodedLength,
    wait: waitOf(options),
    connection,
    error: toStoreError
  })
  return makeStringOnly(cache === undefined ? backend : cache.wrap(backend))
}

// The store on connections it opens with `open` (given how much longer than `commandTimeout` a command
// on it may take): one, a second for revocations that wait for replicas, since WAIT blocks the
// connection it runs on, and the near-cache's (`nearCache`) when it has one.
const openStore = <C extends Client>(
  open: (
    extraCommandMillis: number
  ) => Effect.Effect<{ readonly client: C; readonly connection: Connection }, StoreError, Scope.Scope>,
  options: ConnectionOptions,
  address: string,
  nearCache: ((client: C) => Effect.Effect<NearCache.NearCache, StoreError, Scope.Scope>) | undefined
): Effect.Effect<StoreService, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const { client, connection } = yield* open(0)
    const wait = waitOf(options)
    const revoker = wait === undefined ? client : (yield* open(wait.timeoutMillis)).client
    const cache = nearCache === undefined ? undefined : yield* nearCache(client)
    yield* warnIfEvicting(client, address)
    return makeOn(client, revoker, options, connection, cache)
  })

const nearCacheSettings = (
  options: NearCacheOptions,
  prefix: string
): Effect.Effect<NearCache.Settings, StoreError> => {
  const capacity = Math.floor(options.capacity)
  const maxAgeMillis = Duration.toMillis(options.maxAge ?? defaultNearCacheMaxAge)
  const heartbeatMillis = Duration.toMillis(options.heartbeat ?? defaultNearCacheHeartbeat)
  if (!(capacity >= 1) || !(maxAgeMillis > 0) || !(heartbeatMillis >= 1) || !Number.isFinite(heartbeatMillis)) {
    return Effect.fail(
      new StoreError({
        reason: "Unknown",
        message: "The Redis near-cache needs a capacity of at least 1, a maxAge above 0 and a finite heartbeat " +
          "of at least 1 ms"
      })
    )
  }
  return Effect.succeed({
    capacity,
    maxAgeMillis,
    heartbeatMillis,
    userOf: (key) => userOfHashKey(prefix, key)
  })
}

const waitOf = (options: Options): Wait | undefined => {
  const wait = options.waitForReplicas
  if (wait === undefined) return undefined
  const millis = Duration.toMillis(wait.timeout)
  return {
    replicas: Math.max(0, Math.floor(wait.replicas)),
    // WAIT 0 would block forever; past 2^31 - 1 ms ioredis's timers misbehave
    timeoutMillis: Number.isFinite(millis) ? Math.min(Math.max(1, Math.ceil(millis)), 2 ** 31 - 1) : 2 ** 31 - 1
  }
}

const clientOptions = (options: ConnectionOptions, extraCommandMillis = 0) => ({
  lazyConnect: true,
  // Fail at once while disconnected instead of queueing: a request gets its 503 now, not a hang.
  enableOfflineQueue: false,
  enableAutoPipelining: options.autoPipelining ?? true,
  connectTimeout: Duration.toMillis(options.connectTimeout ?? defaultConnectTimeout),
  commandTimeout: Duration.toMillis(options.commandTimeout ?? defaultCommandTimeout) + extraCommandMillis,
  maxRetriesPerRequest: 1
})

// -----------------------------------------------------------------------------
// config
// -----------------------------------------------------------------------------

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

const waitConfig: Config.Config<WaitForReplicas | undefined> = Config.all({
  replicas: optional(
    Config.integer("REDIS_WAIT_REPLICAS").pipe(
      Config.validate({ message: "REDIS_WAIT_REPLICAS must be 0 or more", validation: (n) => n >= 0 })
    )
  ),
  timeout: Config.duration("REDIS_WAIT_TIMEOUT").pipe(
    Config.validate({
      message: "REDIS_WAIT_TIMEOUT must be more than 0 and finite (WAIT 0 would block forever)",
      validation: (duration) => Duration.toMillis(duration) >= 1 && Duration.isFinite(duration)
    }),
    Config.withDefault(defaultWaitTimeout)
  )
}).pipe(Config.map(({ replicas, timeout }) => replicas === undefined ? undefined : { replicas, timeout }))

const nearCacheConfig: Config.Config<NearCacheOptions | undefined> = Config.all({
  capacity: optional(
    Config.integer("REDIS_NEAR_CACHE_CAPACITY").pipe(
      Config.validate({ message: "REDIS_NEAR_CACHE_CAPACITY must be 1 or more", validation: (n) => n >= 1 })
    )
  ),
  maxAge: optional(Config.duration("REDIS_NEAR_CACHE_MAX_AGE")),
  heartbeat: optional(Config.duration("REDIS_NEAR_CACHE_HEARTBEAT"))
}).pipe(
  Config.map(({ capacity, heartbeat, maxAge }) => capacity === undefined ? undefined : { capacity, maxAge, heartbeat })
)

const connectionConfig: Config.Config.Wrap<ConnectionOptions> = {
  prefix: optional(Config.string("REDIS_PREFIX")),
  connectTimeout: optional(Config.duration("REDIS_CONNECT_TIMEOUT")),
  commandTimeout: optional(Config.duration("REDIS_COMMAND_TIMEOUT")),
  autoPipelining: optional(Config.boolean("REDIS_AUTO_PIPELINING")),
  waitForReplicas: waitConfig
}

// checked here so that a malformed URL is a ConfigError naming the variable, and never repeated
const urlConfig: Config.Config<Redacted.Redacted<string>> = Config.redacted("REDIS_URL").pipe(
  Config.mapOrFail((url) => {
    const malformed = malformedUrl(Redacted.value(url))
    return malformed === undefined
      ? Either.right(url)
      : Either.left(ConfigError.InvalidData(["REDIS_URL"], `REDIS_URL ${malformed}`))
  })
)
