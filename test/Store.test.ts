import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, FastCheck as fc, Option, TestClock } from "effect"
import * as Store from "../src/Store.js"

// Every field distinct from its neighbours and from its default, so that a field written in the wrong slot
// or dropped shows.
const entry: Store.Entry = {
  version: 7,
  userId: "user-1",
  createdAt: 1_700_000_000_000,
  renewedAt: 1_700_000_600_000,
  extendedUntil: 1_700_259_200_000,
  expiresAt: 1_700_172_800_000,
  lastSeenAt: 1_700_000_900_000,
  secret: "c2VjcmV0LWRpZ2VzdA-current",
  previous: "c2VjcmV0LWRpZ2VzdA-previous",
  previousUntil: 1_700_000_960_000,
  userAgent: "Mozilla/5.0 (X11; Linux x86_64) ünï ✓",
  address: "2001:db8::1",
  ttl: 2_592_000_000,
  persistent: false,
  data: { csrf: "abc", roles: ["admin", "ops"], nested: { n: 1.5, ok: true, none: null }, text: "ünïcødé ✓ 🍪" }
}

// A session as just issued without client information or a lifetime of its own: version 0, no previous
// secret, no user agent or address, the service's ttl, a persistent token.
const fresh: Store.Entry = {
  version: 0,
  userId: "user-2",
  createdAt: 1_700_000_000_000,
  renewedAt: 1_700_000_000_000,
  extendedUntil: 1_700_259_200_000,
  expiresAt: 1_700_259_200_000,
  lastSeenAt: 1_700_000_000_000,
  secret: "c2VjcmV0LWRpZ2VzdA-fresh",
  previous: undefined,
  previousUntil: 0,
  userAgent: undefined,
  address: undefined,
  ttl: undefined,
  persistent: true,
  data: { csrf: "def" }
}

