/**
 * Sessions: the model, the `Sessions` service that composes the Auth and Store ports, and its errors.
 *
 * ```ts
 * import { Schema } from "effect"
 * import * as Sessions from "effect-sessions/Session"
 *
 * class AppSession extends Sessions.Tag<AppSession>()("app/Session", {
 *   data: Schema.Struct({ csrf: Schema.String })
 * }) {}
 *
 * // at login
 * const { session, token } = yield* (yield* AppSession).issue("user-1", { csrf })
 * ```
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricLabel from "effect/MetricLabel"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Crypto from "node:crypto"
import { Auth, BadSignature, maxTokenLength } from "./Auth.js"
import { freezeData } from "./internal/freeze.js"
import * as HttpError from "./internal/httpError.js"
import { lineageKey, newFamily, newSecret, parseId, secretDigest, tagLength } from "./internal/ids.js"
import * as Lock from "./internal/lock.js"
import { markSuperseded } from "./internal/refusal.js"
import * as Registry from "./internal/registry.js"
import type { ReadContinuation } from "./internal/registry.js"
import { around, type Entry, type Key, Store, StoreError, type StoreService } from "./Store.js"

export {
  /** @since 0.1.0 */
  BadSignature,
  /** @since 0.1.0 */
  StoreError
}

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * What is known of a stored session without its token: what `list` answers.
 *
 * `key` is where the store keeps it: a keyed fingerprint of the user id, and a digest of the session's
 * lineage (which stays the same when its id is renewed). It is safe to log and to show (for example to
 * let a user revoke one of their sessions with `revoke`), and no part of a token can be made from it.
 * Session objects and their data are frozen: one object may serve several requests.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionInfo<A> {
  readonly key: Key
  readonly userId: string
  /** When the user logged in (kept when the id is renewed). */
  readonly createdAt: DateTime.Utc
  /** When this id was issued: at login or at the last renewal. */
  readonly renewedAt: DateTime.Utc
  /** When the session dies: the earliest of its expiry, idle timeout and absolute lifetime. */
  readonly expiresAt: DateTime.Utc
  /** The last recorded use: recorded on every write, and at least every half idle timeout when one is set. */
  readonly lastSeenAt: DateTime.Utc
  /** The client's `User-Agent` at login, when the HTTP layer issued the session. */
  readonly userAgent: string | undefined
  /** The client's address at login, when the HTTP layer issued the session. */
  readonly address: string | undefined
  readonly data: A
}

/**
 * A valid session. `id` is the secret the token is made from: it is `Redacted` so that logging a session
 * never leaks it. A session read through an id that was just renewed (in its grace) reads, but every
 * write and revocation made through it is refused.
 *
 * @since 0.1.0
 * @category models
 */
export interface Session<A> extends SessionInfo<A> {
  readonly id: Redacted.Redacted<string>
}

/**
 * A session just issued or renewed, with the signed token to hand to the client.
 *
 * @since 0.1.0
 * @category models
 */
export interface Issued<A> {
  readonly session: Session<A>
  readonly token: string
}

/**
 * What the client's token resolved to: the session, and the token the client must be given now, if any
 * (after a renewal of the id, a rolling or idle refresh that moved the expiry, or a verification by an
 * older key).
 *
 * @since 0.1.0
 * @category models
 */
export interface Resolved<A> {
  readonly session: Session<A>
  readonly token: string | undefined
}

/**
 * What the HTTP layer knows of the client at login.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientInfo {
  readonly userAgent?: string | undefined
  readonly address?: string | undefined
}

/**
 * The sessions service for session data of type `A`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Sessions<A> {
  /** How long a session lives after it is issued or extended. */
  readonly ttl: Duration.Duration
  /** Creates and stores a session for `userId` and signs its token (at login). */
  readonly issue: (userId: string, data: A, client?: ClientInfo) => Effect.Effect<Issued<A>, StoreError>
  /**
   * Returns the session a token stands for. The signature is checked before the store is asked; every
   * limit (expiry, idle timeout, absolute lifetime) is checked with `Clock`, whatever the store's own TTL
   * says. With rolling expiry or an idle timeout it also records the use, writing to the store only when
   * the remaining life has fallen below the threshold.
   */
  readonly get: (token: string) => Effect.Effect<Session<A>, BadSignature | NotFound | Expired | StoreError>
  /**
   * `get`, plus what the HTTP layer needs: a new token when the session's id was due for renewal
   * (`renewalInterval`), or the same id re-signed when its expiry moved or an older key verified it.
   */
  readonly resolve: (token: string) => Effect.Effect<Resolved<A>, BadSignature | NotFound | Expired | StoreError>
  /**
   * Moves the expiry to now + `ttl` (never past the absolute lifetime) and saves it. Fails with `NotFound`
   * when the session was cleared or renewed meanwhile (it is never brought back) and with `Expired` when
   * it already expired. Concurrent changes to the data are kept.
   */
  readonly extend: (session: Session<A>) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError>
  /**
   * Changes the session's data with `f`, applied to the latest stored data: concurrent updates of one
   * session are serialised by compare-and-set, none is lost; after repeated contention it fails with
   * `Conflict`.
   */
  readonly update: (
    session: Session<A>,
    f: (data: A) => A
  ) => Effect.Effect<Session<A>, NotFound | Expired | Conflict | StoreError>
  /**
   * Gives the session a new id and token, keeping its user, data and login time (session fixation
   * defence: call it at login and at every privilege change). The old id stops working at once, or after
   * `rotationGrace` for requests already in flight (reading only). The new id is the same store entry
   * as the old one, so a revocation racing the rotation ends both.
   */
  readonly rotate: (session: Session<A>) => Effect.Effect<Issued<A>, NotFound | Expired | Conflict | StoreError>
  /**
   * Deletes the session from the store (at logout), with every id it had or has (renewals included).
   * Idempotent. Does nothing for a session read through an id in its renewal grace.
   */
  readonly clear: (session: Session<A>) => Effect.Effect<void, StoreError>
  /** The live sessions of a user, oldest first. Sessions whose data no longer decodes are left out. */
  readonly list: (userId: string) => Effect.Effect<ReadonlyArray<SessionInfo<A>>, StoreError>
  /**
   * Deletes one session of a user, by the `key.session` that `list` showed, with every id it had or has.
   * Idempotent.
   */
  readonly revoke: (userId: string, session: string) => Effect.Effect<void, StoreError>
  /**
   * Deletes every session of a user ("log out everywhere") and answers how many. Once it returns, no
   * session of that user issued before the call is valid.
   */
  readonly clearAll: (userId: string) => Effect.Effect<number, StoreError>
  /**
   * Deletes every session of the session's user but this one ("log out my other devices"). Does nothing
   * (answers 0) for a session read through an id in its renewal grace.
   */
  readonly clearOthers: (session: Session<A>) => Effect.Effect<number, StoreError>
  /** The token of a session, signed with the current (first) key. */
  readonly token: (session: Session<A>) => string
}

