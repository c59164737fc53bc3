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
import {
  decodeEntry,
  encodeEntry,
  type Entry,
  expiredRetention,
  type Listed,
  make as makeStore,
  maxEncodedLength,
  Store,
  StoreError,
  type StoreService
} from "../Store.js"

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

// Each script touches the user's hash only (one slot). Fields are read with the pattern of the entry
// codec's head, `[3,version,expiresAt,lastSeenAt,createdAt,`, without parsing the rest. Redis's own clock
// (TIME) decides what is dead for longer than the retention, as it is the clock its key expiry follows;
// the cap counts live entries by the application's clock, as the port says.
const redisNow = `
local clock = redis.call('TIME')
local now = clock[1] * 1000 + math.floor(clock[2] / 1000)
`

// KEYS: the user's hash. ARGV: field, value, 'create' | 'update', expected version (update), the key's
// expiry for this entry (expiresAt + retention), retention, cap ('' for none), cap's now, longest value.
// Answers 1 when it wrote, 0 when it did not.
const saveScript = `${redisNow}
local key, field = KEYS[1], ARGV[1]
local kind = redis.call('TYPE', key).ok
if ARGV[3] == 'update' then
  if kind ~= 'hash' then return 0 end
  local current = redis.call('HGET', key, field)
  if not current or string.match(current, '^%[3,(%d+),') ~= ARGV[4] then return 0 end
elseif kind == 'hash' then
  if redis.call('HEXISTS', key, field) == 1 then return 0 end
  local retention, cap, capNow, longest = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
  local live = {}
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local name, value = all[i], all[i + 1]
    local expiresAt, lastSeenAt, createdAt = string.match(value, '^%[3,%d+,(%d+),(%d+),(%d+),')
    if #value > longest then
      -- unreadable by any version of the codec: garbage
      redis.call('HDEL', key, name)
    elseif expiresAt then
      expiresAt = tonumber(expiresAt)
      if expiresAt + retention <= now then
        redis.call('HDEL', key, name)
      elseif cap and expiresAt > capNow then
        live[#live + 1] = { name, tonumber(lastSeenAt), tonumber(createdAt) }
      end
    end
  end
  if cap and #live >= cap then
    table.sort(live, function(a, b)
      if a[2] ~= b[2] then return a[2] < b[2] end
      if a[3] ~= b[3] then return a[3] < b[3] end
      return a[1] < b[1]
    end)
    for i = 1, #live - cap + 1 do redis.call('HDEL', key, live[i][1]) end
  end
elseif kind ~= 'none' then
  -- someone else's value of another type: garbage, which a create replaces
  redis.call('DEL', key)
end
redis.call('HSET', key, field, ARGV[2])
local ttl = redis.call('PTTL', key)
if ttl < 0 or now + ttl < tonumber(ARGV[5]) then redis.call('PEXPIREAT', key, ARGV[5]) end
return 1
`

// KEYS: the user's hash. ARGV: field to keep ('' for none), longest value. Answers how many live
// sessions (by Redis's clock) it deleted, reading each value's head as the compare-and-set does (a
// corrupt value with a valid head counts).
const deleteUserScript = `${redisNow}
local key, except, longest = KEYS[1], ARGV[1], tonumber(ARGV[2])
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
local all = redis.call('HGETALL', key)
local live, kept = 0, false
for i = 1, #all, 2 do
  if all[i] == except then
    kept = true
  else
    local expiresAt = string.match(all[i + 1], '^%[3,%d+,(%d+),')
    if expiresAt and #all[i + 1] <= longest and tonumber(expiresAt) > now then live = live + 1 end
  end
end
if not kept then
  redis.call('DEL', key)
else
  for i = 1, #all, 2 do
    if all[i] ~= except then redis.call('HDEL', key, all[i]) end
  end
end
return live
`

interface Scripts<R> {
  effectSessionsSave(
    key: string,
    field: string,
    value: string,
    mode: "create" | "update",
    expectedVersion: string,
    keyExpiry: number,
    retention: number,
    cap: number | "",
    capNow: number,
    longest: number
  ): R
  effectSessionsDeleteUser(key: string, except: string, longest: number): R
}

type Client = Redis | Cluster

interface Pipeline extends Scripts<Pipeline> {
  hdel(key: string, field: string): Pipeline
  call(command: string, ...args: Array<string | number>): Pipeline
  exec(): Promise<Array<[Error | null, unknown]> | null>
}

