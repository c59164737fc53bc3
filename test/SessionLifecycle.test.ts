/**
 * The session lifecycle of the `Sessions` service: rotation (and its grace), renewal of the id, the idle
 * timeout, the absolute lifetime, rolling expiry, signing-key rotation, ids hashed at rest, revocation,
 * concurrent updates, and a property suite over the token parser and verifier.
 *
 * Every time-based rule runs on the TestClock (`it.effect` / `it.scoped`), on the in-memory store, on a
 * real Redis and on a real Redis Cluster (test/support/backends.ts, one of each for the file). For Redis the
 * TestClock is first set to the real time, so that the expiries the service stamps are in Redis's own
 * future: Redis then keeps every entry for the whole test while the service judges expiry by the TestClock,
 * which only moves forward from there. The concurrency tests run on the real clock (`it.live`).
 *
 * Every test writes under fresh random user ids and a fresh key prefix, so tests need no flushing.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Duration,
  Effect,
  Either,
  Exit,
  FastCheck as fc,
  Layer,
  ManagedRuntime,
  Option,
  Redacted,
  Schema,
  TestClock
} from "effect"
import * as Crypto from "node:crypto"
import * as Auth from "../src/Auth.js"
import * as SessionsTest from "../src/layers/Test.js"
import * as Session from "../src/Session.js"
import { type Entry, Store, type StoreService } from "../src/Store.js"
import { type Backend, backends } from "./support/backends.js"
import { rawClient } from "./support/redis.js"

// -----------------------------------------------------------------------------
// fixtures
// -----------------------------------------------------------------------------

const Data = Schema.Struct({ n: Schema.Number, role: Schema.String })
type Data = typeof Data.Type

class AppSession extends Session.Tag<AppSession>()("test/SessionLifecycle/AppSession", { data: Data }) {}

const data: Data = { n: 0, role: "reader" }

const second = 1_000
const minute = 60 * second
const hour = 60 * minute

const newKey = () => Redacted.make(Auth.randomId(48))
const key1 = newKey()
const key2 = newKey()

const newUser = () => `user-${Crypto.randomUUID()}`

/** The two parts of a token: `<id>.<signature>`. */
const parts = (token: string) => {
  const dot = token.lastIndexOf(".")
  return { id: token.slice(0, dot), signature: token.slice(dot + 1) }
}

const idOf = (session: Session.Session<Data>) => Redacted.value(session.id)

const byKey = (a: { readonly session: string }, b: { readonly session: string }) =>
  a.session < b.session ? -1 : a.session > b.session ? 1 : 0

/** A sessions service on `store`, signing with the first of `keys`. */
const sessionsOn = (
  store: StoreService,
  options: Session.Options,
  keys: ReadonlyArray<Redacted.Redacted<string>> = [key1]
) =>
  AppSession.pipe(
    Effect.provide(
      Session.layer(AppSession, options).pipe(
        Layer.provide(Layer.merge(Layer.succeed(Store, store), Auth.layer({ keys })))
      )
    ),
    Effect.orDie
  )

/** What the store holds for a session; fails the test (NoSuchElementException) when it holds nothing. */
const stored = (store: StoreService, session: Session.SessionInfo<Data>): Effect.Effect<Entry, unknown> =>
  Effect.flatMap(store.fetch(session.key), (entry) => entry)

/** The tag of the error an effect failed with (and never a defect or a success). */
const failureTag = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(effect), (exit) => {
    expect(Exit.isFailure(exit)).toBe(true)
    if (Exit.isSuccess(exit)) return "Success"
    expect(Cause.isDie(exit.cause)).toBe(false)
    return Option.getOrElse(Option.map(Cause.failureOption(exit.cause), (error) => error._tag), () => "NoFailure")
  })

// -----------------------------------------------------------------------------
// the backends: memory, the file's Redis and its Redis Cluster
// -----------------------------------------------------------------------------

const servers = backends()

/** A plain client to the file's Redis, to look at what a store wrote there. */
const rawRedis = Effect.flatMap(servers.redisUrl, rawClient)

/**
 * Pins the TestClock to the real time (see the header), then builds the store and the service. Answers
 * `t0`, the time the test starts at; the tests move the clock with `at(t0 + …)`.
 */
const setup = (backend: Backend, options: Session.Options) =>
  Effect.gen(function*() {
    const t0 = Date.now()
    // before the store: the memory store's sweeper sleeps on this clock
    yield* TestClock.setTime(t0)
    const store = yield* backend.store
    const sessions = yield* sessionsOn(store, options)
    return { t0, store, sessions }
  })

const at = (millis: number) => TestClock.setTime(millis)

// -----------------------------------------------------------------------------
// the lifecycle, on every backend
// -----------------------------------------------------------------------------

