/**
 * The promises the security model makes, each held on every backend: the in-memory store, a real Redis and
 * a real 3-master Redis Cluster (test/support/backends.ts). Each block is a regression test for a defect
 * an independent review found (issue 10); the item numbers are the issue's.
 *
 * Races run on the real clock (`it.live`) with real concurrency, many times over; the deterministic twin of
 * each race pauses the operation between its store calls with a wrapper around the store.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Option, Redacted, Schema, type Scope } from "effect"
import * as Crypto from "node:crypto"
import * as Auth from "../src/Auth.js"
import * as Memory from "../src/layers/Memory.js"
import * as Session from "../src/Session.js"
import { Store, type StoreService } from "../src/Store.js"
import { backends } from "./support/backends.js"

// -----------------------------------------------------------------------------
// fixtures
// -----------------------------------------------------------------------------

const Data = Schema.Struct({ n: Schema.Number, roles: Schema.Array(Schema.String) })
type Data = typeof Data.Type

class AppSession extends Session.Tag<AppSession>()("test/Guarantees/AppSession", { data: Data }) {}
class AdminSession extends Session.Tag<AdminSession>()("test/Guarantees/AdminSession", { data: Data }) {}

const data: Data = { n: 0, roles: ["reader"] }

const newKey = () => Redacted.make(Auth.randomId(48))
const key = newKey()
const newUser = () => `user-${Crypto.randomUUID()}`

type Tag = typeof AppSession | typeof AdminSession

/** A sessions service of type `tag` on `store`, signing with the first of `keys`. */
const sessionsOn = (
  store: StoreService,
  options: Session.Options = {},
  keys: ReadonlyArray<Redacted.Redacted<string>> = [key],
  tag: Tag = AppSession
): Effect.Effect<Session.Sessions<Data>> =>
  Effect.orDie(
    (tag as typeof AppSession).pipe(
      Effect.provide(
        Session.layer(tag as typeof AppSession, { ttl: "1 hour", ...options }).pipe(
          Layer.provide(Layer.merge(Layer.succeed(Store, store), Auth.layer({ keys })))
        )
      )
    )
  )

/** What an effect failed with: its tag, "Success", or "Defect" (which a test never wants). */
const outcome = <A, E extends { readonly _tag: string }>(exit: Exit.Exit<A, E>): string =>
  Exit.isSuccess(exit)
    ? "Success"
    : Option.match(Cause.failureOption(exit.cause), { onNone: () => "Defect", onSome: (error) => error._tag })

const outcomeOf = <A, E extends { readonly _tag: string }, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.map(Effect.exit(effect), outcome)

/** Whether a token still validates, on a service that sees the store as it is. */
const validates = (sessions: Session.Sessions<Data>, token: string) =>
  Effect.map(Effect.exit(sessions.get(token)), (exit) => {
    expect(outcome(exit)).not.toBe("Defect")
    return Exit.isSuccess(exit)
  })

// A store whose calls, made by one fiber, can be stopped before the n-th: the deterministic race.
const pausable = (store: StoreService) => {
  let armed: {
    readonly fiber: string
    readonly at: number
    calls: number
    readonly reached: Deferred.Deferred<void>
    readonly release: Deferred.Deferred<void>
  } | undefined
  const gate = <A, E>(effect: Effect.Effect<A, E>): Effect.Effect<A, E> =>
    Effect.flatMap(Effect.fiberId, (id) => {
      const plan = armed
      if (plan === undefined || plan.fiber !== String(id)) return effect
      if (plan.calls++ !== plan.at) return effect
      return Deferred.succeed(plan.reached, undefined).pipe(
        Effect.zipRight(Deferred.await(plan.release)),
        Effect.zipRight(effect)
      )
    })
  const wrapped: StoreService = {
    fetch: (...args) => gate(store.fetch(...args)),
    save: (...args) => gate(store.save(...args)),
    delete: (...args) => gate(store.delete(...args)),
    list: (...args) => gate(store.list(...args)),
    deleteUser: (...args) => gate(store.deleteUser(...args))
  }
  /**
   * Runs `operation` on its own fiber, stopped before its `at`-th store call (counting from 0); `during`
   * runs while it is stopped. Answers the operation's exit and whether it was stopped at all (an operation
   * with fewer calls runs to its end).
   */
  const pauseAt = <A, E>(at: number, operation: Effect.Effect<A, E>, during: Effect.Effect<void, unknown>) =>
    Effect.gen(function*() {
      const reached = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const started = yield* Deferred.make<string>()
      const fiber = yield* Effect.fork(
        Effect.flatMap(Deferred.await(started), () => Effect.exit(operation))
      )
      armed = { fiber: String(fiber.id()), at, calls: 0, reached, release }
      yield* Deferred.succeed(started, String(fiber.id()))
      const first = yield* Effect.raceFirst(
        Effect.as(Deferred.await(reached), "paused" as const),
        Effect.as(Fiber.await(fiber), "done" as const)
      )
      if (first === "paused") {
        yield* Effect.orDie(during)
        yield* Deferred.succeed(release, undefined)
      }
      const exit = yield* Fiber.join(fiber)
      armed = undefined
      return { exit, paused: first === "paused" }
    })
  return { store: wrapped, pauseAt }
}

