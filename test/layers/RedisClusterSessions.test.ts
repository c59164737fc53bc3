/**
 * The `Sessions` service end to end on a real 3-master Redis Cluster started by the harness
 * (test/support/redis.ts): many users spread over the slots, each user's sessions in one key (so every
 * script stays on one node). test/layers/RedisCluster.test.ts keeps the store-level tests.
 *
 * The cluster lives in a `ManagedRuntime` rather than @effect/vitest's `layer(...)` (see the header of
 * test/contract/Store.ts); tests run with `it.live`, since Redis expires keys by its own clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { Context, Duration, Effect, Layer, ManagedRuntime, Option, Redacted, Schema, type Scope } from "effect"
import { Cluster, Redis } from "ioredis"
import * as Crypto from "node:crypto"
import * as Auth from "../../src/Auth.js"
import * as RedisStore from "../../src/layers/Redis.js"
import * as Session from "../../src/Session.js"
import { expiredRetention } from "../../src/Store.js"
import { revokeMidway } from "../contract/Store.js"
import { RedisClusterTest } from "../support/redis.js"

const uniquePrefix = () => `test-${Crypto.randomBytes(6).toString("hex")}:`

// -----------------------------------------------------------------------------
// one cluster for the file, a raw cluster client and a plain client beside the store
// -----------------------------------------------------------------------------

class Env extends Context.Tag("test/layers/RedisClusterSessions/Env")<Env, {
  /** `host:port` of every master. */
  readonly nodes: ReadonlyArray<string>
  /** A cluster client, to look at what the store writes. */
  readonly raw: Cluster
  /** A plain client to one node, for `CLUSTER …` commands. */
  readonly node: Redis
}>() {}

const env = ManagedRuntime.make(
  Layer.scoped(
    Env,
    Effect.gen(function*() {
      const cluster = yield* RedisClusterTest
      const nodes = cluster.nodes.map(({ host, port }) => `${host}:${port}`)
      const raw = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Cluster(cluster.nodes.map(({ host, port }) => ({ host, port })), { lazyConnect: true })
          client.on("error", () => {})
          await client.connect()
          return client
        }),
        (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
      )
      const node = yield* Effect.acquireRelease(
        Effect.promise(async () => {
          const client = new Redis(cluster.nodes[0]!.url, { lazyConnect: true })
          client.on("error", () => {})
          await client.connect()
          return client
        }),
        (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
      )
      return { nodes, raw, node }
    })
  ).pipe(Layer.provide(RedisClusterTest.layer))
)
beforeAll(() => env.runtime(), 60_000)
afterAll(() => env.dispose(), 60_000)

const test = (title: string, self: () => Effect.Effect<void, unknown, Env | Scope.Scope>, timeout?: number) =>
  it.live(
    title,
    () => Effect.flatMap(env.runtimeEffect, (rt) => Effect.scoped(Effect.provide(self(), rt.context))),
    timeout
  )

const call = (client: Redis | Cluster, command: string, ...args: Array<string | number>) =>
  Effect.promise(() => client.call(command, ...args))

// -----------------------------------------------------------------------------
// the Sessions service on the cluster
// -----------------------------------------------------------------------------

const Data = Schema.Struct({ csrf: Schema.String, visits: Schema.NumberFromString })
type Data = typeof Data.Type

class AppSession extends Session.Tag<AppSession>()("test/layers/RedisClusterSessions/AppSession", { data: Data }) {}

const view = (session: Session.SessionInfo<Data>) => ({
  key: session.key,
  userId: session.userId,
  createdAt: session.createdAt.epochMillis,
  expiresAt: session.expiresAt.epochMillis,
  data: session.data
})

/** `list` answers oldest first; sessions created in the same millisecond may come in either order. */
const expectListed = (
  listed: ReadonlyArray<Session.SessionInfo<Data>>,
  expected: ReadonlyArray<Session.SessionInfo<Data>>
) => {
  const bySession = (views: ReadonlyArray<ReturnType<typeof view>>) =>
    [...views].sort((a, b) => a.key.session < b.key.session ? -1 : 1)
  expect(bySession(listed.map(view))).toEqual(bySession(expected.map(view)))
  const created = listed.map((session) => session.createdAt.epochMillis)
  expect(created).toEqual([...created].sort((a, b) => a - b))
}

const retention = Duration.toMillis(expiredRetention)

/** The sessions service on its own cluster store (fresh prefix) and a fresh signing key. */
const makeSessions = (ttl: Duration.DurationInput = "1 hour") =>
  Effect.gen(function*() {
    const { node, nodes, raw } = yield* Env
    const prefix = uniquePrefix()
    const context = yield* Layer.build(
      Session.layer(AppSession, { ttl }).pipe(
        Layer.provide(
          Layer.merge(
            RedisStore.layerCluster({ nodes, prefix }),
            Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })
          )
        )
      )
    )
    return {
      sessions: Context.get(context, AppSession),
      raw,
      node,
      userKey: (user: string) => `${prefix}{${user}}`
    }
  })

/** The master serving each slot, from `CLUSTER SLOTS`. */
const slotOwners = (node: Redis) =>
  Effect.map(call(node, "CLUSTER", "SLOTS"), (reply) => {
    const ranges = (reply as Array<[number, number, [string, number, ...Array<unknown>]]>).map(
      ([from, to, [host, port]]) => ({ from, to, owner: `${host}:${port}` })
    )
    return (slot: number) => ranges.find(({ from, to }) => from <= slot && slot <= to)?.owner
  })

