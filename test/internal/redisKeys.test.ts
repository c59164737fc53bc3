import { describe, expect, it } from "@effect/vitest"
import { FastCheck as fc } from "effect"
import { hashKey, userOfHashKey } from "../../src/internal/redisBackend.js"

// The near-cache is keyed by user and reads the user back out of the key an invalidation names: a
// wrong inverse would leave a revoked session in the cache.
describe("the Redis key of a user's hash", () => {
  it.prop("names its user back, under any prefix", [fc.string(), fc.string({ minLength: 1 })], ([prefix, user]) => {
    expect(userOfHashKey(prefix, hashKey(prefix, user))).toBe(user)
  })

  it.prop(
    "names no user for a key under another prefix, or not of the hash's shape",
    [fc.string(), fc.string()],
    ([prefix, key]) => {
      const user = userOfHashKey(prefix, key)
      if (user !== undefined) expect(hashKey(prefix, user)).toBe(key)
    }
  )

  it("names no user for the empty braces, a bare prefix or a key without braces", () => {
    expect(userOfHashKey("es:", "es:{}")).toBeUndefined()
    expect(userOfHashKey("es:", "es:")).toBeUndefined()
    expect(userOfHashKey("es:", "es:user")).toBeUndefined()
    expect(userOfHashKey("es:", "other:{user}")).toBeUndefined()
    expect(userOfHashKey("es:", "es:{user}")).toBe("user")
  })
})
