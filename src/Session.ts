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
import * as HttpApiSchema from "@effect/platform/HttpApiSchema"
import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Crypto from "node:crypto"
import { Auth, BadSignature, randomId } from "./Auth.js"
import { type Entry, type Key, Store, StoreError } from "./Store.js"

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
 * `key` is where the store keeps it: a hash of the user id and a SHA-256 hash of the session id. It is
 * safe to log and to show (for example to let a user revoke one of their sessions), but cannot be turned
 * back into a token.
 *
 * @since 0.1.0
 * @category models
 */
export interface SessionInfo<A> {
  readonly key: Key
  readonly userId: string
  readonly createdAt: DateTime.Utc
  readonly expiresAt: DateTime.Utc
  readonly data: A
}

/**
 * A valid session. `id` is the secret the token is made from: it is `Redacted` so that logging a session
 * never leaks it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Session<A> extends SessionInfo<A> {
  readonly id: Redacted.Redacted<string>
}

/**
 * A session just issued, with the signed token to hand to the client.
 *
 * @since 0.1.0
 * @category models
 */
export interface Issued<A> {
  readonly session: Session<A>
  readonly token: string
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
  readonly issue: (userId: string, data: A) => Effect.Effect<Issued<A>, StoreError>
  /**
   * Returns the session a token stands for. The signature is checked before the store is asked; the
   * expiry is checked with `Clock` against the stored expiry, whatever the store's own TTL says.
   */
  readonly get: (token: string) => Effect.Effect<Session<A>, BadSignature | NotFound | Expired | StoreError>
  /**
   * Moves the expiry to now + `ttl` and saves it. Fails with `NotFound` when the session was cleared
   * meanwhile (it is never brought back) and with `Expired` when it already expired.
   */
  readonly extend: (session: Session<A>) => Effect.Effect<Session<A>, NotFound | Expired | StoreError>
  /** Deletes the session from the store (at logout). Idempotent. */
  readonly clear: (session: Session<A>) => Effect.Effect<void, StoreError>
  /** The live sessions of a user, oldest first. Sessions whose data no longer decodes are left out. */
  readonly list: (userId: string) => Effect.Effect<ReadonlyArray<SessionInfo<A>>, StoreError>
  /**
   * Deletes every session of a user ("log out everywhere") and answers how many. Once it returns, no
   * session of that user issued before the call is valid.
   */
  readonly clearAll: (userId: string) => Effect.Effect<number, StoreError>
  /** Deletes every session of the session's user but this one ("log out my other devices"). */
  readonly clearOthers: (session: Session<A>) => Effect.Effect<number, StoreError>
  /** The token of a session, signed with the current (first) key. */
  readonly token: (session: Session<A>) => string
}

/**
 * Options of the `Sessions` service.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** How long a session lives after `issue` or `extend`. Default: 3 days, as in the original library. */
  readonly ttl?: Duration.DurationInput | undefined
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
export class NotFound extends Schema.TaggedError<NotFound>("effect-sessions/NotFound")(
  "NotFound",
  {},
  HttpApiSchema.annotations({ status: 401 })
) {
  override get message(): string {
    return "no such session"
  }

  /** @since 0.1.0 */
  [HttpServerRespondable.symbol]() {
    return Effect.succeed(HttpServerResponse.empty({ status: 401 }))
  }
}

/**
 * The session's expiry has passed. Answered with 401 over HTTP.
 *
 * @since 0.1.0
 * @category errors
 */
