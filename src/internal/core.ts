/**
 * What the operations of one sessions service share: a small record built once by `Session.make` and
 * passed to the functions of `read.ts`, `write.ts` and `users.ts`, which each do one operation. Also the
 * session objects the service hands out, and what it remembers of each.
 *
 * @internal
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type * as Schema from "effect/Schema"
import type { AuthService } from "../Auth.js"
import type { Conflict, Expired, NotFound, Options, Session, SessionInfo } from "../Session.js"
import type { Entry, Key, Operation, StoreError, StoreService } from "../Store.js"
import * as Codec from "./codec.js"
import { parseId, secretDigest } from "./ids.js"
import * as Lifetime from "./lifetime.js"
import * as Lock from "./lock.js"
import { observeStore } from "./metrics.js"
import { type Peek, peekOf } from "./peek.js"
import * as Verified from "./verified.js"

/**
 * The service's refusals, made once (by `Session.ts`, which owns their classes): a refusal allocates
 * nothing. `superseded` is the `NotFound` of a token whose session lives on under a newer id.
 */
export interface Refusals {
  readonly notFound: NotFound
  readonly superseded: NotFound
  readonly expired: Expired
  readonly conflict: Conflict
}

/**
 * What the service knows of each session object it handed out: the entry it was read or written as, the
 * digest of its id's secret, and whether that id was the current one (an id in its renewal grace reads
 * but never writes).
 */
export interface Known {
  readonly entry: Entry
  readonly secret: string
  readonly current: boolean
}

export interface Core<A> {
  /** What separates this service's tokens and sessions from another's (`Options.name`). */
  readonly domain: string
  readonly auth: AuthService
  /** The store, timed when `observe`. */
  readonly store: StoreService
  /** The store untimed: the hot read path times its one fetch itself. */
  readonly backend: StoreService
  /** The store's read without a round trip, when it has one (peek.ts). */
  readonly peek: Peek | undefined
  /** Whether to record the metrics. */
  readonly observe: boolean
  readonly traceReads: boolean
  readonly lifetime: Lifetime.Lifetime
  readonly codec: Codec.Codec<A>
  readonly maxPerUser: number
  readonly refusals: Refusals
  readonly known: WeakMap<SessionInfo<A>, Known>
  /** Writers of one session in this process queue here. */
  readonly writers: Lock.KeyedLock<Entry>
  readonly tokens: Verified.VerifiedTokens<A>
}

/** What `make` is given besides the options: the ports, and what the public modules own. */
export interface Parts {
  readonly store: StoreService
  readonly auth: AuthService
  /** `Store.around`. */
  readonly around: (
    store: StoreService,
    f: <X>(operation: Operation, effect: Effect.Effect<X, StoreError>) => Effect.Effect<X, StoreError>
  ) => StoreService
  readonly refusals: Refusals
  readonly maxTokenLength: number
  readonly defaults: {
    readonly name: string
    readonly ttl: Duration.Duration
    readonly renewalGrace: Duration.Duration
    readonly maxSessionsPerUser: number
    readonly verifiedTokenCache: number
  }
}

/** The record of a service for data described by `schema`, or why `options` are unusable. */
export const make = <A, I>(
  schema: Schema.Schema<A, I>,
  options: Options,
  parts: Parts
): Either.Either<Core<A>, string> =>
  Either.gen(function*() {
    const lifetime = yield* Lifetime.fromOptions(options, parts.defaults)
    const cacheSize = options.verifiedTokenCache ?? parts.defaults.verifiedTokenCache
    if (!(Number.isSafeInteger(cacheSize) && cacheSize >= 0)) {
      return yield* Either.left("verifiedTokenCache must be a whole number, 0 or more")
    }
    const maxPerUser = options.maxSessionsPerUser ?? parts.defaults.maxSessionsPerUser
    if (!(Number.isSafeInteger(maxPerUser) && maxPerUser >= 1)) {
      return yield* Either.left("maxSessionsPerUser must be a whole number, 1 or more")
    }
    const observe = options.metrics ?? true
    return {
      domain: options.name ?? parts.defaults.name,
      auth: parts.auth,
      store: observe ? parts.around(parts.store, observeStore) : parts.store,
      backend: parts.store,
      peek: peekOf(parts.store),
      observe,
      traceReads: options.traceReads === true,
      lifetime,
      codec: Codec.make(schema),
      maxPerUser,
      refusals: parts.refusals,
      known: new WeakMap(),
      writers: Lock.make<Entry>(),
      tokens: Verified.make<A>(cacheSize, parts.maxTokenLength)
    }
  })

/** What `list` shows of a session. `ttl` is the service's, for a session without a lifetime of its own. */
export const toInfo = <A>(key: Key, entry: Entry, data: A, ttl: Duration.Duration): SessionInfo<A> => ({
  key,
  userId: entry.userId,
  createdAt: DateTime.unsafeMake(entry.createdAt),
  renewedAt: DateTime.unsafeMake(entry.renewedAt),
  expiresAt: DateTime.unsafeMake(entry.expiresAt),
  lastSeenAt: DateTime.unsafeMake(entry.lastSeenAt),
  userAgent: entry.userAgent,
  address: entry.address,
  // made only for a session with a lifetime of its own: the service's is shared
  ttl: entry.ttl === undefined ? ttl : Duration.millis(entry.ttl),
  persistent: entry.persistent,
  data
})

/**
 * A session object, frozen (its data too, when it is plain data: freeze.ts) since one object may serve
 * many requests, and remembered with the entry it stands for.
 */
export const toSession = <A>(
  core: Core<A>,
  id: Redacted.Redacted<string>,
  key: Key,
  entry: Entry,
  data: A,
  secret: string
): Session<A> => {
  const session: Session<A> = Object.freeze({ id, ...toInfo(key, entry, data, core.lifetime.ttl) })
  core.known.set(session, { entry, secret, current: entry.secret === secret })
  return session
}

/** The parts of a session's id, for a session object this service may not have made. */
export const partsOf = <A>(session: Session<A>) => {
  const parsed = parseId(Redacted.value(session.id))
  return parsed === undefined ? undefined : { ...parsed, digest: secretDigest(parsed.secret) }
}

/**
 * The user's store parts, under every key (the signing key's first): sessions made under a key that is
 * still configured are found by `list` and the revocations.
 */
export const userTags = <A>(core: Core<A>, userId: string): ReadonlyArray<string> =>
  Array.from(new Set(core.auth.fingerprint(userId, core.domain)))

/** Whether the store part `tag` is `userId`'s under one of the keys. */
export const owns = <A>(core: Core<A>, userId: string, tag: string): boolean =>
  core.auth.fingerprint(userId, core.domain).includes(tag)
