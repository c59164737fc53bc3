/**
 * The store port: where sessions live between requests.
 *
 * A session is stored under a {@link Key} of two parts: `user`, shared by every session of one user (a
 * keyed digest of the user id, so that it says nothing about the user to whoever lacks the signing keys),
 * and `session`, its own (the random handle of the session, stable when its id is renewed). Both are
 * opaque strings chosen by the `Sessions` service; the store never holds anything a token can be made
 * from. A backend that shards (Redis Cluster) keeps all of one user's sessions together by the `user`
 * part, so that per-user operations touch one shard and stay atomic; a backend that can evict (Redis
 * under an evicting `maxmemory-policy`) must evict a user's sessions together or not at all, so that
 * `deleteUser` never misses one.
 *
 * A backend implements these operations and this contract:
 *
 * - `fetch(key)` answers in one round trip. A missing entry and an entry the backend cannot read
 *   (garbage written by someone else, a value from an incompatible version, a value longer than
 *   {@link maxEncodedLength}) are both `Option.none()`: answers, not failures. An entry is returned after
 *   its `expiresAt` has passed until {@link expiredRetention} later (so that the service can say
 *   `Expired` rather than `NotFound`); the `Sessions` service refuses it by the clock. Once
 *   `expiresAt + expiredRetention` has passed by the backend's clock, `fetch` answers `Option.none()`,
 *   even while the backend still holds the value (a periodic sweep has not run yet; a Redis hash field
 *   outlives its time because the user's key lives on for another session). Only a system
 *   failure (connection lost, timeout) is a `StoreError`. `known`, when given, is an entry this backend
 *   answered earlier for the same key: the backend may answer that same object again when what it holds
 *   has not changed since, so that the caller can reuse what it derived from it (the decoded data, the
 *   session object). It must never answer `known` for a value that changed; ignoring `known` is always
 *   correct.
 * - `save(key, entry, mode, cap)` is one atomic write that also sets the store-side expiry to at least
 *   `entry.expiresAt + expiredRetention`. With `"update"` it writes only if the key is present and holds
 *   version `entry.version - 1` (compare-and-set: an update made from a stale read never overwrites a
 *   newer one, and a session deleted meanwhile is never brought back). With `"create"` it writes only if
 *   the key is absent; given a {@link Cap}, the same atomic write first makes room under the user's cap:
 *   while the user has `cap.maxPerUser` or more live entries (`expiresAt > cap.now`), it deletes the one
 *   least recently seen (`lastSeenAt`, then `createdAt`). It answers whether it wrote. A bounded backend
 *   that is full fails with a `StoreError` of reason `"Capacity"` rather than evict another user's
 *   session.
 * - `delete(key)` is idempotent.
 * - `list(user, now)` answers every readable entry of that user whose `expiresAt` is after `now`.
 * - `deleteUser(user, except)` deletes every session of that user (but the one whose `session` part is
 *   `except`, if given) atomically with respect to `save`: once it returns, no session of that user
 *   saved before it was called can be fetched, and no update of one can succeed. It answers how many live
 *   sessions (by the backend's clock) it deleted.
 *
 * @since 0.1.0
 * @module
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as HttpError from "./internal/httpError.js"
import * as Peek from "./internal/peek.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * What a store keeps for one session. Times are milliseconds since the epoch; `data` is the session data
 * already encoded by its schema (a JSON value). A store keeps every field as given; only `version`,
 * `expiresAt` and `lastSeenAt` mean something to it.
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
  /** When the current id was issued: `createdAt`, or the last renewal (rotation). */
  readonly renewedAt: number
  /** The expiry set by issue, extend and rolling expiry, before the idle and absolute limits. */
  readonly extendedUntil: number
  /** When the session dies: the earliest of every limit. */
  readonly expiresAt: number
  /** The last recorded use (recorded at most every so often; see the `Sessions` options). */
  readonly lastSeenAt: number
  /** A digest of the secret part of the current id: what a token must carry to be this session. */
  readonly secret: string
  /** A digest of the secret of the id the last renewal replaced, which serves reads until `previousUntil`. */
  readonly previous: string | undefined
  readonly previousUntil: number
  /** What the HTTP layer knew of the client at login, if anything. */
  readonly userAgent: string | undefined
  readonly address: string | undefined
  /**
   * The session's own lifetime in milliseconds, chosen at issue ("remember me"): what `extend` and rolling
   * expiry move the expiry by. `undefined`: the service's `ttl`, as configured when it is used.
   */
  readonly ttl: number | undefined
  /** Whether the client keeps the token beyond its own session (`false`: a browser-session cookie). */
  readonly persistent: boolean
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
 * The per-user cap a `"create"` keeps: at most `maxPerUser` live sessions (`expiresAt > now`) of the
 * user once the new one is written.
 *
 * @since 0.1.0
 * @category models
 */
