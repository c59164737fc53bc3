import * as HttpServerRespondable from "@effect/platform/HttpServerRespondable"
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Clock,
  Config,
  ConfigError,
  ConfigProvider,
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
import * as Memory from "../src/layers/Memory.js"
import * as SessionsTest from "../src/layers/Test.js"
import * as Session from "../src/Session.js"
import { around, type Entry, Store, StoreError } from "../src/Store.js"
import { makeEntry } from "../src/testing/StoreContract.js"
import { makeId } from "./support/ids.js"

// Session data with transformations, so that the stored (encoded) form differs from the decoded one.
const Data = Schema.Struct({
  csrf: Schema.String,
  lastSeen: Schema.DateFromString,
  visits: Schema.NumberFromString
})
type Data = typeof Data.Type

class AppSession extends Session.Tag<AppSession>()("test/AppSession", { data: Data }) {}

const ttl = Duration.hours(1)
const ttlMillis = Duration.toMillis(ttl)

// A sweep interval longer than any test, so that what the store holds is decided by the tests alone.
const TestLayer = SessionsTest.layer(AppSession, { ttl, memory: { sweepInterval: "30 days" } })

const data: Data = { csrf: "csrf-token", lastSeen: new Date("2024-05-01T12:00:00.000Z"), visits: 3 }

// A plain view of a session: `Redacted` values carry no enumerable fields, so `toEqual` cannot compare them.
const view = (session: Session.Session<Data>) => ({
  id: Redacted.value(session.id),
  key: session.key,
  userId: session.userId,
  createdAt: session.createdAt.epochMillis,
  expiresAt: session.expiresAt.epochMillis,
  data: session.data
})

const otherKey = () => Redacted.make(Auth.randomId(48))