const withScripts = (client: Client): Client & Scripts<Promise<unknown>> => {
  if (!("effectSessionsSave" in client)) {
    client.defineCommand("effectSessionsSave", { numberOfKeys: 1, lua: saveScript })
    client.defineCommand("effectSessionsDeleteUser", { numberOfKeys: 1, lua: deleteUserScript })
  }
  return client as Client & Scripts<Promise<unknown>>
}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

const longestDetail = 160

/**
 * What may be said of a driver's error: its name, its code and the first line of its message, bounded.
 * ioredis errors keep the failed command with its arguments (the session's contents) and Redis echoes
 * arguments in a few replies ("unknown command …, with args beginning with: …"): neither is kept.
 */
const describe = (cause: unknown): { readonly name: string; readonly text: string } => {
  const error = cause instanceof Error ? cause : undefined
  const name = error !== undefined && /^\w{1,40}$/.test(error.name) ? error.name : "Error"
  const code = (error as { readonly code?: unknown } | undefined)?.code
  const raw = error !== undefined ? error.message : typeof cause === "string" ? cause : ""
  let text = (raw.split(/\r?\n/, 1)[0] ?? "").replace(/,? with args beginning with:.*$/i, "")
  if (text.length > longestDetail) text = `${text.slice(0, longestDetail)}…`
  return { name: typeof code === "string" && /^[A-Z0-9_]{1,40}$/.test(code) ? `${name} ${code}` : name, text }
}

const isAuthenticationFailure = (text: string) =>
  /^(NOAUTH|WRONGPASS)\b|invalid password|invalid username-password/i.test(text)

const isTimeout = (text: string) => /timed? ?out|ETIMEDOUT/i.test(text)

const isOutage = (text: string) =>
  /closed|writeable|ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|MaxRetries|CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY|connect|startup nodes|isn't ready|slots cache|Connection/i
    .test(text)

/**
 * What the store knows of its connection: the last authentication refusal seen since it was last ready.
 * ioredis reports a refused AUTH only as an "error" event and then fails every command with "Connection
 * is closed" or "Stream isn't writeable" while it retries: this tells those apart from an outage.
 */
interface Connection {
  refused: string | undefined
}

/** Listens to a client the store owns (a client's "error" listener silences ioredis's own logging). */
const watch = (client: Client, connection: Connection) => {
  const onError = (cause: unknown) => {
    const { name, text } = describe(cause)
    if (isAuthenticationFailure(text)) connection.refused = `${name}: ${text}`
  }
  client.on("error", onError)
  // a Cluster reports its nodes' connections apart
  if (client instanceof Cluster) client.on("node error", onError)
  client.on("ready", () => {
    connection.refused = undefined
  })
}

const refusedCredentials = (operation: string, detail: string) =>
  new StoreError({
    reason: "Authentication",
    message: `Redis ${operation} failed: the credentials were refused (${detail}); check the password (and ` +
      `user) in the URL or options`
  })

const toStoreError = (operation: string, connection?: Connection) => (cause: unknown): StoreError => {
  const { name, text } = describe(cause)
  if (isAuthenticationFailure(text)) return refusedCredentials(operation, `${name}: ${text}`)
  if (isTimeout(text)) {
    return new StoreError({ reason: "Timeout", message: `Redis ${operation} timed out (${name}: ${text})` })
  }
  if (/^OOM\b/.test(text)) {
    return new StoreError({
      reason: "Capacity",
      message: `Redis ${operation} failed: Redis is full (${name}: ${text})`
    })
  }
  if (isOutage(text)) {
    const refused = connection?.refused
    if (refused !== undefined) return refusedCredentials(`${operation} (reconnecting)`, refused)
    return new StoreError({ reason: "Unavailable", message: `Redis ${operation} failed (${name}: ${text})` })
  }
  return new StoreError({ reason: "Unknown", message: `Redis ${operation} failed (${name}: ${text})` })
}

// Someone else's value of another type at a user's key is garbage, not an outage.
const isWrongType = (cause: unknown) => cause instanceof Error && cause.message.startsWith("WRONGTYPE")

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultPrefix = "session:"

