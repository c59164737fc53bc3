/**
 * `waitForReplicas` on a real primary and a real replica (`--replicaof`), both throwaway `redis-server`s
 * started by the harness: every revocation (`delete`, `deleteUser`) waits for Redis `WAIT` to confirm it
 * reached the replicas, and fails with a `Timeout` `StoreError` when they do not confirm in time.
 *
 * Replication is asynchronous: without WAIT, a revocation the primary acknowledged can be lost when the
 * primary fails before its replica received it, and a failover then brings the session back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, Option } from "effect"
import * as Crypto from "node:crypto"
import * as RedisStore from "../../src/layers/Redis.js"
import { type Key, Store, StoreError } from "../../src/Store.js"
import { makeEntry } from "../../src/testing/StoreContract.js"
import { rawClient as rawRedis, type RedisServer, startRedis, startReplica } from "../support/redis.js"

const part = () => Crypto.randomBytes(16).toString("base64url")
const newKey = (user = part()): Key => ({ user, session: part() })
const entry = makeEntry({ userId: "u", createdAt: Date.now(), expiresAt: Date.UTC(2100, 0, 1), data: { n: 1 } })

const rawClient = (server: RedisServer) => rawRedis(server.url)

const storeOn = (primary: RedisServer, waitForReplicas: RedisStore.WaitForReplicas) =>
  Effect.map(Layer.build(RedisStore.layer({ url: primary.url, waitForReplicas })), Context.get(Store))

const pair = Effect.gen(function*() {
  const primary = yield* startRedis()
  const replica = yield* startReplica(primary)
  return { primary, replica, onReplica: yield* rawClient(replica) }
})

describe("Redis store: waitForReplicas", () => {
  it.scopedLive("a revocation confirmed by the replica returns, and the replica has it by then", () =>
    Effect.gen(function*() {
      const { onReplica, primary } = yield* pair
      const store = yield* storeOn(primary, { replicas: 1, timeout: "2 seconds" })
      for (let round = 0; round < 20; round++) {
        const user = part()
        const keys = [newKey(user), newKey(user), newKey(user)]
        for (const key of keys) expect(yield* store.save(key, entry, "create")).toBe(true)
        yield* store.delete(keys[0]!)
        // WAIT answered: the replica applied the delete before `delete` returned
        expect(yield* Effect.promise(() => onReplica.hexists(`session:{${user}}`, keys[0]!.session))).toBe(0)
        expect(yield* store.deleteUser(user)).toBe(2)
        expect(yield* Effect.promise(() => onReplica.exists(`session:{${user}}`))).toBe(0)
      }
    }))

  // Fails on the pre-fix store (f4cef2e), which had no way to wait for replicas: its revocations returned
  // while the replica was down, acknowledged by the primary alone.
  it.scopedLive(
    "with the replica stopped, revocations fail with a Timeout StoreError within the timeout",
    () =>
      Effect.gen(function*() {
        const { primary, replica } = yield* pair
        const timeout = 300
        const store = yield* storeOn(primary, { replicas: 1, timeout: Duration.millis(timeout) })
        const user = part()
        const keys = [newKey(user), newKey(user), newKey(user)]
        for (const key of keys) expect(yield* store.save(key, entry, "create")).toBe(true)
        yield* replica.stop

        for (const revoke of [store.delete(keys[0]!), store.deleteUser(user, keys[1]!.session)]) {
          const [elapsed, error] = yield* Effect.timed(Effect.flip(revoke))
          expect(error).toBeInstanceOf(StoreError)
          expect(error.reason).toBe("Timeout")
          expect(error.message).toContain("0 of 1 replica(s) confirmed")
          expect(error.message).toContain("failover")
          expect(Duration.toMillis(elapsed)).toBeGreaterThanOrEqual(timeout - 10)
          expect(Duration.toMillis(elapsed)).toBeLessThan(timeout + 700)
        }
        // applied on the primary all the same
        expect(yield* store.list(user, 0)).toEqual([{ key: keys[1]!, entry }])

        // reads and writes do not wait behind a revocation's WAIT: it runs on a connection of its own
        const waiting = yield* Effect.fork(Effect.flip(store.deleteUser(user)))
        yield* Effect.sleep("20 millis")
        const [elapsed] = yield* Effect.timed(
          Effect.forEach(Array.from({ length: 20 }, () => store.fetch(keys[1]!)), (fetch) => fetch, {
            concurrency: "unbounded"
          })
        )
        expect(Duration.toMillis(elapsed)).toBeLessThan(150)
        expect((yield* waiting).reason).toBe("Timeout")

        // the replica back, revocations are confirmed again
        yield* replica.start
        const fresh = newKey(user)
        expect(yield* store.save(fresh, entry, "create")).toBe(true)
        yield* store.delete(fresh)
        expect(yield* store.fetch(fresh)).toEqual(Option.none())
      }),
    30_000
  )

  it.scopedLive("waiting for more replicas than there are fails; for as many as there are, succeeds", () =>
    Effect.gen(function*() {
      const { primary } = yield* pair
      const key = newKey()
      // first as many as there are, patiently: a new replica's first confirmation can take longer than
      // the 200 ms below, which would then count none
      const one = yield* storeOn(primary, { replicas: 1, timeout: "2 seconds" })
      expect(yield* one.save(key, entry, "create")).toBe(true)
      expect(yield* one.deleteUser(key.user)).toBe(1)
      const two = yield* storeOn(primary, { replicas: 2, timeout: "200 millis" })
      expect(yield* two.save(key, entry, "create")).toBe(true)
      const error = yield* Effect.flip(two.deleteUser(key.user))
      expect(error.reason).toBe("Timeout")
      expect(error.message).toContain("1 of 2 replica(s) confirmed")
    }))

  it.scopedLive("layerClient waits on the application's own client", () =>
    Effect.gen(function*() {
      const { onReplica, primary, replica } = yield* pair
      const client = yield* rawClient(primary)
      // both on the one client: one waits long enough for a replica that is up (its first confirmation
      // can take longer than a few hundred milliseconds), the other briefly, for one that is down
      const storeWaiting = (timeout: Duration.DurationInput) =>
        Effect.map(
          Layer.build(RedisStore.layerClient(client, { waitForReplicas: { replicas: 1, timeout } })),
          Context.get(Store)
        )
      const patient = yield* storeWaiting("2 seconds")
      const store = yield* storeWaiting("300 millis")
      const key = newKey()
      expect(yield* patient.save(key, entry, "create")).toBe(true)
      expect(yield* patient.deleteUser(key.user)).toBe(1)
      expect(yield* Effect.promise(() => onReplica.exists(`session:{${key.user}}`))).toBe(0)
      yield* replica.stop
      expect(yield* store.save(key, entry, "create")).toBe(true)
      expect((yield* Effect.flip(store.delete(key))).reason).toBe("Timeout")
    }))
})