describe("Sessions", () => {
  describe("issue and get", () => {
    it.effect("issue stores a session that get returns for its token", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        yield* TestClock.adjust("5 minutes")
        const now = yield* Clock.currentTimeMillis
        const { session, token } = yield* sessions.issue("user-1", data)
        expect(session.userId).toBe("user-1")
        expect(session.data).toEqual(data)
        expect(session.createdAt.epochMillis).toBe(now)
        expect(session.expiresAt.epochMillis).toBe(now + ttlMillis)
        expect(sessions.ttl).toEqual(ttl)

        const got = yield* sessions.get(token)
        expect(view(got)).toEqual(view(session))
        expect(got.data.lastSeen).toBeInstanceOf(Date)
      }).pipe(Effect.provide(TestLayer)))

    it.effect("data is stored encoded by its schema and decoded on read", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const { session, token } = yield* sessions.issue("user-1", data)
        const stored = yield* store.fetch(session.key)
        expect(Option.map(stored, (entry) => entry.data)).toEqual(
          Option.some({ csrf: "csrf-token", lastSeen: "2024-05-01T12:00:00.000Z", visits: "3" })
        )
        const got = yield* sessions.get(token)
        expect(got.data).toEqual(data)
        expect(typeof got.data.visits).toBe("number")
      }).pipe(Effect.provide(TestLayer)))

    it.effect("an entry written encoded by someone else is decoded on read", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const auth = yield* Auth.Auth
        const { id, key, secret } = makeId(auth, AppSession.key, "user-9")
        const entry: Entry = makeEntry({
          userId: "user-9",
          createdAt: 0,
          expiresAt: ttlMillis,
          secret,
          data: { csrf: "c", lastSeen: "2020-02-29T23:59:59.000Z", visits: "42" }
        })
        expect(yield* store.save(key, entry, "create")).toBe(true)
        const got = yield* sessions.get(auth.sign(id, AppSession.key))
        expect(got.userId).toBe("user-9")
        expect(got.data).toEqual({ csrf: "c", lastSeen: new Date(Date.UTC(2020, 1, 29, 23, 59, 59)), visits: 42 })
      }).pipe(Effect.provide(TestLayer)))

    it.effect("issued sessions are distinct", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const issued = yield* Effect.forEach(Array.from({ length: 50 }), () => sessions.issue("user-1", data))
        expect(new Set(issued.map(({ token }) => token)).size).toBe(50)
        expect(new Set(issued.map(({ session }) => session.key)).size).toBe(50)
        for (const { token } of issued) {
          expect((yield* sessions.get(token)).userId).toBe("user-1")
        }
      }).pipe(Effect.provide(TestLayer)))

    it.effect("token(session) gives a token that get accepts", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const { session, token } = yield* sessions.issue("user-1", data)
        expect(sessions.token(session)).toBe(token)
        expect(view(yield* sessions.get(sessions.token(session)))).toEqual(view(session))
      }).pipe(Effect.provide(TestLayer)))

    it.effect("the lifetime defaults to 3 days", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        expect(Duration.toMillis(sessions.ttl)).toBe(Duration.toMillis("3 days"))
        const { session } = yield* sessions.issue("user-1", data)
        expect(session.expiresAt.epochMillis).toBe(Duration.toMillis("3 days"))
      }).pipe(Effect.provide(SessionsTest.layer(AppSession))))
  })

  describe("expiry", () => {
    it.effect("a session is valid until just before its expiry and Expired from the expiry on", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const { session, token } = yield* sessions.issue("user-1", data)

        yield* TestClock.adjust(Duration.millis(ttlMillis - 1))
        expect(view(yield* sessions.get(token))).toEqual(view(session))

        yield* TestClock.adjust(Duration.millis(1))
        const atExpiry = yield* Effect.flip(sessions.get(token))
        expect(atExpiry._tag).toBe("Expired")
        expect(atExpiry).toBeInstanceOf(Session.Expired)
        expect(Session.isRejected(atExpiry)).toBe(true)

        yield* TestClock.adjust("1 minute")
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("Expired")
        // Refused by the clock although the store has not expired the entry yet.
        expect(Option.isSome(yield* store.fetch(session.key))).toBe(true)
      }).pipe(Effect.provide(TestLayer)))

    it.effect("extend moves the expiry to now + ttl, in the session and in the store", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const { session, token } = yield* sessions.issue("user-1", data)

        yield* TestClock.adjust("40 minutes")
        const now = yield* Clock.currentTimeMillis
        const extended = yield* sessions.extend(session)
        expect(extended.expiresAt.epochMillis).toBe(now + ttlMillis)
        expect(view(extended)).toEqual({ ...view(session), expiresAt: now + ttlMillis })
        expect(Option.map(yield* store.fetch(session.key), (entry) => entry.expiresAt)).toEqual(
          Option.some(now + ttlMillis)
        )

        // Past the original expiry, the same token still works until the new one.
        yield* TestClock.adjust("30 minutes")
        expect((yield* sessions.get(token)).expiresAt.epochMillis).toBe(now + ttlMillis)
        yield* TestClock.adjust("30 minutes")
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("Expired")
      }).pipe(Effect.provide(TestLayer)))

    it.effect("extend of an expired session is Expired and leaves the store untouched", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const { session } = yield* sessions.issue("user-1", data)
        yield* TestClock.adjust(ttl)
        const error = yield* Effect.flip(sessions.extend(session))
        expect(error._tag).toBe("Expired")
        expect(Option.map(yield* store.fetch(session.key), (entry) => entry.expiresAt)).toEqual(
          Option.some(session.expiresAt.epochMillis)
        )
      }).pipe(Effect.provide(TestLayer)))

    it.effect("extend of a cleared session is NotFound and does not bring it back", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const { session, token } = yield* sessions.issue("user-1", data)
        yield* sessions.clear(session)
        yield* TestClock.adjust("1 minute")
        const error = yield* Effect.flip(sessions.extend(session))
        expect(error._tag).toBe("NotFound")
        expect(error).toBeInstanceOf(Session.NotFound)
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
        expect(Option.isNone(yield* store.fetch(session.key))).toBe(true)
      }).pipe(Effect.provide(TestLayer)))
  })

  describe("clear", () => {
    it.effect("clear ends the session, is idempotent and touches no other session", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const first = yield* sessions.issue("user-1", data)
        const second = yield* sessions.issue("user-1", data)
        yield* sessions.clear(first.session)
        expect((yield* Effect.flip(sessions.get(first.token)))._tag).toBe("NotFound")
        yield* sessions.clear(first.session)
        expect((yield* Effect.flip(sessions.get(first.token)))._tag).toBe("NotFound")
        expect(view(yield* sessions.get(second.token))).toEqual(view(second.session))
      }).pipe(Effect.provide(TestLayer)))

    it.effect("clear of an expired session succeeds and removes it", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const { session } = yield* sessions.issue("user-1", data)
        yield* TestClock.adjust("2 hours")
        yield* sessions.clear(session)
        expect(Option.isNone(yield* store.fetch(session.key))).toBe(true)
      }).pipe(Effect.provide(TestLayer)))
  })

  describe("per-user operations", () => {
    it.effect("list answers a user's live sessions, oldest first, with their data", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const first = yield* sessions.issue("alice", data)
        yield* TestClock.adjust("1 minute")
        const second = yield* sessions.issue("alice", { ...data, visits: 4 })
        yield* sessions.issue("bob", data)
        const listed = yield* sessions.list("alice")
        expect(listed.map((info) => info.key)).toEqual([first.session.key, second.session.key])
        expect(listed.map((info) => info.data.visits)).toEqual([3, 4])
        expect(listed.every((info) => info.userId === "alice")).toBe(true)
        expect(listed.some((info) => "id" in info)).toBe(false)

        // the first expires a minute before the second: half a minute after the first expired
        yield* TestClock.adjust(Duration.subtract(ttl, Duration.seconds(30)))
        expect((yield* sessions.list("alice")).map((info) => info.key)).toEqual([second.session.key])
        expect(yield* sessions.list("nobody")).toEqual([])
      }).pipe(Effect.provide(TestLayer)))

    it.effect("list leaves out sessions whose data no longer decodes", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const good = yield* sessions.issue("alice", data)
        const bad = yield* sessions.issue("alice", data)
        const entry = Option.getOrThrow(yield* store.fetch(bad.session.key))
        const overwritten = { ...entry, version: entry.version + 1, data: "garbage" }
        expect(yield* store.save(bad.session.key, overwritten, "update")).toBe(true)
        expect((yield* sessions.list("alice")).map((info) => info.key)).toEqual([good.session.key])
      }).pipe(Effect.provide(TestLayer)))

    it.effect("clearAll logs a user out everywhere and leaves other users alone", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const alice = yield* Effect.all([sessions.issue("alice", data), sessions.issue("alice", data)])
        const bob = yield* sessions.issue("bob", data)
        expect(yield* sessions.clearAll("alice")).toBe(2)
        for (const { token } of alice) expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
        expect((yield* sessions.get(bob.token)).userId).toBe("bob")
        expect(yield* sessions.clearAll("alice")).toBe(0)
      }).pipe(Effect.provide(TestLayer)))

    it.effect("clearOthers keeps only the given session", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const [current, other, third] = yield* Effect.all([
          sessions.issue("alice", data),
          sessions.issue("alice", data),
          sessions.issue("alice", data)
        ])
        expect(yield* sessions.clearOthers(current.session)).toBe(2)
        expect((yield* sessions.get(current.token)).userId).toBe("alice")
        expect((yield* Effect.flip(sessions.get(other.token)))._tag).toBe("NotFound")
        expect((yield* Effect.flip(sessions.get(third.token)))._tag).toBe("NotFound")
        expect((yield* sessions.list("alice")).map((info) => info.key)).toEqual([current.session.key])
      }).pipe(Effect.provide(TestLayer)))

    it.effect("a signed id this library did not make (no user part) is NotFound without a store lookup", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const auth = yield* Auth.Auth
        const outage = yield* SessionsTest.Outage
        yield* outage.start // a lookup would fail with StoreError
        expect((yield* Effect.flip(sessions.get(auth.sign(Auth.randomId(), AppSession.key))))._tag).toBe("NotFound")
        yield* outage.end
      }).pipe(Effect.provide(TestLayer)))
  })

  describe("ids and store keys", () => {
    it.effect("a session id is the user's keyed tag, then 384 random bits, and is the id part of the token", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const auth = yield* Auth.Auth
        const { session, token } = yield* sessions.issue("user-1", data)
        const id = Redacted.value(session.id)
        expect(id).toMatch(/^[A-Za-z0-9_-]{87}$/)
        // the user's fingerprint under the signing key, then the lineage (128 bits) and the secret (256 bits)
        expect(id.slice(0, 22)).toBe(auth.fingerprint("user-1", AppSession.key)[0])
        expect(Buffer.from(id.slice(22), "base64url").length * 8).toBe(384)
        expect(token.startsWith(`${id}.`)).toBe(true)
      }).pipe(Effect.provide(TestLayer)))

    it.effect("nothing in a token or a store key is an unkeyed function of the user id", () =>
      Effect.gen(function*() {
        // Two deployments with different secrets, one user: their tokens share no prefix, and neither
        // contains a plain hash of the user id.
        const issueWith = Effect.gen(function*() {
          const { session, token } = yield* (yield* AppSession).issue("alice@example.com", data)
          return { session, token }
        })
        const one = yield* issueWith.pipe(Effect.provide(TestLayer))
        const two = yield* issueWith.pipe(Effect.provide(TestLayer))
        expect(one.session.key.user).not.toBe(two.session.key.user)
        expect(one.token.slice(0, 8)).not.toBe(two.token.slice(0, 8))
        for (const hash of ["sha256", "sha1", "md5", "sha512"]) {
          const plain = Crypto.createHash(hash).update("alice@example.com").digest()
          for (const encoded of [plain.toString("base64url"), plain.toString("hex"), plain.toString("base64")]) {
            for (const { session, token } of [one, two]) {
              expect(token).not.toContain(encoded.slice(0, 16))
              expect(session.key.user).not.toContain(encoded.slice(0, 16))
              expect(session.key.session).not.toContain(encoded.slice(0, 16))
            }
          }
        }
      }))

    it.effect("the store never holds an id, a part of one, or a token", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const { session, token } = yield* sessions.issue("user-1", data)
        const id = Redacted.value(session.id)
        const rotated = yield* sessions.rotate(session)
        for (const part of [id.slice(22, 44), id.slice(44), Redacted.value(rotated.session.id).slice(44)]) {
          expect(session.key.session).not.toContain(part.slice(0, 12))
          const serialized = JSON.stringify(Option.getOrThrow(yield* store.fetch(session.key)))
          expect(serialized).not.toContain(part.slice(0, 12))
        }
        const serialized = JSON.stringify(Option.getOrThrow(yield* store.fetch(session.key)))
        expect(serialized).not.toContain(token.slice(token.indexOf(".") + 1, token.indexOf(".") + 13))
        // the lineage keeps its key when its id is renewed
        expect(rotated.session.key).toEqual(session.key)
      }).pipe(Effect.provide(TestLayer)))

    it.effect("a session printed or serialized does not reveal its id", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const { session } = yield* sessions.issue("user-1", data)
        const id = Redacted.value(session.id)
        expect(JSON.stringify(session)).not.toContain(id)
        expect(String(session.id)).not.toContain(id)
      }).pipe(Effect.provide(TestLayer)))
  })

  describe("undecodable data", () => {
    const undecodable: ReadonlyArray<readonly [string, unknown]> = [
      ["data of another shape", { something: "else" }],
      ["a field that fails its transformation", { csrf: "c", lastSeen: "2024-05-01T12:00:00.000Z", visits: "many" }],
      ["a field of the wrong encoded type", { csrf: "c", lastSeen: 1714564800000, visits: "1" }],
      ["the decoded form instead of the encoded one", { csrf: "c", lastSeen: new Date(0), visits: 1 }],
      ["null", null]
    ]
    for (const [name, garbage] of undecodable) {
      it.effect(`${name} in the store reads as NotFound, not a defect`, () =>
        Effect.gen(function*() {
          const sessions = yield* AppSession
          const store = yield* Store
          const auth = yield* Auth.Auth
          const { id, key, secret } = makeId(auth, AppSession.key, "user-1")
          const entry: Entry = makeEntry({
            userId: "user-1",
            createdAt: 0,
            expiresAt: ttlMillis,
            secret,
            data: garbage
          })
          expect(yield* store.save(key, entry, "create")).toBe(true)
          const exit = yield* Effect.exit(sessions.get(auth.sign(id, AppSession.key)))
          expect(Exit.isFailure(exit) && !Cause.isDie(exit.cause)).toBe(true)
          if (Exit.isFailure(exit)) {
            expect(Option.map(Cause.failureOption(exit.cause), (error) => error._tag)).toEqual(Option.some("NotFound"))
          }
        }).pipe(Effect.provide(TestLayer)))
    }

    it.effect("a live session whose stored data was overwritten reads as NotFound", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const store = yield* Store
        const { session, token } = yield* sessions.issue("user-1", data)
        const entry = Option.getOrThrow(yield* store.fetch(session.key))
        const overwritten = { ...entry, version: entry.version + 1, data: { csrf: 1 } }
        expect(yield* store.save(session.key, overwritten, "update")).toBe(true)
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
      }).pipe(Effect.provide(TestLayer)))
  })

  describe("bad tokens", () => {
    const expectBadSignature = (token: string, reason: "Malformed" | "Signature") =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const error = yield* Effect.flip(sessions.get(token))
        expect(error._tag).toBe("BadSignature")
        expect(error).toBeInstanceOf(Session.BadSignature)
        if (error._tag === "BadSignature") expect(error.reason).toBe(reason)
      })

    it.effect("tampered, truncated, wrong-key, empty, non-base64 and oversized tokens are BadSignature", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const { session, token } = yield* sessions.issue("user-1", data)
        const id = Redacted.value(session.id)
        const dot = token.indexOf(".")
        const flip = (i: number) => token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1)
        const wrongKey = yield* Auth.make({ keys: [otherKey()] })

        // The untouched token is valid, so every rejection below is caused by its alteration.
        expect((yield* sessions.get(token)).userId).toBe("user-1")
        yield* expectBadSignature(flip(0), "Signature")
        yield* expectBadSignature(flip(dot + 1), "Signature")
        yield* expectBadSignature(flip(token.length - 1), "Signature")
        yield* expectBadSignature(token.slice(0, -1), "Malformed")
        yield* expectBadSignature(token.slice(1), "Signature")
        yield* expectBadSignature(id, "Malformed")
        yield* expectBadSignature(wrongKey.sign(id, AppSession.key), "Signature")
        yield* expectBadSignature("", "Malformed")
        yield* expectBadSignature(`${id.replace(/^./, "+")}${token.slice(dot)}`, "Malformed")
        yield* expectBadSignature(`${id}.${"!".repeat(86)}`, "Malformed")
        yield* expectBadSignature(`${"A".repeat(10_240 - token.length)}${token}`, "Malformed")
        yield* expectBadSignature("x".repeat(10_240), "Malformed")
      }).pipe(Effect.provide(TestLayer)))

    it.effect("a token whose last signature character is a non-canonical variant is rejected", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const { token } = yield* sessions.issue("user-1", data)
        const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        const last = alphabet.indexOf(token[token.length - 1]!)
        // The last of the 86 signature characters carries 2 bits of the digest and 4 spare bits.
        const variant = token.slice(0, -1) + alphabet[last ^ 1]!
        const signature = (t: string) => Buffer.from(t.slice(t.indexOf(".") + 1), "base64url")
        expect(variant).not.toBe(token)
        expect(signature(variant)).toEqual(signature(token))
        yield* expectBadSignature(variant, "Signature")
      }).pipe(Effect.provide(TestLayer)))

    type Mutation =
      | { readonly kind: "flip"; readonly index: number; readonly bit: number }
      | { readonly kind: "truncate"; readonly keep: number }
      | { readonly kind: "dropPrefix"; readonly drop: number }
      | { readonly kind: "swapHalves"; readonly at: number }
      | { readonly kind: "insert"; readonly index: number; readonly text: string }

    const mutation: fc.Arbitrary<Mutation> = fc.oneof(
      fc.record({ kind: fc.constant("flip" as const), index: fc.nat(), bit: fc.integer({ min: 0, max: 15 }) }),
      fc.record({ kind: fc.constant("truncate" as const), keep: fc.nat() }),
      fc.record({ kind: fc.constant("dropPrefix" as const), drop: fc.nat() }),
      fc.record({ kind: fc.constant("swapHalves" as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant("insert" as const),
        index: fc.nat(),
        text: fc.string({ unit: "binary", minLength: 1, maxLength: 4 })
      })
    )

    const mutate = (token: string, m: Mutation): string => {
      const n = token.length
      switch (m.kind) {
        case "flip": {
          const i = m.index % n
          return token.slice(0, i) + String.fromCharCode(token.charCodeAt(i) ^ (1 << m.bit)) + token.slice(i + 1)
        }
        case "truncate":
          return token.slice(0, m.keep % n)
        case "dropPrefix":
          return token.slice(1 + (m.drop % n))
        case "swapHalves": {
          const at = 1 + (m.at % (n - 1))
          return token.slice(at) + token.slice(0, at)
        }
        case "insert": {
          const i = m.index % (n + 1)
          return token.slice(0, i) + m.text + token.slice(i)
        }
      }
    }

    describe("properties", () => {
      // One service for all runs (building layers per run would dominate the time). Memory-backed `get` is
      // synchronous, so each run is a `runSyncExit`: an exit, never a thrown exception.
      const runtime = ManagedRuntime.make(TestLayer)
      let token = ""
      beforeAll(() =>
        runtime.runPromise(Effect.flatMap(AppSession, (sessions) => sessions.issue("user-1", data))).then(
          (issued) => {
            token = issued.token
          }
        )
      )
      afterAll(() => runtime.dispose())

      const getExit = (input: string) => runtime.runSyncExit(Effect.flatMap(AppSession, (s) => s.get(input)))

      // `get` failed with BadSignature: never a success, another error or a defect.
      const expectBadSignature = (input: string) => {
        const exit = getExit(input)
        expect(Exit.isFailure(exit)).toBe(true)
        if (Exit.isFailure(exit)) {
          expect(Cause.isDie(exit.cause)).toBe(false)
          expect(Option.map(Cause.failureOption(exit.cause), (error) => error._tag)).toEqual(
            Option.some("BadSignature")
          )
        }
      }

      // Runs first: the valid token is then remembered as verified, so the properties below also check
      // that a remembered token lends nothing to its mutations.
      it("the unmutated token is valid (control)", () => {
        expect(Exit.isSuccess(getExit(token))).toBe(true)
      })

      it.prop("a mutated valid token is always BadSignature, never a defect", [mutation], ([m]) => {
        const mutated = mutate(token, m)
        expect(mutated).not.toBe(token)
        expectBadSignature(mutated)
      }, { fastCheck: { numRuns: 3000 } })

      it.prop(
        "an arbitrary string is always BadSignature, never a defect",
        [fc.string({ maxLength: 600 })],
        ([input]) => {
          expectBadSignature(input)
        },
        { fastCheck: { numRuns: 2000 } }
      )

      it.prop(
        "an arbitrary binary string is always BadSignature, never a defect",
        [fc.string({ unit: "binary", maxLength: 600 })],
        ([input]) => {
          expectBadSignature(input)
        },
        { fastCheck: { numRuns: 2000 } }
      )
    })
  })

  describe("key rotation", () => {
    const k1 = otherKey()
    const k2 = otherKey()

    it.scoped("a session issued under the old key is read after rotation and re-signed with the new key", () =>
      Effect.gen(function*() {
        // One store shared by the sessions service before and after the rotation.
        const store = Layer.succeed(Store, yield* Memory.make())
        const sessionsWith = (keys: ReadonlyArray<Redacted.Redacted<string>>) =>
          AppSession.pipe(Effect.provide(
            Session.layer(AppSession, { ttl }).pipe(
              Layer.provide(Layer.merge(store, Auth.layer({ keys })))
            )
          ))
        const before = yield* sessionsWith([k1])
        const after = yield* sessionsWith([k2, k1])
        const newOnly = yield* Auth.make({ keys: [k2] })
        const oldOnly = yield* Auth.make({ keys: [k1] })

        const { session, token } = yield* before.issue("user-1", data)
        const read = yield* after.get(token)
        expect(view(read)).toEqual(view(session))

        const resigned = after.token(read)
        expect(resigned).not.toBe(token)
        expect(yield* newOnly.verify(resigned, AppSession.key)).toEqual({ id: Redacted.value(session.id), keyIndex: 0 })
        expect((yield* Effect.flip(oldOnly.verify(resigned, AppSession.key))).reason).toBe("Signature")
        expect(view(yield* after.get(resigned))).toEqual(view(session))
        // Before the rotation reached it, a server with only the old key cannot read the new token.
        expect((yield* Effect.flip(before.get(resigned)))._tag).toBe("BadSignature")
      }))
  })

  describe("the in-process read (a store that holds its entries answers on the reading fiber)", () => {
    // The memory store answers reads without an effect of its own; a wrapper or a copy of it must still
    // have its own `fetch` run, or a test's switch that takes the store down would be bypassed.
    const outage = new StoreError({ reason: "Unavailable", message: "down" })
    const readThrough = (wrap: (store: Store["Type"]) => Store["Type"]) =>
      Effect.gen(function*() {
        const memory = yield* Memory.make()
        const sessionsOver = (store: Store["Type"]) =>
          AppSession.pipe(Effect.provide(
            Session.layer(AppSession, { ttl }).pipe(
              Layer.provide(Layer.merge(Layer.succeed(Store, store), Auth.layer({ keys: [key] })))
            )
          ))
        const key = otherKey()
        const { token } = yield* (yield* sessionsOver(memory)).issue("user-1", data)
        // read once straight from the memory store, so the token is known verified to both services
        expect((yield* (yield* sessionsOver(memory)).get(token)).userId).toBe("user-1")
        return yield* Effect.either((yield* sessionsOver(wrap(memory))).get(token))
      })

    it.scoped("a Store.around wrapper of the memory store is never bypassed", () =>
      Effect.gen(function*() {
        const read = yield* readThrough((store) =>
          around(store, (op, effect) => op === "fetch" ? Effect.fail(outage) : effect)
        )
        expect(Either.isLeft(read) && read.left._tag).toBe("StoreError")
      }))

    it.scoped("a copy of the memory store with a fetch of its own is read through that fetch", () =>
      Effect.gen(function*() {
        const read = yield* readThrough((store) => ({ ...store, fetch: () => Effect.fail(outage) }))
        expect(Either.isLeft(read) && read.left._tag).toBe("StoreError")
      }))

    it.scoped("the memory store itself answers, and judges expiry by the reading fiber's clock", () =>
      Effect.gen(function*() {
        const read = yield* readThrough((store) => store)
        expect(Either.isRight(read) && read.right.userId).toBe("user-1")
        const sessions = yield* AppSession.pipe(Effect.provide(TestLayer))
        const { token } = yield* sessions.issue("user-2", data)
        yield* TestClock.adjust(Duration.sum(ttl, "1 second"))
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("Expired")
      }))
  })

  describe("verified tokens", () => {
    // The real signer, with its verifications counted: the service remembers tokens whose signature
    // verified, so a token seen before must not be verified again, and anything else must be.
    const counted = (options: Session.Options) =>
      Effect.gen(function*() {
        const auth = yield* Auth.make({ keys: [otherKey()] })
        const calls = { verify: 0 }
        const counting = Auth.Auth.of({
          sign: auth.sign,
          fingerprint: auth.fingerprint,
          verify: (token, domain) => {
            calls.verify++
            return auth.verify(token, domain)
          }
        })
        const store = yield* Memory.make({ sweepInterval: "30 days" })
        const sessions = yield* Session.make(AppSession.data, { ttl, ...options }).pipe(
          Effect.provideService(Auth.Auth, counting),
          Effect.provideService(Store, store)
        )
        return { sessions, calls, store }
      })

    it.scoped("a token's signature is verified once; later reads of it only ask the store", () =>
      Effect.gen(function*() {
        const { calls, sessions } = yield* counted({})
        const { session, token } = yield* sessions.issue("user-1", data)
        for (let i = 0; i < 5; i++) expect(view(yield* sessions.get(token))).toEqual(view(session))
        expect(calls.verify).toBe(1)
        // validity is not remembered: the store is asked, and a cleared session is refused at once
        yield* sessions.clear(session)
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
        expect(calls.verify).toBe(1)
      }))

    it.scoped("forged tokens are verified on every attempt and never remembered", () =>
      Effect.gen(function*() {
        const { calls, sessions } = yield* counted({})
        const { token } = yield* sessions.issue("user-1", data)
        yield* sessions.get(token)
        const forged = token.slice(0, -1) + (token.endsWith("A") ? "B" : "A")
        for (let i = 0; i < 3; i++) expect((yield* Effect.flip(sessions.get(forged)))._tag).toBe("BadSignature")
        expect(calls.verify).toBe(4)
      }))

    it.scoped("verifiedTokenCache: 0 verifies every read", () =>
      Effect.gen(function*() {
        const { calls, sessions } = yield* counted({ verifiedTokenCache: 0 })
        const { token } = yield* sessions.issue("user-1", data)
        for (let i = 0; i < 3; i++) yield* sessions.get(token)
        expect(calls.verify).toBe(3)
      }))

    it.scoped("the cache is bounded: past its capacity the oldest token is verified again, and still valid", () =>
      Effect.gen(function*() {
        const { calls, sessions } = yield* counted({ verifiedTokenCache: 2 })
        const tokens = yield* Effect.forEach(
          ["a", "b", "c"],
          (user) => Effect.map(sessions.issue(user, data), ({ token }) => token)
        )
        for (const token of tokens) yield* sessions.get(token) // a, b, c: 3 verifications; a leaves
        expect(calls.verify).toBe(3)
        yield* sessions.get(tokens[2]!) // still remembered
        expect(calls.verify).toBe(3)
        expect((yield* sessions.get(tokens[0]!)).userId).toBe("a") // verified again
        expect(calls.verify).toBe(4)
      }))

    it.effect("a cache size that is not a whole number, 0 or more, fails the layer with InvalidOptions", () =>
      Effect.gen(function*() {
        const ports = Layer.merge(Memory.layer(), Auth.layer({ keys: [otherKey()] }))
        for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          const error = yield* Effect.flip(
            AppSession.pipe(
              Effect.provide(Session.layer(AppSession, { verifiedTokenCache: bad }).pipe(Layer.provide(ports)))
            )
          )
          expect(error._tag).toBe("InvalidOptions")
        }
      }))
  })

  describe("options", () => {
    it.effect("a lifetime that is not a positive, finite duration fails the layer with InvalidOptions", () =>
      Effect.gen(function*() {
        const ports = Layer.merge(Memory.layer(), Auth.layer({ keys: [otherKey()] }))
        for (const bad of [Duration.zero, Duration.infinity, Duration.nanos(1n)]) {
          const error = yield* Effect.flip(
            AppSession.pipe(Effect.provide(Session.layer(AppSession, { ttl: bad }).pipe(Layer.provide(ports))))
          )
          expect(error._tag).toBe("InvalidOptions")
        }
        const sessions = yield* AppSession.pipe(
          Effect.provide(Session.layer(AppSession, { ttl: Duration.millis(1) }).pipe(Layer.provide(ports)))
        )
        expect(Duration.toMillis(sessions.ttl)).toBe(1)
      }))
  })

  describe("data encoding", () => {
    class Loose extends Session.Tag<Loose>()("test/Loose", {
      data: Schema.Struct({ note: Schema.optional(Schema.Unknown) })
    }) {}

    it.effect("stores the JSON form of the encoded data, so every backend returns the same value", () =>
      Effect.gen(function*() {
        const sessions = yield* Loose
        const { session, token } = yield* sessions.issue("u1", { note: { at: new Date(0), gone: undefined } })
        const entry = yield* Effect.flatMap(Store, (store) => store.fetch(session.key))
        expect(Option.getOrThrow(entry).data).toEqual({ note: { at: "1970-01-01T00:00:00.000Z" } })
        expect((yield* sessions.get(token)).data).toStrictEqual({ note: { at: "1970-01-01T00:00:00.000Z" } })
      }).pipe(Effect.provide(SessionsTest.layer(Loose))))

    it.effect("data whose encoded form is not JSON is a defect", () =>
      Effect.gen(function*() {
        const sessions = yield* Loose
        const exit = yield* Effect.exit(sessions.issue("u1", { note: 1n }))
        expect(Exit.isFailure(exit) && Cause.isDie(exit.cause)).toBe(true)
        expect(String(Exit.isFailure(exit) && Cause.squash(exit.cause))).toContain("JSON")
      }).pipe(Effect.provide(SessionsTest.layer(Loose))))
  })

  describe("layerConfig", () => {
    const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))
    const ports = Layer.merge(Memory.layer({ sweepInterval: "30 days" }), Auth.layer({ keys: [otherKey()] }))

    it.effect("reads the lifetime from SESSION_TTL", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        expect(Duration.toMillis(sessions.ttl)).toBe(Duration.toMillis("90 minutes"))
        yield* TestClock.adjust("1 minute")
        const { session, token } = yield* sessions.issue("user-1", data)
        expect(session.expiresAt.epochMillis).toBe(Duration.toMillis("91 minutes"))
        yield* TestClock.adjust("90 minutes")
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("Expired")
      }).pipe(
        Effect.provide(Session.layerConfig(AppSession).pipe(Layer.provide(ports))),
        withEnv([["SESSION_TTL", "90 minutes"]])
      ))

    it.effect("defaults to 3 days without SESSION_TTL", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        expect(Duration.toMillis(sessions.ttl)).toBe(Duration.toMillis(Session.defaultTtl))
        expect(Duration.toMillis(sessions.ttl)).toBe(Duration.toMillis("3 days"))
      }).pipe(Effect.provide(Session.layerConfig(AppSession).pipe(Layer.provide(ports))), withEnv([])))

    it.effect("an invalid SESSION_TTL is a ConfigError naming it", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          AppSession.pipe(Effect.provide(Session.layerConfig(AppSession).pipe(Layer.provide(ports))))
        )
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(String(error)).toContain("SESSION_TTL")
      }).pipe(withEnv([["SESSION_TTL", "soon"]])))

    it.effect("a SESSION_TTL that is not a positive duration is a ConfigError naming it", () =>
      Effect.gen(function*() {
        for (const value of ["0 seconds", "Infinity"]) {
          const error = yield* Effect.flip(
            AppSession.pipe(
              Effect.provide(Session.layerConfig(AppSession).pipe(Layer.provide(ports))),
              withEnv([["SESSION_TTL", value]])
            )
          )
          expect(ConfigError.isConfigError(error)).toBe(true)
          expect(String(error)).toContain("SESSION_TTL")
        }
      }))

    it.effect("reads the per-user cap from SESSION_MAX_PER_USER and the renewal grace from SESSION_RENEWAL_GRACE", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        const issued = yield* Effect.forEach([1, 2, 3], () => sessions.issue("user-1", data))
        expect((yield* sessions.list("user-1")).length).toBe(2)
        // renewal after 10 minutes; the replaced token reads for 5 seconds
        const { token } = issued[2]!
        yield* TestClock.adjust("10 minutes")
        const renewed = yield* sessions.resolve(token)
        expect(renewed.token).toBeDefined()
        yield* TestClock.adjust("4 seconds")
        expect((yield* sessions.get(token)).userId).toBe("user-1")
        yield* TestClock.adjust("1 second")
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
      }).pipe(
        Effect.provide(Session.layerConfig(AppSession).pipe(Layer.provide(ports))),
        withEnv([
          ["SESSION_MAX_PER_USER", "2"],
          ["SESSION_RENEWAL_INTERVAL", "10 minutes"],
          ["SESSION_RENEWAL_GRACE", "5 seconds"]
        ])
      ))

    it.effect("a SESSION_MAX_PER_USER that is not a whole number of at least 1 is a ConfigError naming it", () =>
      Effect.gen(function*() {
        for (const value of ["0", "-3", "many", "2.5"]) {
          const error = yield* Effect.flip(
            AppSession.pipe(
              Effect.provide(Session.layerConfig(AppSession).pipe(Layer.provide(ports))),
              withEnv([["SESSION_MAX_PER_USER", value]])
            )
          )
          expect(ConfigError.isConfigError(error)).toBe(true)
          expect(String(error)).toContain("SESSION_MAX_PER_USER")
        }
      }))

    it.effect("accepts a custom config", () =>
      Effect.gen(function*() {
        const sessions = yield* AppSession
        expect(Duration.toMillis(sessions.ttl)).toBe(Duration.toMillis("2 hours"))
      }).pipe(
        Effect.provide(
          Session.layerConfig(AppSession, { ttl: Config.duration("APP_SESSION_TTL") }).pipe(Layer.provide(ports))
        ),
        withEnv([["APP_SESSION_TTL", "2 hours"]])
      ))
  })

  describe("errors", () => {
    it.effect("rejections answer 401 and store failures 503", () =>
      Effect.gen(function*() {
        const rejections = [
          new Session.NotFound(),
          new Session.Expired(),
          new Session.BadSignature({ reason: "Malformed" })
        ]
        for (const error of rejections) {
          expect(Session.isRejected(error)).toBe(true)
          expect((yield* HttpServerRespondable.toResponse(error)).status).toBe(401)
        }
        const storeError = new Session.StoreError({ reason: "Unavailable", message: "down" })
        expect(Session.isRejected(storeError)).toBe(false)
        const unavailable = yield* HttpServerRespondable.toResponse(storeError)
        expect(unavailable.status).toBe(503)
        expect(unavailable.headers["retry-after"]).toBe("1")
      }))
  })
})