interface Wait {
  readonly replicas: number
  readonly timeoutMillis: number
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

/**
 * The store on `client`, running revocations on `revoker` (the same client, or one of its own when it
 * waits for replicas).
 */
const makeOn = (client: Client, revoker: Client, options: Options, connection?: Connection): StoreService => {
  const redis = withScripts(client)
  withScripts(revoker)
  const prefix = options.prefix ?? defaultPrefix
  const userKey = (user: string) => `${prefix}{${user}}`
  const retention = Duration.toMillis(expiredRetention)
  const wait = waitOf(options)

  /** One command or script; a WRONGTYPE reply (someone else's value at the key) answers `whenWrongType`. */
  const run = <A>(operation: string, evaluate: () => Promise<A>, whenWrongType: A) =>
    Effect.tryPromise({
      try: () => evaluate().catch((cause) => isWrongType(cause) ? whenWrongType : Promise.reject(cause)),
      catch: toStoreError(operation, connection)
    })

  /**
   * A revocation: `direct` alone or, waiting for replicas, `piped` then `WAIT` in one pipeline on the
   * revoker, so that WAIT runs on the connection (and, on a Cluster, the node: a pipeline goes to the node
   * of its keys) that made the write.
   */
  const revoke = <A>(
    operation: string,
    direct: () => Promise<A>,
    piped: (pipeline: Pipeline) => Pipeline,
    whenWrongType: A
  ): Effect.Effect<A, StoreError> => {
    if (wait === undefined) return run(operation, direct, whenWrongType)
    return Effect.flatMap(
      run(
        operation,
        () => piped(revoker.pipeline() as unknown as Pipeline).call("WAIT", wait.replicas, wait.timeoutMillis).exec(),
        null
      ),
      (replies): Effect.Effect<A, StoreError> => {
        const [written, waited] = replies ?? []
        if (written === undefined || waited === undefined) {
          return Effect.fail(new StoreError({ reason: "Unavailable", message: `Redis ${operation} got no reply` }))
        }
        if (written[0] !== null && !isWrongType(written[0])) {
          return Effect.fail(toStoreError(operation, connection)(written[0]))
        }
        if (waited[0] !== null) return Effect.fail(toStoreError(`${operation} (WAIT)`, connection)(waited[0]))
        const confirmed = Number(waited[1])
        if (!(confirmed >= wait.replicas)) {
          return Effect.fail(
            new StoreError({
              reason: "Timeout",
              message: `Redis ${operation}: ${confirmed} of ${wait.replicas} replica(s) confirmed it within ` +
                `${wait.timeoutMillis} ms. It holds on the primary, but a failover before the replicas catch up ` +
                `could undo it`
            })
          )
        }
        return Effect.succeed(written[0] === null ? written[1] as A : whenWrongType)
      }
    )
  }

  // The value each entry was decoded from.
  const decodedFrom = new WeakMap<Entry, string>()
  const decoded = (raw: string, known: Entry | undefined): Option.Option<Entry> => {
    // refused before anything else looks at it: a huge value costs its transfer, never a parse
    if (raw.length > maxEncodedLength) return Option.none()
    if (known !== undefined && decodedFrom.get(known) === raw) return Option.some(known)
    const entry = decodeEntry(raw)
    if (entry === undefined) return Option.none()
    decodedFrom.set(entry, raw)
    return Option.some(entry)
  }

  return makeStore({
    // The read of every request: one HGET, resumed straight with its answer. A value equal to the one
    // `known` was decoded from answers `known` itself, without decoding it again.
    fetch: (key, known) =>
      Effect.async<Option.Option<Entry>, StoreError>((resume) => {
        const failed = (cause: unknown) =>
          resume(isWrongType(cause) ? Effect.succeedNone : Effect.fail(toStoreError("HGET", connection)(cause)))
        try {
          redis.hget(userKey(key.user), key.session).then(
            (raw) => resume(Effect.succeed(typeof raw === "string" ? decoded(raw, known) : Option.none())),
            failed
          )
        } catch (cause) {
          failed(cause)
        }
      }),
    save: (key, entry, mode, cap) =>
      Effect.map(
        run("save", () =>
          redis.effectSessionsSave(
            userKey(key.user),
            key.session,
            encodeEntry(entry),
            mode,
            String(entry.version - 1),
            entry.expiresAt + retention,
            retention,
            cap === undefined ? "" : Math.max(1, Math.floor(cap.maxPerUser)),
            cap === undefined ? 0 : cap.now,
            maxEncodedLength
          ), 0),
        (written) => Number(written) === 1
      ),
    delete: (key) =>
      Effect.asVoid(revoke(
        "delete",
        () => redis.hdel(userKey(key.user), key.session),
        (pipeline) => pipeline.hdel(userKey(key.user), key.session),
        0
      )),
    list: (user) =>
      Effect.map(run("list", () => redis.hgetall(userKey(user)), {}), (fields) => {
        const listed: Array<Listed> = []
        for (const [session, raw] of Object.entries(fields)) {
          const entry = raw.length > maxEncodedLength ? undefined : decodeEntry(raw)
          if (entry !== undefined) listed.push({ key: { user, session }, entry })
        }
        return listed
      }),
    deleteUser: (user, except) =>
      Effect.map(
        revoke(
          "deleteUser",
          () => redis.effectSessionsDeleteUser(userKey(user), except ?? "", maxEncodedLength),
          (pipeline) => pipeline.effectSessionsDeleteUser(userKey(user), except ?? "", maxEncodedLength),
          0
        ),
        Number
      )
  })
}

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
 * @since 0.1.0
 * @category constants
 */
export const defaultConnectTimeout: Duration.Duration = Duration.seconds(5)

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultCommandTimeout: Duration.Duration = Duration.seconds(2)

const clientOptions = (options: ConnectionOptions, extraCommandMillis = 0) => ({
  lazyConnect: true,
  // Fail at once while disconnected instead of queueing: a request gets its 503 now, not a hang.
  enableOfflineQueue: false,
  enableAutoPipelining: options.autoPipelining ?? true,
  connectTimeout: Duration.toMillis(options.connectTimeout ?? defaultConnectTimeout),
  commandTimeout: Duration.toMillis(options.commandTimeout ?? defaultCommandTimeout) + extraCommandMillis,
  maxRetriesPerRequest: 1
})

/**
 * Connects a client the store owns and quits it when the scope closes. An unreachable Redis fails with a
 * `StoreError` naming the address (never the password) within `connectTimeout`; refused credentials
 * fail with reason `"Authentication"`.
 */
const connect = <C extends Client>(
  client: C,
  address: string,
  timeout: Duration.DurationInput
): Effect.Effect<{ readonly client: C; readonly connection: Connection }, StoreError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.suspend(() => {
      const connection: Connection = { refused: undefined }
      // The socket's own error says why a connect failed (`connect()` itself only says "Connection is
      // closed"); listening also keeps ioredis from printing every reconnection attempt as an "Unhandled
      // error event": failures reach callers as failed commands (StoreError).
      let lastError: unknown
      client.on("error", (cause) => {
        lastError = cause
      })
      watch(client, connection)
      // interruptible, so that the timeout below really bounds the wait
      return Effect.interruptible(
        Effect.tryPromise({
          try: () => client.connect(),
          catch: (cause) => toStoreError(`connect to ${address}`, connection)(lastError ?? cause)
        })
      ).pipe(Effect.as({ client, connection }))
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new StoreError({
            reason: "Timeout",
            message: `Redis at ${address} did not answer within ${Duration.format(timeout)}`
          })
      }),
      Effect.tapError(() => Effect.sync(() => client.disconnect()))
    ),
    ({ client }) =>
      Effect.tryPromise(() => client.quit()).pipe(
        Effect.timeout(Duration.seconds(2)),
        Effect.ignore,
        Effect.ensuring(Effect.sync(() => client.disconnect()))
      )
  )

