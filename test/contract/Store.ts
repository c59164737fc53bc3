/**
 * The contract of the Store port (see the top of src/Store.ts), written once and run against every backend:
 *
 * ```ts
 * storeContract("memory", Memory.layer())
 * ```
 *
 * It uses only `fetch`, `save` and `delete`. Every test writes under its own random keys, so the tests are
 * independent of each other and of their order, and a shared backend (a Redis server) needs no flushing.
 * Expiry times are fixed far in the future: a backend with its own clock (Redis) must keep every entry for
 * the whole run, and the lazy expiry the contract allows is checked by the `Sessions` tests, not here.
 *
 * The store is built once per suite in a `ManagedRuntime` rather than with @effect/vitest's `layer(...)`:
 * in @effect/vitest 0.30 `layer(...)` reassigns `effect`/`scoped` on the shared `it` object, so every
 * `it.effect` declared after it in the same file would silently run in the suite's runtime and share its
 * TestClock (fixed upstream in Effect 4 only: Effect-TS/effect-smol#2177).
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Effect, type Layer, ManagedRuntime, Option } from "effect"
import * as Crypto from "node:crypto"
import { type Entry, Store } from "../../src/Store.js"

// 2100-01-01 and 2101-01-01 (UTC), in milliseconds.
const farFuture = Date.UTC(2100, 0, 1)
const fartherFuture = Date.UTC(2101, 0, 1)

const uniqueKey = (label: string) => `contract-${label}-${Crypto.randomBytes(12).toString("base64url")}`

const makeEntry = (overrides: Partial<Entry> = {}): Entry => ({
  userId: `user-${Crypto.randomBytes(6).toString("hex")}`,
  createdAt: farFuture - 60_000,
  expiresAt: farFuture,
  data: { csrf: Crypto.randomBytes(16).toString("base64url") },
  ...overrides
})

/**
 * Runs the Store contract against the store built by `storeLayer`, which is built once for the suite and
 * released after it.
 */