// A random small delay: none, a few yields, or up to a millisecond on the real clock.
const jitter = Effect.suspend(() => {
  const r = Crypto.randomInt(4)
  return r === 0 ? Effect.void : r === 1 ? Effect.yieldNow() : r === 2 ? Effect.sleep(0) : Effect.sleep(1)
})

type Revocation = "clear" | "clearAll" | "revoke" | "clearOthers"
const revocations: ReadonlyArray<Revocation> = ["clear", "clearAll", "revoke", "clearOthers"]

/** Runs the revocation `kind` that covers `target` (with `keeper`, another session of its user, for clearOthers). */
const revoke = (
  sessions: Session.Sessions<Data>,
  kind: Revocation,
  target: Session.Session<Data>,
  keeper: Session.Session<Data>
): Effect.Effect<void, unknown> => {
  switch (kind) {
    case "clear":
      return sessions.clear(target)
    case "clearAll":
      return Effect.asVoid(sessions.clearAll(target.userId))
    case "revoke":
      return sessions.revoke(target.userId, target.key.session)
    case "clearOthers":
      return Effect.asVoid(sessions.clearOthers(keeper))
  }
}

const scopedLive = (name: string, self: () => Effect.Effect<void, unknown, Scope.Scope>, timeout?: number) =>
  it.live(name, () => Effect.scoped(self()), timeout)

// -----------------------------------------------------------------------------
// on every backend
// -----------------------------------------------------------------------------

