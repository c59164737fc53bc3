/**
 * What the Redis store's test files (single node and Cluster) share: a live test in a file's
 * `ManagedRuntime`, raw commands beside the store, random keys, and the `Sessions` service on a store
 * layer with the checks its end-to-end tests make.
 */
import { expect, it } from "@effect/vitest"
import {
  Context,
  type Duration,
  Effect,
  Layer,
  type ManagedRuntime,
  Option,
  Redacted,
  Schema,
  type Scope
} from "effect"
import type { Cluster, Redis } from "ioredis"
import * as Crypto from "node:crypto"
import * as Auth from "../../src/Auth.js"
import * as Session from "../../src/Session.js"
import type { Key, Store } from "../../src/Store.js"
import { revokeMidway } from "../../src/testing/StoreContract.js"

/**
 * `it.live` in the context of a file's runtime (its servers and clients), with a scope: every test runs
 * on the real clock, by which Redis expires keys.
 */
export const liveTest = <Env>(env: ManagedRuntime.ManagedRuntime<Env, unknown>) =>
(
  title: string,
  self: () => Effect.Effect<void, unknown, Env | Scope.Scope>,
  timeout?: number
) =>
  it.live(
    title,
    () => Effect.flatMap(env.runtimeEffect, (rt) => Effect.scoped(Effect.provide(self(), rt.context))),
    timeout
  )

/** A raw command, to look at or tamper with what a store wrote. */
export const call = (client: Redis | Cluster, command: string, ...args: Array<string | number>) =>
  Effect.promise(() => client.call(command, ...args))

export { freePort } from "./ports.js"

/** 128 random bits, base64url: the alphabet of both parts of a real key. */
export const randomPart = () => Crypto.randomBytes(16).toString("base64url")
export const newUser = () => `u${randomPart()}`
export const newKey = (user: string = newUser()): Key => ({ user, session: `s${randomPart()}` })

// -----------------------------------------------------------------------------
// the Sessions service on a Redis store
// -----------------------------------------------------------------------------

export const Data = Schema.Struct({ csrf: Schema.String, visits: Schema.NumberFromString })
export type Data = typeof Data.Type

export class AppSession extends Session.Tag<AppSession>()("test/support/redisStore/AppSession", { data: Data }) {}

/** The sessions service on `store` and a fresh signing key. */
export const sessionsOn = <E>(store: Layer.Layer<Store, E>, ttl: Duration.DurationInput) =>
  Effect.map(
    Layer.build(
      Session.layer(AppSession, { ttl }).pipe(
        Layer.provide(Layer.merge(store, Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })))
      )
    ),
    Context.get(AppSession)
  )

/** What the tests compare of a session. */
export const view = (session: Session.SessionInfo<Data>) => ({
  key: session.key,
  userId: session.userId,
  createdAt: session.createdAt.epochMillis,
  expiresAt: session.expiresAt.epochMillis,
  data: session.data
})

/** `list` answers oldest first; sessions created in the same millisecond may come in either order. */
export const expectListed = (
  listed: ReadonlyArray<Session.SessionInfo<Data>>,
  expected: ReadonlyArray<Session.SessionInfo<Data>>
) => {
  const bySession = (views: ReadonlyArray<ReturnType<typeof view>>) =>
    [...views].sort((a, b) => a.key.session < b.key.session ? -1 : 1)
  expect(bySession(listed.map(view))).toEqual(bySession(expected.map(view)))
  const created = listed.map((session) => session.createdAt.epochMillis)
  expect(created).toEqual([...created].sort((a, b) => a - b))
}

/**
 * Three rounds of a `clearAll` racing 120 logins of one user: no token issued before `clearAll` was
 * called validates after it, and every other one is counted exactly once, by `clearAll` or as a survivor.
 */
export const expectClearAllWins = (sessions: AppSession["Type"]) =>
  Effect.gen(function*() {
    const total = 120
    for (let round = 0; round < 3; round++) {
      const userId = `user-${round}-${randomPart()}`
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
  })