const evictingPolicy = /^(allkeys|volatile)-/

/** The `maxmemory-policy` of one node, if it says (managed Redis often refuses CONFIG). */
const policyOf = (node: Redis): Promise<string | undefined> =>
  node.config("GET", "maxmemory-policy").then((reply: unknown) => {
    const value = Array.isArray(reply)
      ? reply[1]
      : reply instanceof Map
      ? reply.get("maxmemory-policy")
      : typeof reply === "object" && reply !== null
      ? (reply as Record<string, unknown>)["maxmemory-policy"]
      : undefined
    return typeof value === "string" ? value : undefined
  }, () => undefined)

/**
 * Warns when Redis may evict keys: sessions are then lost under memory pressure. Each user's sessions
 * share one key, so an eviction logs a user out but never leaves a revoked session behind. Says nothing
 * when Redis does not tell (CONFIG refused).
 */
const warnIfEvicting = (client: Client, address: string): Effect.Effect<void> =>
  Effect.promise(async () => {
    const nodes = client instanceof Cluster ? client.nodes("master") : [client]
    return (await Promise.all(nodes.map(policyOf))).find((policy) =>
      policy !== undefined && evictingPolicy.test(policy)
    )
  }).pipe(
    Effect.timeout(Duration.seconds(5)),
    Effect.flatMap((policy) =>
      policy === undefined ? Effect.void : Effect.logWarning(
        `Redis at ${address} has maxmemory-policy ${policy}: under memory pressure Redis may evict session ` +
          `keys, logging those users out (each user's sessions are one key, so a revoked session is never ` +
          `left behind). Set maxmemory-policy to noeviction, so that a full Redis refuses new sessions instead.`
      )
    ),
    Effect.ignore
  )

