import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import * as Store from "../src/Store.js"

const entry: Store.Entry = {
  userId: "user-1",
  createdAt: 1_700_000_000_000,
  expiresAt: 1_700_259_200_000,
  data: { csrf: "abc", roles: ["admin", "ops"], nested: { n: 1.5, ok: true, none: null }, text: "ünïcødé ✓ 🍪" }
}

describe("Store codec", () => {
  it("round-trips an entry", () => {
    expect(Store.decodeEntry(Store.encodeEntry(entry))).toEqual(entry)
  })

  it("writes the versioned compact array", () => {
    expect(JSON.parse(Store.encodeEntry(entry))).toEqual([
      1,
      entry.userId,
      entry.createdAt,
      entry.expiresAt,
      entry.data
    ])
  })

  it("keeps null and primitive data", () => {
    for (const data of [null, 0, "", false, "text", 42, [1, "two"]]) {
      expect(Store.decodeEntry(Store.encodeEntry({ ...entry, data }))).toEqual({ ...entry, data })
    }
  })

  describe("decodeEntry answers undefined for anything it did not write", () => {
    const cases: ReadonlyArray<readonly [string, string]> = [
      ["the empty string", ""],
      ["invalid JSON", "[1, \"u\", 1, 2"],
      ["a JSON object", JSON.stringify({ userId: "u", createdAt: 1, expiresAt: 2, data: null })],
      ["a JSON string", JSON.stringify("session")],
      ["null", "null"],
      ["an empty array", "[]"],
      ["a short array", JSON.stringify([1, "u", 1, 2])],
      ["a long array", JSON.stringify([1, "u", 1, 2, null, "extra"])],
      ["another version", JSON.stringify([2, "u", 1, 2, null])],
      ["a version as a string", JSON.stringify(["1", "u", 1, 2, null])],
      ["a numeric userId", JSON.stringify([1, 7, 1, 2, null])],
      ["a string createdAt", JSON.stringify([1, "u", "1", 2, null])],
      ["a fractional expiresAt", JSON.stringify([1, "u", 1, 2.5, null])],
      ["a null expiresAt", JSON.stringify([1, "u", 1, null, null])],
      ["an unsafe integer time", `[1, "u", 1, ${Number.MAX_SAFE_INTEGER}0, null]`]
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
      expect(typeof decoded.userId).toBe("string")
      expect(Number.isSafeInteger(decoded.createdAt)).toBe(true)
      expect(Number.isSafeInteger(decoded.expiresAt)).toBe(true)
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
    [fc.string(), fc.maxSafeNat(), fc.maxSafeNat(), fc.jsonValue()],
    ([userId, createdAt, expiresAt, data]) => {
      const original: Store.Entry = { userId, createdAt, expiresAt, data }
      expect(Store.decodeEntry(Store.encodeEntry(original))).toEqual({
        ...original,
        data: JSON.parse(JSON.stringify(data))
      })
    },
    { fastCheck: { numRuns: 1000 } }
  )
})