/**
 * Options of the `Sessions` service. Every limit is off unless set, except the expiry (`ttl`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How long a session lives after `issue` or `extend`. Default: 3 days, as in the original library. */
  readonly ttl?: Duration.DurationInput | undefined
  /** A session unused for this long dies (OWASP idle timeout). Default: none. */
  readonly idleTimeout?: Duration.DurationInput | undefined
  /** A session dies this long after login, whatever extension is asked for (OWASP absolute timeout). Default: none. */
  readonly absoluteLifetime?: Duration.DurationInput | undefined
  /**
   * Extend on use (opt-in). `true` or `{ threshold }`: each use moves the expiry to now + `ttl`, but the
   * store is written only when the remaining life has fallen below `threshold` × `ttl` (default 0.5), so
   * read-heavy traffic stays read-only. The same threshold paces the recording of use for `idleTimeout`.
   */
  readonly rolling?: boolean | { readonly threshold?: number | undefined } | undefined
  /** Renew the id (rotate) automatically when it is this old, in the HTTP layer (OWASP renewal timeout). Default: none. */
  readonly renewalInterval?: Duration.DurationInput | undefined
  /**
   * How long an id replaced by `rotate` keeps serving (reads only) requests already in flight. Default: 0
   * (it dies at once: `rotate` is the session-fixation defence at a privilege change).
   */
  readonly rotationGrace?: Duration.DurationInput | undefined
  /**
   * How long an id replaced by the automatic renewal (`renewalInterval`) keeps serving reads, so that the
   * requests a client already has in flight with it are not logged out. Default: 1 minute.
   */
  readonly renewalGrace?: Duration.DurationInput | undefined
  /**
   * The most live sessions one user may have. Issuing one more ends that user's least recently seen
   * session, in the same atomic store operation (so one account cannot fill the store, and `list` stays
   * small). Default 100.
   */
  readonly maxSessionsPerUser?: number | undefined
  /**
   * The name that separates this service's tokens and stored sessions from those of other sessions
   * services sharing its `Auth` and `Store`: a token of one never validates at another. `layer` and
   * `layerConfig` set it to the tag's key. Default `effect-sessions`.
   */
  readonly name?: string | undefined
  /** Record the `metrics` (counters and store latency). Default `true`. */
  readonly metrics?: boolean | undefined
  /**
   * Open a span for every `get` / `resolve`. Default `false`: reads annotate the enclosing span (the
   * HTTP server's request span) with `session.result` instead, since a span of its own costs more than
   * the whole validation (bench/RESULTS.md). Writes (`issue`, `extend`, `rotate`, …) always get a span.
   */
  readonly traceReads?: boolean | undefined
  /**
   * How many verified tokens each process remembers (their session id and store key), so that a token's
   * signature is checked once per process rather than on every request. Only tokens whose signature
   * verified are remembered, so forged tokens are checked every time and cannot fill it; validity is not
   * cached (every read asks the store). About 0.5 KB per token, plus the last session read with it (its
   * data included), which is reused while the store answers it unchanged. `0` turns it off. Default 10,000.
   */
  readonly verifiedTokenCache?: number | undefined
}

// -----------------------------------------------------------------------------
// tags
// -----------------------------------------------------------------------------

/**
 * The identifier of the current-session tag of the sessions service `Self`.
 *
 * @since 0.1.0
 * @category tags
 */
export interface CurrentSession<Self> {
  readonly [CurrentSessionTypeId]: Self
}

/**
 * @since 0.1.0
 * @category type ids
 */
export const CurrentSessionTypeId: unique symbol = Symbol.for("effect-sessions/CurrentSession")

/**
 * @since 0.1.0
 * @category type ids
 */
export type CurrentSessionTypeId = typeof CurrentSessionTypeId

/**
 * The tag of a sessions service: the `Context.Tag` of `Sessions<A>`, its data schema, and the tag under
 * which the HTTP layer provides the request's session (or its absence) to handlers.
 *
 * @since 0.1.0
 * @category tags
 */
export interface SessionsTag<Self, A, I> extends Context.Tag<Self, Sessions<A>> {
  readonly data: Schema.Schema<A, I>
  readonly Current: Context.Tag<CurrentSession<Self>, Option.Option<Session<A>>>
}

/**
 * Declares a sessions service whose data is typed and validated by a `Schema`:
 *
 * ```ts
 * class AppSession extends Tag<AppSession>()("app/Session", { data: Schema.Struct({ csrf: Schema.String }) }) {}
 * ```
 *
 * Data is stored encoded and decoded on every read; data that no longer decodes (a schema change, a
 * foreign write) reads as "no session". The schema must be synchronous and need no services.
 *
 * @since 0.1.0
 * @category tags
 */
export const Tag = <Self>() =>
<const Key extends string, A, I>(
  key: Key,
  options: { readonly data: Schema.Schema<A, I> }
): Context.TagClass<Self, Key, Sessions<A>> & {
  readonly data: Schema.Schema<A, I>
  readonly Current: Context.Tag<CurrentSession<Self>, Option.Option<Session<A>>>
} => {
  const tag = Context.Tag(key)<Self, Sessions<A>>()
  return Object.assign(tag, {
    data: options.data,
    Current: Context.GenericTag<CurrentSession<Self>, Option.Option<Session<A>>>(`${key}/Current`)
  })
}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * No session is stored under the token's id: it never existed, was cleared, was evicted, or its data no
 * longer decodes. Answered with 401 over HTTP.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends HttpError.TaggedError<NotFound>("effect-sessions/NotFound")(
  "NotFound",
  {},
  { status: 401 }
) {
  override get message(): string {
    return "no such session"
  }
}

