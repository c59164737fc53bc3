/**
 * The Redis store's own connections: connecting one (and quitting it with the scope), the warning about
 * an evicting `maxmemory-policy`, and what may be said of an address without repeating a password.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import { Cluster, type Redis, type RedisOptions } from "ioredis"
import { classify, type Connection, type Failure, watch } from "./redisErrors.js"

/**
 * Connects a client the store owns and quits it when the scope closes. An unreachable Redis fails naming
 * the address (never the password) within `timeout`; refused credentials fail with reason
 * `"Authentication"`.
 */
export const connect = <C extends Redis | Cluster>(
  client: C,
  address: string,
  timeout: Duration.DurationInput
): Effect.Effect<{ readonly client: C; readonly connection: Connection }, Failure, Scope.Scope> =>
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
          catch: (cause) => classify(`connect to ${address}`, lastError ?? cause, connection)
        })
      ).pipe(Effect.as({ client, connection }))
    }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: (): Failure => ({
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
export const warnIfEvicting = (client: Redis | Cluster, address: string): Effect.Effect<void> =>
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

/** Where a single-node client connects, for messages: never the URL itself (it may hold a password). */
export const addressOf = (url: string | undefined, redis: Omit<RedisOptions, "replyMapping"> | undefined): string => {
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
export const malformedUrl = (url: string): string | undefined => {
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