for (const backend of servers.all) {
  describe(`session lifecycle on ${backend.name}`, () => {
    describe("rotate", () => {
      it.scoped("gives a new id and token, keeps user, data, login time and lineage; the old token dies at once", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour" })
          const userId = newUser()
          const { session, token } = yield* sessions.issue(userId, data)

          yield* at(t0 + 5 * minute)
          const rotated = yield* sessions.rotate(session)
          expect(rotated.token).not.toBe(token)
          expect(idOf(rotated.session)).not.toBe(idOf(session))
          expect(parts(rotated.token).id).toBe(idOf(rotated.session))
          // the same lineage: one store entry, which now answers only to the new id
          expect(rotated.session.key).toEqual(session.key)
          expect(rotated.session.userId).toBe(userId)
          expect(rotated.session.data).toEqual(data)
          expect(rotated.session.createdAt.epochMillis).toBe(t0)
          expect(rotated.session.renewedAt.epochMillis).toBe(t0 + 5 * minute)

          // no grace: the old id is refused at once, and the store keeps nothing of its secret
          expect(yield* failureTag(sessions.get(token))).toBe("NotFound")
          const entry = yield* stored(store, session)
          expect(entry.previous).toBeUndefined()
          expect(entry.version).toBe(1)

          const got = yield* sessions.get(rotated.token)
          expect(got.userId).toBe(userId)
          expect(got.data).toEqual(data)
          expect(got.createdAt.epochMillis).toBe(t0)
          expect((yield* sessions.list(userId)).map((info) => info.key)).toEqual([rotated.session.key])
        }))

      it.scoped("with a grace, the old token serves until just before the grace ends, and not after", () =>
        Effect.gen(function*() {
          const { sessions, t0 } = yield* setup(backend, { ttl: "1 hour", rotationGrace: "10 seconds" })
          const userId = newUser()
          const { session, token } = yield* sessions.issue(userId, data)

          yield* at(t0 + minute)
          const rotated = yield* sessions.rotate(session)
          // a request already in flight with the old token is still served
          const inFlight = yield* sessions.get(token)
          expect(idOf(inFlight)).toBe(idOf(session))
          expect(inFlight.userId).toBe(userId)
          expect(inFlight.expiresAt.epochMillis).toBe(t0 + hour)
          // and is not handed a token: the replaced id is not renewed or re-signed
          expect((yield* sessions.resolve(token)).token).toBeUndefined()

          yield* at(t0 + minute + 10 * second - 1)
          expect(idOf(yield* sessions.get(token))).toBe(idOf(session))

          yield* at(t0 + minute + 10 * second)
          expect(yield* failureTag(sessions.get(token))).toBe("NotFound")
          expect(yield* failureTag(sessions.resolve(token))).toBe("NotFound")
          expect(idOf(yield* sessions.get(rotated.token))).toBe(idOf(rotated.session))
        }))

      it.scoped("a replaced id in its grace reads, but never extends, updates, rotates or revokes", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour", rotationGrace: "10 seconds" })
          const userId = newUser()
          const { session, token } = yield* sessions.issue(userId, data)
          yield* at(t0 + minute)
          const rotated = yield* sessions.rotate(session)

          yield* at(t0 + minute + 5 * second)
          const inFlight = yield* sessions.get(token)
          // both the object the rotation started from and the one read through the old token in its grace
          for (const retired of [session, inFlight]) {
            expect(yield* failureTag(sessions.extend(retired))).toBe("NotFound")
            expect(yield* failureTag(sessions.update(retired, (d) => ({ ...d, n: d.n + 1 })))).toBe("NotFound")
            expect(yield* failureTag(sessions.rotate(retired))).toBe("NotFound")
          }
          // nor end its successor: clear does nothing and clearOthers deletes nothing
          const other = yield* sessions.issue(userId, data)
          yield* sessions.clear(inFlight)
          expect(yield* sessions.clearOthers(inFlight)).toBe(0)
          expect((yield* sessions.get(rotated.token)).userId).toBe(userId)
          expect((yield* sessions.get(other.token)).userId).toBe(userId)
          const listed = yield* sessions.list(userId)
          expect(listed.map((info) => info.key).sort(byKey)).toEqual(
            [rotated.session.key, other.session.key].sort(byKey)
          )

          // nothing of that changed the entry, which still lets the old id read until the grace ends
          const entry = yield* stored(store, session)
          expect(entry.version).toBe(1)
          expect(entry.previousUntil).toBe(t0 + minute + 10 * second)
          expect(entry.data).toEqual(data)
          yield* at(t0 + minute + 10 * second)
          expect(yield* failureTag(sessions.get(token))).toBe("NotFound")
          expect((yield* sessions.get(rotated.token)).userId).toBe(userId)
        }))

      it.scoped("rotating a cleared session fails NotFound and never brings it back", () =>
        Effect.gen(function*() {
          const { sessions, store } = yield* setup(backend, { ttl: "1 hour" })
          const graceful = yield* sessionsOn(store, { ttl: "1 hour", rotationGrace: "10 seconds" })
          for (const service of [sessions, graceful]) {
            const userId = newUser()
            const { session, token } = yield* service.issue(userId, data)
            yield* service.clear(session)
            expect(yield* failureTag(service.rotate(session))).toBe("NotFound")
            expect(yield* service.list(userId)).toEqual([])
            expect(yield* failureTag(service.get(token))).toBe("NotFound")

            // a "log out everywhere" before the rotation: the same
            const other = yield* service.issue(userId, data)
            expect(yield* service.clearAll(userId)).toBe(1)
            expect(yield* failureTag(service.rotate(other.session))).toBe("NotFound")
            expect(yield* service.list(userId)).toEqual([])
          }
        }))
    })

    describe("renewalInterval", () => {
      it.scoped("resolve renews a token older than the interval; younger tokens get no token; get never renews", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, {
            ttl: "1 hour",
            renewalInterval: "15 minutes",
            renewalGrace: 0
          })
          const userId = newUser()
          const { session, token } = yield* sessions.issue(userId, data)

          yield* at(t0 + 15 * minute - 1)
          const young = yield* sessions.resolve(token)
          expect(young.token).toBeUndefined()
          expect(idOf(young.session)).toBe(idOf(session))

          // get on a token past the interval: the same session, nothing written, nothing renewed
          yield* at(t0 + 20 * minute)
          expect(idOf(yield* sessions.get(token))).toBe(idOf(session))
          const untouched = yield* stored(store, session)
          expect(untouched.version).toBe(0)
          expect(untouched.renewedAt).toBe(t0)
          expect((yield* sessions.list(userId)).map((info) => info.key)).toEqual([session.key])

          const renewed = yield* sessions.resolve(token)
          expect(renewed.token).toBeDefined()
          const newId = parts(renewed.token!).id
          expect(newId).not.toBe(idOf(session))
          expect(idOf(renewed.session)).toBe(newId)
          expect(renewed.session.createdAt.epochMillis).toBe(t0)
          expect(renewed.session.renewedAt.epochMillis).toBe(t0 + 20 * minute)
          expect(renewed.session.data).toEqual(data)
          // the old token died with the renewal (no grace)
          expect(yield* failureTag(sessions.get(token))).toBe("NotFound")
          expect((yield* sessions.resolve(renewed.token!)).token).toBeUndefined()

          // the interval counts from the renewal
          yield* at(t0 + 35 * minute - 1)
          expect((yield* sessions.resolve(renewed.token!)).token).toBeUndefined()
          yield* at(t0 + 35 * minute)
          const again = yield* sessions.resolve(renewed.token!)
          expect(again.token).toBeDefined()
          expect(parts(again.token!).id).not.toBe(newId)
          expect(yield* failureTag(sessions.get(renewed.token!))).toBe("NotFound")
          expect((yield* sessions.list(userId)).length).toBe(1)
        }))
    })

    describe("idleTimeout", () => {
      it.scoped("a session unused for the idle window is Expired; one used within it stays alive", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour", idleTimeout: "10 minutes" })
          const used = yield* sessions.issue(newUser(), data)
          const unused = yield* sessions.issue(newUser(), data)
          expect(used.session.expiresAt.epochMillis).toBe(t0 + 10 * minute)

          // more than half the window left: the use is not recorded (no write)
          yield* at(t0 + 4 * minute)
          expect((yield* sessions.get(used.token)).lastSeenAt.epochMillis).toBe(t0)
          expect((yield* stored(store, used.session)).version).toBe(0)

          // less than half left: get records it, and the deadline moves with it
          yield* at(t0 + 6 * minute)
          const seen = yield* sessions.get(used.token)
          expect(seen.lastSeenAt.epochMillis).toBe(t0 + 6 * minute)
          expect(seen.expiresAt.epochMillis).toBe(t0 + 16 * minute)
          const entry = yield* stored(store, used.session)
          expect(entry.version).toBe(1)
          expect(entry.lastSeenAt).toBe(t0 + 6 * minute)
          expect(entry.expiresAt).toBe(t0 + 16 * minute)

          yield* at(t0 + 10 * minute)
          expect(yield* failureTag(sessions.get(unused.token))).toBe("Expired")
          expect((yield* sessions.list(unused.session.userId)).length).toBe(0)

          // resolve records the use too, and hands out the token again for the moved expiry
          yield* at(t0 + 12 * minute)
          const resolved = yield* sessions.resolve(used.token)
          expect(resolved.token).toBe(used.token)
          expect(resolved.session.lastSeenAt.epochMillis).toBe(t0 + 12 * minute)
          expect((yield* stored(store, used.session)).lastSeenAt).toBe(t0 + 12 * minute)

          // then unused for a whole window: dead
          yield* at(t0 + 22 * minute - 1)
          expect((yield* stored(store, used.session)).expiresAt).toBe(t0 + 22 * minute)
          yield* at(t0 + 22 * minute)
          expect(yield* failureTag(sessions.get(used.token))).toBe("Expired")
        }))
    })

    describe("absoluteLifetime", () => {
      it.scoped("a session dies at createdAt + absoluteLifetime however often it is extended", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour", absoluteLifetime: "2 hours" })
          const { session, token } = yield* sessions.issue(newUser(), data)
          expect(session.expiresAt.epochMillis).toBe(t0 + hour)

          yield* at(t0 + 30 * minute)
          let current = yield* sessions.extend(session)
          expect(current.expiresAt.epochMillis).toBe(t0 + 90 * minute)
          for (const offset of [80 * minute, 110 * minute, 2 * hour - 1]) {
            yield* at(t0 + offset)
            current = yield* sessions.extend(current)
            expect(current.expiresAt.epochMillis).toBe(t0 + 2 * hour)
            expect((yield* stored(store, session)).expiresAt).toBe(t0 + 2 * hour)
          }
          expect((yield* sessions.get(token)).userId).toBe(session.userId)
          yield* at(t0 + 2 * hour)
          expect(yield* failureTag(sessions.get(token))).toBe("Expired")
          expect(yield* failureTag(sessions.extend(current))).toBe("Expired")
        }))

      it.scoped("rolling and rotation do not move it either", () =>
        Effect.gen(function*() {
          const { sessions, t0 } = yield* setup(backend, { ttl: "1 hour", absoluteLifetime: "2 hours", rolling: true })
          const { session, token } = yield* sessions.issue(newUser(), data)
          // used every 40 minutes: every use after the first half of the lifetime rolls it
          let current = token
          for (const offset of [40 * minute, 80 * minute, 100 * minute]) {
            yield* at(t0 + offset)
            const resolved = yield* sessions.resolve(current)
            expect(resolved.session.expiresAt.epochMillis).toBeLessThanOrEqual(t0 + 2 * hour)
          }
          expect((yield* sessions.get(current)).expiresAt.epochMillis).toBe(t0 + 2 * hour)

          yield* at(t0 + 110 * minute)
          const rotated = yield* sessions.rotate(yield* sessions.get(current))
          current = rotated.token
          expect(rotated.session.createdAt.epochMillis).toBe(t0)
          expect(rotated.session.expiresAt.epochMillis).toBe(t0 + 2 * hour)

          yield* at(t0 + 2 * hour - 1)
          expect((yield* sessions.resolve(current)).session.expiresAt.epochMillis).toBe(t0 + 2 * hour)
          yield* at(t0 + 2 * hour)
          expect(yield* failureTag(sessions.get(current))).toBe("Expired")
          expect(session.userId).toBe(rotated.session.userId)
        }))
    })

    describe("the earliest limit wins", () => {
      // Every order of three distinct limits over ttl, idle and absolute, and subsets with some unset.
      const values = [20 * minute, 40 * minute, 60 * minute] as const
      const orders = [[0, 1, 2], [0, 2, 1], [1, 0, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0]] as const
      const combinations: Array<{ ttl: number; idle?: number; absolute?: number }> = [
        ...orders.map(([a, b, c]) => ({ ttl: values[a], idle: values[b], absolute: values[c] })),
        { ttl: 30 * minute },
        { ttl: 30 * minute, idle: 50 * minute },
        { ttl: 30 * minute, idle: 10 * minute },
        { ttl: 30 * minute, absolute: 50 * minute },
        { ttl: 30 * minute, absolute: 10 * minute },
        { ttl: 30 * minute, idle: 15 * minute, absolute: 15 * minute }
      ]

      it.scoped("for every combination of ttl, idleTimeout and absoluteLifetime, rolling or not", () =>
        Effect.gen(function*() {
          const t0 = Date.now()
          yield* TestClock.setTime(t0)
          const store = yield* backend.store
          for (const rolling of [false, true]) {
            for (const { absolute, idle, ttl } of combinations) {
              yield* at(t0)
              const sessions = yield* sessionsOn(store, {
                ttl: `${ttl} millis`,
                idleTimeout: idle === undefined ? undefined : `${idle} millis`,
                absoluteLifetime: absolute === undefined ? undefined : `${absolute} millis`,
                rolling
              })
              const expected = Math.min(ttl, idle ?? Infinity, absolute ?? Infinity)
              const label = JSON.stringify({ ttl, idle, absolute, rolling })
              // two untouched sessions: one is looked at just before the limit (a look may record a use and
              // move it), the other first at the limit
              const before = yield* sessions.issue(newUser(), data)
              const atLimit = yield* sessions.issue(newUser(), data)
              expect(before.session.expiresAt.epochMillis, label).toBe(t0 + expected)
              expect((yield* stored(store, atLimit.session)).expiresAt, label).toBe(t0 + expected)

              yield* at(t0 + expected - 1)
              expect((yield* sessions.get(before.token)).userId, label).toBe(before.session.userId)
              yield* at(t0 + expected)
              expect(yield* failureTag(sessions.get(atLimit.token)), label).toBe("Expired")
            }
          }
        }))
    })

    describe("tightening the options", () => {
      it.scoped("a new service with a shorter absoluteLifetime or idleTimeout applies it to existing sessions", () =>
        Effect.gen(function*() {
          const { sessions: loose, store, t0 } = yield* setup(backend, { ttl: "1 hour" })
          const absolute = yield* sessionsOn(store, { ttl: "1 hour", absoluteLifetime: "30 minutes" })
          const idle = yield* sessionsOn(store, { ttl: "1 hour", idleTimeout: "10 minutes" })
          const userId = newUser()
          const a = yield* loose.issue(userId, data)
          const b = yield* loose.issue(userId, data)
          expect(a.session.expiresAt.epochMillis).toBe(t0 + hour)

          // (read while more than half the idle window is left, so that this read writes nothing)
          yield* at(t0 + 4 * minute)
          expect((yield* idle.get(b.token)).userId).toBe(userId)
          yield* at(t0 + 10 * minute)
          expect(yield* failureTag(idle.get(a.token))).toBe("Expired")
          expect((yield* loose.get(a.token)).userId).toBe(userId)

          yield* at(t0 + 30 * minute - 1)
          expect((yield* absolute.get(a.token)).userId).toBe(userId)
          yield* at(t0 + 30 * minute)
          expect(yield* failureTag(absolute.get(a.token))).toBe("Expired")
          expect(yield* absolute.list(userId)).toEqual([])
          expect(yield* failureTag(absolute.extend(a.session))).toBe("Expired")
          // the old options still read it: the tighter rule is the new service's, applied on read
          expect((yield* loose.get(a.token)).userId).toBe(userId)
          expect((yield* loose.list(userId)).length).toBe(2)
        }))
    })

    describe("rolling expiry", () => {
      it.scoped("writes nothing while more than half the lifetime remains, then once below half", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour", rolling: true })
          const { session, token } = yield* sessions.issue(newUser(), data)
          const other = yield* sessions.issue(newUser(), data)

          for (const offset of [minute, 10 * minute, 29 * minute, 30 * minute]) {
            yield* at(t0 + offset)
            const resolved = yield* sessions.resolve(token)
            expect(resolved.token).toBeUndefined()
            expect(resolved.session.expiresAt.epochMillis).toBe(t0 + hour)
            expect((yield* sessions.get(token)).expiresAt.epochMillis).toBe(t0 + hour)
            const entry = yield* stored(store, session)
            expect(entry.version).toBe(0)
            expect(entry.expiresAt).toBe(t0 + hour)
          }

          yield* at(t0 + 30 * minute + 1)
          const rolled = yield* sessions.resolve(token)
          expect(rolled.token).toBeDefined()
          expect(parts(rolled.token!).id).toBe(idOf(session))
          expect(rolled.session.expiresAt.epochMillis).toBe(t0 + 30 * minute + 1 + hour)
          const entry = yield* stored(store, session)
          expect(entry.version).toBe(1)
          expect(entry.expiresAt).toBe(t0 + 30 * minute + 1 + hour)
          expect(entry.extendedUntil).toBe(t0 + 30 * minute + 1 + hour)

          // just rolled: more than half left again, so nothing more is written
          yield* at(t0 + 31 * minute)
          expect((yield* sessions.resolve(token)).token).toBeUndefined()
          expect((yield* stored(store, session)).version).toBe(1)

          // get rolls too
          expect((yield* sessions.get(other.token)).expiresAt.epochMillis).toBe(t0 + 31 * minute + hour)
          expect((yield* stored(store, other.session)).version).toBe(1)

          // and a rolled session outlives its first expiry
          yield* at(t0 + hour + 30 * minute)
          expect((yield* sessions.get(token)).userId).toBe(session.userId)
        }))

      it.scoped("with threshold 0.25 the write waits until less than a quarter remains", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour", rolling: { threshold: 0.25 } })
          const { session, token } = yield* sessions.issue(newUser(), data)
          for (const offset of [31 * minute, 45 * minute]) {
            yield* at(t0 + offset)
            expect((yield* sessions.resolve(token)).token).toBeUndefined()
            expect((yield* stored(store, session)).version).toBe(0)
          }
          yield* at(t0 + 45 * minute + 1)
          expect((yield* sessions.resolve(token)).token).toBe(token)
          const entry = yield* stored(store, session)
          expect(entry.version).toBe(1)
          expect(entry.expiresAt).toBe(t0 + 45 * minute + 1 + hour)
        }))

      it.scoped("without rolling, get never writes and the session dies at its expiry", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour" })
          const { session, token } = yield* sessions.issue(newUser(), data)
          for (const offset of [10 * minute, 31 * minute, 50 * minute, hour - 1]) {
            yield* at(t0 + offset)
            expect((yield* sessions.get(token)).expiresAt.epochMillis).toBe(t0 + hour)
            expect((yield* sessions.resolve(token)).token).toBeUndefined()
            expect((yield* stored(store, session)).version).toBe(0)
          }
          yield* at(t0 + hour)
          expect(yield* failureTag(sessions.get(token))).toBe("Expired")
        }))
    })

    describe("a session's own lifetime (remember me)", () => {
      const day = 24 * hour

      it.scoped("a 30-day session extended keeps 30 days; a default one keeps the service's ttl", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour" })
          const remembered = yield* sessions.issue(newUser(), data, { ttl: "30 days" })
          const plain = yield* sessions.issue(newUser(), data)
          expect(remembered.session.expiresAt.epochMillis).toBe(t0 + 30 * day)
          expect(remembered.session.ttl.toJSON()).toEqual(Duration.days(30).toJSON())
          expect(plain.session.expiresAt.epochMillis).toBe(t0 + hour)
          expect(Duration.toMillis(plain.session.ttl)).toBe(hour)
          expect((yield* stored(store, remembered.session)).ttl).toBe(30 * day)
          expect((yield* stored(store, plain.session)).ttl).toBeUndefined()

          yield* at(t0 + 20 * minute)
          // read back from the store first: the lifetime comes with the stored session, not the object
          const extended = yield* sessions.extend(yield* sessions.get(remembered.token))
          expect(extended.expiresAt.epochMillis).toBe(t0 + 20 * minute + 30 * day)
          expect((yield* stored(store, remembered.session)).expiresAt).toBe(t0 + 20 * minute + 30 * day)
          expect((yield* sessions.extend(yield* sessions.get(plain.token))).expiresAt.epochMillis).toBe(
            t0 + 20 * minute + hour
          )

          // rotation keeps it too, and the session outlives the service's ttl by far
          const rotated = yield* sessions.rotate(extended)
          yield* at(t0 + 20 * minute + hour)
          expect(yield* failureTag(sessions.get(plain.token))).toBe("Expired")
          yield* at(t0 + 10 * day)
          expect((yield* sessions.extend(yield* sessions.get(rotated.token))).expiresAt.epochMillis).toBe(
            t0 + 40 * day
          )
        }))

      it.scoped("rolling expiry moves it by its own ttl, at the threshold of its own ttl", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour", rolling: true })
          const { session, token } = yield* sessions.issue(newUser(), data, { ttl: "30 days" })
          // the service's threshold is half an hour; this session's is 15 days
          yield* at(t0 + 15 * day)
          expect((yield* sessions.resolve(token)).token).toBeUndefined()
          expect((yield* stored(store, session)).version).toBe(0)
          yield* at(t0 + 15 * day + 1)
          const rolled = yield* sessions.resolve(token)
          expect(rolled.token).toBeDefined()
          expect(rolled.session.expiresAt.epochMillis).toBe(t0 + 45 * day + 1)
          expect((yield* stored(store, session)).expiresAt).toBe(t0 + 45 * day + 1)
        }))

      it.scoped("the idle timeout and the absolute lifetime still bound it", () =>
        Effect.gen(function*() {
          const { sessions, t0 } = yield* setup(backend, { idleTimeout: "2 days", absoluteLifetime: "10 days" })
          const idle = yield* sessions.issue(newUser(), data, { ttl: "30 days" })
          const used = yield* sessions.issue(newUser(), data, { ttl: "30 days" })
          expect(idle.session.expiresAt.epochMillis).toBe(t0 + 2 * day)
          for (let days = 1; days < 10; days++) {
            yield* at(t0 + days * day)
            yield* sessions.extend(yield* sessions.get(used.token))
            if (days === 2) expect(yield* failureTag(sessions.get(idle.token))).toBe("Expired")
          }
          expect((yield* sessions.get(used.token)).expiresAt.epochMillis).toBe(t0 + 10 * day)
          yield* at(t0 + 10 * day)
          expect(yield* failureTag(sessions.get(used.token))).toBe("Expired")
        }))

      it.scoped("persistent: false is kept through extension and rotation; the default is persistent", () =>
        Effect.gen(function*() {
          const { sessions, store } = yield* setup(backend, { ttl: "1 hour" })
          const browser = yield* sessions.issue(newUser(), data, { persistent: false })
          expect(browser.session.persistent).toBe(false)
          expect((yield* stored(store, browser.session)).persistent).toBe(false)
          expect((yield* sessions.get(browser.token)).persistent).toBe(false)
          const extended = yield* sessions.extend(yield* sessions.get(browser.token))
          expect(extended.persistent).toBe(false)
          expect((yield* sessions.rotate(extended)).session.persistent).toBe(false)
          expect((yield* sessions.issue(newUser(), data)).session.persistent).toBe(true)
        }))

      it.scoped("sessions with a lifetime of their own count under the per-user cap", () =>
        Effect.gen(function*() {
          const { sessions, t0 } = yield* setup(backend, { ttl: "1 hour", maxSessionsPerUser: 2 })
          const user = newUser()
          const first = yield* sessions.issue(user, data, { ttl: "30 days" })
          yield* at(t0 + 1)
          yield* sessions.issue(user, data, { ttl: "30 days", persistent: false })
          yield* at(t0 + 2)
          yield* sessions.issue(user, data)
          expect((yield* sessions.list(user)).length).toBe(2)
          expect(yield* failureTag(sessions.get(first.token))).toBe("NotFound")
        }))

      it.scoped("a ttl that is not a positive, finite duration is a defect", () =>
        Effect.gen(function*() {
          const { sessions } = yield* setup(backend, { ttl: "1 hour" })
          for (const ttl of ["0 millis", Duration.infinity, -5] as const) {
            const exit = yield* Effect.exit(sessions.issue(newUser(), data, { ttl }))
            expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
          }
        }))
    })

    describe("signing-key rotation", () => {
      it.scoped("resolve re-signs a token verified by an older key; the new token verifies under the new key alone", () =>
        Effect.gen(function*() {
          const { sessions: before, store } = yield* setup(backend, { ttl: "1 hour" })
          const after = yield* sessionsOn(store, { ttl: "1 hour" }, [key2, key1])
          const newOnly = yield* Auth.make({ keys: [key2] })
          const oldOnly = yield* Auth.make({ keys: [key1] })

          const { session, token } = yield* before.issue(newUser(), data)
          const resolved = yield* after.resolve(token)
          expect(resolved.token).toBeDefined()
          expect(resolved.token).not.toBe(token)
          expect(idOf(resolved.session)).toBe(idOf(session))
          expect(yield* newOnly.verify(resolved.token!, AppSession.key)).toEqual({ id: idOf(session), keyIndex: 0 })
          expect((yield* Effect.flip(oldOnly.verify(resolved.token!, AppSession.key))).reason).toBe("Signature")
          // re-signing needs no write
          expect((yield* stored(store, session)).version).toBe(0)
          // the re-signed token is current: nothing more to hand out
          expect((yield* after.resolve(resolved.token!)).token).toBeUndefined()
          expect(yield* failureTag(before.get(resolved.token!))).toBe("BadSignature")
        }))
    })

    describe("revocation", () => {
      it.scoped("revoke deletes exactly that session, and only the user's own", () =>
        Effect.gen(function*() {
          const { sessions } = yield* setup(backend, { ttl: "1 hour" })
          const alice = newUser()
          const bob = newUser()
          const a1 = yield* sessions.issue(alice, data)
          const b1 = yield* sessions.issue(bob, data)
          // later, so that list (oldest first) answers a1 first
          yield* TestClock.adjust("1 minute")
          const a2 = yield* sessions.issue(alice, data)

          // a session part of Bob's, revoked under Alice's user id: nothing happens to Bob
          yield* sessions.revoke(alice, b1.session.key.session)
          expect((yield* sessions.get(b1.token)).userId).toBe(bob)
          expect((yield* sessions.list(bob)).length).toBe(1)

          const [first] = yield* sessions.list(alice)
          expect(first?.key).toEqual(a1.session.key)
          yield* sessions.revoke(alice, first!.key.session)
          expect(yield* failureTag(sessions.get(a1.token))).toBe("NotFound")
          expect((yield* sessions.get(a2.token)).userId).toBe(alice)
          expect((yield* sessions.list(alice)).map((info) => info.key)).toEqual([a2.session.key])
          // idempotent
          yield* sessions.revoke(alice, first!.key.session)
          expect((yield* sessions.get(a2.token)).userId).toBe(alice)
        }))

      it.scoped("clearOthers keeps the current session and deletes the user's others", () =>
        Effect.gen(function*() {
          const { sessions } = yield* setup(backend, { ttl: "1 hour" })
          const alice = newUser()
          const bob = newUser()
          const issued = yield* Effect.forEach([1, 2, 3], () => sessions.issue(alice, data))
          const b1 = yield* sessions.issue(bob, data)
          expect(yield* sessions.clearOthers(issued[1]!.session)).toBe(2)
          expect(yield* failureTag(sessions.get(issued[0]!.token))).toBe("NotFound")
          expect(yield* failureTag(sessions.get(issued[2]!.token))).toBe("NotFound")
          expect((yield* sessions.get(issued[1]!.token)).userId).toBe(alice)
          expect((yield* sessions.list(alice)).map((info) => info.key)).toEqual([issued[1]!.session.key])
          expect((yield* sessions.get(b1.token)).userId).toBe(bob)
        }))
    })

    describe("updating data", () => {
      it.scoped("extend racing update never loses the update", () =>
        Effect.gen(function*() {
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour" })
          // every call starts from the session as issued: a stale read, as concurrent requests have
          const { session, token } = yield* sessions.issue(newUser(), data)
          for (let round = 1; round <= 8; round++) {
            yield* at(t0 + round * minute)
            const [extended, updated] = yield* Effect.all([
              sessions.extend(session),
              sessions.update(session, (d) => ({ ...d, n: d.n + 1 }))
            ], { concurrency: "unbounded" })
            expect(updated.data.n).toBe(round)
            expect(extended.expiresAt.epochMillis).toBe(t0 + round * minute + hour)
            const got = yield* sessions.get(token)
            expect(got.data.n).toBe(round)
            expect(got.expiresAt.epochMillis).toBe(t0 + round * minute + hour)
            expect((yield* stored(store, session)).version).toBe(2 * round)
          }
        }))
    })

    describe("stale session objects", () => {
      it.scoped("a session object read before another request extended it is extended, updated and rotated, not Expired", () =>
        Effect.gen(function*() {
          // A request holds the session as it read it; another request extends the session meanwhile. The
          // session is alive by the store, so operations on the older object must act on the stored state.
          const { sessions, store, t0 } = yield* setup(backend, { ttl: "1 hour" })
          const stale = yield* sessions.issue(newUser(), data)
          yield* at(t0 + 50 * minute)
          yield* sessions.extend(yield* sessions.get(stale.token))
          expect((yield* stored(store, stale.session)).expiresAt).toBe(t0 + 50 * minute + hour)

          // past the expiry the stale object shows, before the stored one
          yield* at(t0 + 70 * minute)
          expect((yield* sessions.get(stale.token)).expiresAt.epochMillis).toBe(t0 + 50 * minute + hour)
          const extended = yield* Effect.either(sessions.extend(stale.session))
          expect(Either.isRight(extended) ? "extended" : extended.left._tag).toBe("extended")
          const updated = yield* Effect.either(sessions.update(stale.session, (d) => ({ ...d, n: 1 })))
          expect(Either.isRight(updated) ? "updated" : updated.left._tag).toBe("updated")
          const rotated = yield* Effect.either(sessions.rotate(stale.session))
          expect(Either.isRight(rotated) ? "rotated" : rotated.left._tag).toBe("rotated")
        }))

      // Another request extends the session and changes its data; this request then rotates the session
      // as it read it at login (say, at a privilege change).
      const staleRotation = (backend: Backend) =>
        Effect.gen(function*() {
          const { sessions, t0 } = yield* setup(backend, { ttl: "1 hour" })
          const { session, token } = yield* sessions.issue(newUser(), data)
          yield* at(t0 + 40 * minute)
          const fresh = yield* sessions.get(token)
          yield* sessions.extend(fresh)
          yield* sessions.update(fresh, (d) => ({ ...d, role: "admin" }))
          yield* at(t0 + 45 * minute)
          const rotated = yield* sessions.rotate(session)
          return { sessions, t0, rotated, got: yield* sessions.get(rotated.token) }
        })

      it.scoped("rotate keeps a later expiry written by another request meanwhile", () =>
        Effect.gen(function*() {
          const { got, rotated, sessions, t0 } = yield* staleRotation(backend)
          expect(got.data).toEqual({ ...data, role: "admin" })
          // the extension to t0 + 40 min + 1 hour is not lost to the rotation
          expect(got.expiresAt.epochMillis).toBe(t0 + 40 * minute + hour)
          yield* at(t0 + hour + 30 * minute)
          expect((yield* sessions.get(rotated.token)).data).toEqual({ ...data, role: "admin" })
        }))

      it.scoped("the session rotate answers carries the data it stored, not the data of the object it was given", () =>
        Effect.gen(function*() {
          const { got, rotated } = yield* staleRotation(backend)
          expect(got.data).toEqual({ ...data, role: "admin" })
          expect(rotated.session.data).toEqual(got.data)
        }))
    })
  })
}