/**
 * The session's expiry has passed. Answered with 401 over HTTP.
 *
 * @since 0.1.0
 * @category errors
 */
export class Expired extends HttpError.TaggedError<Expired>("effect-sessions/Expired")(
  "Expired",
  {},
  { status: 401 }
) {
  override get message(): string {
    return "the session has expired"
  }
}

/**
 * The session changed under an update too many times in a row (compare-and-set lost repeatedly).
 * Answered with 409 over HTTP; retrying the request is safe.
 *
 * @since 0.1.0
 * @category errors
 */
export class Conflict extends HttpError.TaggedError<Conflict>("effect-sessions/Conflict")(
  "Conflict",
  {},
  { status: 409 }
) {
  override get message(): string {
    return "the session was changed concurrently; retry"
  }
}

/**
 * The service's options are unusable (a lifetime that is not a positive, finite duration). Raised when
 * the layer is built.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidOptions extends Data.TaggedError("InvalidOptions")<{ readonly message: string }> {}

/**
 * Every reason a token does not yield a session. `StoreError` is not one of them: it means the system
 * could not answer.
 *
 * @since 0.1.0
 * @category errors
 */
export type Rejected = BadSignature | NotFound | Expired

/**
 * @since 0.1.0
 * @category refinements
 */
export const isRejected = (u: unknown): u is Rejected =>
  u instanceof BadSignature || u instanceof NotFound || u instanceof Expired

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * The default session lifetime: 3 days.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTtl: Duration.Duration = Duration.days(3)

const defaultName = "effect-sessions"

// -----------------------------------------------------------------------------
// metrics
// -----------------------------------------------------------------------------

// The histogram under `metrics.storeLatency`, which is built from it exactly as
// `Metric.timerWithBoundaries` would build it (a `time_unit` label, durations in milliseconds). The
// service updates the histogram directly with a constant label array per operation: the same metric key
// as `Metric.tagged(metrics.storeLatency, "operation", op)`, without rebuilding and hashing that key on
// every update. (Two histogram keys are equal only when they share one boundaries object.)
const storeLatencyHistogram = Metric.histogram(
  "effect_sessions_store_latency",
  MetricBoundaries.fromIterable([0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000]),
  "Store operation latency in milliseconds, by operation"
)

const storeLatency = Metric.mapInput(
  Metric.tagged(storeLatencyHistogram, "time_unit", "milliseconds"),
  Duration.toMillis
)

/**
 * The metrics the sessions service records (names in Prometheus style). Wire them to OpenTelemetry
 * with `@effect/opentelemetry` (see examples/otel.ts), or read them with `Metric.value`.
 *
 * - `effect_sessions_issued_total` — sessions issued;
 * - `effect_sessions_validated_total` — tokens that resolved to a valid session;
 * - `effect_sessions_rejected_total{reason}` — tokens refused: `bad_signature`, `not_found`, `expired`;
 * - `effect_sessions_refreshed_total` — reads that wrote (rolling expiry, idle timeout);
 * - `effect_sessions_rotated_total` — ids renewed;
 * - `effect_sessions_store_errors_total{operation}` — store failures;
 * - `effect_sessions_store_latency{operation}` — store latency in milliseconds (a histogram).
 *
 * @since 0.1.0
 * @category metrics
 */
export const metrics = {
  issued: Metric.counter("effect_sessions_issued_total", { description: "Sessions issued", incremental: true }),
  validated: Metric.counter("effect_sessions_validated_total", {
    description: "Tokens that resolved to a valid session",
    incremental: true
  }),
  rejected: Metric.counter("effect_sessions_rejected_total", { description: "Tokens refused", incremental: true }),
  refreshed: Metric.counter("effect_sessions_refreshed_total", {
    description: "Reads that wrote the session (rolling expiry, idle timeout)",
    incremental: true
  }),
  rotated: Metric.counter("effect_sessions_rotated_total", { description: "Session ids renewed", incremental: true }),
  storeErrors: Metric.counter("effect_sessions_store_errors_total", {
    description: "Store failures",
    incremental: true
  }),
  storeLatency
} as const

const labels = (key: string, value: string): ReadonlyArray<MetricLabel.MetricLabel> => [MetricLabel.make(key, value)]

// Constant label arrays: a metric caches its key per label array (by identity), so an update with one of
// these costs a lookup, where `Metric.tagged(...)` would build and hash the key again on every update.
const rejectedLabels = {
  BadSignature: labels("reason", "bad_signature"),
  NotFound: labels("reason", "not_found"),
  Expired: labels("reason", "expired")
} as const

const storeOperations = ["fetch", "save", "delete", "list", "deleteUser"] as const

const noTags: ReadonlyArray<never> = []

type StoreOperation = typeof storeOperations[number]

const byOperation = <X>(f: (op: StoreOperation) => X) =>
  Object.fromEntries(storeOperations.map((op) => [op, f(op)])) as Record<StoreOperation, X>

const latencyLabels = byOperation((op) => [
  MetricLabel.make("time_unit", "milliseconds"),
  MetricLabel.make("operation", op)
])
const errorLabels = byOperation((op) => labels("operation", op))

// Records a store operation that started at `start` (`performance.now()`): a duration, not a time of
// day, so measured with the monotonic clock even under TestClock. Failures are timed too: a timeout is
// exactly the latency worth seeing.
const recordStore = (op: StoreOperation, start: number, failed: boolean) => {
  storeLatencyHistogram.unsafeUpdate(performance.now() - start, latencyLabels[op])
  if (failed) metrics.storeErrors.unsafeUpdate(1, errorLabels[op])
}

const instrument = (store: StoreService): StoreService =>
  around(store, (op, effect) =>
    Effect.suspend(() => {
      const start = performance.now()
      return Effect.onExit(effect, (exit) => {
        recordStore(op, start, exit._tag === "Failure")
        return Effect.void
      })
    }))