for (const backend of backends().all) {
  describe(`on ${backend.name}`, () => {
    describe("a rotation racing a revocation (item 1)", () => {
      scopedLive(
        "a revocation that lands while the rotation is stopped before any of its store calls ends the session and every successor",
        () =>
          Effect.gen(function*() {
            const store = yield* backend.store
            const pause = pausable(store)
            for (const grace of [0, 60_000]) {
              const rotating = yield* sessionsOn(pause.store, { rotationGrace: grace })
              const observer = yield* sessionsOn(store, { rotationGrace: grace })
              for (const kind of revocations) {
                let paused = 0
                for (let at = 0; at < 8; at++) {
                  const userId = newUser()
                  const target = yield* rotating.issue(userId, data)
                  const keeper = yield* rotating.issue(userId, data)
                  const { exit, paused: wasPaused } = yield* pause.pauseAt(
                    at,
                    rotating.rotate(target.session),
                    revoke(observer, kind, target.session, keeper.session)
                  )
                  if (!wasPaused) {
                    // the rotation has fewer store calls than `at`: every one of them was covered below
                    expect(paused).toBeGreaterThanOrEqual(1)
                    break
                  }
                  paused++
                  expect(outcome(exit)).not.toBe("Defect")
                  expect(yield* validates(observer, target.token)).toBe(false)
                  if (Exit.isSuccess(exit)) expect(yield* validates(observer, exit.value.token)).toBe(false)
                  expect(yield* validates(observer, keeper.token)).toBe(kind !== "clearAll")
                }
              }
            }
          }),
        60_000
      )

      for (const kind of revocations) {
        scopedLive(
          `1,000 interleavings of ${kind} and rotate: no session or successor survives`,
          () =>
            Effect.gen(function*() {
              const store = yield* backend.store
              const sessions = yield* sessionsOn(store, { rotationGrace: "1 minute" })
              const observer = yield* sessionsOn(store, { rotationGrace: "1 minute" })
              const results = yield* Effect.forEach(
                Array.from({ length: 1_000 }, (_, i) => i),
                () =>
                  Effect.gen(function*() {
                    const userId = newUser()
                    const target = yield* sessions.issue(userId, data)
                    const keeper = yield* sessions.issue(userId, data)
                    const [rotated] = yield* Effect.all([
                      Effect.exit(Effect.zipRight(jitter, sessions.rotate(target.session))),
                      Effect.zipRight(jitter, revoke(observer, kind, target.session, keeper.session))
                    ], { concurrency: 2 })
                    let survivors = (yield* validates(observer, target.token)) ? 1 : 0
                    if (Exit.isSuccess(rotated) && (yield* validates(observer, rotated.value.token))) survivors++
                    return { survivors, rotated: outcome(rotated) }
                  }),
                { concurrency: 32 }
              )
              expect(results.reduce((sum, { survivors }) => sum + survivors, 0)).toBe(0)
              for (const { rotated } of results) expect(["Success", "NotFound"]).toContain(rotated)
            }),
          60_000
        )
      }
    })

    describe("renewal under parallel requests (item 4)", () => {
      scopedLive(
        "8 parallel reads at renewal time, with the defaults: all served, exactly one new token",
        () =>
          Effect.gen(function*() {
            const store = yield* backend.store
            const sessions = yield* sessionsOn(store, { renewalInterval: "20 millis" })
            for (let trial = 0; trial < 10; trial++) {
              const { token } = yield* sessions.issue(newUser(), data)
              yield* Effect.sleep("25 millis")
              const exits = yield* Effect.all(
                Array.from({ length: 8 }, () => Effect.exit(sessions.resolve(token))),
                { concurrency: "unbounded" }
              )
              expect(exits.map(outcome)).toEqual(Array(8).fill("Success"))
              const tokens = exits.flatMap((exit) => Exit.isSuccess(exit) && exit.value.token ? [exit.value.token] : [])
              expect(tokens).toHaveLength(1)
              expect(yield* validates(sessions, tokens[0]!)).toBe(true)
              // the replaced token still reads during its grace, and is never renewed again
              expect((yield* sessions.resolve(token)).token).toBeUndefined()
            }
          })
      )
    })

    describe("the per-user cap (item 5)", () => {
      scopedLive(
        "a user keeps at most maxSessionsPerUser live sessions; the least recently seen go first",
        () =>
          Effect.gen(function*() {
            const store = yield* backend.store
            const sessions = yield* sessionsOn(store, { maxSessionsPerUser: 5 })
            const userId = newUser()
            const other = yield* sessions.issue(newUser(), data)
            const issued: Array<Session.Issued<Data>> = []
            for (let i = 0; i < 8; i++) {
              issued.push(yield* sessions.issue(userId, data))
              yield* Effect.sleep("2 millis")
            }
            expect((yield* sessions.list(userId)).length).toBe(5)
            for (let i = 0; i < 8; i++) expect(yield* validates(sessions, issued[i]!.token)).toBe(i >= 3)
            // another user's session is never a victim
            expect(yield* validates(sessions, other.token)).toBe(true)
            // concurrent logins of one user never leave more than the cap alive
            const burst = yield* Effect.forEach(Array.from({ length: 40 }), () => sessions.issue(userId, data), {
              concurrency: "unbounded"
            })
            expect((yield* sessions.list(userId)).length).toBe(5)
            let alive = 0
            for (const { token } of [...issued, ...burst]) if (yield* validates(sessions, token)) alive++
            expect(alive).toBe(5)
          })
      )

      scopedLive("the default cap is 100", () =>
        Effect.gen(function*() {
          const store = yield* backend.store
          const sessions = yield* sessionsOn(store)
          const userId = newUser()
          yield* Effect.forEach(Array.from({ length: 110 }), () => sessions.issue(userId, data), { concurrency: 16 })
          expect((yield* sessions.list(userId)).length).toBe(Session.defaultMaxSessionsPerUser)
        }))
    })

    describe("tokens and the store say nothing about the user (item 7)", () => {
      scopedLive(
        "two services with different secrets give one user different tags; key rotation still finds old sessions",
        () =>
          Effect.gen(function*() {
            const store = yield* backend.store
            const k1 = newKey()
            const k2 = newKey()
            const one = yield* sessionsOn(store, {}, [k1])
            const two = yield* sessionsOn(store, {}, [k2])
            const userId = "alice@example.com"
            const a = yield* one.issue(userId, data)
            const b = yield* two.issue(userId, data)
            expect(a.session.key.user).not.toBe(b.session.key.user)
            expect(a.token.slice(0, 22)).not.toBe(b.token.slice(0, 22))
            // after a signing-key rotation ([k2, k1]), list and clearAll find the sessions made under k1
            const rotated = yield* sessionsOn(store, {}, [k2, k1])
            const fresh = yield* rotated.issue(userId, data)
            const listed = (yield* rotated.list(userId)).map((info) => info.key.session).sort()
            expect(listed).toEqual([a, b, fresh].map(({ session }) => session.key.session).sort())
            expect(yield* rotated.clearAll(userId)).toBe(3)
            for (const { token } of [a, b, fresh]) expect(yield* validates(rotated, token)).toBe(false)
          })
      )
    })

    describe("session types are separate (item 8)", () => {
      scopedLive(
        "a token of one type never validates at another sharing its Auth and Store",
        () =>
          Effect.gen(function*() {
            const store = yield* backend.store
            const users = yield* sessionsOn(store, {}, [key], AppSession)
            const admins = yield* sessionsOn(store, {}, [key], AdminSession)
            const userId = newUser()
            const user = yield* users.issue(userId, data)
            const admin = yield* admins.issue(userId, data)
            expect(yield* outcomeOf(admins.get(user.token))).toBe("BadSignature")
            expect(yield* outcomeOf(users.get(admin.token))).toBe("BadSignature")
            // nor do their stores meet: each type lists and clears only its own
            expect((yield* users.list(userId)).length).toBe(1)
            expect(yield* admins.clearAll(userId)).toBe(1)
            expect(yield* validates(users, user.token)).toBe(true)
            expect(user.session.key.user).not.toBe(admin.session.key.user)
          })
      )
    })

    describe("a stored entry belongs to its token's user (item 10)", () => {
      scopedLive("an entry rewritten with another user id is no session", () =>
        Effect.gen(function*() {
          const store = yield* backend.store
          const sessions = yield* sessionsOn(store)
          const mallory = yield* sessions.issue(newUser(), data)
          const entry = Option.getOrThrow(yield* store.fetch(mallory.session.key))
          const victim = newUser()
          yield* sessions.issue(victim, data)
          expect(
            yield* store.save(mallory.session.key, { ...entry, version: entry.version + 1, userId: victim }, "update")
          )
            .toBe(true)
          expect(yield* outcomeOf(sessions.get(mallory.token))).toBe("NotFound")
        }))
    })

    describe("sessions handed out are immutable (item 13)", () => {
      scopedLive("a handler cannot change what later requests of the session see", () =>
        Effect.gen(function*() {
          const store = yield* backend.store
          const sessions = yield* sessionsOn(store)
          const { token } = yield* sessions.issue(newUser(), data)
          const first = yield* sessions.get(token)
          expect(() => (first.data.roles as Array<string>).push("admin")).toThrow(TypeError)
          expect(() => {
            ;(first as { userId: string }).userId = "someone-else"
          }).toThrow(TypeError)
          const again = yield* sessions.get(token)
          expect(again.data.roles).toEqual(["reader"])
          expect(again.userId).toBe(first.userId)
        }))
    })

    describe("concurrent updates (item 14)", () => {
      for (const writers of [16, 256]) {
        scopedLive(
          `${writers} concurrent updates of one session: at most 1% Conflict, none lost`,
          () =>
            Effect.gen(function*() {
              const store = yield* backend.store
              const sessions = yield* sessionsOn(store)
              const { session, token } = yield* sessions.issue(newUser(), data)
              const exits = yield* Effect.all(
                Array.from(
                  { length: writers },
                  () => Effect.exit(sessions.update(session, (d) => ({ ...d, n: d.n + 1 })))
                ),
                { concurrency: "unbounded" }
              )
              const outcomes = exits.map(outcome)
              const succeeded = outcomes.filter((o) => o === "Success").length
              expect(outcomes.filter((o) => o !== "Success" && o !== "Conflict")).toEqual([])
              expect(writers - succeeded).toBeLessThanOrEqual(Math.floor(writers / 100))
              expect((yield* sessions.get(token)).data.n).toBe(succeeded)
            }),
          60_000
        )
      }

      scopedLive(
        "two processes, 8 updaters each, on one session: at most 1% Conflict, none lost",
        () =>
          Effect.gen(function*() {
            const store = yield* backend.store
            const one = yield* sessionsOn(store)
            const two = yield* sessionsOn(store)
            let conflicts = 0
            let succeeded = 0
            for (let round = 0; round < 10; round++) {
              const { session, token } = yield* one.issue(newUser(), data)
              const copy = yield* two.get(token)
              const exits = yield* Effect.all(
                Array.from(
                  { length: 16 },
                  (_, i) =>
                    Effect.exit(
                      (i % 2 === 0 ? one : two).update(i % 2 === 0 ? session : copy, (d) => ({ ...d, n: d.n + 1 }))
                    )
                ),
                { concurrency: "unbounded" }
              )
              const outcomes = exits.map(outcome)
              expect(outcomes.filter((o) => o !== "Success" && o !== "Conflict")).toEqual([])
              const ok = outcomes.filter((o) => o === "Success").length
              succeeded += ok
              conflicts += 16 - ok
              expect((yield* one.get(token)).data.n).toBe(ok)
            }
            expect(conflicts).toBeLessThanOrEqual(Math.floor((succeeded + conflicts) / 100))
          }),
        60_000
      )
    })

    describe("Expired is reported after expiry (item 16)", () => {
      scopedLive(
        "a token presented a while after its session expired is Expired, not NotFound",
        () =>
          Effect.gen(function*() {
            const store = yield* backend.store
            const sessions = yield* sessionsOn(store, { ttl: "200 millis" })
            const { token } = yield* sessions.issue(newUser(), data)
            yield* Effect.sleep("400 millis")
            expect(yield* outcomeOf(sessions.get(token))).toBe("Expired")
          })
      )
    })

    describe("bounded session data (item 17)", () => {
      scopedLive(
        "data whose encoding exceeds the limit is refused at write, never stored",
        () =>
          Effect.gen(function*() {
            const store = yield* backend.store
            const sessions = yield* sessionsOn(store)
            const userId = newUser()
            const big: Data = { n: 0, roles: ["x".repeat(Session.maxDataLength)] }
            const exit = yield* Effect.exit(sessions.issue(userId, big))
            expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
            expect(yield* sessions.list(userId)).toEqual([])
          })
      )
    })
  })
}

describe("the memory store (items 5 and 16)", () => {
  scopedLive("one client's flood of logins cannot evict other users' sessions", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make({ capacity: 50, sweepInterval: "30 days" })
      const sessions = yield* sessionsOn(store)
      const victims = yield* Effect.forEach(Array.from({ length: 10 }), () => sessions.issue(newUser(), data))
      const flood = yield* Effect.forEach(
        Array.from({ length: 200 }),
        () => Effect.exit(sessions.issue(newUser(), data))
      )
      expect(flood.map(outcome).filter((o) => o === "StoreError")).toHaveLength(200 - 40)
      for (const { token } of victims) expect(yield* validates(sessions, token)).toBe(true)
    }))

  scopedLive("its sweeper keeps an expired session long enough for get to say Expired", () =>
    Effect.gen(function*() {
      const store = yield* Memory.make({ sweepInterval: "20 millis" })
      const sessions = yield* sessionsOn(store, { ttl: "100 millis" })
      const { token } = yield* sessions.issue(newUser(), data)
      yield* Effect.sleep("300 millis")
      expect(yield* outcomeOf(sessions.get(token))).toBe("Expired")
    }))
})