export interface Cap {
  readonly maxPerUser: number
  readonly now: number
}

/**
 * The operations a backend implements.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoreService {
  readonly fetch: (key: Key, known?: Entry | undefined) => Effect.Effect<Option.Option<Entry>, StoreError>
  readonly save: (
    key: Key,
    entry: Entry,
    mode: SaveMode,
    cap?: Cap | undefined
  ) => Effect.Effect<boolean, StoreError>
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
 * The store could not answer: the backend is unreachable (`"Unavailable"`), timed out (`"Timeout"`),
 * refused the credentials (`"Authentication"`), is full (`"Capacity"`), lacks its schema (`"Schema"`: the
 * SQL store's table does not exist; run its migration), or failed (`"Unknown"`). Never used for "no such
 * session". Answered with 503 over HTTP.
 *
 * It carries no cause: a driver's error keeps the command it failed on, and with it the session's
 * contents. `message` says what failed in words a log may keep.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreError extends HttpError.TaggedError<StoreError>("EffectSessionsStoreError")(
  "StoreError",
  {
    reason: Schema.Literal("Unavailable", "Timeout", "Authentication", "Capacity", "Schema", "Unknown"),
    message: Schema.String
  },
  { status: 503, headers: { "retry-after": "1" } }
) {}

// -----------------------------------------------------------------------------
// constants
// -----------------------------------------------------------------------------

/**
 * How long a backend keeps an entry after its `expiresAt`, so that a token presented shortly after its
 * session expired is answered `Expired` ("your session expired") rather than `NotFound`: 10 minutes.
 *
 * @since 0.1.0
 * @category constants
 */
export const expiredRetention: Duration.Duration = Duration.minutes(10)

/**
 * The longest encoded entry a string backend parses (64 Ki characters): anything longer is garbage,
 * refused without parsing. The `Sessions` service never writes one that long.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxEncodedLength = 65_536

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * The names of the store's operations, as {@link around} tells them.
 *
 * @since 0.1.0
 * @category models
 */
export type Operation = "fetch" | "save" | "delete" | "list" | "deleteUser"

/**
 * The smallest implementation of a backend: what {@link make} derives a store from. It differs from
 * {@link StoreService} only in `list`, which answers every readable entry the backend holds for the user
 * (live or expired): `make` keeps those alive at the caller's `now`. Everything else, expiry included,
 * is the backend's to keep as the contract says.
 *
 * @since 0.1.0
 * @category models
 */
export interface Backend extends Omit<StoreService, "list"> {
  readonly list: (user: string) => Effect.Effect<Iterable<Listed>, StoreError>
}

/**
 * Makes a store from a {@link Backend}, deriving what every backend would repeat: `list`'s filter of
 * the entries alive at `now`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (backend: Backend): StoreService =>
  Store.of({
    fetch: backend.fetch,
    save: backend.save,
    delete: backend.delete,
    list: (user, now) =>
      Effect.map(backend.list(user), (entries) => {
        const live: Array<Listed> = []
        for (const listed of entries) if (listed.entry.expiresAt > now) live.push(listed)
        return live
      }),
    deleteUser: backend.deleteUser
  })

/**
 * A backend that keeps one string per session (a Redis hash field, a file, a SQL text column): what
 * {@link makeStringOnly} derives a store from. It deals in the values {@link encodeEntry} writes and never
 * decodes one itself.
 *
 * - `fetch(key, decode)` reads the value at `key` in one round trip and answers `decode(value)`
 *   (`decode(undefined)` when there is none). Call `decode` where the value arrives (in the resume of an
 *   `Effect.async`, say) rather than mapping the answer, which would cost the read of every request one
 *   more step. The answer is whatever `decode` made, which is also why `fetch` is generic.
 * - `save(key, value, entry, mode, cap)` writes `value`, the encoded `entry`, as {@link StoreService}'s
 *   `save` says; `entry` is given for the numbers a script or a query needs (`version`, `expiresAt`, …).
 * - `delete` and `deleteUser` are {@link StoreService}'s.
 * - `list(user)` answers every value the backend holds for the user, with its session part: garbage and
 *   expired values included.
 *
 * @since 0.1.0
 * @category models
 */
