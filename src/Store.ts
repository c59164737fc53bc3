/**
 * The store port: where sessions live between requests.
 *
 * A backend implements three operations and this contract:
 *
 * - `fetch(key)` answers in one round trip. A missing entry and an entry the backend cannot read
 *   (garbage written by someone else, a value from an incompatible version) are both `Option.none()`:
 *   answers, not failures. An entry may be returned after its `expiresAt` has passed (stores expire
 *   lazily); the `Sessions` service refuses it by the clock. Only a system failure (connection lost,
 *   timeout) is a `StoreError`.
 * - `save(key, entry, mode)` is one atomic write that also sets the store-side expiry to
 *   `entry.expiresAt`. With `"create"` it writes only if the key is absent; with `"update"` only if it is
 *   present (so extending a session that was cleared meanwhile cannot bring it back). It answers whether
 *   it wrote.
 * - `delete(key)` is idempotent.
 *
 * Keys are opaque strings chosen by the `Sessions` service (a hash of the session id, so a dump of the
 * store yields no usable token); a backend may add its own prefix.
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
 * already encoded by its schema (a JSON-compatible value).
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly userId: string
  readonly createdAt: number
  readonly expiresAt: number
  readonly data: unknown
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
  readonly fetch: (key: string) => Effect.Effect<Option.Option<Entry>, StoreError>
  readonly save: (key: string, entry: Entry, mode: SaveMode) => Effect.Effect<boolean, StoreError>
  readonly delete: (key: string) => Effect.Effect<void, StoreError>
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
    return Effect.succeed(HttpServerResponse.empty({ status: 503 }))
  }
}

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * Makes a store from its three operations. A backend needs nothing more.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (service: StoreService): StoreService => Store.of(service)

// -----------------------------------------------------------------------------
// codec
// -----------------------------------------------------------------------------

/**
 * Serialises an entry to the compact JSON array kept by string-valued backends:
 * `[version, userId, createdAt, expiresAt, data]`.
 *
 * @since 0.1.0
 * @category codec
 */
export const encodeEntry = (entry: Entry): string =>
  JSON.stringify([1, entry.userId, entry.createdAt, entry.expiresAt, entry.data])

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
    !Array.isArray(value) || value.length !== 5 || value[0] !== 1 || typeof value[1] !== "string" ||
    !Number.isSafeInteger(value[2]) || !Number.isSafeInteger(value[3])
  ) {
    return undefined
  }
  return { userId: value[1], createdAt: value[2], expiresAt: value[3], data: value[4] }
}
