/**
 * The in-memory store: the embedded default, for development, tests and single-process deployments.
 *
 * Entries live in one `Map` in insertion order; a write moves its key to the back, so the front holds the
 * entry written longest ago, which (sessions sharing one lifetime) is also the one closest to expiry.
 * That order gives both bounds cheaply:
 *
 * - a periodic sweep (driven by `Clock`, so `TestClock` drives it in tests) deletes every expired entry;
 * - a capacity bound: creating an entry in a full store first evicts from the front, so a flood of new
 *   sessions cannot exhaust memory; it costs the oldest sessions, never the process.
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
import { type Key, type Listed, make as makeStore, Store, type StoreService } from "../Store.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The most sessions kept at once. Default 100,000. */
  readonly capacity?: number | undefined
  /** How often expired sessions are swept. Default 1 minute. */
  readonly sweepInterval?: Duration.DurationInput | undefined
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
    const capacity = Math.max(1, Math.floor(options.capacity ?? defaultCapacity))
    // entries by `user.session`, in write order; and each user's entries, for the per-user operations
    const entries = new Map<string, Listed>()
    const users = new Map<string, Set<string>>()
    const flat = (key: Key) => `${key.user}.${key.session}`

    const remove = (id: string) => {
      const stored = entries.get(id)
      if (stored === undefined) return false
      entries.delete(id)
      const ids = users.get(stored.key.user)
      if (ids !== undefined && ids.delete(id) && ids.size === 0) users.delete(stored.key.user)
      return true
    }

    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      for (const [id, { entry }] of entries) {
        if (entry.expiresAt <= now) remove(id)
      }
    })
    yield* Effect.forkScoped(Effect.schedule(sweep, Schedule.spaced(options.sweepInterval ?? Duration.minutes(1))))

    return {
      ...makeStore({
        // An entry object is replaced, never changed, on every write: answering it as stored also answers
        // `known` whenever nothing changed.
        fetch: (key) =>
          Effect.sync(() => {
            const stored = entries.get(flat(key))
            return stored === undefined ? Option.none() : Option.some(stored.entry)
          }),
        save: (key, entry, mode) =>
          Effect.sync(() => {
            const id = flat(key)
            const current = entries.get(id)
            if (mode === "create" ? current !== undefined : current?.entry.version !== entry.version - 1) return false
            if (current !== undefined) entries.delete(id) // re-inserted below, at the back
            else while (entries.size >= capacity) remove(entries.keys().next().value!)
            entries.set(id, { key, entry })
            const ids = users.get(key.user)
            if (ids === undefined) users.set(key.user, new Set([id]))
            else ids.add(id)
            return true
          }),
        delete: (key) =>
          Effect.sync(() => {
            remove(flat(key))
          }),
        list: (user, now) =>
          Effect.sync(() => {
            const listed: Array<Listed> = []
            for (const id of users.get(user) ?? []) {
              const stored = entries.get(id)!
              if (stored.entry.expiresAt > now) listed.push(stored)
            }
            return listed
          }),
        deleteUser: (user, except) =>
          Effect.sync(() => {
            let deleted = 0
            for (const id of Array.from(users.get(user) ?? [])) {
              if (except !== undefined && id === `${user}.${except}`) continue
              if (remove(id)) deleted++
            }
            return deleted
          })
      }),
      size: Effect.sync(() => entries.size),
      sweep
    }
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<Store> => Layer.scoped(Store, make(options))

/**
 * The store with its options from `Config`; by default `SESSION_MEMORY_CAPACITY` and
 * `SESSION_MEMORY_SWEEP_INTERVAL`, both optional.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = {
    capacity: Config.withDefault(Config.integer("SESSION_MEMORY_CAPACITY"), defaultCapacity),
    sweepInterval: Config.withDefault(Config.duration("SESSION_MEMORY_SWEEP_INTERVAL"), Duration.minutes(1))
  }
): Layer.Layer<Store, ConfigError.ConfigError> => Layer.scoped(Store, Effect.flatMap(Config.unwrap(config), make))