// -----------------------------------------------------------------------------
// concurrent updates (real clock)
// -----------------------------------------------------------------------------

for (const backend of servers.all) {
  describe(`concurrent updates on ${backend.name}`, () => {
    it.live("of 200 concurrent increments, every success counts and every other one fails with Conflict", () =>
      Effect.scoped(Effect.gen(function*() {
        const store = yield* backend.store
        const sessions = yield* sessionsOn(store, { ttl: "1 hour" })
        const { session, token } = yield* sessions.issue(newUser(), data)
        const total = 200
        const exits = yield* Effect.all(
          Array.from({ length: total }, () => Effect.exit(sessions.update(session, (d) => ({ ...d, n: d.n + 1 })))),
          { concurrency: "unbounded" }
        )
        const succeeded = exits.filter(Exit.isSuccess).length
        const tags = exits.flatMap((exit) =>
          Exit.isFailure(exit)
            ? [Option.getOrElse(Option.map(Cause.failureOption(exit.cause), (error) => error._tag), () => "Defect")]
            : []
        )
        expect(succeeded).toBeGreaterThanOrEqual(1)
        expect(tags.filter((tag) => tag !== "Conflict")).toEqual([])
        expect(succeeded + tags.length).toBe(total)
        expect((yield* sessions.get(token)).data.n).toBe(succeeded)
        const entry = yield* stored(store, session)
        expect(entry.version).toBe(succeeded)
        expect(entry.data).toEqual({ ...data, n: succeeded })
      })))
  })
}

