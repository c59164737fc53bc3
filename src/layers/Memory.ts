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
import { type Entry, make as makeStore, Store, type StoreService } from "../Store.js"

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
    const entries = new Map<string, Entry>()

    const sweep = Effect.map(Clock.currentTimeMillis, (now) => {
      for (const [key, entry] of entries) {
        if (entry.expiresAt <= now) entries.delete(key)
      }
    })
    yield* Effect.forkScoped(Effect.schedule(sweep, Schedule.spaced(options.sweepInterval ?? Duration.minutes(1))))

    return {
      ...makeStore({
        fetch: (key) => Effect.sync(() => Option.fromNullable(entries.get(key))),
        save: (key, entry, mode) =>
          Effect.sync(() => {
            const exists = entries.has(key)
            if (exists !== (mode === "update")) return false
            if (exists) entries.delete(key) // re-inserted below, at the back
            else while (entries.size >= capacity) entries.delete(entries.keys().next().value!)
            entries.set(key, entry)
            return true
          }),
        delete: (key) =>
          Effect.sync(() => {
            entries.delete(key)
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