describe("Store codec", () => {
  it("round-trips an entry", () => {
    expect(Store.decodeEntry(Store.encodeEntry(entry))).toEqual(entry)
    expect(Store.decodeEntry(Store.encodeEntry(fresh))).toEqual(fresh)
  })

  it("writes the versioned compact array: format 4 for a session with a lifetime of its own", () => {
    expect(JSON.parse(Store.encodeEntry(entry))).toEqual([
      4,
      entry.version,
      entry.expiresAt,
      entry.lastSeenAt,
      entry.createdAt,
      entry.renewedAt,
      entry.extendedUntil,
      entry.previousUntil,
      entry.ttl,
      entry.persistent,
      entry.userId,
      entry.secret,
      entry.previous,
      entry.userAgent,
      entry.address,
      entry.data
    ])
    expect(JSON.parse(Store.encodeEntry(fresh))).toEqual([
      3,
      0,
      fresh.expiresAt,
      fresh.lastSeenAt,
      fresh.createdAt,
      fresh.renewedAt,
      fresh.extendedUntil,
      0,
      fresh.userId,
      fresh.secret,
      null,
      null,
      null,
      fresh.data
    ])
    // one of the two set is enough for format 4
    expect(JSON.parse(Store.encodeEntry({ ...fresh, persistent: false }))[0]).toBe(4)
    expect(JSON.parse(Store.encodeEntry({ ...fresh, ttl: 1 })).slice(0, 10)).toEqual([
      4,
      0,
      fresh.expiresAt,
      fresh.lastSeenAt,
      fresh.createdAt,
      fresh.renewedAt,
      fresh.extendedUntil,
      0,
      1,
      true
    ])
  })

  // Sessions live in the store across an upgrade: what the previous version wrote reads on.
  it("decodes a format 3 entry written by the previous version as one with the service's lifetime", () => {
    const previous = "[3,2,1700259200000,1700000900000,1700000000000,1700000600000,1700259200000,0,\"user-1\"," +
      "\"c2VjcmV0\",null,\"Mozilla/5.0\",\"127.0.0.1\",{\"csrf\":\"abc\"}]"
    expect(Store.decodeEntry(previous)).toEqual({
      version: 2,
      expiresAt: 1_700_259_200_000,
      lastSeenAt: 1_700_000_900_000,
      createdAt: 1_700_000_000_000,
      renewedAt: 1_700_000_600_000,
      extendedUntil: 1_700_259_200_000,
      previousUntil: 0,
      userId: "user-1",
      secret: "c2VjcmV0",
      previous: undefined,
      userAgent: "Mozilla/5.0",
      address: "127.0.0.1",
      ttl: undefined,
      persistent: true,
      data: { csrf: "abc" }
    })
  })

  it("keeps null and primitive data", () => {
    for (const data of [null, 0, "", false, "text", 42, [1, "two"]]) {
      expect(Store.decodeEntry(Store.encodeEntry({ ...entry, data }))).toEqual({ ...entry, data })
    }
  })

  it("keeps an empty user agent, address and previous secret apart from absent ones", () => {
    const empty = { ...fresh, userAgent: "", address: "", previous: "" }
    expect(Store.decodeEntry(Store.encodeEntry(empty))).toEqual(empty)
    const absent = { ...fresh, userAgent: undefined, address: undefined, previous: undefined }
    expect(Store.decodeEntry(Store.encodeEntry(absent))).toEqual(absent)
  })

  // The Redis store's scripts read the version, the expiry, when it was last seen and when it was created
  // with the Lua pattern `^%[[34],(%d+),(%d+),(%d+),(%d+),`, in both formats.
  it.prop(
    "the format and the numbers a script needs open the encoded form, as the Redis scripts' pattern reads them",
    [fc.maxSafeNat(), fc.maxSafeNat(), fc.maxSafeNat(), fc.maxSafeNat(), fc.constantFrom(entry, fresh)],
    ([version, expiresAt, lastSeenAt, createdAt, base]) => {
      const raw = Store.encodeEntry({ ...base, version, expiresAt, lastSeenAt, createdAt })
      expect(/^\[[34],(\d+),(\d+),(\d+),(\d+),/.exec(raw)?.slice(1)).toEqual(
        [version, expiresAt, lastSeenAt, createdAt].map(String)
      )
    },
    { fastCheck: { numRuns: 500 } }
  )

  describe("size limit", () => {
    it("decodes an entry of exactly Store.maxEncodedLength characters and refuses one more", () => {
      const base = Store.encodeEntry({ ...entry, data: "" })
      const padding = "x".repeat(Store.maxEncodedLength - base.length)
      const longest = { ...entry, data: padding }
      expect(Store.encodeEntry(longest)).toHaveLength(Store.maxEncodedLength)
      expect(Store.decodeEntry(Store.encodeEntry(longest))).toEqual(longest)
      expect(Store.decodeEntry(Store.encodeEntry({ ...entry, data: `${padding}x` }))).toBeUndefined()
    })

    it("refuses 16 MiB without parsing it", () => {
      // valid JSON that JSON.parse would take a while over, and an entry that would decode but for its size
      const huge = `[${"1,".repeat(8 * 1024 * 1024 - 1)}1]`
      const valid = Store.encodeEntry({ ...entry, data: "x".repeat(16 * 1024 * 1024) })
      const parse = JSON.parse
      let parsed = 0
      JSON.parse = (...args: Parameters<typeof JSON.parse>) => {
        parsed++
        return parse(...args)
      }
      try {
        const started = performance.now()
        expect(Store.decodeEntry(huge)).toBeUndefined()
        expect(Store.decodeEntry(valid)).toBeUndefined()
        expect(performance.now() - started).toBeLessThan(50)
      } finally {
        JSON.parse = parse
      }
      expect(parsed).toBe(0)
    })
  })

  describe("decodeEntry answers undefined for anything it did not write", () => {
    // Each case below is this (valid) entry with one thing wrong.
    const valid: ReadonlyArray<unknown> = JSON.parse(Store.encodeEntry(entry))
    const withRaw = (index: number, raw: string) =>
      `[${valid.map((value, i) => i === index ? raw : JSON.stringify(value)).join(",")}]`
    const withValue = (index: number, value: unknown) => withRaw(index, JSON.stringify(value))

    it("(the entry the cases alter decodes)", () => {
      expect(Store.decodeEntry(JSON.stringify(valid))).toEqual(entry)
      expect(Store.decodeEntry(withRaw(1, "7"))).toEqual(entry)
    })

    const cases: ReadonlyArray<readonly [string, string]> = [
      ["the empty string", ""],
      ["invalid JSON", Store.encodeEntry(entry).slice(0, -1)],
      ["a JSON object", JSON.stringify(entry)],
      ["a JSON string", JSON.stringify("session")],
      ["null", "null"],
      ["an empty array", "[]"],
      ["a short array", JSON.stringify(valid.slice(0, -1))],
      ["a long array", JSON.stringify([...valid, "extra"])],
      ["the old format [1, userId, createdAt, expiresAt, data]", JSON.stringify([1, "u", 1, 2, null])],
      ["an old-format entry", "[1,\"user-1\",1700000000000,1700259200000,{\"csrf\":\"abc\"}]"],
      [
        "a format 2 entry",
        JSON.stringify([2, 7, "user-1", 1, 1, 2, 2, 1, 0, null, null, { csrf: "abc" }])
      ],
      ["format 2 in the new layout", withValue(0, 2)],
      ["format 3 in the layout of format 4", withValue(0, 3)],
      ["another format", withValue(0, 5)],
      ["a format as a string", withValue(0, "4")],
      ["format 4 in the layout of format 3", JSON.stringify([4, ...JSON.parse(Store.encodeEntry(fresh)).slice(1)])],
      ["format 3, one field short", JSON.stringify(JSON.parse(Store.encodeEntry(fresh)).slice(0, -1))],
      ["format 3 with a numeric userId", JSON.stringify(Object.assign(JSON.parse(Store.encodeEntry(fresh)), { 8: 7 }))],
      ["a version as a string", withValue(1, "7")],
      ["a negative version", withValue(1, -1)],
      ["a fractional version", withValue(1, 1.5)],
      ["a null version", withValue(1, null)],
      ["an unsafe integer version", withRaw(1, `${Number.MAX_SAFE_INTEGER}0`)],
      ["a fractional expiresAt", withValue(2, 2.5)],
      ["a null expiresAt", withValue(2, null)],
      ["a negative expiresAt", withValue(2, -1)],
      ["a string lastSeenAt", withValue(3, "1")],
      ["a string createdAt", withValue(4, "1")],
      ["a fractional renewedAt", withValue(5, 1.5)],
      ["a null extendedUntil", withValue(6, null)],
      ["a null previousUntil", withValue(7, null)],
      ["an unsafe integer time", withRaw(6, `${Number.MAX_SAFE_INTEGER}0`)],
      ["a zero ttl", withValue(8, 0)],
      ["a negative ttl", withValue(8, -1)],
      ["a fractional ttl", withValue(8, 1.5)],
      ["a string ttl", withValue(8, "30 days")],
      ["a null persistent", withValue(9, null)],
      ["a numeric persistent", withValue(9, 1)],
      ["a numeric userId", withValue(10, 7)],
      ["a null userId", withValue(10, null)],
      ["a null secret", withValue(11, null)],
      ["a numeric secret", withValue(11, 1)],
      ["a numeric previous", withValue(12, 1)],
      ["a boolean previous", withValue(12, true)],
      ["a numeric userAgent", withValue(13, 42)],
      ["a userAgent object", withValue(13, { name: "browser" })],
      ["a boolean userAgent", withValue(13, false)],
      ["a numeric address", withValue(14, 1)],
      ["an address array", withValue(14, ["127.0.0.1"])],
      ["more than Store.maxEncodedLength characters", withValue(15, "x".repeat(Store.maxEncodedLength))]
    ]
    for (const [name, raw] of cases) {
      it(name, () => {
        expect(Store.decodeEntry(raw)).toBeUndefined()
      })
    }
  })

  it.prop("decodeEntry never throws on arbitrary input", [fc.string({ unit: "binary", maxLength: 200 })], ([raw]) => {
    const decoded = Store.decodeEntry(raw)
    if (decoded !== undefined) {
      expect(Number.isSafeInteger(decoded.version) && decoded.version >= 0).toBe(true)
      expect(typeof decoded.userId).toBe("string")
      const { createdAt, expiresAt, extendedUntil, lastSeenAt, previousUntil, renewedAt } = decoded
      for (const time of [createdAt, renewedAt, extendedUntil, expiresAt, lastSeenAt, previousUntil]) {
        expect(Number.isSafeInteger(time)).toBe(true)
      }
      expect(typeof decoded.secret).toBe("string")
      expect(["string", "undefined"]).toContain(typeof decoded.previous)
      expect(["string", "undefined"]).toContain(typeof decoded.userAgent)
      expect(["string", "undefined"]).toContain(typeof decoded.address)
    }
  }, { fastCheck: { numRuns: 2000 } })

  it.prop(
    "decodeEntry never throws on mutations of an encoded entry",
    [fc.nat(), fc.nat(), fc.string({ unit: "binary", maxLength: 8 })],
    ([start, length, insert]) => {
      const raw = Store.encodeEntry(entry)
      const at = start % raw.length
      const mutated = raw.slice(0, at) + insert + raw.slice(at + (length % 8))
      expect(() => Store.decodeEntry(mutated)).not.toThrow()
    },
    { fastCheck: { numRuns: 2000 } }
  )

  it.prop(
    "every JSON-compatible entry round-trips",
    [
      fc.record({
        version: fc.maxSafeNat(),
        userId: fc.string({ unit: "binary" }),
        createdAt: fc.maxSafeNat(),
        renewedAt: fc.maxSafeNat(),
        extendedUntil: fc.maxSafeNat(),
        expiresAt: fc.maxSafeNat(),
        lastSeenAt: fc.maxSafeNat(),
        secret: fc.string({ unit: "binary" }),
        previous: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
        previousUntil: fc.maxSafeNat(),
        userAgent: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
        address: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
        ttl: fc.option(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
        persistent: fc.boolean(),
        data: fc.jsonValue()
      })
    ],
    ([original]) => {
      expect(Store.decodeEntry(Store.encodeEntry(original))).toEqual({
        ...original,
        data: JSON.parse(JSON.stringify(original.data))
      })
    },
    { fastCheck: { numRuns: 1000 } }
  )
})

// -----------------------------------------------------------------------------
// makeStringOnly
// -----------------------------------------------------------------------------

/** A string backend over a map of values by `user/session`, and the store `makeStringOnly` derives from it. */
const stringStore = () => {
  const values = new Map<string, string>()
  const saved: Array<{ readonly value: string; readonly entry: Store.Entry; readonly mode: Store.SaveMode }> = []
  const id = (key: Store.Key) => `${key.user}/${key.session}`
  const backend: Store.StringBackend = {
    fetch: (key, decode) => Effect.sync(() => decode(values.get(id(key)))),
    save: (key, value, entry, mode) =>
      Effect.sync(() => {
        saved.push({ value, entry, mode })
        values.set(id(key), value)
        return true
      }),
    delete: (key) => Effect.sync(() => void values.delete(id(key))),
    list: (user) =>
      Effect.sync(() =>
        [...values].filter(([at]) => at.startsWith(`${user}/`)).map(([at, value]) =>
          [at.slice(user.length + 1), value] as const
        )
      ),
    deleteUser: () => Effect.succeed(0)
  }
  return { store: Store.makeStringOnly(backend), values, saved, id }
}

describe("Store.makeStringOnly", () => {
  const key: Store.Key = { user: "u", session: "s" }
  const retention = Duration.toMillis(Store.expiredRetention)

  it.effect("save hands the backend the encoded entry, with the entry itself and the mode", () =>
    Effect.gen(function*() {
      const { saved, store } = stringStore()
      expect(yield* store.save(key, entry, "create")).toBe(true)
      expect(saved).toEqual([{ value: Store.encodeEntry(entry), entry, mode: "create" }])
      expect(saved[0]!.entry).toBe(entry)
    }))

  it.effect("fetch decodes what the backend holds; nothing held is none", () =>
    Effect.gen(function*() {
      const { store } = stringStore()
      expect(yield* store.fetch(key)).toEqual(Option.none())
      yield* store.save(key, entry, "create")
      expect(yield* store.fetch(key)).toEqual(Option.some(entry))
    }))

  it.effect("a value that does not decode is none to fetch and left out of list, never a failure", () =>
    Effect.gen(function*() {
      const { id, store, values } = stringStore()
      const garbage = ["", "not json", "null", "[]", JSON.stringify(entry), `${Store.encodeEntry(entry)}x`]
      garbage.forEach((value, i) => values.set(id({ user: "u", session: `g${i}` }), value))
      for (let i = 0; i < garbage.length; i++) {
        expect(yield* store.fetch({ user: "u", session: `g${i}` })).toEqual(Option.none())
      }
      yield* store.save(key, entry, "create")
      expect(yield* store.list("u", 0)).toEqual([{ key, entry }])
    }))

  it.effect("a value longer than Store.maxEncodedLength is none and left out of list, without being parsed", () =>
    Effect.gen(function*() {
      const { id, store, values } = stringStore()
      // an entry that would decode but for its length
      const oversized = Store.encodeEntry({ ...entry, data: "x".repeat(Store.maxEncodedLength) })
      values.set(id(key), oversized)
      const parse = JSON.parse
      let parsed = 0
      JSON.parse = (...args: Parameters<typeof JSON.parse>) => {
        parsed++
        return parse(...args)
      }
      const answers = yield* Effect.all([store.fetch(key), store.list("u", 0)]).pipe(
        Effect.ensuring(Effect.sync(() => {
          JSON.parse = parse
        }))
      )
      expect(answers).toEqual([Option.none(), []])
      expect(parsed).toBe(0)
    }))

  it.effect("while the value is the one known was decoded from, fetch answers known itself; once it changed, a new entry", () =>
    Effect.gen(function*() {
      const { store } = stringStore()
      yield* store.save(key, entry, "create")
      const known = Option.getOrThrow(yield* store.fetch(key))
      expect(Option.getOrThrow(yield* store.fetch(key, known))).toBe(known)
      expect(Option.getOrThrow(yield* store.fetch(key, known))).toBe(known)
      // an equal entry this store did not decode is never answered for it
      const equal = { ...known }
      const decodedAgain = Option.getOrThrow(yield* store.fetch(key, equal))
      expect(decodedAgain).not.toBe(equal)
      expect(decodedAgain).toEqual(equal)

      const updated = { ...entry, version: entry.version + 1, data: { changed: true } }
      yield* store.save(key, updated, "update")
      const fetched = Option.getOrThrow(yield* store.fetch(key, known))
      expect(fetched).not.toBe(known)
      expect(fetched).toEqual(updated)
      expect(Option.getOrThrow(yield* store.fetch(key, fetched))).toBe(fetched)
      yield* store.delete(key)
      expect(yield* store.fetch(key, fetched)).toEqual(Option.none())
    }))

  it.effect("fetch answers none once expiresAt + Store.expiredRetention has passed by the fiber's Clock", () =>
    Effect.gen(function*() {
      const { store } = stringStore()
      yield* store.save(key, entry, "create")
      const known = Option.getOrThrow(yield* store.fetch(key))
      yield* TestClock.setTime(entry.expiresAt + retention - 1)
      expect(yield* store.fetch(key)).toEqual(Option.some(entry))
      expect(Option.getOrThrow(yield* store.fetch(key, known))).toBe(known)
      yield* TestClock.setTime(entry.expiresAt + retention)
      expect(yield* store.fetch(key)).toEqual(Option.none())
      expect(yield* store.fetch(key, known)).toEqual(Option.none())
    }))

  it.effect("list decodes every value of the user and keeps those alive at the caller's now", () =>
    Effect.gen(function*() {
      const { store } = stringStore()
      const soon = { ...fresh, expiresAt: 1_000 }
      yield* store.save({ user: "u", session: "a" }, entry, "create")
      yield* store.save({ user: "u", session: "b" }, soon, "create")
      yield* store.save({ user: "other", session: "c" }, fresh, "create")
      const sessions = (listed: ReadonlyArray<Store.Listed>) => listed.map(({ key }) => key.session).sort()
      expect(sessions(yield* store.list("u", 999))).toEqual(["a", "b"])
      expect(sessions(yield* store.list("u", 1_000))).toEqual(["a"])
      expect(yield* store.list("u", 1_000)).toEqual([{ key: { user: "u", session: "a" }, entry }])
    }))
})
