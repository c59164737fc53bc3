/**
 * The in-memory store: the embedded default, for development, tests and single-process deployments.
 *
 * Entries are kept per user (a map of the user's sessions), so that every per-user operation (`list`,
 * `deleteUser`, the per-user cap of a create) costs that user's sessions only. Two bounds keep memory in
 * check:
 *
 * - a periodic sweep (driven by `Clock`, so `TestClock` drives it in tests) deletes every entry whose
 *   expiry passed more than `Store.expiredRetention` ago (until then `get` answers `Expired`; after it,
 *   `fetch` answers no session by the same clock even before the sweep has run);
 * - a capacity: a create in a full store first drops every expired entry, and if the store is still full
 *   it follows `whenFull`:
 *   - `"refuse"` (the default) fails the create with a `StoreError` of reason `"Capacity"` (503 over
 *     HTTP). Nobody is logged out: a flood of logins (one client can make 100,000 in a minute or two)
 *     fills the store and then only new logins fail, until sessions expire or are cleared. The cost is
 *     that, while the flood lasts, legitimate users cannot log in either: size `capacity` above what
 *     your real users need, and rate-limit logins.
 *   - `"evictOldest"` deletes the entry written longest ago to make room, as this store used to. New
 *     logins always succeed, but a flood of logins evicts every other user's session: one client can
 *     log everyone out. Use it only where every client is trusted.
 *
 * Sessions live in this process only: a restart logs everyone out, and several processes do not share
 * them. Use the Redis store for that.
 *
 * @since 0.1.0
 * @module
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as Peek from "../internal/peek.js"
import {
  type Cap,
  type Entry,
  expiredRetention,
  type Key,
  type Listed,
  make as makeStore,
  Store,
  StoreError,
  type StoreService
} from "../Store.js"

/**
 * What a create in a full store does; see the module documentation for the trade-off.
 *
 * @since 0.1.0
 * @category models
 */
export type WhenFull = "refuse" | "evictOldest"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The most sessions kept at once. Default 100,000. */
  readonly capacity?: number | undefined
  /** How often expired sessions are swept. Default 1 minute. */
  readonly sweepInterval?: Duration.DurationInput | undefined
  /**
   * What a create does when the store is full, once every expired entry is dropped: `"refuse"` (the
   * default: the create fails with a `"Capacity"` `StoreError`, no session is evicted) or `"evictOldest"`
   * (the entry written longest ago is deleted, whoever's it is).
   */
  readonly whenFull?: WhenFull | undefined
}

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultCapacity = 100_000

/**
 * The store together with its size and an on-demand sweep, for tests and monitoring.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryStore extends StoreService {
  readonly size: Effect.Effect<number>
  readonly sweep: Effect.Effect<void>
}

/**
 * Makes the store; its sweeper runs until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<MemoryStore, never, Scope.Scope> =>
  Effect.gen(function*() {
    const state = makeState(options)
    const sweep = Effect.map(Clock.currentTimeMillis, (now) => dropExpired(state, now - retention))
    yield* Effect.forkScoped(Effect.schedule(sweep, Schedule.spaced(options.sweepInterval ?? Duration.minutes(1))))
    const store: MemoryStore = {
      ...makeStore({
        fetch: (key) =>
          Effect.clockWith((clock) => Effect.sync(() => find(state, key, clock.unsafeCurrentTimeMillis()))),
        save: (key, entry, mode, cap) =>
          mode === "update"
            ? Effect.sync(() => update(state, key, entry))
            : Effect.clockWith((clock) => Effect.suspend(() => create(state, key, entry, cap, clock))),
        delete: (key) => Effect.sync(() => remove(state, key.user, key.session)),
        list: (user) => Effect.sync(() => entriesOf(state, user)),
        deleteUser: (user, except) =>
          Effect.clockWith((clock) =>
            Effect.sync(() => removeUser(state, user, except, clock.unsafeCurrentTimeMillis()))
          )
      }),
      size: Effect.sync(() => state.size),
      sweep
    }
    // every read is answered in process: on the reading fiber, by its clock
    return Peek.register(
      store,
      (key, _known, fiber) =>
        find(state, key, Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis())
    )
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Store> => Layer.scoped(Store, make(options))

/**
 * The store with its options from `Config`; by default `SESSION_MEMORY_CAPACITY`,
 * `SESSION_MEMORY_SWEEP_INTERVAL` and `SESSION_MEMORY_WHEN_FULL` (`refuse` or `evictOldest`), all optional.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = {
    capacity: Config.withDefault(Config.integer("SESSION_MEMORY_CAPACITY"), defaultCapacity),
    sweepInterval: Config.withDefault(Config.duration("SESSION_MEMORY_SWEEP_INTERVAL"), Duration.minutes(1)),
    whenFull: Config.withDefault(Config.literal("refuse", "evictOldest")("SESSION_MEMORY_WHEN_FULL"), "refuse")
  }
): Layer.Layer<Store, ConfigError.ConfigError> => Layer.scoped(Store, Effect.flatMap(Config.unwrap(config), make))

// -----------------------------------------------------------------------------
// the store's state, and one function an operation
// -----------------------------------------------------------------------------

const retention = Duration.toMillis(expiredRetention)

/** What the operations share. */
interface State {
  readonly capacity: number
  /** Every user's sessions, by session part. */
  readonly users: Map<string, Map<string, Entry>>
  size: number
  /**
   * A lower bound of every stored `expiresAt`: while the clock is before it, nothing is expired and a full
   * store refuses at once instead of scanning every entry for expired ones.
   */
  earliest: number
  /** Only `"evictOldest"` needs the write order: every key, least recently written first. */
  readonly order: Map<string, Key> | undefined
  readonly full: StoreError
}