const notFound = new NotFound()
// The refusal of a token whose session lives on under a newer id (internal/refusal.ts).
const superseded = markSuperseded(new NotFound())
const expired = new Expired()
const conflict = new Conflict()

// Compare-and-set attempts before a write gives up with `Conflict`. Writers of one session in one process
// queue (internal/lock.ts), so losing happens only to writers in other processes; between attempts a
// writer backs off for a random time of up to `2^attempt` milliseconds (at most 50), on the live clock:
// the delay paces a real store, whatever clock the session times come from.
const maxAttempts = 10
const liveClock = Clock.make()
const backoff = (attempt: number) =>
  Effect.withClock(
    Effect.sleep(Duration.millis(Crypto.randomInt(1, Math.min(50, 2 ** attempt) + 1))),
    liveClock
  )

/**
 * The default limit on live sessions per user: 100.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxSessionsPerUser = 100

/**
 * The default grace of an id replaced by automatic renewal (`renewalInterval`): 1 minute.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultRenewalGrace: Duration.Duration = Duration.minutes(1)

/**
 * The longest encoded session data (the JSON of the schema's encoded form) the service stores: 32 Ki
 * characters. Writing more is a defect: session data is the application's, not the client's.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxDataLength = 32_768

/**
 * The longest user id the service issues a session for: 1,024 characters.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxUserIdLength = 1_024

// The longest `User-Agent` and address kept of a client.
const maxClientInfoLength = 512

const positive = (name: string, input: Duration.DurationInput | undefined) => {
  if (input === undefined) return Either.right(undefined)
  const millis = Duration.toMillis(Duration.decode(input))
  return Number.isFinite(millis) && millis >= 1
    ? Either.right(millis)
    : Either.left(new InvalidOptions({ message: `${name} must be a finite duration of at least 1 millisecond` }))
}

const nonNegative = (name: string, input: Duration.DurationInput | undefined, fallback: number) => {
  if (input === undefined) return Either.right(fallback)
  const millis = Duration.toMillis(Duration.decode(input))
  return Number.isFinite(millis) && millis >= 0
    ? Either.right(millis)
    : Either.left(new InvalidOptions({ message: `${name} must be a finite duration` }))
}

// What the service knows of each session object it handed out: the entry it was read or written as, the
// digest of its id's secret, and whether that id was the current one (an id in its renewal grace reads
// but never writes).
interface Known {
  readonly entry: Entry
  readonly secret: string
  readonly current: boolean
}

/**
 * Builds the sessions service for data described by `schema`, on the `Store` and `Auth` in context.
 * `options.name` separates it from other sessions services sharing that store and those keys; `layer`
 * names it after its tag.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <A, I>(
  schema: Schema.Schema<A, I>,
  options: Options = {}
): Effect.Effect<Sessions<A>, InvalidOptions, Store | Auth> =>
  Effect.gen(function*() {
    const domain = options.name ?? defaultName
    const observe = options.metrics ?? true
    const backend = yield* Store
    const store = observe ? instrument(backend) : backend
    const count = (metric: Metric.Metric.Counter<number>) => observe ? Metric.increment(metric) : Effect.void
    const auth = yield* Auth
    const ttl = Duration.decode(options.ttl ?? defaultTtl)
    const ttlMillis = (yield* positive("the session ttl", ttl))!
    const idle = yield* positive("idleTimeout", options.idleTimeout)
    const absolute = yield* positive("absoluteLifetime", options.absoluteLifetime)
    const renewal = yield* positive("renewalInterval", options.renewalInterval)
    const grace = yield* nonNegative("rotationGrace", options.rotationGrace, 0)
    const renewalGrace = yield* nonNegative(
      "renewalGrace",
      options.renewalGrace,
      Duration.toMillis(defaultRenewalGrace)
    )
    const verifiedTokenCache = options.verifiedTokenCache ?? 10_000
    if (!(Number.isSafeInteger(verifiedTokenCache) && verifiedTokenCache >= 0)) {
      return yield* new InvalidOptions({ message: "verifiedTokenCache must be a whole number, 0 or more" })
    }
    const maxPerUser = options.maxSessionsPerUser ?? defaultMaxSessionsPerUser
    if (!(Number.isSafeInteger(maxPerUser) && maxPerUser >= 1)) {
      return yield* new InvalidOptions({ message: "maxSessionsPerUser must be a whole number, 1 or more" })
    }
    const rolling = options.rolling === true || typeof options.rolling === "object"
    const threshold = typeof options.rolling === "object" ? options.rolling.threshold ?? 0.5 : 0.5
    if (!(threshold > 0 && threshold <= 1)) {
      return yield* new InvalidOptions({ message: "rolling.threshold must be in (0, 1]" })
    }

    const decode = Schema.decodeUnknownEither(schema)
    // Data that cannot be encoded is a programming error (the value contradicts its own type's
    // refinements, or its encoded form is not JSON), and so is data too large to store: session data is
    // the application's, not the client's. So both are defects rather than errors every caller would
    // have to handle. The encoded form goes through JSON here, once per write, so that every backend (in
    // memory or a string store) keeps and returns exactly the same value.
    const encode = (data: A) =>
      Effect.flatMap(Effect.orDie(Schema.encode(schema)(data)), (encoded) =>
        Effect.suspend(() => {
          let json: string | undefined
          try {
            json = JSON.stringify(encoded)
          } catch {
            // reported below
          }
          if (json === undefined) {
            return Effect.dieMessage("session data must encode (through its schema) to a JSON value")
          }
          if (json.length > maxDataLength) {
            return Effect.dieMessage(
              `session data encodes to ${json.length} characters; at most ${maxDataLength} are stored`
            )
          }
          return Effect.succeed(JSON.parse(json) as unknown)
        }))

    // When a session dies: the earliest of its expiry, its idle deadline and its absolute deadline, by
    // the options in force now (so tightening them applies to existing sessions too).
    const deadline = (entry: Pick<Entry, "createdAt" | "extendedUntil" | "lastSeenAt">) =>
      Math.min(
        entry.extendedUntil,
        idle === undefined ? Infinity : entry.lastSeenAt + idle,
        absolute === undefined ? Infinity : entry.createdAt + absolute
      )
    const isDead = (entry: Entry, now: number) => now >= entry.expiresAt || now >= deadline(entry)

    // The user's store parts, under every key (the signing key's first): sessions made under a key that
    // is still configured are found by `list` and the revocations.
    const userTags = (userId: string) => Array.from(new Set(auth.fingerprint(userId, domain)))
    const owns = (userId: string, tag: string) => auth.fingerprint(userId, domain).includes(tag)

    const known = new WeakMap<SessionInfo<A>, Known>()

    const toInfo = (key: Key, entry: Entry, data: A): SessionInfo<A> => ({
      key,
      userId: entry.userId,
      createdAt: DateTime.unsafeMake(entry.createdAt),
      renewedAt: DateTime.unsafeMake(entry.renewedAt),
      expiresAt: DateTime.unsafeMake(entry.expiresAt),
      lastSeenAt: DateTime.unsafeMake(entry.lastSeenAt),
      userAgent: entry.userAgent,
      address: entry.address,
      data
    })
    // Session objects are frozen (their data too, when it is plain data: internal/freeze.ts), since one
    // object may serve many requests.
    const toSession = (
      id: Redacted.Redacted<string>,
      key: Key,
      entry: Entry,
      data: A,
      secret: string
    ): Session<A> => {
      const session: Session<A> = Object.freeze({ id, ...toInfo(key, entry, data) })
      known.set(session, { entry, secret, current: entry.secret === secret })
      return session
    }

    // The parts of a session's id, for a session object this service may not have made.
    const partsOf = (session: Session<A>) => {
      const parsed = parseId(Redacted.value(session.id))
      return parsed === undefined ? undefined : { ...parsed, digest: secretDigest(parsed.secret) }
    }

    const fetchLive = (key: Key): Effect.Effect<Entry, NotFound | Expired | StoreError> =>
      Effect.flatMap(store.fetch(key), (entry): Effect.Effect<Entry, NotFound | Expired> =>
        Option.isNone(entry)
          ? Effect.fail(notFound)
          : Effect.flatMap(
            Clock.currentTimeMillis,
            (now): Effect.Effect<Entry, Expired> =>
              isDead(entry.value, now) ? Effect.fail(expired) : Effect.succeed(entry.value)
          ))

    const writers = Lock.make<Entry>()

    /**
     * Writes `change(latest entry)` by compare-and-set, starting from the newest entry known for the
     * session (the one it was read as, or the last one written in this process) and re-reading after a
     * lost race. Only the session's current id writes: an id that was renewed meanwhile, or one read in
     * its grace, fails with `NotFound`. `change` sees the entry and the time, and answers the entry's next
     * state (the version and the deadline are set here).
     */
    const modify = (
      session: Session<A>,
      change: (entry: Entry, now: number) => Effect.Effect<Entry, NotFound>
    ): Effect.Effect<Entry, NotFound | Expired | Conflict | StoreError> =>
      Effect.suspend(() => {
        const seen = known.get(session)
        if (seen !== undefined && !seen.current) return Effect.fail(notFound)
        const secret = seen?.secret ?? partsOf(session)?.digest
        if (secret === undefined) return Effect.fail(notFound)
        return writers.with(`${session.key.user}.${session.key.session}`, (slot) =>
          Effect.gen(function*() {
            for (let attempt = 0; attempt < maxAttempts; attempt++) {
              if (attempt > 1) yield* backoff(attempt)
              const now = yield* Clock.currentTimeMillis
              let current: Entry | undefined
              if (attempt === 0) {
                const latest = slot.latest
                const candidate = latest !== undefined && (seen === undefined || latest.version > seen.entry.version)
                  ? latest
                  : seen?.entry
                // A copy still good saves a read; only the store decides that a session is gone or
                // expired (another request may have extended it since).
                if (candidate !== undefined && !isDead(candidate, now)) current = candidate
              }
              if (current === undefined) current = yield* fetchLive(session.key)
              if (current.secret !== secret) return yield* notFound
              const changed = yield* change(current, now)
              const next: Entry = { ...changed, version: current.version + 1, expiresAt: deadline(changed) }
              if (yield* store.save(session.key, next, "update")) {
                slot.latest = next
                return next
              }
            }
            return yield* conflict
          }))
      })

    const newEntry = (
      userId: string,
      now: number,
      encoded: unknown,
      secret: string,
      client: ClientInfo | undefined
    ) => {
      const entry = {
        version: 0,
        userId,
        createdAt: now,
        renewedAt: now,
        extendedUntil: now + ttlMillis,
        lastSeenAt: now,
        secret,
        previous: undefined,
        previousUntil: 0,
        // bounded, like the data, so that an entry never outgrows `Store.maxEncodedLength`
        userAgent: client?.userAgent?.slice(0, maxClientInfoLength),
        address: client?.address?.slice(0, maxClientInfoLength),
        data: encoded
      }
      return { ...entry, expiresAt: deadline(entry) }
    }

    // The session data a written entry stands for, decoded from what was stored (so a session just issued
    // or updated holds what a later `get` returns, and never the caller's own object).
    const decoded = (entry: Entry) => {
      const data = decode(entry.data)
      if (Either.isRight(data)) freezeData(data.right)
      return data
    }

    const issue = Effect.fn("Sessions.issue")(function*(userId: string, data: A, client?: ClientInfo) {
      if (userId.length > maxUserIdLength) {
        return yield* Effect.dieMessage(`a user id is at most ${maxUserIdLength} characters long`)
      }
      const encoded = yield* encode(data)
      const now = yield* Clock.currentTimeMillis
      const family = newFamily()
      const secret = newSecret()
      const id = auth.fingerprint(userId, domain)[0]! + family + secret
      const key: Key = { user: id.slice(0, tagLength), session: lineageKey(family) }
      const digest = secretDigest(secret)
      const entry = newEntry(userId, now, encoded, digest, client)
      // 128 random bits of lineage do not collide; a refused create means the store or its contract is broken.
      if (!(yield* store.save(key, entry, "create", { maxPerUser, now }))) {
        return yield* Effect.dieMessage("session id collision")
      }
      const stored = decoded(entry)
      if (Either.isLeft(stored)) return yield* Effect.die(stored.left)
      yield* count(metrics.issued)
      return { session: toSession(Redacted.make(id), key, entry, stored.right, digest), token: auth.sign(id, domain) }
    })

    // Gives the session's lineage a new secret by compare-and-set: the lineage is one entry, so a
    // revocation either lands first (the write fails) or deletes the new id with the old one. The
    // replaced id keeps reading for `graceMillis`.
    const renewId = (session: Session<A>, graceMillis: number) =>
      Effect.gen(function*() {
        const parts = partsOf(session)
        if (parts === undefined) return yield* notFound
        const secret = newSecret()
        const digest = secretDigest(secret)
        const entry = yield* modify(session, (latest, now) =>
          Effect.succeed({
            ...latest,
            renewedAt: now,
            lastSeenAt: now,
            secret: digest,
            previous: graceMillis > 0 ? latest.secret : undefined,
            previousUntil: graceMillis > 0 ? now + graceMillis : 0
          }))
        const data = decoded(entry)
        if (Either.isLeft(data)) return yield* notFound
        const id = parts.tag + parts.family + secret
        yield* count(metrics.rotated)
        return {
          session: toSession(Redacted.make(id), session.key, entry, data.right, digest),
          token: auth.sign(id, domain)
        }
      })

    const rotate = Effect.fn("Sessions.rotate")((session: Session<A>) => renewId(session, grace))

    // Records a use when a limit needs it: rolling expiry when less than `threshold` of the lifetime is
    // left, the idle timeout when less than `threshold` of the idle window is left. Otherwise no write.
    const touch = (session: Session<A>, entry: Entry, now: number) => {
      const roll = rolling && entry.extendedUntil - now < threshold * ttlMillis
      const seen = idle !== undefined && entry.lastSeenAt + idle - now < threshold * idle
      if (!roll && !seen) return undefined
      return modify(session, (latest) =>
        Effect.succeed({
          ...latest,
          lastSeenAt: now,
          extendedUntil: roll ? Math.max(latest.extendedUntil, now + ttlMillis) : latest.extendedUntil
        })).pipe(
          Effect.map((written): Session<A> | undefined =>
            toSession(session.id, session.key, written, session.data, written.secret)
          ),
          Effect.tap(() => count(metrics.refreshed)),
          // Losing the race means another request just wrote (or renewed) this session: nothing to record.
          Effect.catchTag("Conflict", "NotFound", () => Effect.succeed(undefined))
        )
    }

    // A token whose signature verified: its session id (raw and `Redacted`), the key that verified it,
    // the session's store key and secret digest, and the last entry read for it with the session made
    // from it (reused while the store answers that same entry: no decode, no new object), and the user
    // id that entry was checked to belong to the token's user.
    interface Checked {
      readonly id: Redacted.Redacted<string>
      readonly raw: string
      readonly keyIndex: number
      readonly key: Key
      readonly secret: string
      entry: Entry | undefined
      session: Session<A> | undefined
      owner: string | undefined
    }
    // The signature check of a token, remembered: a token whose signature verified once is looked up
    // here on its next requests instead of being hashed again (HMAC-SHA512, then the digests of its
    // parts). Only verified tokens get in, so a forger pays the full check on every guess and cannot fill
    // the map; it is bounded (the oldest entry leaves first). Validity is untouched: every read still
    // asks the store, so a cleared, revoked or expired session is refused at once.
    const verifiedTokens = new Map<string, Checked>()
    const check = (token: string): Checked | BadSignature | NotFound => {
      // Anything longer than a token can be is refused by `verify` without being hashed, here too.
      const cached = typeof token === "string" && token.length <= maxTokenLength ? verifiedTokens.get(token) : undefined
      if (cached !== undefined) return cached
      const verified = auth.verify(token, domain)
      if (Either.isLeft(verified)) return verified.left
      // A copy of its own (a verified token is ASCII), so that the map never keeps alive the request
      // header the token was cut from.
      const own = verifiedTokenCache > 0 ? Buffer.from(token, "latin1").toString("latin1") : token
      const raw = own.slice(0, verified.right.id.length)
      const parts = parseId(raw)
      if (parts === undefined) return notFound
      const result: Checked = {
        id: Redacted.make(raw),
        raw,
        keyIndex: verified.right.keyIndex,
        key: { user: parts.tag, session: lineageKey(parts.family) },
        secret: secretDigest(parts.secret),
        entry: undefined,
        session: undefined,
        owner: undefined
      }
      if (verifiedTokenCache > 0) {
        if (verifiedTokens.size >= verifiedTokenCache) verifiedTokens.delete(verifiedTokens.keys().next().value!)
        verifiedTokens.set(own, result)
      }
      return result
    }

    // Counts a read's outcome and notes it on the current span (the HTTP server's request span, or the
    // read's own with `traceReads`), synchronously: the read path builds no effect for it.
    const account = (
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      outcome: Rejected["_tag"] | "valid" | "StoreError"
    ) => {
      if (observe) {
        if (outcome === "valid") metrics.validated.unsafeUpdate(1, noTags)
        else if (outcome !== "StoreError") metrics.rejected.unsafeUpdate(1, rejectedLabels[outcome])
      }
      const span = fiber.currentSpan
      if (span !== undefined && span._tag === "Span") span.attribute("session.result", outcome)
    }
    // For the reads that write (renewal, rolling expiry): the outcome is known once the write is done.
    const settle = <X>(effect: Effect.Effect<X, Rejected | StoreError>) =>
      Effect.onExit(effect, (exit) =>
        Effect.withFiberRuntime<void>((fiber) => {
          if (Exit.isSuccess(exit)) account(fiber, "valid")
          else if (exit.cause._tag === "Fail") account(fiber, exit.cause.error._tag)
          return Effect.void
        }))

    // Reads annotate the enclosing span rather than open their own (unless `traceReads`): a span costs
    // more than the whole validation.
    const traced = <X>(effect: Effect.Effect<X, Rejected | StoreError>, renew: boolean) =>
      options.traceReads === true ? Effect.withSpan(effect, renew ? "Sessions.resolve" : "Sessions.get") : effect

    const decodeFailed = Effect.logWarning(
      "session data does not decode with the session schema; treated as no session"
    )

    // The hot path, written as plain code around the one store round trip: check the signature (or find
    // it checked), fetch (timed here rather than by `instrument`), then every check synchronously, with
    // the time read from the fiber's `Clock`. It runs on `fiber` and ends in one of `k`'s continuations,
    // so that a caller (the HTTP layer) goes on without another step to match on the result. Effects are
    // built only where something is written.
    const readWith = <X, E, R>(
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      token: string,
      renew: boolean,
      k: ReadContinuation<A, X, E, R>
    ): Effect.Effect<X, E, R> => {
      const checked = check(token)
      if (isRejected(checked)) {
        account(fiber, checked._tag)
        return k.refused(checked)
      }
      const start = observe ? performance.now() : 0
      return Effect.matchEffect(backend.fetch(checked.key, checked.entry), {
        onFailure: (error) => {
          if (observe) recordStore("fetch", start, true)
          account(fiber, "StoreError")
          return k.refused(error)
        },
        onSuccess: (stored) => {
          if (observe) recordStore("fetch", start, false)
          return validate(fiber, checked, stored, renew, k)
        }
      })
    }

    const validate = <X, E, R>(
      fiber: Fiber.RuntimeFiber<unknown, unknown>,
      checked: Checked,
      stored: Option.Option<Entry>,
      renew: boolean,
      k: ReadContinuation<A, X, E, R>
    ): Effect.Effect<X, E, R> => {
      const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
      if (Option.isNone(stored)) {
        account(fiber, "NotFound")
        return k.refused(notFound)
      }
      const entry = stored.value
      // The entry must belong to the token's user: a keyed fingerprint of its user id is the token's tag,
      // so whoever can write to the store but lacks the keys cannot move a session to another user.
      if (entry.userId !== checked.owner) {
        if (!owns(entry.userId, checked.key.user)) {
          account(fiber, "NotFound")
          return k.refused(notFound)
        }
        checked.owner = entry.userId
      }
      const current = entry.secret === checked.secret
      if (!current && !(entry.previous === checked.secret && now < entry.previousUntil)) {
        // The lineage lives on under a newer id: this token was renewed (by another request of this
        // client, most likely), so the client must not be told to drop its token.
        account(fiber, "NotFound")
        return k.refused(superseded)
      }
      if (isDead(entry, now)) {
        account(fiber, "Expired")
        return k.refused(expired)
      }
      let session = checked.entry === entry ? checked.session : undefined
      if (session === undefined) {
        const data = decode(entry.data)
        if (Either.isLeft(data)) {
          account(fiber, "NotFound")
          return Effect.zipRight(decodeFailed, k.refused(notFound))
        }
        const shared = freezeData(data.right)
        session = toSession(checked.id, checked.key, entry, data.right, checked.secret)
        checked.entry = shared ? entry : undefined
        checked.session = shared ? session : undefined
      }
      if (!current) {
        // An id in its renewal grace: it reads, and is never renewed, re-signed or extended.
        account(fiber, "valid")
        return k.valid({ session, token: undefined })
      }
      if (renew && renewal !== undefined && now - entry.renewedAt >= renewal) {
        const readAs = session
        return Effect.matchEffect(
          settle(
            renewId(readAs, renewalGrace).pipe(
              // A concurrent request renewed it first: this one is served by the old id's grace.
              Effect.catchTag("Conflict", "NotFound", () => Effect.succeed({ session: readAs, token: undefined }))
            )
          ),
          { onFailure: k.refused, onSuccess: k.valid }
        )
      }
      const resigned = checked.keyIndex === 0 ? undefined : auth.sign(checked.raw, domain)
      const touched = touch(session, entry, now)
      if (touched !== undefined) {
        const readAs = session
        return Effect.matchEffect(
          settle(Effect.map(touched, (written) =>
            written === undefined
              ? { session: readAs, token: resigned }
              : { session: written, token: resigned ?? auth.sign(checked.raw, domain) })),
          { onFailure: k.refused, onSuccess: k.valid }
        )
      }
      account(fiber, "valid")
      return k.valid({ session, token: resigned })
    }

    const asEffect: ReadContinuation<A, Resolved<A>, Rejected | StoreError, never> = {
      valid: Effect.succeed,
      refused: Effect.fail
    }

    const read = (token: string, renew: boolean): Effect.Effect<Resolved<A>, Rejected | StoreError> =>
      traced(Effect.withFiberRuntime((fiber) => readWith(fiber, token, renew, asEffect)), renew)

    const resolve = (token: string) => read(token, true)

    const get = (token: string) => Effect.map(read(token, false), (resolved) => resolved.session)

    const extend = Effect.fn("Sessions.extend")(function*(session: Session<A>) {
      const entry = yield* modify(
        session,
        (latest, now) => Effect.succeed({ ...latest, lastSeenAt: now, extendedUntil: now + ttlMillis })
      )
      const data = decoded(entry)
      return toSession(session.id, session.key, entry, Either.isRight(data) ? data.right : session.data, entry.secret)
    })

    const update = Effect.fn("Sessions.update")(function*(session: Session<A>, f: (data: A) => A) {
      const entry = yield* modify(session, (latest) => {
        const current = decode(latest.data)
        // The stored data no longer decodes: there is nothing valid to update.
        if (Either.isLeft(current)) {
          return Effect.fail(notFound)
        }
        return Effect.map(encode(f(current.right)), (encoded) => ({ ...latest, data: encoded }))
      })
      const data = decoded(entry)
      if (Either.isLeft(data)) return yield* Effect.die(data.left)
      return toSession(session.id, session.key, entry, data.right, entry.secret)
    })

    // Whether a session object may revoke: one read through an id in its renewal grace reads, but never
    // revokes (it could otherwise end its own successor). One read through the current id may, even after
    // a renewal since (a logout racing a renewal still ends the session); so may one this service did not
    // make (the application's own).
    const mayRevoke = (session: Session<A>) => known.get(session)?.current ?? true

    const clear = Effect.fn("Sessions.clear")(function*(session: Session<A>) {
      if (mayRevoke(session)) yield* store.delete(session.key)
    })

    const list = Effect.fn("Sessions.list")(function*(userId: string) {
      const now = yield* Clock.currentTimeMillis
      const sessions: Array<SessionInfo<A>> = []
      for (const tag of userTags(userId)) {
        for (const { entry, key } of yield* store.list(tag, now)) {
          if (entry.userId !== userId || isDead(entry, now)) continue
          const data = decode(entry.data)
          if (Either.isRight(data)) {
            freezeData(data.right)
            sessions.push(Object.freeze(toInfo(key, entry, data.right)))
          }
        }
      }
      return sessions.sort((a, b) => a.createdAt.epochMillis - b.createdAt.epochMillis)
    })

    const revoke = Effect.fn("Sessions.revoke")(function*(userId: string, session: string) {
      for (const tag of userTags(userId)) yield* store.delete({ user: tag, session })
    })

    const clearAll = Effect.fn("Sessions.clearAll")(function*(userId: string) {
      let deleted = 0
      for (const tag of userTags(userId)) deleted += yield* store.deleteUser(tag)
      return deleted
    })

    const clearOthers = Effect.fn("Sessions.clearOthers")(function*(session: Session<A>) {
      if (!mayRevoke(session)) return 0
      let deleted = 0
      for (const tag of userTags(session.userId)) {
        deleted += yield* store.deleteUser(tag, tag === session.key.user ? session.key.session : undefined)
      }
      return deleted
    })

    const service: Sessions<A> = {
      ttl,
      issue,
      get,
      resolve,
      extend,
      update,
      rotate,
      clear,
      list,
      revoke,
      clearAll,
      clearOthers,
      token: (session) => auth.sign(Redacted.value(session.id), domain)
    }
    // With `traceReads` a read opens its own span, which only `resolve` does.
    return options.traceReads === true
      ? service
      : Registry.register(service, (fiber, token, k) => readWith(fiber, token, true, k))
  })

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * The sessions service declared by `tag`, on the `Store` and `Auth` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Self, A, I>(
  tag: SessionsTag<Self, A, I>,
  options: Options = {}
): Layer.Layer<Self, InvalidOptions, Store | Auth> => Layer.effect(tag, make(tag.data, { name: tag.key, ...options }))