export interface StringBackend extends Pick<StoreService, "delete" | "deleteUser"> {
  readonly fetch: <A>(key: Key, decode: (value: string | undefined) => A) => Effect.Effect<A, StoreError>
  readonly save: (
    key: Key,
    value: string,
    entry: Entry,
    mode: SaveMode,
    cap?: Cap | undefined
  ) => Effect.Effect<boolean, StoreError>
  readonly list: (user: string) => Effect.Effect<Iterable<readonly [session: string, value: string]>, StoreError>
}

/**
 * Makes a store from a {@link StringBackend}, deriving what every backend that keeps strings would
 * repeat:
 *
 * - `save` writes {@link encodeEntry}'s value;
 * - `fetch` and `list` decode with {@link decodeEntry}: a value that does not decode, or is longer than
 *   {@link maxEncodedLength} (refused without parsing), is no session to `fetch` and left out of `list`,
 *   never a failure;
 * - `fetch` answers `known` itself while the value is the one `known` was decoded from, without decoding
 *   it again;
 * - `fetch` answers `Option.none()` once `expiresAt + expiredRetention` has passed by Effect's `Clock`
 *   (the calling fiber's, the clock the `Sessions` service judges expiry by), whatever the backend
 *   still holds;
 * - `list` keeps the entries alive at the caller's `now`, as {@link make} does.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeStringOnly = (backend: StringBackend): StoreService => {
  // The value each entry was decoded from: a WeakMap, so that an entry nobody holds any more is forgotten.
  const decodedFrom = new WeakMap<Entry, string>()
  const retention = Duration.toMillis(expiredRetention)
  const read = (value: string | undefined, known: Entry | undefined, clock: Clock.Clock): Option.Option<Entry> => {
    // refused before anything else looks at it: a huge value costs its transfer, never a parse
    if (value === undefined || value.length > maxEncodedLength) return Option.none()
    let entry = known
    if (entry === undefined || decodedFrom.get(entry) !== value) {
      entry = decodeEntry(value)
      if (entry === undefined) return Option.none()
      decodedFrom.set(entry, value)
    }
    return entry.expiresAt + retention <= clock.unsafeCurrentTimeMillis() ? Option.none() : Option.some(entry)
  }
  const store = make({
    // One step to find the fiber that runs the read and its clock (the expiry check needs it); the time is
    // read, and the value decoded, where the value arrives.
    fetch: (key, known) =>
      Effect.withFiberRuntime((fiber) => {
        const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
        return backend.fetch(key, (value) => read(value, known, clock))
      }),
    save: (key, entry, mode, cap) => backend.save(key, encodeEntry(entry), entry, mode, cap),
    delete: backend.delete,
    list: (user) =>
      Effect.map(backend.list(user), (values) => {
        const listed: Array<Listed> = []
        for (const [session, value] of values) {
          const entry = decodeEntry(value)
          if (entry !== undefined) listed.push({ key: { user, session }, entry })
        }
        return listed
      }),
    deleteUser: backend.deleteUser
  })
  // A backend that holds values in this process (the Redis store's near-cache) answers those reads on the
  // reading fiber, decoded exactly as `fetch` decodes.
  const peekString = Peek.peekStringOf(backend)
  if (peekString === undefined) return store
  return Peek.register(store, (key, known, fiber) => {
    const clock = Context.get(fiber.currentDefaultServices, Clock.Clock)
    const value = peekString(key, clock.unsafeCurrentTimeMillis())
    return value === undefined ? undefined : read(value, known, clock)
  })
}

/**
 * Wraps every operation of `store` with `f`, which is told the operation's name: one place for what
 * applies to all of them (metrics, a switch that takes the store down in tests, a timeout).
 *
 * @since 0.1.0
 * @category combinators
 */