// -----------------------------------------------------------------------------
// ids hashed at rest (Redis)
// -----------------------------------------------------------------------------

describe("ids hashed at rest on Redis", () => {
  it.live("no key and no value in Redis contains a session id, a part of one, a signature or a token", () =>
    Effect.scoped(Effect.gen(function*() {
      const raw = yield* rawRedis
      const store = yield* servers.all.find((backend) => backend.name === "redis")!.store
      const sessions = yield* sessionsOn(store, { ttl: "1 hour", rotationGrace: "1 minute" })
      const userId = newUser()
      const issued = yield* Effect.forEach([1, 2, 3], () => sessions.issue(userId, data, { userAgent: "ua" }))
      const rotated = yield* sessions.rotate(issued[0]!.session)
      yield* sessions.update(issued[1]!.session, (d) => ({ ...d, n: 7 }))
      const tokens = [...issued.map((i) => i.token), rotated.token]

      // every key of the server, and every value, whatever its type
      const dump = yield* Effect.promise(async () => {
        let text = ""
        let cursor = "0"
        do {
          const [next, keys] = await raw.scan(cursor, "COUNT", 1000)
          for (const key of keys) {
            const type = await raw.type(key)
            const value = type === "string"
              ? await raw.get(key)
              : type === "hash"
              ? (await raw.hgetall(key) as Record<string, string>)
              : type === "zset"
              ? await raw.call("ZRANGE", key, "0", "-1", "WITHSCORES")
              : `(${type})`
            text += `${key}\n${JSON.stringify(value)}\n`
          }
          cursor = next
        } while (cursor !== "0")
        return text
      })

      // the dump holds this test's sessions (by their store keys), so the scan really saw them
      for (const { session } of [...issued, rotated]) {
        expect(dump).toContain(session.key.user)
        expect(dump).toContain(session.key.session)
      }
      for (const token of tokens) {
        const { id, signature } = parts(token)
        expect(dump).not.toContain(signature.slice(0, 16))
        // the tag is the user's keyed fingerprint, which the store keys carry on purpose; every other part
        // of the id (lineage, secret) is nowhere
        for (let at = 22; at + 12 <= id.length; at += 6) expect(dump).not.toContain(id.slice(at, at + 12))
      }
    })))
})

