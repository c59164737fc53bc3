/**
 * The Redis store, on ioredis 6: the production default. Single node, Sentinel (through the ioredis
 * options) and Redis Cluster. Needs Redis 6.2 or later (`SET … PXAT`).
 *
 * Layout, with the default prefix `session:`:
 *
 * - `session:{<user>}:<session>` — a string, the entry encoded by `Store.encodeEntry`, expiring at the
 *   session's expiry (`PXAT`);
 * - `session:{<user>}` — a sorted set of the user's session parts scored by expiry, expiring with the
 *   last of them.
 *
 * The `{<user>}` hash tag keeps a user's keys in one Cluster slot, so every write that touches a session
 * and its user's index is one Lua script: atomic, on one node, never cross-slot. `fetch` is one `GET`.
 *
 * Failures map to `StoreError`: commands fail fast while the connection is down (no offline queue) and
 * time out after `commandTimeout`; ioredis reconnects in the background, so the store recovers by itself
 * when Redis returns.
 *
 * @since 0.1.0
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import { Cluster, type ClusterNode, type ClusterOptions, Redis, type RedisOptions } from "ioredis"
import {
  decodeEntry,
  encodeEntry,
  type Entry,
  type Key,
  type Listed,
  make as makeStore,
  Store,
  StoreError
} from "../Store.js"
import type { StoreService } from "../Store.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * Options of the store itself, whoever owns the connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Prepended to every key. Default `session:`. */
  readonly prefix?: string | undefined
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
  /** `redis://[[user]:password@]host[:port][/db]` or `rediss://…`. A `Redacted` URL keeps its password out of logs. */
  readonly url?: string | Redacted.Redacted<string> | undefined
  readonly redis?: Omit<RedisOptions, "replyMapping"> | undefined
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
}

// -----------------------------------------------------------------------------
// scripts
// -----------------------------------------------------------------------------

// Index entries are pruned by Redis's own clock, the one its key expiry follows: pruning by the caller's
// clock could drop the index entry of a key Redis still holds, which "clear all" would then miss.
const redisNow = `
local clock = redis.call('TIME')
local now = string.format('%.0f', clock[1] * 1000 + math.floor(clock[2] / 1000))
`

// KEYS: session, index. ARGV: value, expiresAt, NX|XX, member, expected version (XX only).
// An update is a compare-and-set on the version at the head of the stored value.
const saveScript = `${redisNow}
if ARGV[3] == 'XX' then
  local current = redis.pcall('GET', KEYS[1])
  if type(current) ~= 'string' or string.match(current, '^%[2,(%d+),') ~= ARGV[5] then return 0 end
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
elseif not redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2], 'NX') then
  return 0
end
local t = redis.call('TYPE', KEYS[2]).ok
if t ~= 'zset' and t ~= 'none' then redis.call('DEL', KEYS[2]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[2], last[2]) end
return 1
`

// KEYS: session, index. ARGV: member.
const deleteScript = `
redis.call('DEL', KEYS[1])
if redis.call('TYPE', KEYS[2]).ok == 'zset' then redis.call('ZREM', KEYS[2], ARGV[1]) end
return 1
`

// KEYS: index. ARGV: member key prefix. Answers member, value, member, value, …
const listScript = `${redisNow}
if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then return {} end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local out = {}
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.pcall('GET', ARGV[1] .. m)
  if type(v) == 'string' then
    out[#out + 1] = m
    out[#out + 1] = v
  else
    redis.call('ZREM', KEYS[1], m)
  end
end
return out
`

// KEYS: index. ARGV: member key prefix, member to keep ('' for none).
const deleteUserScript = `
if redis.call('TYPE', KEYS[1]).ok ~= 'zset' then return 0 end
local n = 0
for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if m ~= ARGV[2] then
    n = n + redis.call('DEL', ARGV[1] .. m)
    redis.call('ZREM', KEYS[1], m)
  end
end
return n
`

interface Commands {
  effectSessionsSave(
    session: string,
    index: string,
    value: string,
    expiresAt: number,
    mode: "NX" | "XX",
    member: string,
    expectedVersion: string
  ): Promise<number>
  effectSessionsDelete(session: string, index: string, member: string): Promise<number>
  effectSessionsList(index: string, prefix: string): Promise<Array<string>>
  effectSessionsDeleteUser(index: string, prefix: string, except: string): Promise<number>
}

