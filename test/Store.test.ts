import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
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
  retired: true,
  userAgent: "Mozilla/5.0 (X11; Linux x86_64) ünï ✓",
  address: "2001:db8::1",
  data: { csrf: "abc", roles: ["admin", "ops"], nested: { n: 1.5, ok: true, none: null }, text: "ünïcødé ✓ 🍪" }
}

// A session as just issued without client information: version 0, not retired, no user agent or address.
const fresh: Store.Entry = {
  version: 0,
  userId: "user-2",
  createdAt: 1_700_000_000_000,
  renewedAt: 1_700_000_000_000,
  extendedUntil: 1_700_259_200_000,
  expiresAt: 1_700_259_200_000,
  lastSeenAt: 1_700_000_000_000,
  retired: false,
  userAgent: undefined,
  address: undefined,
  data: { csrf: "def" }
}

describe("Store codec", () => {
  it("round-trips an entry", () => {
    expect(Store.decodeEntry(Store.encodeEntry(entry))).toEqual(entry)
    expect(Store.decodeEntry(Store.encodeEntry(fresh))).toEqual(fresh)
  })

  it("writes the versioned compact array", () => {
    expect(JSON.parse(Store.encodeEntry(entry))).toEqual([
      2,
      entry.version,
      entry.userId,
      entry.createdAt,
      entry.renewedAt,
      entry.extendedUntil,
      entry.expiresAt,
      entry.lastSeenAt,
      1,
      entry.userAgent,
      entry.address,
      entry.data
    ])
    expect(JSON.parse(Store.encodeEntry(fresh))).toEqual([
      2,
      0,
      fresh.userId,
      fresh.createdAt,
      fresh.renewedAt,
      fresh.extendedUntil,
      fresh.expiresAt,
      fresh.lastSeenAt,
      0,
      null,
      null,
      fresh.data
    ])
  })

  it("keeps null and primitive data", () => {
    for (const data of [null, 0, "", false, "text", 42, [1, "two"]]) {
      expect(Store.decodeEntry(Store.encodeEntry({ ...entry, data }))).toEqual({ ...entry, data })
    }
  })

  it("keeps an empty user agent and address apart from absent ones", () => {
    const empty = { ...fresh, userAgent: "", address: "" }
    expect(Store.decodeEntry(Store.encodeEntry(empty))).toEqual(empty)
    const absent = { ...fresh, userAgent: undefined, address: undefined }
    expect(Store.decodeEntry(Store.encodeEntry(absent))).toEqual(absent)
  })

  // The Redis store's save script reads the stored version with the Lua pattern `^%[2,(%d+),`.
  it.prop(
    "the format and the version open the encoded form, as the Redis script's pattern reads them",
    [fc.maxSafeNat()],
    ([version]) => {
      const raw = Store.encodeEntry({ ...entry, version })
      expect(/^\[2,(\d+),/.exec(raw)?.[1]).toBe(String(version))
    },
    { fastCheck: { numRuns: 500 } }
  )

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
      ["format 1 in the new layout", withValue(0, 1)],
      ["another format", withValue(0, 3)],
      ["a format as a string", withValue(0, "2")],
      ["a version as a string", withValue(1, "7")],
      ["a negative version", withValue(1, -1)],
      ["a fractional version", withValue(1, 1.5)],
      ["a null version", withValue(1, null)],
      ["an unsafe integer version", withRaw(1, `${Number.MAX_SAFE_INTEGER}0`)],
      ["a numeric userId", withValue(2, 7)],
      ["a null userId", withValue(2, null)],
      ["a string createdAt", withValue(3, "1")],
      ["a fractional renewedAt", withValue(4, 1.5)],
      ["a null extendedUntil", withValue(5, null)],
      ["a fractional expiresAt", withValue(6, 2.5)],
      ["a null expiresAt", withValue(6, null)],
      ["a string lastSeenAt", withValue(7, "1")],
      ["an unsafe integer time", withRaw(6, `${Number.MAX_SAFE_INTEGER}0`)],
      ["retired as true", withValue(8, true)],
      ["retired as false", withValue(8, false)],
      ["retired 2", withValue(8, 2)],
      ["retired as a string", withValue(8, "1")],
      ["a null retired", withValue(8, null)],
      ["a numeric userAgent", withValue(9, 42)],
      ["a userAgent object", withValue(9, { name: "browser" })],
      ["a boolean userAgent", withValue(9, false)],
      ["a numeric address", withValue(10, 1)],
      ["an address array", withValue(10, ["127.0.0.1"])]
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
      const { createdAt, expiresAt, extendedUntil, lastSeenAt, renewedAt } = decoded
      for (const time of [createdAt, renewedAt, extendedUntil, expiresAt, lastSeenAt]) {
        expect(Number.isSafeInteger(time)).toBe(true)
      }
      expect(typeof decoded.retired).toBe("boolean")
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
        retired: fc.boolean(),
        userAgent: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
        address: fc.option(fc.string({ unit: "binary" }), { nil: undefined }),
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