// -----------------------------------------------------------------------------
// the token parser and verifier: properties
// -----------------------------------------------------------------------------

describe("token parser and verifier (properties)", () => {
  // One memory-backed service for all runs: `get` is synchronous there, so each run is a `runSyncExit`.
  const runtime = ManagedRuntime.make(
    SessionsTest.layer(AppSession, { ttl: "1 hour", memory: { sweepInterval: "30 days" } })
  )
  const tokens: Array<string> = []
  let auth: Auth.AuthService | undefined
  beforeAll(() =>
    runtime.runPromise(Effect.gen(function*() {
      const sessions = yield* AppSession
      auth = yield* Auth.Auth
      for (let i = 0; i < 64; i++) tokens.push((yield* sessions.issue(newUser(), data)).token)
    }))
  )
  afterAll(() => runtime.dispose())

  const token = (i: number) => tokens[i % tokens.length]!
  const signer = () => auth!

  const getExit = (input: string) => runtime.runSyncExit(Effect.flatMap(AppSession, (s) => s.get(input)))

  /**
   * `get` fails with `expected` (never succeeds, never dies), and the verifier alone, which never throws,
   * rejects the token unless the failure expected is NotFound (a good signature on an unknown id).
   */
  const expectRejected = (input: string, expected: "BadSignature" | "NotFound" = "BadSignature") => {
    const exit = getExit(input)
    if (Exit.isSuccess(exit)) {
      expect.fail(`accepted ${JSON.stringify(input)}`)
    } else {
      expect(Cause.isDie(exit.cause), Cause.pretty(exit.cause)).toBe(false)
      expect(Option.map(Cause.failureOption(exit.cause), (error) => error._tag)).toEqual(Option.some(expected))
    }
    const verified = signer().verify(input, AppSession.key)
    expect(Either.isRight(verified)).toBe(expected === "NotFound")
  }

  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".split("")
  const base64Url = (minLength: number, maxLength: number) =>
    fc.string({ unit: fc.constantFrom(...alphabet), minLength, maxLength })
  const index = fc.nat({ max: 63 })

  it("valid tokens are accepted (control: every property below can fail)", () => {
    expect(tokens).toHaveLength(64)
    for (const valid of tokens) expect(Exit.isSuccess(getExit(valid))).toBe(true)
  })

  it.prop(
    "random strings are never accepted",
    [fc.oneof(
      fc.string({ maxLength: 700 }),
      fc.string({ unit: "binary", maxLength: 700 }),
      fc.string({ unit: "grapheme", maxLength: 200 }),
      fc.tuple(fc.string({ maxLength: 200 }), fc.string({ maxLength: 100 })).map(([a, b]) => `${a}.${b}`)
    )],
    ([input]) => expectRejected(input),
    { fastCheck: { numRuns: 10_000 } }
  )

  it.prop(
    "a valid token with one bit of one character flipped is never accepted",
    [index, fc.nat(), fc.integer({ min: 0, max: 15 })],
    ([i, at, bit]) => {
      const valid = token(i)
      const position = at % valid.length
      const flipped = valid.slice(0, position) + String.fromCharCode(valid.charCodeAt(position) ^ (1 << bit)) +
        valid.slice(position + 1)
      expect(flipped).not.toBe(valid)
      expectRejected(flipped)
    },
    { fastCheck: { numRuns: 10_000 } }
  )

  it.prop(
    "truncations of a valid token, from either end, are never accepted",
    [index, fc.nat(), fc.boolean()],
    ([i, cut, fromStart]) => {
      const valid = token(i)
      const keep = cut % valid.length
      expectRejected(fromStart ? valid.slice(valid.length - keep) : valid.slice(0, keep))
    },
    { fastCheck: { numRuns: 5_000 } }
  )

  it.prop(
    "the id of one valid token with the signature of another is never accepted",
    [index, fc.integer({ min: 1, max: 63 })],
    ([i, d]) => {
      const a = parts(token(i))
      const b = parts(token(i + d))
      expect(a.signature).not.toBe(b.signature)
      expectRejected(`${a.id}.${b.signature}`)
      expectRejected(`${b.id}.${a.signature}`)
    },
    { fastCheck: { numRuns: 5_000 } }
  )

  it.prop(
    "a valid id signed by another key is never accepted",
    [index, fc.uint8Array({ minLength: 32, maxLength: 64 })],
    ([i, bytes]) => {
      const other = Effect.runSync(Auth.make({ keys: [Redacted.make(bytes)] }))
      const forged = other.sign(parts(token(i)).id, AppSession.key)
      expect(forged).not.toBe(token(i))
      expectRejected(forged)
    },
    { fastCheck: { numRuns: 5_000 } }
  )

  it.prop(
    "concatenations of valid tokens, or a valid token with text around it, are never accepted",
    [
      fc.array(index, { minLength: 2, maxLength: 3 }),
      fc.constantFrom("", ".", ",", ";", " ", "=", "%2E"),
      index,
      fc.string({ minLength: 1, maxLength: 30 }),
      fc.boolean()
    ],
    ([many, separator, i, text, before]) => {
      expectRejected(many.map(token).join(separator))
      expectRejected(before ? text + token(i) : token(i) + text)
    },
    { fastCheck: { numRuns: 5_000 } }
  )

  it.prop(
    "random base64url ids with random signatures are BadSignature; signed by the key they are NotFound",
    [base64Url(1, 430), base64Url(86, 86)],
    ([id, signature]) => {
      expectRejected(`${id}.${signature}`)
      // a well-signed id that was never issued: the store is asked and has nothing (unless the token is
      // longer than the verifier looks at)
      const signed = signer().sign(id, AppSession.key)
      expectRejected(signed, signed.length > Auth.maxTokenLength ? "BadSignature" : "NotFound")
    },
    { fastCheck: { numRuns: 10_000 } }
  )

  it.effect.prop(
    "Auth.verify alone rejects well-formed forgeries with reason Signature",
    [base64Url(87, 87), base64Url(86, 86)],
    ([id, signature]) =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(signer().verify(`${id}.${signature}`, AppSession.key))
        expect(error.reason).toBe("Signature")
      }),
    { fastCheck: { numRuns: 250 } }
  )
})