const defineCommands = (client: Redis | Cluster): Redis & Commands | Cluster & Commands => {
  if (!("effectSessionsSave" in client)) {
    client.defineCommand("effectSessionsSave", { numberOfKeys: 2, lua: saveScript })
    client.defineCommand("effectSessionsDelete", { numberOfKeys: 2, lua: deleteScript })
    client.defineCommand("effectSessionsList", { numberOfKeys: 1, lua: listScript })
    client.defineCommand("effectSessionsDeleteUser", { numberOfKeys: 1, lua: deleteUserScript })
  }
  return client as Redis & Commands | Cluster & Commands
}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

const errorMessage = (cause: unknown) => cause instanceof Error ? cause.message : String(cause)

const toStoreError = (operation: string) => (cause: unknown): StoreError => {
  const message = errorMessage(cause)
  const reason = /timed? ?out/i.test(message)
    ? "Timeout"
    : /closed|writeable|ECONN|EPIPE|ENOTFOUND|EHOSTUNREACH|MaxRetries|CLUSTERDOWN|TRYAGAIN|LOADING|connect|startup nodes|isn't ready|slots cache/i
        .test(
          message
        )
    ? "Unavailable"
    : "Unknown"
  return new StoreError({ reason, message: `Redis ${operation} failed: ${message}` })
}

// Someone else's value of another type under a session key is garbage, not an outage.
const isWrongType = (cause: unknown) => errorMessage(cause).startsWith("WRONGTYPE")

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultPrefix = "session:"

/**
 * The store on a connected client (a `Redis` or a `Cluster`). The client stays the caller's: it is
 * neither connected nor closed here.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (client: Redis | Cluster, options: Options = {}): StoreService => {
  const redis = defineCommands(client)
  const prefix = options.prefix ?? defaultPrefix
  const index = (user: string) => `${prefix}{${user}}`
  const members = (user: string) => `${prefix}{${user}}:`
  const sessionKey = (key: Key) => `${prefix}{${key.user}}:${key.session}`

  const run = <A>(operation: string, evaluate: () => Promise<A>) =>
    Effect.tryPromise({ try: evaluate, catch: toStoreError(operation) })

  // The value each entry was decoded from.
  const decodedFrom = new WeakMap<Entry, string>()
  const decoded = (raw: string, known: Entry | undefined): Option.Option<Entry> => {
    if (known !== undefined && decodedFrom.get(known) === raw) return Option.some(known)
    const entry = decodeEntry(raw)
    if (entry === undefined) return Option.none()
    decodedFrom.set(entry, raw)
    return Option.some(entry)
  }

  return makeStore({
    // The read of every request: one GET, resumed straight with its answer. A value equal to the one
    // `known` was decoded from answers `known` itself, without decoding it again.
    fetch: (key, known) =>
      Effect.async<Option.Option<Entry>, StoreError>((resume) => {
        const failed = (cause: unknown) =>
          resume(isWrongType(cause) ? Effect.succeedNone : Effect.fail(toStoreError("GET")(cause)))
        try {
          redis.get(sessionKey(key)).then(
            (raw) => resume(Effect.succeed(raw === null ? Option.none() : decoded(raw, known))),
            failed
          )
        } catch (cause) {
          failed(cause)
        }
      }),
    save: (key, entry, mode) =>
      Effect.map(
        run("save", () =>
          redis.effectSessionsSave(
            sessionKey(key),
            index(key.user),
            encodeEntry(entry),
            entry.expiresAt,
            mode === "create" ? "NX" : "XX",
            key.session,
            String(entry.version - 1)
          )),
        (written) => written === 1
      ),
    delete: (key) =>
      Effect.asVoid(run("delete", () => redis.effectSessionsDelete(sessionKey(key), index(key.user), key.session))),
    list: (user, now) =>
      Effect.map(run("list", () => redis.effectSessionsList(index(user), members(user))), (reply) => {
        const listed: Array<Listed> = []
        for (let i = 0; i + 1 < reply.length; i += 2) {
          const entry = decodeEntry(reply[i + 1]!)
          if (entry !== undefined && entry.expiresAt > now) listed.push({ key: { user, session: reply[i]! }, entry })
        }
        return listed
      }),
    deleteUser: (user, except) =>
      run("deleteUser", () => redis.effectSessionsDeleteUser(index(user), members(user), except ?? ""))
  })
}

const clientOptions = (options: ConnectionOptions) => ({
  lazyConnect: true,
  // Fail at once while disconnected instead of queueing: a request gets its 503 now, not a hang.
  enableOfflineQueue: false,
  enableAutoPipelining: options.autoPipelining ?? true,
  connectTimeout: Duration.toMillis(options.connectTimeout ?? defaultConnectTimeout),
  commandTimeout: Duration.toMillis(options.commandTimeout ?? defaultCommandTimeout),
  maxRetriesPerRequest: 1
})

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
 * Connects a client the store owns and quits it when the scope closes. An unreachable Redis fails with a
 * `StoreError` naming the address (never the password) within `connectTimeout`.
 */