export const around = (
  store: StoreService,
  f: <A>(operation: Operation, effect: Effect.Effect<A, StoreError>) => Effect.Effect<A, StoreError>
): StoreService =>
  Store.of({
    fetch: (key, known) => f("fetch", store.fetch(key, known)),
    save: (key, entry, mode, cap) => f("save", store.save(key, entry, mode, cap)),
    delete: (key) => f("delete", store.delete(key)),
    list: (user, now) => f("list", store.list(user, now)),
    deleteUser: (user, except) => f("deleteUser", store.deleteUser(user, except))
  })

// -----------------------------------------------------------------------------
// codec
// -----------------------------------------------------------------------------

const entryFormat = 4

/**
 * Serialises an entry to the compact JSON array kept by string-valued backends:
 * `[4, version, expiresAt, lastSeenAt, createdAt, renewedAt, extendedUntil, previousUntil, ttl, persistent,
 * userId, secret, previous, userAgent, address, data]`. The format number and the numbers a script needs
 * come first, so that a script reads them with a pattern (`^%[[34],(%d+),(%d+),(%d+),`) without parsing
 * the rest.
 *
 * An entry with the service's lifetime (no `ttl` of its own, `persistent`) is written in the previous
 * format, 3 (the same array without `ttl` and `persistent`), which the previous version of this package
 * reads: during a rolling deployment or after a rollback, only sessions issued with a lifetime of their
 * own are unreadable (no session) to a process of that version. {@link decodeEntry} reads both.
 *
 * @since 0.1.0
 * @category codec
 */
export const encodeEntry = (entry: Entry): string => {
  const times = [
    entry.version,
    entry.expiresAt,
    entry.lastSeenAt,
    entry.createdAt,
    entry.renewedAt,
    entry.extendedUntil,
    entry.previousUntil
  ]
  const rest = [entry.userId, entry.secret, entry.previous ?? null, entry.userAgent ?? null, entry.address ?? null]
  return JSON.stringify(
    entry.ttl === undefined && entry.persistent
      ? [3, ...times, ...rest, entry.data]
      : [entryFormat, ...times, entry.ttl ?? null, entry.persistent, ...rest, entry.data]
  )
}

const isTime = (u: unknown): u is number => Number.isSafeInteger(u) && (u as number) >= 0
const isOptionalString = (u: unknown): u is string | null => u === null || typeof u === "string"
const isTtl = (u: unknown): u is number | null => u === null || (Number.isSafeInteger(u) && (u as number) >= 1)

// The fields from `userId` on, at `at` (10 in format 4, 8 in format 3), if they have their types.
const isTail = (value: ReadonlyArray<unknown>, at: number): boolean =>
  typeof value[at] === "string" && typeof value[at + 1] === "string" && isOptionalString(value[at + 2]) &&
  isOptionalString(value[at + 3]) && isOptionalString(value[at + 4])

/**
 * Reads what {@link encodeEntry} wrote, in format 4 or 3 (the previous version's, read as an entry with the
 * service's lifetime). Anything else (invalid JSON, another shape, wrong types, more than
 * {@link maxEncodedLength} characters) is `undefined`, never an exception.
 *
 * @since 0.1.0
 * @category codec
 */
export const decodeEntry = (raw: string): Entry | undefined => {
  if (typeof raw !== "string" || raw.length > maxEncodedLength) return undefined
  let value: unknown
  try {
    value = JSON.parse(raw)
  } catch {
    return undefined
  }
  if (!Array.isArray(value)) return undefined
  const format = value[0]
  const at = format === entryFormat && value.length === 16 ? 10 : format === 3 && value.length === 14 ? 8 : 0
  if (
    at === 0 || !isTime(value[1]) || !isTime(value[2]) || !isTime(value[3]) || !isTime(value[4]) ||
    !isTime(value[5]) || !isTime(value[6]) || !isTime(value[7]) || !isTail(value, at) ||
    (at === 10 && !(isTtl(value[8]) && typeof value[9] === "boolean"))
  ) {
    return undefined
  }
  return {
    version: value[1],
    expiresAt: value[2],
    lastSeenAt: value[3],
    createdAt: value[4],
    renewedAt: value[5],
    extendedUntil: value[6],
    previousUntil: value[7],
    userId: value[at],
    secret: value[at + 1],
    previous: value[at + 2] ?? undefined,
    userAgent: value[at + 3] ?? undefined,
    address: value[at + 4] ?? undefined,
    ttl: at === 10 ? value[8] ?? undefined : undefined,
    persistent: at === 10 ? value[9] : true,
    data: value[at + 5]
  }
}