export class Expired extends Schema.TaggedError<Expired>("effect-sessions/Expired")(
  "Expired",
  {},
  HttpApiSchema.annotations({ status: 401 })
) {
  override get message(): string {
    return "the session has expired"
  }

  /** @since 0.1.0 */
  [HttpServerRespondable.symbol]() {
    return Effect.succeed(HttpServerResponse.empty({ status: 401 }))
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

const sha256 = (value: string) => Crypto.createHash("sha256").update(value)

/**
 * The `user` part of a user's store keys: the first 128 bits of the SHA-256 of the user id, base64url
 * (22 characters).
 *
 * @since 0.1.0
 * @category constructors
 */
export const userKey = (userId: string): string => sha256(userId).digest().subarray(0, 16).toString("base64url")

const userKeyLength = 22
const idLength = userKeyLength + 43

/**
 * A new session id for a user: the user's {@link userKey} followed by {@link Auth.idBytes} random bytes,
 * base64url. Carrying the user part lets the store find the session's user from the token alone, which
 * keeps a user's keys together (one Redis Cluster slot) without a lookup.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeId = (userId: string): string => userKey(userId) + randomId()

/**
 * The store key of a session id, or `undefined` for an id this library did not make.
 *
 * @since 0.1.0
 * @category constructors
 */
export const storeKey = (id: string): Key | undefined =>
  id.length === idLength ? { user: id.slice(0, userKeyLength), session: sha256(id).digest("base64url") } : undefined

const notFound = new NotFound()
const expired = new Expired()

/**
 * Builds the sessions service for data described by `schema`, on the `Store` and `Auth` in context.
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
    const ttl = Duration.decode(options.ttl ?? defaultTtl)
    const ttlMillis = Duration.toMillis(ttl)
    if (!Number.isFinite(ttlMillis) || ttlMillis < 1) {
      return yield* new InvalidOptions({
        message: "the session ttl must be a finite duration of at least 1 millisecond"
      })
    }
    const decode = Schema.decodeUnknownEither(schema)
    // Data that cannot be encoded is a programming error (the value contradicts its own type's
    // refinements, or its encoded form is not JSON), so it is a defect rather than an error every caller
    // would have to handle. The encoded form is passed through JSON here, once per write, so that every
    // backend (in memory or a string store) keeps and returns exactly the same value.
    const encode = (data: A) =>
      Effect.flatMap(Effect.orDie(Schema.encode(schema)(data)), (encoded) =>
        Effect.try({
          try: () => JSON.parse(JSON.stringify(encoded)) as unknown,
          catch: () => new Error("session data must encode (through its schema) to a JSON value")
        }).pipe(Effect.orDie))

    const toInfo = (key: Key, entry: Entry, data: A): SessionInfo<A> => ({
      key,
      userId: entry.userId,
      createdAt: DateTime.unsafeMake(entry.createdAt),
      expiresAt: DateTime.unsafeMake(entry.expiresAt),
      data
    })
    const toSession = (id: string, key: Key, entry: Entry, data: A): Session<A> => ({
      id: Redacted.make(id),
      ...toInfo(key, entry, data)
    })

    const issue = Effect.fn("Sessions.issue")(function*(userId: string, data: A) {
      const encoded = yield* encode(data)
      const now = yield* Clock.currentTimeMillis
      const id = makeId(userId)
      const key = storeKey(id)!
      const entry: Entry = { userId, createdAt: now, expiresAt: now + ttlMillis, data: encoded }
      // 256 random bits do not collide; a refused create means the store or its contract is broken.
      if (!(yield* store.save(key, entry, "create"))) return yield* Effect.dieMessage("session id collision")
      return { session: toSession(id, key, entry, data), token: auth.sign(id) }
    })

    const get = Effect.fn("Sessions.get")(function*(token: string) {
      const { id } = yield* auth.verify(token)
      const key = storeKey(id)
      if (key === undefined) return yield* notFound
      const entry = yield* store.fetch(key)
      if (Option.isNone(entry)) return yield* notFound
      if ((yield* Clock.currentTimeMillis) >= entry.value.expiresAt) return yield* expired
      const data = decode(entry.value.data)
      if (Either.isLeft(data)) {
        yield* Effect.logWarning("session data does not decode with the session schema; treated as no session")
        return yield* notFound
      }
      return toSession(id, key, entry.value, data.right)
    })

    const extend = Effect.fn("Sessions.extend")(function*(session: Session<A>) {
      const now = yield* Clock.currentTimeMillis
      if (now >= session.expiresAt.epochMillis) return yield* expired
      const entry: Entry = {
        userId: session.userId,
        createdAt: session.createdAt.epochMillis,
        expiresAt: now + ttlMillis,
        data: yield* encode(session.data)
      }
      if (!(yield* store.save(session.key, entry, "update"))) return yield* notFound
      return { ...session, expiresAt: DateTime.unsafeMake(entry.expiresAt) }
    })

    const clear = Effect.fn("Sessions.clear")(function*(session: Session<A>) {
      yield* store.delete(session.key)
    })

    const list = Effect.fn("Sessions.list")(function*(userId: string) {
      const listed = yield* store.list(userKey(userId), yield* Clock.currentTimeMillis)
      const sessions: Array<SessionInfo<A>> = []
      for (const { entry, key } of listed) {
        // The user part is a 128-bit hash: compare the user id itself all the same.
        if (entry.userId !== userId) continue
        const data = decode(entry.data)
        if (Either.isRight(data)) sessions.push(toInfo(key, entry, data.right))
      }
      return sessions.sort((a, b) => a.createdAt.epochMillis - b.createdAt.epochMillis)
    })

    const clearAll = Effect.fn("Sessions.clearAll")(function*(userId: string) {
      return yield* store.deleteUser(userKey(userId))
    })

    const clearOthers = Effect.fn("Sessions.clearOthers")(function*(session: Session<A>) {
      return yield* store.deleteUser(session.key.user, session.key.session)
    })

    return {
      ttl,
      issue,
      get,
      extend,
      clear,
      list,
      clearAll,
      clearOthers,
      token: (session) => auth.sign(Redacted.value(session.id))
    }
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
): Layer.Layer<Self, InvalidOptions, Store | Auth> => Layer.effect(tag, make(tag.data, options))

/**
 * The sessions service with its options read from `Config`. By default the lifetime comes from
 * `SESSION_TTL` (an Effect duration such as `3 days` or `90 minutes`), defaulting to 3 days.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = <Self, A, I>(
  tag: SessionsTag<Self, A, I>,
  config: Config.Config.Wrap<Options> = { ttl: ttlConfig() }
): Layer.Layer<Self, InvalidOptions | ConfigError.ConfigError, Store | Auth> =>
  Layer.effect(tag, Effect.flatMap(Config.unwrap(config), (options) => make(tag.data, options)))

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
