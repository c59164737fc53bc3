/**
 * Sessions: the model, the `Sessions` service that composes the Auth and Store ports, and its errors.
 *
 * ```ts
 * import { Effect, Schema } from "effect"
 * import * as Csrf from "effect-sessions/layers/Csrf"
 * import * as Sessions from "effect-sessions/Session"
 *
 * class AppSession extends Sessions.Tag<AppSession>()("app/Session", {
 *   data: Schema.Struct({ csrf: Schema.String })
 * }) {}
 *
 * // at login
 * const login = (userId: string) =>
 *   Effect.gen(function*() {
 *     const { session, token } = yield* (yield* AppSession).issue(userId, { csrf: Csrf.token() })
 *     return { expiresAt: session.expiresAt, token }
 *   })
 * ```
 *
 * @since 0.1.0
 * @module
 */
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import type * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import type * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import { Auth, BadSignature, maxTokenLength } from "./Auth.js"
import { maxDataLength as maxEncodedDataLength } from "./internal/codec.js"
import * as Configs from "./internal/config.js"
import * as Core from "./internal/core.js"
import * as HttpError from "./internal/httpError.js"
import * as Metrics from "./internal/metrics.js"
import * as Read from "./internal/read.js"
import { markSuperseded } from "./internal/refusal.js"
import * as Registry from "./internal/registry.js"
import * as Users from "./internal/users.js"
import * as Write from "./internal/write.js"
import { around, type Key, Store, StoreError } from "./Store.js"

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
  /** How long the session lives after issue or extension: its own (`IssueOptions.ttl`), else the service's. */
  readonly ttl: Duration.Duration
  /** Whether its token outlives the client's session (`IssueOptions.persistent`). */
  readonly persistent: boolean
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
 * Options of `issue`: what is known of the client, and the session's own lifetime ("remember me").
 *
 * @since 0.1.0
 * @category models
 */
export interface IssueOptions extends ClientInfo {
  /**
   * This session's lifetime instead of the service's `ttl` (for example `"30 days"` when "remember me" is
   * ticked): stored with the session, so `extend` and rolling expiry keep using it. The idle timeout and
   * the absolute lifetime still bound it. A duration that is not positive and finite is a defect.
   */
  readonly ttl?: Duration.DurationInput | undefined
  /**
   * Default `true`. `false`: the client keeps the token for its own session only (a cookie without
   * `Expires`/`Max-Age`, dropped when the browser closes), whenever it is written, renewals included.
   */
  readonly persistent?: boolean | undefined
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
  readonly issue: (userId: string, data: A, options?: IssueOptions) => Effect.Effect<Issued<A>, StoreError>
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
   * Moves the expiry to now + the session's `ttl` (never past the absolute lifetime) and saves it. Fails with `NotFound`
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
 * import { Schema } from "effect"
 * import * as Session from "effect-sessions/Session"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({ csrf: Schema.String }) }) {}
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
// errors
// -----------------------------------------------------------------------------

/**
 * No session is stored under the token's id: it never existed, was cleared, was evicted, or its data no
 * longer decodes. Answered with 401 over HTTP.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotFound extends HttpError.TaggedError<NotFound>("EffectSessionsNotFound")(
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
export class Expired extends HttpError.TaggedError<Expired>("EffectSessionsExpired")(
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
export class Conflict extends HttpError.TaggedError<Conflict>("EffectSessionsConflict")(
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
// constants
// -----------------------------------------------------------------------------

/**
 * The default session lifetime: 3 days.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultTtl: Duration.Duration = Duration.days(3)

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
export const maxDataLength: number = maxEncodedDataLength

/**
 * The longest user id the service issues a session for: 1,024 characters.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxUserIdLength: number = Write.maxUserIdLength

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
export const metrics = Metrics.metrics

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

const defaults = {
  name: "effect-sessions",
  ttl: defaultTtl,
  renewalGrace: defaultRenewalGrace,
  maxSessionsPerUser: defaultMaxSessionsPerUser,
  verifiedTokenCache: 10_000
}

// The refusals, made once: a refused token allocates nothing.
const refusals = {
  notFound: new NotFound(),
  superseded: markSuperseded(new NotFound()),
  expired: new Expired(),
  conflict: new Conflict()
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
    const store = yield* Store
    const auth = yield* Auth
    const core = yield* Either.mapLeft(
      Core.make(schema, options, { store, auth, around, refusals, maxTokenLength, defaults }),
      (message) => new InvalidOptions({ message })
    )
    const service: Sessions<A> = {
      ttl: core.lifetime.ttl,
      issue: Effect.fn("Sessions.issue")((userId: string, data: A, options?: IssueOptions) =>
        Write.issue(core, userId, data, options)
      ),
      get: (token) => Effect.map(Read.read(core, token, false), (resolved) => resolved.session),
      resolve: (token) => Read.read(core, token, true),
      extend: Effect.fn("Sessions.extend")((session: Session<A>) => Write.extend(core, session)),
      update: Effect.fn("Sessions.update")((session: Session<A>, f: (data: A) => A) => Write.update(core, session, f)),
      rotate: Effect.fn("Sessions.rotate")((session: Session<A>) =>
        Write.renewId(core, session, core.lifetime.rotationGrace)
      ),
      clear: Effect.fn("Sessions.clear")((session: Session<A>) => Users.clear(core, session)),
      list: Effect.fn("Sessions.list")((userId: string) => Users.list(core, userId)),
      revoke: Effect.fn("Sessions.revoke")((userId: string, session: string) => Users.revoke(core, userId, session)),
      clearAll: Effect.fn("Sessions.clearAll")((userId: string) => Users.clearAll(core, userId)),
      clearOthers: Effect.fn("Sessions.clearOthers")((session: Session<A>) => Users.clearOthers(core, session)),
      token: (session) => core.auth.sign(Redacted.value(session.id), core.domain)
    }
    // With `traceReads` a read opens its own span, which only `resolve` does: no fast path then.
    return core.traceReads
      ? service
      : Registry.register(service, (fiber, token, k) => Read.readWith(core, fiber, token, true, k))
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

// -----------------------------------------------------------------------------
// config
// -----------------------------------------------------------------------------

/**
 * A `Config` for the session lifetime (default `SESSION_TTL`): an Effect duration such as `3 days` or
 * `90 minutes`, positive and finite, defaulting to 3 days.
 *
 * @since 0.1.0
 * @category config
 */
export const ttlConfig = (name = "SESSION_TTL"): Config.Config<Duration.Duration> =>
  Config.withDefault(Configs.positiveDuration(name), defaultTtl)

/**
 * The default environment variables of {@link layerConfig}.
 *
 * @since 0.1.0
 * @category config
 */
export const optionsConfig: Config.Config.Wrap<Options> = {
  ttl: ttlConfig(),
  idleTimeout: Configs.optionalPositiveDuration("SESSION_IDLE_TIMEOUT"),
  absoluteLifetime: Configs.optionalPositiveDuration("SESSION_ABSOLUTE_LIFETIME"),
  rolling: Configs.rolling,
  renewalInterval: Configs.optionalPositiveDuration("SESSION_RENEWAL_INTERVAL"),
  renewalGrace: Configs.optionalDuration("SESSION_RENEWAL_GRACE"),
  rotationGrace: Configs.optionalDuration("SESSION_ROTATION_GRACE"),
  maxSessionsPerUser: Configs.optionalCount("SESSION_MAX_PER_USER")
}