const makeState = (options: Options): State => {
  const capacity = Math.max(1, Math.floor(options.capacity ?? defaultCapacity))
  return {
    capacity,
    users: new Map(),
    size: 0,
    earliest: Infinity,
    order: options.whenFull === "evictOldest" ? new Map() : undefined,
    full: new StoreError({
      reason: "Capacity",
      message: `the in-memory session store is full (${capacity} sessions); no session was evicted to make room`
    })
  }
}

/** One string for a key, unambiguous for any two strings. */
const flat = (key: Key) => `${key.user.length}:${key.user}${key.session}`

// An entry object is replaced, never changed, on every write: answering it as stored also answers `known`
// whenever nothing changed.
const find = (state: State, key: Key, now: number): Option.Option<Entry> => {
  const entry = state.users.get(key.user)?.get(key.session)
  return entry === undefined || entry.expiresAt + retention <= now ? Option.none() : Option.some(entry)
}

const remove = (state: State, user: string, session: string) => {
  const sessions = state.users.get(user)
  if (sessions === undefined || !sessions.delete(session)) return
  state.size--
  if (sessions.size === 0) state.users.delete(user)
  state.order?.delete(flat({ user, session }))
}

/** Deletes every entry whose `expiresAt` is at or before `before`, and makes `earliest` exact. */
const dropExpired = (state: State, before: number) => {
  let next = Infinity
  for (const [user, sessions] of state.users) {
    for (const [session, entry] of sessions) {
      if (entry.expiresAt <= before) remove(state, user, session)
      else if (entry.expiresAt < next) next = entry.expiresAt
    }
  }
  state.earliest = next
}

/** Least recently seen first: `lastSeenAt`, then `createdAt`, then the session part (for a stable order). */
const leastRecentlySeen = (a: readonly [string, Entry], b: readonly [string, Entry]) =>
  a[1].lastSeenAt - b[1].lastSeenAt || a[1].createdAt - b[1].createdAt || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

/** Deletes the user's least recently seen live entries until fewer than `cap.maxPerUser` are left. */
const makeRoom = (state: State, user: string, cap: Cap) => {
  const live: Array<readonly [string, Entry]> = []
  for (const pair of state.users.get(user) ?? []) if (pair[1].expiresAt > cap.now) live.push(pair)
  const excess = live.length - cap.maxPerUser + 1
  if (excess <= 0) return
  live.sort(leastRecentlySeen)
  for (let i = 0; i < excess && i < live.length; i++) remove(state, user, live[i]![0])
}

/** Makes room for one more entry in a full store, or answers that there is none. */
const makeSpace = (state: State, now: number): boolean => {
  if (state.size < state.capacity) return true
  if (now >= state.earliest) dropExpired(state, now)
  if (state.order === undefined) return state.size < state.capacity
  for (const oldest of state.order.values()) {
    if (state.size < state.capacity) break
    remove(state, oldest.user, oldest.session)
  }
  return true
}

/** Records a write of `key` (with `entry`, as it is now stored). */
const written = (state: State, key: Key, entry: Entry) => {
  if (entry.expiresAt < state.earliest) state.earliest = entry.expiresAt
  if (state.order !== undefined) {
    const id = flat(key)
    state.order.delete(id) // re-inserted at the back
    state.order.set(id, key)
  }
}

const update = (state: State, key: Key, entry: Entry): boolean => {
  const sessions = state.users.get(key.user)
  const current = sessions?.get(key.session)
  if (current === undefined || current.version !== entry.version - 1) return false
  sessions!.set(key.session, entry)
  written(state, key, entry)
  return true
}

const create = (
  state: State,
  key: Key,
  entry: Entry,
  cap: Cap | undefined,
  clock: Clock.Clock
): Effect.Effect<boolean, StoreError> => {
  if (state.users.get(key.user)?.has(key.session) === true) return Effect.succeed(false)
  if (cap !== undefined) makeRoom(state, key.user, cap)
  if (!makeSpace(state, clock.unsafeCurrentTimeMillis())) return Effect.fail(state.full)
  // the cap or the capacity may have taken the user's last entry, and its map with it
  let sessions = state.users.get(key.user)
  if (sessions === undefined) state.users.set(key.user, sessions = new Map())
  sessions.set(key.session, entry)
  state.size++
  written(state, key, entry)
  return Effect.succeed(true)
}

const entriesOf = (state: State, user: string): Array<Listed> => {
  const listed: Array<Listed> = []
  for (const [session, entry] of state.users.get(user) ?? []) listed.push({ key: { user, session }, entry })
  return listed
}

const removeUser = (state: State, user: string, except: string | undefined, now: number): number => {
  let live = 0
  for (const [session, entry] of state.users.get(user) ?? []) {
    if (session === except) continue
    if (entry.expiresAt > now) live++
    remove(state, user, session)
  }
  return live
}