/**
 * The sessions service with its options read from `Config`. By default: `SESSION_TTL` (an Effect duration
 * such as `3 days` or `90 minutes`; default 3 days), and the optional `SESSION_IDLE_TIMEOUT`,
 * `SESSION_ABSOLUTE_LIFETIME`, `SESSION_ROLLING` (`true`, or a threshold such as `0.25`),
 * `SESSION_RENEWAL_INTERVAL`, `SESSION_RENEWAL_GRACE`, `SESSION_ROTATION_GRACE` and
 * `SESSION_MAX_PER_USER`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <Self, A, I>(
  tag: SessionsTag<Self, A, I>,
  config: Config.Config.Wrap<Options> = optionsConfig
): Layer.Layer<Self, InvalidOptions | ConfigError.ConfigError, Store | Auth> =>
  Layer.effect(tag, Effect.flatMap(Config.unwrap(config), (options) => make(tag.data, { name: tag.key, ...options })))

/**
 * A `Config` for the session lifetime (default `SESSION_TTL`): an Effect duration such as `3 days` or
 * `90 minutes`, positive and finite, defaulting to 3 days.
 *
 * @since 0.1.0
 * @category config
 */
export const ttlConfig = (name = "SESSION_TTL"): Config.Config<Duration.Duration> =>
  // validated inside `nested` so that the error's path names the variable
  Config.duration().pipe(
    Config.validate({
      message: "expected a positive, finite duration such as \"3 days\" or \"90 minutes\"",
      validation: (ttl) => Duration.isFinite(ttl) && Duration.toMillis(ttl) >= 1
    }),
    Config.nested(name),
    Config.withDefault(defaultTtl)
  )

