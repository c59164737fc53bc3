import { describe, expect, it } from "@effect/vitest"
import { ConfigError, ConfigProvider, Duration, Effect, Option, TestClock } from "effect"
import * as Memory from "../../src/layers/Memory.js"
import { type Entry, expiredRetention, type Key, Store, StoreError } from "../../src/Store.js"
import * as StoreContract from "../../src/testing/StoreContract.js"
import { makeEntry } from "../../src/testing/StoreContract.js"

StoreContract.suite("memory", Memory.layer())
StoreContract.suite(
  "memory (capacity 320, evictOldest: evicts during the suite, above any one test)",
  Memory.layer({ capacity: 320, whenFull: "evictOldest" })
)

/** An entry as created (version 0), or as updated `version` times. */
const entry = (expiresAt: number, data: unknown = null, version = 0): Entry =>
  makeEntry({ version, userId: "u", createdAt: 0, expiresAt, data })
const hour = Duration.toMillis("1 hour")
const retention = Duration.toMillis(expiredRetention)

// Keys of one user unless a test says otherwise; the per-user operations have their own tests below.
const k = (session: string, user = "u"): Key => ({ user, session })

const present = (store: Store["Type"], key: string, user = "u") => Effect.map(store.fetch(k(key, user)), Option.isSome)

// Whether the store still holds the entry, whatever its expiry: `list` answers every entry whose expiry is
// after the `now` it is given, and `fetch` no longer answers one past its retention.
const held = (store: Store["Type"], key: string, user = "u") =>
  Effect.map(store.list(user, -Infinity), (listed) => listed.some((one) => one.key.session === key))

const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

