/**
 * Which ioredis the Redis tests run on: the suite runs them on ioredis 6 and again on ioredis 5 (the
 * `ioredis 5` project of vitest.config.ts aliases `ioredis` to the `ioredis5` devDependency), since the
 * package accepts both. This checks that the alias really reaches the store's own import.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Redis } from "ioredis"
import * as RedisStore from "../../src/layers/Redis.js"
import { startRedis } from "../support/redis.js"

describe("the ioredis under test", () => {
  it("is the major version this project selects", async () => {
    const major = process.env["IOREDIS_MAJOR"]
    expect(major === "5" || major === "6").toBe(true)
    const version: string = (await import("ioredis/package.json", { with: { type: "json" } })).default.version
    expect(version.split(".")[0]).toBe(major)
  })

  it.scoped("the store works on it", () =>
    Effect.gen(function*() {
      const server = yield* startRedis()
      const client = new Redis({ host: server.host, port: server.port, lazyConnect: true })
      yield* Effect.promise(() => client.connect())
      yield* Effect.addFinalizer(() => Effect.promise(() => client.quit()))
      const store = RedisStore.make(client)
      expect(yield* store.list("nobody", 0)).toEqual([])
    }))
})