describe("Redis Cluster store: Sessions end to end", () => {
  test("issue, get, extend and clear", () =>
    Effect.gen(function*() {
      const { raw, sessions, userKey } = yield* makeSessions()
      const { session, token } = yield* sessions.issue("alice", { csrf: "c", visits: 1 })
      expect(view(yield* sessions.get(token))).toEqual(view(session))
      const key = userKey(session.key.user)
      expect(yield* call(raw, "HEXISTS", key, session.key.session)).toBe(1)
      expect(yield* call(raw, "PEXPIRETIME", key)).toBe(session.expiresAt.epochMillis + retention)
      yield* Effect.sleep("10 millis")
      const extended = yield* sessions.extend(session)
      expect(extended.expiresAt.epochMillis).toBeGreaterThan(session.expiresAt.epochMillis)
      expect(view(yield* sessions.get(token))).toEqual(view(extended))
      expect(yield* call(raw, "PEXPIRETIME", key)).toBe(extended.expiresAt.epochMillis + retention)
      yield* sessions.clear(extended)
      expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
      expect((yield* Effect.flip(sessions.extend(extended)))._tag).toBe("NotFound")
      // the user's only session was its hash's only field: the key is gone
      expect(yield* call(raw, "EXISTS", key)).toBe(0)
    }))

  test(
    "list, clearOthers and clearAll for many users spread over the slots, each user's sessions in one key",
    () =>
      Effect.gen(function*() {
        const { node, raw, sessions, userKey } = yield* makeSessions()
        const ownerOf = yield* slotOwners(node)
        const users = Array.from({ length: 24 }, (_, i) => `user-${i}-${Crypto.randomBytes(4).toString("hex")}`)
        const issued = new Map<string, Array<Session.Issued<Data>>>()
        for (const userId of users) {
          const mine: Array<Session.Issued<Data>> = []
          for (let i = 0; i < 3; i++) {
            mine.push(yield* sessions.issue(userId, { csrf: `${userId}-${i}`, visits: i }))
            yield* Effect.sleep("1 millis")
          }
          issued.set(userId, mine)
        }

        const slots = new Set<number>()
        const owners = new Set<string>()
        for (const userId of users) {
          const mine = issued.get(userId)!
          // one key, one slot, per user, whatever key each session had
          expect(new Set(mine.map(({ session }) => session.key.user)).size).toBe(1)
          const key = userKey(mine[0]!.session.key.user)
          const slot = Number(yield* call(node, "CLUSTER", "KEYSLOT", key))
          slots.add(slot)
          owners.add(ownerOf(slot)!)
          expect(yield* call(raw, "HLEN", key)).toBe(3)
          expectListed(yield* sessions.list(userId), mine.map(({ session }) => session))
        }
        expect(slots.size).toBeGreaterThanOrEqual(2)
        expect(owners.size).toBeGreaterThanOrEqual(2)

        // half the users log out their other devices, then everyone logs out everywhere
        for (const userId of users.slice(0, 12)) {
          const mine = issued.get(userId)!
          expect(yield* sessions.clearOthers(mine[1]!.session)).toBe(2)
          expect((yield* sessions.list(userId)).map(view)).toEqual([view(mine[1]!.session)])
          expect((yield* Effect.flip(sessions.get(mine[0]!.token)))._tag).toBe("NotFound")
          expect(view(yield* sessions.get(mine[1]!.token))).toEqual(view(mine[1]!.session))
        }
        const cleared = yield* Effect.forEach(users, (userId) => sessions.clearAll(userId), {
          concurrency: "unbounded"
        })
        expect(cleared).toEqual(users.map((_, i) => i < 12 ? 1 : 3))
        for (const userId of users) {
          const mine = issued.get(userId)!
          expect(yield* sessions.list(userId)).toEqual([])
          for (const { token } of mine) expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
          expect(yield* call(raw, "EXISTS", userKey(mine[0]!.session.key.user))).toBe(0)
        }
      }),
    30_000
  )

  test("a token issued before clearAll was called never validates after it", () =>
    Effect.gen(function*() {
      const { sessions } = yield* makeSessions()
      const total = 120
      for (let round = 0; round < 3; round++) {
        const userId = `user-${round}-${Crypto.randomBytes(8).toString("hex")}`
        const { before, results, revoked: cleared } = yield* revokeMidway({
          total,
          create: () => sessions.issue(userId, { csrf: "c", visits: round }),
          revoke: sessions.clearAll(userId)
        })
        for (const i of before) expect((yield* Effect.flip(sessions.get(results[i]!.token)))._tag).toBe("NotFound")
        const valid = yield* Effect.forEach(results, ({ token }) => Effect.option(sessions.get(token)))
        const survivors = valid.filter(Option.isSome).length
        expect(cleared).toBeGreaterThanOrEqual(before.length)
        expect(cleared + survivors).toBe(total)
        expect(survivors).toBeGreaterThan(0)
        expect(yield* sessions.list(userId)).toHaveLength(survivors)
        expect(yield* sessions.clearAll(userId)).toBe(survivors)
      }
    }))
})