describe("Memory store", () => {
  describe("a full store refuses by default", () => {
    it.scoped("a create in a full store fails with a Capacity StoreError and evicts nothing", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3 })
        for (const key of ["a", "b", "c"]) expect(yield* store.save(k(key), entry(hour, key), "create")).toBe(true)
        const error = yield* Effect.flip(store.save(k("d"), entry(hour), "create"))
        expect(error).toBeInstanceOf(StoreError)
        expect(error.reason).toBe("Capacity")
        expect(error.message).toContain("full")
        expect(yield* store.size).toBe(3)
        for (const key of ["a", "b", "c"]) expect(yield* store.fetch(k(key))).toEqual(Option.some(entry(hour, key)))
        expect(yield* present(store, "d")).toBe(false)
        // what is stored still works: updates, and deletes that make room again
        expect(yield* store.save(k("a"), entry(2 * hour, "a", 1), "update")).toBe(true)
        yield* store.delete(k("b"))
        expect(yield* store.save(k("d"), entry(hour, "d"), "create")).toBe(true)
        expect(yield* store.fetch(k("d"))).toEqual(Option.some(entry(hour, "d")))
      }))

    // Fails on the pre-fix store (f4cef2e), which evicted the oldest sessions to make room: one client's
    // flood of logins logged every other user out.
    it.scoped("a flood of creates from one client logs nobody out", () =>
      Effect.gen(function*() {
        const capacity = 1_000
        const store = yield* Memory.make({ capacity })
        const victims = Array.from({ length: 20 }, (_, i) => k(`victim-${i}`, `user-${i}`))
        for (const key of victims) expect(yield* store.save(key, entry(hour), "create")).toBe(true)
        let refused = 0
        for (let i = 0; i < 5 * capacity; i++) {
          const wrote = yield* Effect.either(store.save(k(`flood-${i}`, "attacker"), entry(hour), "create"))
          if (wrote._tag === "Left") refused++
        }
        expect(refused).toBe(5 * capacity - (capacity - victims.length))
        for (const key of victims) expect(yield* store.fetch(key)).toEqual(Option.some(entry(hour)))
      }))

    it.scoped("a full store first drops every expired entry, also within the retention, then creates", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3, sweepInterval: "1 day" })
        yield* store.save(k("soon"), entry(1_000), "create")
        yield* store.save(k("later"), entry(2_000), "create")
        yield* store.save(k("live"), entry(hour), "create")
        yield* TestClock.adjust("1500 millis")
        // "soon" is expired (and would be kept for the retention), "later" is not yet
        expect(yield* store.save(k("new"), entry(hour), "create")).toBe(true)
        expect(yield* present(store, "soon")).toBe(false)
        for (const key of ["later", "live", "new"]) expect(yield* present(store, key)).toBe(true)
        expect((yield* Effect.flip(store.save(k("more"), entry(hour), "create"))).reason).toBe("Capacity")
        yield* TestClock.adjust("1 second")
        expect(yield* store.save(k("more"), entry(hour), "create")).toBe(true)
        expect(yield* present(store, "later")).toBe(false)
      }))

    it.scoped("a user's cap makes room in a full store from that user's own sessions", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3 })
        yield* store.save(k("a", "alice"), makeEntry({ lastSeenAt: 1, expiresAt: hour }), "create")
        yield* store.save(k("b", "alice"), makeEntry({ lastSeenAt: 2, expiresAt: hour }), "create")
        yield* store.save(k("c", "bob"), makeEntry({ lastSeenAt: 0, expiresAt: hour }), "create")
        const cap = { maxPerUser: 2, now: 0 }
        expect(yield* store.save(k("d", "alice"), makeEntry({ lastSeenAt: 3, expiresAt: hour }), "create", cap)).toBe(
          true
        )
        expect((yield* store.list("alice", 0)).map(({ key }) => key.session).sort()).toEqual(["b", "d"])
        expect(yield* present(store, "c", "bob")).toBe(true)
        // bob is below his cap: the store is full for him
        const error = yield* Effect.flip(store.save(k("e", "bob"), entry(hour), "create", cap))
        expect(error.reason).toBe("Capacity")
      }))

    // A full store with nothing expired must refuse in constant time, not scan every entry on each create.
    it.scoped("refusals in a full store with nothing expired stay cheap", () =>
      Effect.gen(function*() {
        const capacity = 20_000
        const store = yield* Memory.make({ capacity })
        for (let i = 0; i < capacity; i++) yield* store.save(k(`s${i}`, `u${i}`), entry(hour), "create")
        const started = performance.now()
        for (let i = 0; i < 20_000; i++) yield* Effect.either(store.save(k(`x${i}`, "attacker"), entry(hour), "create"))
        expect(performance.now() - started).toBeLessThan(1_500)
        expect(yield* store.size).toBe(capacity)
      }))
  })

  describe("whenFull: evictOldest", () => {
    it.scoped("creating past capacity evicts the oldest entries first and keeps the newest", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3, whenFull: "evictOldest" })
        const keys = ["k0", "k1", "k2", "k3", "k4"]
        for (const key of keys) expect(yield* store.save(k(key), entry(hour, key), "create")).toBe(true)
        expect(yield* store.size).toBe(3)
        expect(yield* present(store, "k0")).toBe(false)
        expect(yield* present(store, "k1")).toBe(false)
        for (const key of ["k2", "k3", "k4"]) {
          expect(yield* store.fetch(k(key))).toEqual(Option.some(entry(hour, key)))
        }
      }))

    it.scoped("an expired entry goes before the oldest live one", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3, whenFull: "evictOldest", sweepInterval: "1 day" })
        yield* store.save(k("a"), entry(hour), "create")
        yield* store.save(k("b"), entry(1_000), "create")
        yield* store.save(k("c"), entry(hour), "create")
        yield* TestClock.adjust("2 seconds")
        yield* store.save(k("d"), entry(hour), "create")
        expect(yield* present(store, "b")).toBe(false)
        for (const key of ["a", "c", "d"]) expect(yield* present(store, key)).toBe(true)
      }))

    it.scoped("an update moves its key to the back of the eviction order", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3, whenFull: "evictOldest" })
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
        const store = yield* Memory.make({ capacity: 2, whenFull: "evictOldest" })
        yield* store.save(k("a"), entry(hour), "create")
        yield* store.save(k("b"), entry(hour), "create")
        expect(yield* store.save(k("b"), entry(2 * hour, null, 1), "update")).toBe(true)
        expect(yield* store.size).toBe(2)
        expect(yield* present(store, "a")).toBe(true)
      }))

    it.scoped("a refused create in a full store evicts nothing", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 2, whenFull: "evictOldest" })
        yield* store.save(k("a"), entry(hour, "a"), "create")
        yield* store.save(k("b"), entry(hour, "b"), "create")
        expect(yield* store.save(k("b"), entry(hour, "other"), "create")).toBe(false)
        expect(yield* store.size).toBe(2)
        expect(yield* store.fetch(k("a"))).toEqual(Option.some(entry(hour, "a")))
        expect(yield* store.fetch(k("b"))).toEqual(Option.some(entry(hour, "b")))
      }))

    it.scoped("a deleted entry frees its slot and leaves the eviction order", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 2, whenFull: "evictOldest" })
        yield* store.save(k("a"), entry(hour), "create")
        yield* store.save(k("b"), entry(hour), "create")
        yield* store.delete(k("a"))
        expect(yield* store.size).toBe(1)
        yield* store.save(k("c"), entry(hour), "create")
        expect(yield* present(store, "b")).toBe(true)
        expect(yield* present(store, "c")).toBe(true)
        yield* store.save(k("a"), entry(hour), "create")
        expect(yield* present(store, "b")).toBe(false)
        expect(yield* present(store, "c")).toBe(true)
      }))

    it.scoped("eviction also drops the entry from its user's records", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3, whenFull: "evictOldest" })
        yield* store.save(k("a", "alice"), entry(hour), "create")
        yield* store.save(k("b", "alice"), entry(hour), "create")
        yield* store.save(k("c", "bob"), entry(hour), "create")
        yield* store.save(k("d", "bob"), entry(hour), "create") // evicts alice's "a"
        expect((yield* store.list("alice", 0)).map((listed) => listed.key.session)).toEqual(["b"])
        expect(yield* store.deleteUser("alice")).toBe(1)
        expect(yield* store.size).toBe(2)
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
        const store = yield* Memory.make({ capacity: 3, whenFull: "evictOldest" })
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
    // Fails on the pre-fix store (f4cef2e), whose sweep deleted an entry at its expiry: `get` then said
    // NotFound instead of Expired.
    it.scoped("an expired entry is kept for Store.expiredRetention, then swept with nothing else", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ sweepInterval: "1 minute" })
        yield* store.save(k("soon"), entry(Duration.toMillis("30 seconds")), "create")
        yield* store.save(k("later"), entry(Duration.toMillis("30 minutes")), "create")

        // expired, and still answered after several sweeps
        yield* TestClock.adjust("2 minutes")
        expect(yield* present(store, "soon")).toBe(true)
        expect(yield* store.size).toBe(2)

        // the first sweep at or after expiry + retention (10 min 30 s) deletes it: the one at 11 minutes
        yield* TestClock.adjust(Duration.millis(30_000 + retention - 2 * 60_000 - 1))
        expect(yield* present(store, "soon")).toBe(true)
        yield* TestClock.adjust("1 minute")
        expect(yield* present(store, "soon")).toBe(false)
        expect(yield* present(store, "later")).toBe(true)
        expect(yield* store.size).toBe(1)

        yield* TestClock.adjust("30 minutes")
        expect(yield* present(store, "later")).toBe(false)
        expect(yield* store.size).toBe(0)
      }))

    it.scoped("the sweep keeps sweeping at every interval", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ sweepInterval: "10 seconds" })
        for (let i = 1; i <= 5; i++) {
          yield* store.save(k(`k${i}`), entry(Duration.toMillis(Duration.seconds(10 * i - 5)) - retention), "create")
        }
        for (let i = 1; i <= 5; i++) {
          yield* TestClock.adjust("10 seconds")
          expect(yield* store.size).toBe(5 - i)
          expect(yield* present(store, `k${i}`)).toBe(false)
        }
      }))

    it.scoped("sweep on demand deletes entries whose expiry plus retention has been reached", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ sweepInterval: "1 day" })
        yield* store.save(k("at"), entry(1000), "create")
        yield* store.save(k("after"), entry(1001), "create")
        yield* TestClock.adjust(Duration.millis(1000 + retention))
        yield* store.sweep
        expect(yield* store.size).toBe(1)
        expect(yield* present(store, "at")).toBe(false)
        expect(yield* present(store, "after")).toBe(true)
      }))

    it.effect("the sweeper stops when the scope closes", () =>
      Effect.gen(function*() {
        const store = yield* Effect.scoped(Memory.make({ sweepInterval: "1 minute" }))
        yield* store.save(k("k"), entry(1000), "create")
        yield* TestClock.adjust("1 hour")
        // still held (fetch answers none by then: the retention is over)
        expect(yield* store.size).toBe(1)
      }))
  })

  describe("expiry", () => {
    it.scoped("fetch answers none once expiresAt + Store.expiredRetention has passed, before any sweep", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ sweepInterval: "1 day" })
        yield* store.save(k("dies"), entry(1_000), "create")
        yield* store.save(k("lives"), entry(hour), "create")
        const known = Option.getOrThrow(yield* store.fetch(k("dies")))
        // expired, within the retention: answered, so that the service says Expired
        yield* TestClock.adjust(Duration.millis(1_000 + retention - 1))
        expect(yield* store.fetch(k("dies"))).toEqual(Option.some(entry(1_000)))
        yield* TestClock.adjust("1 millis")
        expect(yield* store.fetch(k("dies"))).toEqual(Option.none())
        expect(yield* store.fetch(k("dies"), known)).toEqual(Option.none())
        // the store still holds it until the sweep: fetch alone judges it by the clock
        expect(yield* store.size).toBe(2)
        expect(yield* store.fetch(k("lives"))).toEqual(Option.some(entry(hour)))
        expect(yield* store.list("u", 1_000 + retention)).toEqual([{ key: k("lives"), entry: entry(hour) }])
        expect(yield* store.deleteUser("u")).toBe(1)
      }))
  })

  describe("per-user records", () => {
    it.scoped("the sweep also drops the entries from their user's records", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ sweepInterval: "1 minute" })
        yield* store.save(k("a", "alice"), entry(Duration.toMillis("30 seconds")), "create")
        yield* store.save(k("b", "alice"), entry(hour), "create")
        yield* store.save(k("c", "bob"), entry(hour), "create")
        yield* TestClock.adjust("20 minutes")
        expect(yield* store.list("alice", 0)).toHaveLength(1)
        expect(yield* store.deleteUser("alice")).toBe(1)
        yield* TestClock.adjust("2 hours")
        expect(yield* store.size).toBe(0)
        expect(yield* store.list("bob", 0)).toEqual([])
        expect(yield* store.deleteUser("bob")).toBe(0)
      }))

    it.scoped("deleteUser counts the live sessions by the store's clock, and frees capacity", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 3 })
        yield* store.save(k("a", "alice"), entry(1_000), "create")
        yield* store.save(k("b", "alice"), entry(hour), "create")
        yield* store.save(k("c", "alice"), entry(hour), "create")
        yield* TestClock.adjust("1 second")
        expect(yield* store.deleteUser("alice")).toBe(2)
        expect(yield* store.size).toBe(0)
        for (const key of ["d", "e", "f"]) yield* store.save(k(key, "bob"), entry(hour), "create")
        expect((yield* store.list("bob", 0)).map((listed) => listed.key.session).sort()).toEqual(["d", "e", "f"])
      }))

    // The per-user operations look at that user's sessions only, whatever else the store holds.
    it.scoped("per-user operations cost that user's sessions, not the store's", () =>
      Effect.gen(function*() {
        const store = yield* Memory.make({ capacity: 100_000 })
        for (let i = 0; i < 50_000; i++) yield* store.save(k(`s${i}`, `u${i % 5_000}`), entry(hour), "create")
        const started = performance.now()
        for (let i = 0; i < 5_000; i++) {
          yield* store.save(k(`mine-${i}`, "me"), makeEntry({ lastSeenAt: i, expiresAt: hour }), "create", {
            maxPerUser: 10,
            now: 0
          })
          yield* store.list("me", 0)
        }
        expect(yield* store.deleteUser("me")).toBe(10)
        expect(performance.now() - started).toBeLessThan(1_000)
        expect(yield* store.size).toBe(50_000)
      }))
  })

  describe("layerConfig", () => {
    it.effect("reads SESSION_MEMORY_CAPACITY", () =>
      Effect.gen(function*() {
        const store = yield* Store
        for (const key of ["a", "b"]) yield* store.save(k(key), entry(hour), "create")
        expect((yield* Effect.flip(store.save(k("c"), entry(hour), "create"))).reason).toBe("Capacity")
        expect(yield* present(store, "a")).toBe(true)
        expect(yield* present(store, "b")).toBe(true)
      }).pipe(Effect.provide(Memory.layerConfig()), withEnv([["SESSION_MEMORY_CAPACITY", "2"]])))

    it.effect("reads SESSION_MEMORY_WHEN_FULL", () =>
      Effect.gen(function*() {
        const store = yield* Store
        for (const key of ["a", "b", "c"]) yield* store.save(k(key), entry(hour), "create")
        expect(yield* present(store, "a")).toBe(false)
        expect(yield* present(store, "b")).toBe(true)
        expect(yield* present(store, "c")).toBe(true)
      }).pipe(
        Effect.provide(Memory.layerConfig()),
        withEnv([["SESSION_MEMORY_CAPACITY", "2"], ["SESSION_MEMORY_WHEN_FULL", "evictOldest"]])
      ))

    it.effect("reads SESSION_MEMORY_SWEEP_INTERVAL", () =>
      Effect.gen(function*() {
        const store = yield* Store
        yield* store.save(k("k"), entry(Duration.toMillis("5 seconds") - retention), "create")
        yield* TestClock.adjust("9 seconds")
        expect(yield* held(store, "k")).toBe(true)
        yield* TestClock.adjust("1 second")
        expect(yield* held(store, "k")).toBe(false)
      }).pipe(Effect.provide(Memory.layerConfig()), withEnv([["SESSION_MEMORY_SWEEP_INTERVAL", "10 seconds"]])))

    it.effect("defaults to a one-minute sweep, the default capacity and refusing when full", () =>
      Effect.gen(function*() {
        const store = yield* Store
        yield* store.save(k("k"), entry(Duration.toMillis("5 seconds") - retention), "create")
        yield* TestClock.adjust("59 seconds")
        expect(yield* held(store, "k")).toBe(true)
        yield* TestClock.adjust("1 second")
        expect(yield* held(store, "k")).toBe(false)
        for (let i = 0; i < Memory.defaultCapacity; i++) yield* store.save(k(`k${i}`), entry(hour), "create")
        expect((yield* Effect.flip(store.save(k("one-more"), entry(hour), "create"))).reason).toBe("Capacity")
        expect(yield* present(store, "k0")).toBe(true)
      }).pipe(Effect.provide(Memory.layerConfig()), withEnv([])))

    it.effect("an invalid value is a ConfigError", () =>
      Effect.gen(function*() {
        for (
          const env of [
            [["SESSION_MEMORY_CAPACITY", "many"]],
            [["SESSION_MEMORY_SWEEP_INTERVAL", "often"]],
            [["SESSION_MEMORY_WHEN_FULL", "evict"]]
          ] as const
        ) {
          const error = yield* Effect.flip(Store.pipe(Effect.provide(Memory.layerConfig()), withEnv(env)))
          expect(ConfigError.isConfigError(error)).toBe(true)
          expect(String(error)).toContain(env[0][0])
        }
      }))
  })
})