const connect = <C extends Redis | Cluster>(
  client: C,
  address: string,
  timeout: Duration.DurationInput
): Effect.Effect<C, StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      // Connection errors reach callers as failed commands (StoreError); without a listener ioredis
      // would also print every reconnection attempt as an "Unhandled error event".
      client.on("error", ignoreConnectionError)
      // interruptible, so that the timeout below really bounds the wait
      return Effect.interruptible(
        Effect.tryPromise({ try: () => client.connect(), catch: toStoreError(`connect to ${address}`) })
      )
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new StoreError({
            reason: "Timeout",
            message: `Redis at ${address} did not answer within ${Duration.format(timeout)}`
          })
      }),
      Effect.tapError(() => Effect.sync(() => client.disconnect())),
      Effect.as(client)
    ),
    (client) =>
      Effect.tryPromise(() => client.quit()).pipe(
        Effect.timeout(Duration.seconds(2)),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  )

const ignoreConnectionError = () => {}

const addressOf = (url: string | undefined, redis: Omit<RedisOptions, "replyMapping"> | undefined): string => {
  if (url !== undefined) {
    try {
      const parsed = new URL(url)
      return `${parsed.hostname}:${parsed.port === "" ? "6379" : parsed.port}`
    } catch {
      return "(unparseable REDIS URL)"
    }
  }
  if (redis?.sentinels !== undefined) return `sentinel master ${redis.name ?? "mymaster"}`
  return `${redis?.host ?? "127.0.0.1"}:${redis?.port ?? 6379}`
}

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
    const settings = { ...options.redis, ...clientOptions(options) }
    const client = url === undefined ? new Redis(settings) : new Redis(url, settings)
    return Effect.map(
      connect(client, addressOf(url, options.redis), options.connectTimeout ?? defaultConnectTimeout),
      (client) => make(client, options)
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
    const nodes = options.nodes.map((node) => typeof node === "string" ? parseNode(node) : node)
    const { maxRetriesPerRequest, commandTimeout, connectTimeout, ...shared } = clientOptions(options)
    const client = new Cluster(nodes, {
      ...options.cluster,
      ...shared,
      redisOptions: { ...options.redis, maxRetriesPerRequest, commandTimeout, connectTimeout }
    })
    const address = `cluster ${nodes.map((node) => typeof node === "object" ? `${node.host}:${node.port}` : node)}`
    return Effect.map(
      connect(client, address, options.connectTimeout ?? defaultConnectTimeout),
      (client) => make(client, options)
    )
  })

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
 * connect by itself), and is not closed when the layer is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerClient = (client: Redis | Cluster, options: Options = {}): Layer.Layer<Store> =>
  Layer.sync(Store, () => make(client, options))

/**
 * The store on its own connection to a Redis Cluster.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerCluster = (options: ClusterConnectionOptions): Layer.Layer<Store, StoreError> =>
  Layer.scoped(Store, makeCluster(options))

/**
 * What {@link layerConfig} and {@link layerClusterConfig} read.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions extends ConnectionOptions {
  readonly url: Redacted.Redacted<string>
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ClusterConfigOptions extends ConnectionOptions {
  readonly nodes: ReadonlyArray<string>
}

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

const connectionConfig: Config.Config.Wrap<ConnectionOptions> = {
  prefix: optional(Config.string("REDIS_PREFIX")),
  connectTimeout: optional(Config.duration("REDIS_CONNECT_TIMEOUT")),
  commandTimeout: optional(Config.duration("REDIS_COMMAND_TIMEOUT")),
  autoPipelining: optional(Config.boolean("REDIS_AUTO_PIPELINING"))
}

/**
 * The single-node store from `Config`: by default `REDIS_URL` (required, kept `Redacted`), and the
 * optional `REDIS_PREFIX`, `REDIS_CONNECT_TIMEOUT`, `REDIS_COMMAND_TIMEOUT`, `REDIS_AUTO_PIPELINING`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConfigOptions> = { ...connectionConfig, url: Config.redacted("REDIS_URL") }
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
