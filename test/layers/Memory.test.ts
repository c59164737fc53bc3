import { describe, expect, it } from "@effect/vitest"
import { ConfigError, ConfigProvider, Duration, Effect, Option, TestClock } from "effect"
import * as Memory from "../../src/layers/Memory.js"
import { type Entry, type Key, Store } from "../../src/Store.js"
import { storeContract } from "../contract/Store.js"
import { makeEntry } from "../support/entry.js"

storeContract("memory", Memory.layer())
storeContract("memory (capacity 320: evicts during the suite, above any one test)", Memory.layer({ capacity: 320 }))

/** An entry as created (version 0), or as updated `version` times. */
const entry = (expiresAt: number, data: unknown = null, version = 0): Entry =>
  makeEntry({ version, userId: "u", createdAt: 0, expiresAt, data })
const hour = Duration.toMillis("1 hour")

// Keys of one user unless a test says otherwise; the per-user operations have their own tests below.
const k = (session: string, user = "u"): Key => ({ user, session })

const present = (store: Store["Type"], key: string) => Effect.map(store.fetch(k(key)), Option.isSome)

const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

describe("Memory store", () => {
  describe("capacity", () => {
    it.scoped("creating past capacity evicts the oldest entries first and keeps the newest", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3 })
        const keys = ["k0", "k1", "k2", "k3", "k4"]
        for (const key of keys) expect(yield* store.save(k(key), entry(hour, key), "create")).toBe(true)
        expect(yield* store.size).toBe(3)
        expect(yield* present(store, "k0")).toBe(false)
        expect(yield* present(store, "k1")).toBe(false)
        for (const key of ["k2", "k3", "k4"]) {
          expect(yield* store.fetch(k(key))).toEqual(Option.some(entry(hour, key)))
        }
      }))

    it.scoped("an update moves its key to the back of the eviction order", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3 })
        for (const key of ["a", "b", "c"]) yield* store.save(k(key), entry(hour), "create")
        expect(yield* store.save(k("a"), entry(2 * hour, null, 1), "update")).toBe(true)
        yield* store.save(k("d"), entry(hour), "create")
        expect(yield* present(store, "b")).toBe(false)
        expect(yield* store.fetch(k("a"))).toEqual(Option.some(entry(2 * hour, null, 1)))
        expect(yield* present(store, "c")).toBe(true)
        expect(yield* present(store, "d")).toBe(true)
        yield* store.save(k("e"), entry(hour), "create")
        expect(yield* present(store, "c")).toBe(false)
        expect(yield* present(store, "a")).toBe(true)
      }))

    it.scoped("an update in a full store evicts nothing", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 2 })
        yield* store.save(k("a"), entry(hour), "create")
        yield* store.save(k("b"), entry(hour), "create")
        expect(yield* store.save(k("b"), entry(2 * hour, null, 1), "update")).toBe(true)
        expect(yield* store.size).toBe(2)
        expect(yield* present(store, "a")).toBe(true)
      }))

    it.scoped("a refused create in a full store evicts nothing", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 2 })
        yield* store.save(k("a"), entry(hour, "a"), "create")
        yield* store.save(k("b"), entry(hour, "b"), "create")
        expect(yield* store.save(k("b"), entry(hour, "other"), "create")).toBe(false)
        expect(yield* store.size).toBe(2)
        expect(yield* store.fetch(k("a"))).toEqual(Option.some(entry(hour, "a")))
        expect(yield* store.fetch(k("b"))).toEqual(Option.some(entry(hour, "b")))
      }))

    it.scoped("a deleted entry frees its slot", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 2 })
        yield* store.save(k("a"), entry(hour), "create")
        yield* store.save(k("b"), entry(hour), "create")
        yield* store.delete(k("a"))
        expect(yield* store.size).toBe(1)
        yield* store.save(k("c"), entry(hour), "create")
        expect(yield* present(store, "b")).toBe(true)
        expect(yield* present(store, "c")).toBe(true)
      }))
  })

  describe("save modes", () => {
    it.scoped("create refuses an existing key and leaves the entry unchanged", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make()
        expect(yield* store.save(k("k"), entry(hour, "first"), "create")).toBe(true)
        expect(yield* store.save(k("k"), entry(2 * hour, "second"), "create")).toBe(false)
        expect(yield* store.fetch(k("k"))).toEqual(Option.some(entry(hour, "first")))
        expect(yield* store.size).toBe(1)
      }))

    it.scoped("update refuses a missing key and writes nothing", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make()
        expect(yield* store.save(k("k"), entry(hour, null, 1), "update")).toBe(false)
        expect(yield* present(store, "k")).toBe(false)
        expect(yield* store.size).toBe(0)
      }))

    it.scoped("an update with a stale version changes nothing, not even the eviction order", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3 })
        for (const key of ["a", "b", "c"]) yield* store.save(k(key), entry(hour, key), "create")
        expect(yield* store.save(k("a"), entry(2 * hour, "stale", 0), "update")).toBe(false)
        expect(yield* store.save(k("a"), entry(2 * hour, "stale", 2), "update")).toBe(false)
        expect(yield* store.fetch(k("a"))).toEqual(Option.some(entry(hour, "a")))
        yield* store.save(k("d"), entry(hour), "create")
        expect(yield* present(store, "a")).toBe(false)
        expect(yield* present(store, "b")).toBe(true)
      }))
  })

  describe("sweep", () => {
    it.scoped("expired entries stay until the sweep interval passes, then only they are deleted", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ sweepInterval: "1 minute" })
        yield* store.save(k("soon"), entry(Duration.toMillis("30 seconds")), "create")
        yield* store.save(k("later"), entry(Duration.toMillis("10 minutes")), "create")

        // Expired by now, but the store expires lazily: it is still there until swept.
        yield* TestClock.adjust("45 seconds")
        expect(yield* present(store, "soon")).toBe(true)
        expect(yield* store.size).toBe(2)

        yield* TestClock.adjust("15 seconds")
        expect(yield* present(store, "soon")).toBe(false)
        expect(yield* present(store, "later")).toBe(true)
        expect(yield* store.size).toBe(1)

        yield* TestClock.adjust("9 minutes")
        expect(yield* present(store, "later")).toBe(false)
        expect(yield* store.size).toBe(0)
      }))

    it.scoped("the sweep keeps sweeping at every interval", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ sweepInterval: "10 seconds" })
        for (let i = 1; i <= 5; i++) {
          yield* store.save(k(`k${i}`), entry(Duration.toMillis(Duration.seconds(10 * i - 5))), "create")
        }
        for (let i = 1; i <= 5; i++) {
          yield* TestClock.adjust("10 seconds")
          expect(yield* store.size).toBe(5 - i)
          expect(yield* present(store, `k${i}`)).toBe(false)
        }
      }))

    it.scoped("sweep on demand deletes entries whose expiry has been reached", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ sweepInterval: "1 day" })
        yield* store.save(k("at"), entry(1000), "create")
        yield* store.save(k("after"), entry(1001), "create")
        yield* TestClock.adjust("1 second")
        yield* store.sweep
        expect(yield* present(store, "at")).toBe(false)
        expect(yield* present(store, "after")).toBe(true)
      }))

    it.effect("the sweeper stops when the scope closes", () =>
      Effect.gen(function*() {
        const store = yield* Effect.scoped(Memory.make({ sweepInterval: "1 minute" }))
        yield* store.save(k("k"), entry(1000), "create")
        yield* TestClock.adjust("10 minutes")
        expect(yield* present(store, "k")).toBe(true)
      }))
  })

  describe("per-user records", () => {
    it.scoped("eviction and the sweep also drop the entries from their user's list", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3, sweepInterval: "1 minute" })
        yield* store.save(k("a", "alice"), entry(Duration.toMillis("30 seconds")), "create")
        yield* store.save(k("b", "alice"), entry(hour), "create")
        yield* store.save(k("c", "bob"), entry(hour), "create")
        yield* store.save(k("d", "bob"), entry(hour), "create") // evicts alice's "a"
        expect((yield* store.list("alice", 0)).map((listed) => listed.key.session)).toEqual(["b"])
        expect(yield* store.deleteUser("alice")).toBe(1)

        yield* TestClock.adjust("2 hours") // the sweep removes bob's expired entries
        expect(yield* store.size).toBe(0)
        expect(yield* store.list("bob", 0)).toEqual([])
        expect(yield* store.deleteUser("bob")).toBe(0)
      }))

    it.scoped("deleteUser frees capacity", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 2 })
        yield* store.save(k("a", "alice"), entry(hour), "create")
        yield* store.save(k("b", "alice"), entry(hour), "create")
        expect(yield* store.deleteUser("alice")).toBe(2)
        yield* store.save(k("c", "bob"), entry(hour), "create")
        yield* store.save(k("d", "bob"), entry(hour), "create")
        expect((yield* store.list("bob", 0)).map((listed) => listed.key.session).sort()).toEqual(["c", "d"])
      }))
  })

  describe("layerConfig", () => {
    it.effect("reads SESSION_MEMORY_CAPACITY", () =>
      Effect.gen(function*() {
        const store = yield* Store
        for (const key of ["a", "b", "c"]) yield* store.save(k(key), entry(hour), "create")
        expect(yield* present(store, "a")).toBe(false)
        expect(yield* present(store, "b")).toBe(true)
        expect(yield* present(store, "c")).toBe(true)
      }).pipe(Effect.provide(Memory.layerConfig()), withEnv([["SESSION_MEMORY_CAPACITY", "2"]])))

    it.effect("reads SESSION_MEMORY_SWEEP_INTERVAL", () =>
      Effect.gen(function*() {
        const store = yield* Store
        yield* store.save(k("k"), entry(Duration.toMillis("5 seconds")), "create")
        yield* TestClock.adjust("10 seconds")
        expect(yield* present(store, "k")).toBe(false)
      }).pipe(Effect.provide(Memory.layerConfig()), withEnv([["SESSION_MEMORY_SWEEP_INTERVAL", "10 seconds"]])))

    it.effect("defaults to a one-minute sweep and the default capacity without configuration", () =>
      Effect.gen(function*() {
        const store = yield* Store
        yield* store.save(k("k"), entry(Duration.toMillis("5 seconds")), "create")
        yield* TestClock.adjust("59 seconds")
        expect(yield* present(store, "k")).toBe(true)
        yield* TestClock.adjust("1 second")
        expect(yield* present(store, "k")).toBe(false)
        for (let i = 0; i < 1000; i++) yield* store.save(k(`k${i}`), entry(hour), "create")
        expect(yield* present(store, "k0")).toBe(true)
      }).pipe(Effect.provide(Memory.layerConfig()), withEnv([])))

    it.effect("an invalid value is a ConfigError", () =>
      Effect.gen(function*() {
        for (
          const env of [
            [["SESSION_MEMORY_CAPACITY", "many"]],
            [["SESSION_MEMORY_SWEEP_INTERVAL", "often"]]
          ] as const
        ) {
          const error = yield* Effect.flip(Store.pipe(Effect.provide(Memory.layerConfig()), withEnv(env)))
          expect(ConfigError.isConfigError(error)).toBe(true)
          expect(String(error)).toContain(env[0][0])
        }
      }))
  })
})
