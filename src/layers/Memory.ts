/**
 * The in-memory store: the embedded default, for development, tests and single-process deployments.
 *
 * Entries are kept per user (a map of the user's sessions), so that every per-user operation (`list`,
 * `deleteUser`, the per-user cap of a create) costs that user's sessions only. Two bounds keep memory in
 * check:
 *
 * - a periodic sweep (driven by `Clock`, so `TestClock` drives it in tests) deletes every entry whose
 *   expiry passed more than `Store.expiredRetention` ago (until then `get` answers `Expired`);
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
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import type * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
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

/** Least recently seen first: `lastSeenAt`, then `createdAt`, then the session part (for a stable order). */
const leastRecentlySeen = (a: readonly [string, Entry], b: readonly [string, Entry]) =>
  a[1].lastSeenAt - b[1].lastSeenAt || a[1].createdAt - b[1].createdAt || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)

/**
 * Makes the store; its sweeper runs until the scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<MemoryStore, never, Scope.Scope> =>
  Effect.gen(function*() {
    const capacity = Math.max(1, Math.floor(options.capacity ?? defaultCapacity))
    const retention = Duration.toMillis(expiredRetention)
    // every user's sessions, by session part
    const users = new Map<string, Map<string, Entry>>()
    let size = 0
    // A lower bound of every stored `expiresAt`: while the clock is before it, nothing is expired and a
    // full store refuses at once instead of scanning every entry for expired ones.
    let earliest = Infinity
    // Only "evictOldest" needs the write order: every key, least recently written first.
    const order = options.whenFull === "evictOldest" ? new Map<string, Key>() : undefined
    // unambiguous for any two strings
    const flat = (key: Key) => `${key.user.length}:${key.user}${key.session}`

    const remove = (user: string, sessions: Map<string, Entry>, session: string) => {
      if (!sessions.delete(session)) return
      size--
      if (sessions.size === 0) users.delete(user)
      order?.delete(flat({ user, session }))
    }

    /** Deletes every entry whose `expiresAt` is at or before `before`, and makes `earliest` exact. */
    const dropExpired = (before: number) => {
      let next = Infinity
      for (const [user, sessions] of users) {
        for (const [session, entry] of sessions) {
          if (entry.expiresAt <= before) remove(user, sessions, session)
          else if (entry.expiresAt < next) next = entry.expiresAt
        }
      }
      earliest = next
    }

    /** Deletes the user's least recently seen live entries until fewer than `cap.maxPerUser` are left. */
    const makeRoom = (user: string, sessions: Map<string, Entry>, cap: Cap) => {
      const live: Array<readonly [string, Entry]> = []
      for (const pair of sessions) if (pair[1].expiresAt > cap.now) live.push(pair)
      const excess = live.length - cap.maxPerUser + 1
      if (excess <= 0) return
      live.sort(leastRecentlySeen)
      for (let i = 0; i < excess && i < live.length; i++) remove(user, sessions, live[i]![0])
    }

    const full = new StoreError({
      reason: "Capacity",
      message: `the in-memory session store is full (${capacity} sessions); no session was evicted to make room`
    })

    const sweep = Effect.map(Clock.currentTimeMillis, (now) => dropExpired(now - retention))
    yield* Effect.forkScoped(Effect.schedule(sweep, Schedule.spaced(options.sweepInterval ?? Duration.minutes(1))))

    return {
      ...makeStore({
        // An entry object is replaced, never changed, on every write: answering it as stored also answers
        // `known` whenever nothing changed.
        fetch: (key) => Effect.sync(() => Option.fromNullable(users.get(key.user)?.get(key.session))),
        save: (key, entry, mode, cap) =>
          Effect.clockWith((clock) =>
            Effect.suspend(() => {
              let sessions = users.get(key.user)
              const current = sessions?.get(key.session)
              if (mode === "update") {
                if (current === undefined || current.version !== entry.version - 1) return Effect.succeed(false)
                sessions!.set(key.session, entry)
              } else {
                if (current !== undefined) return Effect.succeed(false)
                if (cap !== undefined && sessions !== undefined) makeRoom(key.user, sessions, cap)
                if (size >= capacity) {
                  const now = clock.unsafeCurrentTimeMillis()
                  if (now >= earliest) dropExpired(now)
                  if (order === undefined) {
                    if (size >= capacity) return Effect.fail(full)
                  } else {
                    for (const oldest of order.values()) {
                      if (size < capacity) break
                      remove(oldest.user, users.get(oldest.user)!, oldest.session)
                    }
                  }
                }
                // the cap or the capacity may have taken the user's last entry, and its map with it
                sessions = users.get(key.user)
                if (sessions === undefined) users.set(key.user, sessions = new Map())
                sessions.set(key.session, entry)
                size++
              }
              if (entry.expiresAt < earliest) earliest = entry.expiresAt
              if (order !== undefined) {
                const id = flat(key)
                order.delete(id) // re-inserted at the back
                order.set(id, key)
              }
              return Effect.succeed(true)
            })
          ),
        delete: (key) =>
          Effect.sync(() => {
            const sessions = users.get(key.user)
            if (sessions !== undefined) remove(key.user, sessions, key.session)
          }),
        list: (user) =>
          Effect.sync(() => {
            const listed: Array<Listed> = []
            for (const [session, entry] of users.get(user) ?? []) listed.push({ key: { user, session }, entry })
            return listed
          }),
        deleteUser: (user, except) =>
          Effect.clockWith((clock) =>
            Effect.sync(() => {
              const sessions = users.get(user)
              if (sessions === undefined) return 0
              const now = clock.unsafeCurrentTimeMillis()
              let live = 0
              for (const [session, entry] of sessions) {
                if (session === except) continue
                if (entry.expiresAt > now) live++
                remove(user, sessions, session)
              }
              return live
            })
          )
      }),
      size: Effect.sync(() => size),
      sweep
    }
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
