/**
 * The Redis store's operations on a user's hash, as a `Store.StringBackend`: `Store.makeStringOnly`
 * derives the rest (the codec, garbage as no session, the reuse of an unchanged entry, expiry).
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type { Key, StoreError, StringBackend } from "../Store.js"
import { classify, type Connection, type Failure, isWrongType } from "./redisErrors.js"
import { type Client, type Pipeline, withScripts } from "./redisScripts.js"

/** How revocations wait for replicas (Redis `WAIT`). */
export interface Wait {
  readonly replicas: number
  readonly timeoutMillis: number
}

/** What the operations share. */
export interface Commands {
  readonly client: Client
  /** Where revocations run: `client`, or a connection of their own when they wait for replicas. */
  readonly revoker: Client
  readonly prefix: string
  readonly retention: number
  /** The longest value a script counts as an entry (`Store.maxEncodedLength`). */
  readonly longest: number
  readonly wait: Wait | undefined
  readonly connection: Connection | undefined
  /** Makes the `StoreError` of a failure. */
  readonly error: (failure: Failure) => StoreError
}

/** The backend on `commands.client`, its scripts registered on both connections. */
export const makeBackend = (commands: Commands): StringBackend => {
  const redis = withScripts(commands.client)
  withScripts(commands.revoker)
  return {
    fetch: (key, decode) => fetch(commands, redis, key, decode),
    save: (key, value, entry, mode, cap) =>
      Effect.map(
        run(commands, "save", () =>
          redis.effectSessionsSave(
            userKey(commands, key.user),
            key.session,
            value,
            mode,
            String(entry.version - 1),
            entry.expiresAt + commands.retention,
            commands.retention,
            cap === undefined ? "" : Math.max(1, Math.floor(cap.maxPerUser)),
            cap === undefined ? 0 : cap.now,
            commands.longest
          ), 0),
        (written) => Number(written) === 1
      ),
    delete: (key) =>
      Effect.asVoid(revoke(
        commands,
        "delete",
        () => redis.hdel(userKey(commands, key.user), key.session),
        (pipeline) => pipeline.hdel(userKey(commands, key.user), key.session),
        0
      )),
    list: (user) =>
      Effect.map(
        run(commands, "list", () => redis.hgetall(userKey(commands, user)), {}),
        (fields) => Object.entries(fields)
      ),
    deleteUser: (user, except) =>
      Effect.map(
        revoke(
          commands,
          "deleteUser",
          () => redis.effectSessionsDeleteUser(userKey(commands, user), except ?? "", commands.longest),
          (pipeline) => pipeline.effectSessionsDeleteUser(userKey(commands, user), except ?? "", commands.longest),
          0
        ),
        Number
      )
  }
}

/** The key of a user's hash: every session of one user in one Cluster slot, by the hash tag. */
export const hashKey = (prefix: string, user: string) => `${prefix}{${user}}`

/** The user whose hash `key` is, under `prefix` (the inverse of {@link hashKey}); `undefined` for any other key. */
export const userOfHashKey = (prefix: string, key: string): string | undefined =>
  key.length > prefix.length + 2 && key.startsWith(prefix) && key.charCodeAt(prefix.length) === 123 /* { */ &&
    key.charCodeAt(key.length - 1) === 125 /* } */
    ? key.slice(prefix.length + 1, -1)
    : undefined

const userKey = (commands: Commands, user: string) => hashKey(commands.prefix, user)

/**
 * The read of every request: one HGET, resumed straight with its decoded answer (mapping the answer
 * afterwards would cost the read a step more). Someone else's value of another type at the key reads as
 * none.
 */
const fetch = <A>(
  commands: Commands,
  redis: Client,
  key: Key,
  decode: (value: string | undefined) => A
): Effect.Effect<A, StoreError> =>
  Effect.async<A, StoreError>((resume) => {
    const failed = (cause: unknown) =>
      resume(
        isWrongType(cause)
          ? Effect.succeed(decode(undefined))
          : Effect.fail(commands.error(classify("HGET", cause, commands.connection)))
      )
    try {
      redis.hget(userKey(commands, key.user), key.session).then(
        (value) => resume(Effect.succeed(decode(typeof value === "string" ? value : undefined))),
        failed
      )
    } catch (cause) {
      failed(cause)
    }
  })

/** One command or script; a WRONGTYPE reply (someone else's value at the key) answers `whenWrongType`. */
const run = <A>(commands: Commands, operation: string, evaluate: () => Promise<A>, whenWrongType: A) =>
  Effect.tryPromise({
    try: () => evaluate().catch((cause) => isWrongType(cause) ? whenWrongType : Promise.reject(cause)),
    catch: (cause) => commands.error(classify(operation, cause, commands.connection))
  })

/**
 * A revocation: `direct` alone or, waiting for replicas, `piped` then `WAIT` in one pipeline on the
 * revoker, so that WAIT runs on the connection (and, on a Cluster, the node: a pipeline goes to the node
 * of its keys) that made the write.
 */
const revoke = <A>(
  commands: Commands,
  operation: string,
  direct: () => Promise<A>,
  piped: (pipeline: Pipeline) => Pipeline,
  whenWrongType: A
): Effect.Effect<A, StoreError> => {
  const wait = commands.wait
  if (wait === undefined) return run(commands, operation, direct, whenWrongType)
  const pipeline = () => piped(commands.revoker.pipeline() as unknown as Pipeline)
  return Effect.flatMap(
    run(commands, operation, () => pipeline().call("WAIT", wait.replicas, wait.timeoutMillis).exec(), null),
    (replies) => confirmed(commands, wait, operation, replies, whenWrongType)
  )
}

/** The answer of a revocation's pipeline: its write's, once `WAIT` says enough replicas have it. */
const confirmed = <A>(
  commands: Commands,
  wait: Wait,
  operation: string,
  replies: Array<[Error | null, unknown]> | null,
  whenWrongType: A
): Effect.Effect<A, StoreError> => {
  const [written, waited] = replies ?? []
  if (written === undefined || waited === undefined) {
    return Effect.fail(commands.error({ reason: "Unavailable", message: `Redis ${operation} got no reply` }))
  }
  if (written[0] !== null && !isWrongType(written[0])) {
    return Effect.fail(commands.error(classify(operation, written[0], commands.connection)))
  }
  if (waited[0] !== null) {
    return Effect.fail(commands.error(classify(`${operation} (WAIT)`, waited[0], commands.connection)))
  }
  const count = Number(waited[1])
  if (!(count >= wait.replicas)) {
    return Effect.fail(commands.error({
      reason: "Timeout",
      message: `Redis ${operation}: ${count} of ${wait.replicas} replica(s) confirmed it within ` +
        `${wait.timeoutMillis} ms. It holds on the primary, but a failover before the replicas catch up ` +
        `could undo it`
    }))
  }
  return Effect.succeed(written[0] === null ? written[1] as A : whenWrongType)
}