const optionalDuration = (name: string): Config.Config<Duration.Duration | undefined> =>
  Config.map(Config.option(positiveDuration(name)), Option.getOrUndefined)

const positiveDuration = (name: string) =>
  // validated inside `nested` so that the error's path names the variable
  Config.duration().pipe(
    Config.validate({
      message: "expected a positive, finite duration such as \"3 days\" or \"90 minutes\"",
      validation: (duration) => Duration.isFinite(duration) && Duration.toMillis(duration) >= 1
    }),
    Config.nested(name)
  )

const rollingConfig: Config.Config<Options["rolling"]> = Config.string().pipe(
  Config.mapOrFail((value): Either.Either<NonNullable<Options["rolling"]>, ConfigError.ConfigError> => {
    const text = value.trim().toLowerCase()
    if (text === "true") return Either.right(true)
    if (text === "false") return Either.right(false)
    const threshold = Number(text)
    return text !== "" && threshold > 0 && threshold <= 1
      ? Either.right({ threshold })
      : Either.left(ConfigError.InvalidData([], "expected true, false or a threshold in (0, 1] such as 0.5"))
  }),
  Config.nested("SESSION_ROLLING"),
  Config.option,
  Config.map(Option.getOrUndefined)
)

/**
 * The default environment variables of {@link layerConfig}.
 *
 * @since 0.1.0
 * @category config
 */
export const optionsConfig: Config.Config.Wrap<Options> = {
  ttl: ttlConfig(),
  idleTimeout: optionalDuration("SESSION_IDLE_TIMEOUT"),
  absoluteLifetime: optionalDuration("SESSION_ABSOLUTE_LIFETIME"),
  rolling: rollingConfig,
  renewalInterval: optionalDuration("SESSION_RENEWAL_INTERVAL"),
  renewalGrace: Config.map(Config.option(Config.duration("SESSION_RENEWAL_GRACE")), Option.getOrUndefined),
  rotationGrace: Config.map(Config.option(Config.duration("SESSION_ROTATION_GRACE")), Option.getOrUndefined),
  maxSessionsPerUser: Config.integer().pipe(
    Config.validate({ message: "expected a whole number, 1 or more", validation: (n) => n >= 1 }),
    Config.nested("SESSION_MAX_PER_USER"),
    Config.option,
    Config.map(Option.getOrUndefined)
  )
}