export const storeContract = (name: string, storeLayer: Layer.Layer<Store, unknown>) =>
  describe(`Store contract: ${name}`, () => {
    const runtime = ManagedRuntime.make(storeLayer)
    beforeAll(() => runtime.runtime(), 60_000)
    afterAll(() => runtime.dispose(), 60_000)

    const test = (title: string, self: () => Effect.Effect<void, unknown, Store>) =>
      it.effect(title, () => Effect.flatMap(runtime.runtimeEffect, (rt) => Effect.provide(self(), rt.context)))
    test("fetch of a key never written is none", () =>
      Effect.gen(function*() {
        const store = yield* Store
        expect(Option.isNone(yield* store.fetch(uniqueKey("missing")))).toBe(true)
      }))

    test("create writes a new key and fetch returns the entry as saved", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("create")
        const entry = makeEntry()
        expect(yield* store.save(key, entry, "create")).toBe(true)
        expect(yield* store.fetch(key)).toEqual(Option.some(entry))
      }))

    test("create refuses an existing key and leaves its entry unchanged", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("create-twice")
        const first = makeEntry()
        const second = makeEntry({ expiresAt: fartherFuture, data: { other: true } })
        expect(yield* store.save(key, first, "create")).toBe(true)
        expect(yield* store.save(key, second, "create")).toBe(false)
        expect(yield* store.fetch(key)).toEqual(Option.some(first))
      }))

    test("update refuses a missing key and does not create it", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("update-missing")
        expect(yield* store.save(key, makeEntry(), "update")).toBe(false)
        expect(Option.isNone(yield* store.fetch(key))).toBe(true)
      }))

    test("update replaces every field of an existing entry", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("update")
        const before = makeEntry()
        const after = makeEntry({
          createdAt: before.createdAt + 1,
          expiresAt: fartherFuture,
          data: { csrf: "new", visits: 2 }
        })
        expect(yield* store.save(key, before, "create")).toBe(true)
        expect(yield* store.save(key, after, "update")).toBe(true)
        expect(yield* store.fetch(key)).toEqual(Option.some(after))
      }))

    test("delete removes the entry, after which create works again", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("delete")
        const entry = makeEntry()
        expect(yield* store.save(key, entry, "create")).toBe(true)
        yield* store.delete(key)
        expect(Option.isNone(yield* store.fetch(key))).toBe(true)
        expect(yield* store.save(key, entry, "create")).toBe(true)
        expect(yield* store.fetch(key)).toEqual(Option.some(entry))
      }))

    test("delete is idempotent", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("delete-twice")
        yield* store.delete(key)
        expect(yield* store.save(key, makeEntry(), "create")).toBe(true)
        yield* store.delete(key)
        yield* store.delete(key)
        expect(Option.isNone(yield* store.fetch(key))).toBe(true)
      }))

    test("update after delete is refused: a cleared entry is never brought back", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("update-deleted")
        const entry = makeEntry()
        expect(yield* store.save(key, entry, "create")).toBe(true)
        yield* store.delete(key)
        expect(yield* store.save(key, { ...entry, expiresAt: fartherFuture }, "update")).toBe(false)
        expect(Option.isNone(yield* store.fetch(key))).toBe(true)
      }))

    test("keys are independent, including keys that differ only by case or a suffix", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("independent")
        const keys = [key, key.toUpperCase(), `${key}x`, `${key}:sub`]
        const entries = keys.map(() => makeEntry())
        for (let i = 0; i < keys.length; i++) {
          expect(yield* store.save(keys[i]!, entries[i]!, "create")).toBe(true)
        }
        for (let i = 0; i < keys.length; i++) {
          expect(yield* store.fetch(keys[i]!)).toEqual(Option.some(entries[i]!))
        }
        yield* store.delete(keys[0]!)
        expect(Option.isNone(yield* store.fetch(keys[0]!))).toBe(true)
        for (let i = 1; i < keys.length; i++) {
          expect(yield* store.fetch(keys[i]!)).toEqual(Option.some(entries[i]!))
        }
      }))

    test("keys with separators and brace characters are stored as given", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const base = uniqueKey("chars")
        const keys = [`${base}:a/b.c`, `{${base}}`, `${base} with spaces`, `${base}-ünï-🍪`]
        for (const key of keys) {
          const entry = makeEntry()
          expect(yield* store.save(key, entry, "create")).toBe(true)
          expect(yield* store.fetch(key)).toEqual(Option.some(entry))
        }
      }))

    test("JSON-compatible data round-trips exactly", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const values: ReadonlyArray<unknown> = [
          null,
          true,
          false,
          0,
          -17,
          3.25,
          "",
          "ünïcødé ✓ 🍪 \"quoted\" \\ \n newline",
          [],
          [1, "two", null, [3]],
          {},
          { nested: { deeper: { list: [{ a: 1 }, { b: "c" }] } }, flag: false, empty: "" },
          { big: "x".repeat(10_000) }
        ]
        for (const data of values) {
          const key = uniqueKey("data")
          const entry = makeEntry({ data })
          expect(yield* store.save(key, entry, "create")).toBe(true)
          expect(yield* store.fetch(key)).toEqual(Option.some(entry))
        }
      }))

    test("times keep millisecond precision", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("millis")
        const entry = makeEntry({ createdAt: farFuture - 1_234_567, expiresAt: farFuture + 789 })
        expect(yield* store.save(key, entry, "create")).toBe(true)
        const fetched = yield* store.fetch(key)
        expect(Option.map(fetched, (e) => [e.createdAt, e.expiresAt])).toEqual(
          Option.some([farFuture - 1_234_567, farFuture + 789])
        )
      }))

    test("of concurrent creates of one key, exactly one wins and its entry is stored", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const key = uniqueKey("race")
        const candidates = Array.from({ length: 20 }, () => makeEntry())
        const results = yield* Effect.forEach(candidates, (entry) => store.save(key, entry, "create"), {
          concurrency: "unbounded"
        })
        expect(results.filter((wrote) => wrote)).toHaveLength(1)
        const winner = candidates[results.indexOf(true)]!
        expect(yield* store.fetch(key)).toEqual(Option.some(winner))
      }))

    test("concurrent creates of distinct keys all succeed", () =>
      Effect.gen(function*() {
        const store = yield* Store
        const writes = Array.from({ length: 50 }, () => [uniqueKey("many"), makeEntry()] as const)
        const results = yield* Effect.forEach(writes, ([key, entry]) => store.save(key, entry, "create"), {
          concurrency: "unbounded"
        })
        expect(results.every((wrote) => wrote)).toBe(true)
        const fetched = yield* Effect.forEach(writes, ([key]) => store.fetch(key), { concurrency: "unbounded" })
        expect(fetched).toEqual(writes.map(([, entry]) => Option.some(entry)))
      }))
  })