const addressOf = (url: string | undefined, redis: Omit<RedisOptions, "replyMapping"> | undefined): string => {
  if (url !== undefined) {
    if (url.startsWith("/")) return `unix socket ${url.split("?")[0]}`
    try {
      const parsed = new URL(url)
      return `${parsed.hostname}:${parsed.port === "" ? "6379" : parsed.port}`
    } catch {
      return "(unparseable Redis URL)"
    }
  }
  if (redis?.sentinels !== undefined) return `sentinel master ${redis.name ?? "mymaster"}`
  if (redis?.path !== undefined) return `unix socket ${redis.path}`
  return `${redis?.host ?? "127.0.0.1"}:${redis?.port ?? 6379}`
}

/**
 * Why `url` is not a Redis URL ioredis can use, in words that do not repeat it (it may hold a password);
 * `undefined` when it is one.
 */
const malformedUrl = (url: string): string | undefined => {
  if (url.startsWith("/")) return undefined
  const expected = "expected redis://[[user]:password@]host[:port][/db], rediss://… or a socket path"
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    return `is not a valid URL (${expected})`
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    return `does not start with redis:// or rediss:// (${expected})`
  }
  if (parsed.hostname === "") return `names no host (${expected})`
  if (!/^(\/\d*)?$/.test(parsed.pathname)) return `names a database that is not a number (${expected})`
  return undefined
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
    const malformed = url === undefined ? undefined : malformedUrl(url)
    if (malformed !== undefined) {
      return Effect.fail(new StoreError({ reason: "Unavailable", message: `The Redis URL ${malformed}` }))
    }
    const address = addressOf(url, options.redis)
    const timeout = options.connectTimeout ?? defaultConnectTimeout
    const open = (extraCommandMillis: number) => {
      const settings = { ...options.redis, ...clientOptions(options, extraCommandMillis) }
      return connect(url === undefined ? new Redis(settings) : new Redis(url, settings), address, timeout)
    }
    return openStore(open, options, address)
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
      return connect(client, address, timeout)
    }
    return openStore(open, options, address)
  })

// The store on connections it opens with `open` (given how much longer than `commandTimeout` a command
// on it may take): one, and a second for revocations that wait for replicas, since WAIT blocks the
// connection it runs on.
const openStore = <C extends Client>(
  open: (
    extraCommandMillis: number
  ) => Effect.Effect<{ readonly client: C; readonly connection: Connection }, StoreError, Scope.Scope>,
  options: ConnectionOptions,
  address: string
): Effect.Effect<StoreService, StoreError, Scope.Scope> =>
  Effect.gen(function*() {
    const { client, connection } = yield* open(0)
    const wait = waitOf(options)
    const revoker = wait === undefined ? client : (yield* open(wait.timeoutMillis)).client
    yield* warnIfEvicting(client, address)
    return makeOn(client, revoker, options, connection)
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

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultWaitTimeout: Duration.Duration = Duration.seconds(1)

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

/**
 * The single-node store from `Config`: by default `REDIS_URL` (required, kept `Redacted`), and the
 * optional `REDIS_PREFIX`, `REDIS_CONNECT_TIMEOUT`, `REDIS_COMMAND_TIMEOUT`, `REDIS_AUTO_PIPELINING`,
 * `REDIS_WAIT_REPLICAS` (wait for that many replicas after every revocation) and `REDIS_WAIT_TIMEOUT`
 * (default 1 second).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConfigOptions> = { ...connectionConfig, url: urlConfig }
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
