/**
 * The store port: where sessions live between requests.
 *
 * A session is stored under a {@link Key} of two parts: `user`, shared by every session of one user (a
 * hash of the user id), and `session`, its own (a hash of the session id). Both are opaque strings chosen
 * by the `Sessions` service; a dump of the store yields no usable token. A backend that shards (Redis
 * Cluster) keeps all of one user's keys together by the `user` part, so per-user operations touch one
 * shard and stay atomic.
 *
 * A backend implements these operations and this contract:
 *
 * - `fetch(key)` answers in one round trip. A missing entry and an entry the backend cannot read
 *   (garbage written by someone else, a value from an incompatible version) are both `Option.none()`:
 *   answers, not failures. An entry may be returned after its `expiresAt` has passed (stores expire
 *   lazily); the `Sessions` service refuses it by the clock. Only a system failure (connection lost,
 *   timeout) is a `StoreError`. `known`, when given, is an entry this backend answered earlier for the
 *   same key: the backend may answer that same object again when what it holds has not changed since,
 *   so that the caller can reuse what it derived from it (the decoded data, the session object). It must
 *   never answer `known` for a value that changed; ignoring `known` is always correct.
 * - `save(key, entry, mode)` is one atomic write that also sets the store-side expiry to
 *   `entry.expiresAt` and records the key under its user. With `"create"` it writes only if the key is
 *   absent. With `"update"` it writes only if the key is present and holds version `entry.version - 1`
 *   (compare-and-set: an update made from a stale read never overwrites a newer one, and a session
 *   cleared meanwhile is never brought back). It answers whether it wrote.
 * - `delete(key)` is idempotent.
 * - `list(user, now)` answers every readable entry of that user whose `expiresAt` is after `now`. A
 *   backend may prune its per-user records of what expired or vanished, by its own clock: it must never
 *   drop the record of an entry it can still fetch, or `deleteUser` would miss it.
 * - `deleteUser(user, except)` deletes every session of that user (but the one whose `session` part is
 *   `except`, if given) atomically with respect to `save`: once it returns, no session of that user
 *   saved before it was called can be fetched. It answers how many it deleted.
 *
 * @since 0.1.0
 */
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import * as Schema from "effect/Schema"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * What a store keeps for one session. Times are milliseconds since the epoch; `data` is the session data
 * already encoded by its schema (a JSON value). A store keeps every field as given; only `version` and
 * `expiresAt` mean something to it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  /** 0 when created, one more at every update: the compare-and-set version. */
  readonly version: number
  readonly userId: string
  /** When the user logged in; kept when the id is renewed. */
  readonly createdAt: number
  /** When this id was issued: `createdAt`, or the last renewal (rotation). */
  readonly renewedAt: number
  /** The expiry set by issue, extend and rolling expiry, before the idle and absolute limits. */
  readonly extendedUntil: number
  /** When the session dies: the earliest of every limit. The store-side expiry. */
  readonly expiresAt: number
  /** The last recorded use (recorded at most every so often; see the `Sessions` options). */
  readonly lastSeenAt: number
  /** The id was renewed: this entry only serves requests already in flight until `expiresAt`. */
  readonly retired: boolean
  /** What the HTTP layer knew of the client at login, if anything. */
  readonly userAgent: string | undefined
  readonly address: string | undefined
  readonly data: unknown
}

/**
 * Where one session is stored: the part shared by all sessions of its user, and its own part. Both are
 * base64url strings.
 *
 * @since 0.1.0
 * @category models
 */
export interface Key {
  readonly user: string
  readonly session: string
}

/**
 * One session of a user, as `list` answers it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Listed {
  readonly key: Key
  readonly entry: Entry
}

/**
 * How `save` treats an existing key.
 *
 * @since 0.1.0
 * @category models
 */
export type SaveMode = "create" | "update"

/**
 * The operations a backend implements.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreService {
  readonly fetch: (key: Key, known?: Entry | undefined) => Effect.Effect<Option.Option<Entry>, StoreError>
  readonly save: (key: Key, entry: Entry, mode: SaveMode) => Effect.Effect<boolean, StoreError>
  readonly delete: (key: Key) => Effect.Effect<void, StoreError>
  readonly list: (user: string, now: number) => Effect.Effect<ReadonlyArray<Listed>, StoreError>
  readonly deleteUser: (user: string, except?: string) => Effect.Effect<number, StoreError>
}

// -----------------------------------------------------------------------------
// tags
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category tags
 */
export class Store extends Context.Tag("effect-sessions/Store")<Store, StoreService>() {}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The store could not answer: the backend is unreachable, timed out or failed. Never used for "no such
 * session". Answered with 503 over HTTP.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends Schema.TaggedError<StoreError>("effect-sessions/StoreError")(
  "StoreError",
  {
    reason: Schema.Literal("Unavailable", "Timeout", "Unknown"),
    message: Schema.String,
    cause: Schema.optional(Schema.Defect)
  },
  HttpApiSchema.annotations({ status: 503 })
) {
  /** @since 0.1.0 */
  [HttpServerRespondable.symbol]() {
    return Effect.succeed(HttpServerResponse.empty({ status: 503, headers: { "retry-after": "1" } }))
  }
}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * Makes a store from its operations. A backend needs nothing more.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (service: StoreService): StoreService => Store.of(service)

// -----------------------------------------------------------------------------
// codec
// -----------------------------------------------------------------------------

const entryFormat = 2

/**
 * Serialises an entry to the compact JSON array kept by string-valued backends:
 * `[2, version, userId, createdAt, renewedAt, extendedUntil, expiresAt, lastSeenAt, retired,
 * userAgent, address, data]`. The format number and the version come first so that a script can read
 * the version with a pattern (`^%[2,(%d+),`) without parsing the rest.
 *
 * @since 0.1.0
 * @category codec
 */
export const encodeEntry = (entry: Entry): string =>
  JSON.stringify([
    entryFormat,
    entry.version,
    entry.userId,
    entry.createdAt,
    entry.renewedAt,
    entry.extendedUntil,
    entry.expiresAt,
    entry.lastSeenAt,
    entry.retired ? 1 : 0,
    entry.userAgent ?? null,
    entry.address ?? null,
    entry.data
  ])

const isTime = (u: unknown): u is number => Number.isSafeInteger(u)
const isOptionalString = (u: unknown): u is string | null => u === null || typeof u === "string"

/**
 * Reads what {@link encodeEntry} wrote. Anything else — invalid JSON, another shape, wrong types — is
 * `undefined`, never an exception.
 *
 * @since 0.1.0
 * @category codec
 */
export const decodeEntry = (raw: string): Entry | undefined => {
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (
    !Array.isArray(value) || value.length !== 12 || value[0] !== entryFormat || !isTime(value[1]) ||
    value[1] < 0 || typeof value[2] !== "string" || !isTime(value[3]) || !isTime(value[4]) ||
    !isTime(value[5]) || !isTime(value[6]) || !isTime(value[7]) || (value[8] !== 0 && value[8] !== 1) ||
    !isOptionalString(value[9]) || !isOptionalString(value[10])
  ) {
    return undefined
  }
  return {
    version: value[1],
    userId: value[2],
    createdAt: value[3],
    renewedAt: value[4],
    extendedUntil: value[5],
    expiresAt: value[6],
    lastSeenAt: value[7],
    retired: value[8] === 1,
    userAgent: value[9] ?? undefined,
    address: value[10] ?? undefined,
    data: value[11]
  }
}
