/**
 * The SQL store on MySQL/MariaDB (the `mysql` dialect, on @effect/sql-mysql2) against a throwaway
 * MariaDB the harness starts (test/support/mariadb.ts; `MYSQL_URL` replaces it): the shipped Store
 * contract, and the `Sessions` service end to end. What the contract does not cover (migrations and
 * their lock, garbage, a missing table, pruning under load) runs on MariaDB with the other dialects in
 * Sql.test.ts; the outage over HTTP in SqlFault.test.ts.
 */
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import { afterAll, describe, expect, it } from "@effect/vitest"
import { Effect, Layer, ManagedRuntime, Redacted } from "effect"
import * as Sql from "../../src/layers/Sql.js"
import * as StoreContract from "../../src/testing/StoreContract.js"
import { MariadbTest } from "../support/mariadb.js"
import { type Data, sessionsOn } from "../support/redisStore.js"

const mariadb = ManagedRuntime.make(MariadbTest.layer)
afterAll(() => mariadb.dispose(), 60_000)

const client = Layer.unwrapEffect(
  Effect.map(mariadb.runtimeEffect, (rt) => {
    const { url } = rt.context.unsafeMap.get(MariadbTest.key) as MariadbTest["Type"]
    return MysqlClient.layer({ url: Redacted.make(url), maxConnections: 20 })
  })
)

const storeOn = (options: Sql.LayerOptions = {}) => Layer.provide(Sql.layer({ migrate: true, ...options }), client)

StoreContract.suite("SQL on MariaDB", storeOn())

const data: Data = { csrf: "csrf-token", visits: 3 }

describe("SQL store on MariaDB", () => {
  it.live("the Sessions service end to end: issue, get, rotate, list and clearAll", () =>
    Effect.gen(function*() {
      const sessions = yield* sessionsOn(storeOn({ table: "e2e" }), "1 hour")
      const { token } = yield* sessions.issue("alice", data)
      const got = yield* sessions.get(token)
      expect(got.data).toEqual(data)
      const rotated = yield* sessions.rotate(got)
      expect((yield* sessions.get(rotated.token)).userId).toBe("alice")
      expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
      yield* sessions.issue("alice", data)
      expect(yield* sessions.list("alice")).toHaveLength(2)
      expect(yield* sessions.clearAll("alice")).toBe(2)
      expect((yield* Effect.flip(sessions.get(rotated.token)))._tag).toBe("NotFound")
    }).pipe(Effect.scoped), 30_000)
})
