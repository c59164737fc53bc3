/**
 * layers/Config: the whole stack from environment variables (through a ConfigProvider, as the
 * environment would give them), on the in-memory store and on a real Redis.
 */
import { describe, expect, it } from "@effect/vitest"
import { ConfigError, ConfigProvider, Context, Effect, Layer, Option, Schema } from "effect"
import { Redis } from "ioredis"
import * as Auth from "../../src/Auth.js"
import * as SessionsConfig from "../../src/layers/Config.js"
import * as Session from "../../src/Session.js"
import { Store } from "../../src/Store.js"
import { makeEntry } from "../../src/testing/StoreContract.js"
import * as Transport from "../../src/Transport.js"
import { startRedis } from "../support/redis.js"

class AppSession extends Session.Tag<AppSession>()("test/ConfigStack", {
  data: Schema.Struct({ n: Schema.Number })
}) {}

const key = Auth.randomId(48)

const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
  Layer.setConfigProvider(ConfigProvider.fromMap(new Map(entries)))

const stack = (entries: ReadonlyArray<readonly [string, string]>) =>
  SessionsConfig.layer(AppSession).pipe(Layer.provide(withEnv(entries)))

const roundTrip = Effect.gen(function*() {
  const sessions = yield* AppSession
  const { token } = yield* sessions.issue("u1", { n: 1 })
  return yield* sessions.get(token)
})

const configError = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.flip(Effect.provide(roundTrip, stack(entries)))

describe("layers/Config", () => {
  it.scoped("builds the whole stack on the in-memory store from SESSION_KEYS alone", () =>
    Effect.gen(function*() {
      const session = yield* roundTrip
      expect(session.userId).toBe("u1")
      const sessions = yield* AppSession
      expect(sessions.ttl).toEqual(Session.defaultTtl)
      const transport = yield* Transport.Transport
      const response = transport.write(
        // any response: the cookie transport is the default
        (yield* Effect.promise(() => import("@effect/platform/HttpServerResponse"))).empty(),
        "t",
        Date.now() + 1000,
        Date.now()
      )
      expect(Object.keys(response.cookies.cookies)).toEqual(["sid"])
    }).pipe(Effect.provide(stack([["SESSION_KEYS", key], ["SESSION_TTL", "3 days"], ["COOKIE_NAME", "sid"]]))))

  it.scoped("reads the lifecycle options", () =>
    Effect.gen(function*() {
      const sessions = yield* AppSession
      expect(sessions.ttl).toEqual(Session.defaultTtl)
      const { session } = yield* sessions.issue("u1", { n: 1 })
      // the absolute lifetime caps the expiry
      expect(session.expiresAt.epochMillis - session.createdAt.epochMillis).toBe(60 * 60 * 1000)
    }).pipe(Effect.provide(stack([["SESSION_KEYS", key], ["SESSION_ABSOLUTE_LIFETIME", "1 hour"]]))))

  it.scoped("SESSION_TRANSPORT=header uses the header transport", () =>
    Effect.gen(function*() {
      const transport = yield* Transport.Transport
      const HttpServerRequest = yield* Effect.promise(() => import("@effect/platform/HttpServerRequest"))
      const request = HttpServerRequest.fromWeb(new Request("http://localhost/", { headers: { "x-token": "abc" } }))
      expect(transport.read(request)).toEqual(["abc"])
    }).pipe(
      Effect.provide(stack([["SESSION_KEYS", key], ["SESSION_TRANSPORT", "header"], ["SESSION_HEADER", "x-token"]]))
    ))

  // real time: Redis expires keys by its own clock, which TestClock's epoch 0 would put in 1970
  it.live("uses Redis when REDIS_URL is set, under REDIS_PREFIX", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* startRedis()
      const prefix = `config-test-${Auth.randomId(6)}:`
      const session = yield* Effect.provide(
        roundTrip,
        stack([["SESSION_KEYS", key], ["REDIS_URL", server.url], ["REDIS_PREFIX", prefix]])
      )
      const client = new Redis(server.port, "127.0.0.1", { lazyConnect: true })
      yield* Effect.acquireRelease(Effect.promise(() => client.connect()), () => Effect.promise(() => client.quit()))
      // one hash per user, a field per session
      expect(yield* Effect.promise(() => client.keys(`${prefix}*`))).toEqual([`${prefix}{${session.key.user}}`])
      expect(yield* Effect.promise(() => client.hlen(`${prefix}{${session.key.user}}`))).toBe(1)
    })), { timeout: 30_000 })

  it.effect("bad configuration fails at startup with an error naming the variable", () =>
    Effect.gen(function*() {
      const cases: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, string]>]> = [
        ["SESSION_KEYS", []],
        ["SESSION_KEYS", [["SESSION_KEYS", "short"]]],
        ["SESSION_TTL", [["SESSION_KEYS", key], ["SESSION_TTL", "soon"]]],
        ["SESSION_IDLE_TIMEOUT", [["SESSION_KEYS", key], ["SESSION_IDLE_TIMEOUT", "0 seconds"]]],
        ["SESSION_ROLLING", [["SESSION_KEYS", key], ["SESSION_ROLLING", "sometimes"]]],
        ["COOKIE_SAMESITE", [["SESSION_KEYS", key], ["COOKIE_SAMESITE", "loose"]]],
        ["SESSION_TRANSPORT", [["SESSION_KEYS", key], ["SESSION_TRANSPORT", "pigeon"]]],
        ["REDIS_COMMAND_TIMEOUT", [["SESSION_KEYS", key], ["REDIS_URL", "redis://127.0.0.1:1"], [
          "REDIS_COMMAND_TIMEOUT",
          "never"
        ]]]
      ]
      for (const [variable, entries] of cases) {
        const error = yield* configError(entries)
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(String(error)).toContain(variable)
        expect(String(error)).not.toContain(key)
      }
    }))

  it.live("an unreachable REDIS_URL fails the layer with a StoreError naming the address, not the password", () =>
    Effect.gen(function*() {
      const error = yield* configError([
        ["SESSION_KEYS", key],
        ["REDIS_URL", "redis://:hunter2hunter2@127.0.0.1:1"],
        ["REDIS_CONNECT_TIMEOUT", "2 seconds"]
      ])
      expect(error._tag).toBe("StoreError")
      expect(String(error.message)).toContain("127.0.0.1:1")
      expect(JSON.stringify(error)).not.toContain("hunter2")
    }))

  describe("layerStore", () => {
    const storeFrom = (entries: ReadonlyArray<readonly [string, string]>) =>
      Layer.build(SessionsConfig.layerStore).pipe(
        Effect.map(Context.get(Store)),
        Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))
      )
    const entry = makeEntry({ expiresAt: Date.UTC(2100, 0, 1) })

    it.scoped("the in-memory store refuses when full by default, and SESSION_MEMORY_WHEN_FULL changes that", () =>
      Effect.gen(function*() {
        const refusing = yield* storeFrom([["SESSION_MEMORY_CAPACITY", "1"]])
        expect(yield* refusing.save({ user: "u", session: "a" }, entry, "create")).toBe(true)
        expect((yield* Effect.flip(refusing.save({ user: "v", session: "b" }, entry, "create"))).reason).toBe(
          "Capacity"
        )
        const evicting = yield* storeFrom([["SESSION_MEMORY_CAPACITY", "1"], [
          "SESSION_MEMORY_WHEN_FULL",
          "evictOldest"
        ]])
        expect(yield* evicting.save({ user: "u", session: "a" }, entry, "create")).toBe(true)
        expect(yield* evicting.save({ user: "v", session: "b" }, entry, "create")).toBe(true)
        expect(yield* evicting.fetch({ user: "u", session: "a" })).toEqual(Option.none())
        const error = yield* Effect.flip(storeFrom([["SESSION_MEMORY_WHEN_FULL", "never"]]))
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(String(error)).toContain("SESSION_MEMORY_WHEN_FULL")
      }))

    // Fails on the pre-fix code (f4cef2e): the URL went to ioredis as it was, and a malformed one was a
    // StoreError of a failed connection attempt, or a defect.
    it.live("a malformed REDIS_URL is a ConfigError naming the variable, without the URL or its password", () =>
      Effect.gen(function*() {
        for (const url of ["not a url", "http://x", "redis://:hunter2hunter2@host:notaport"]) {
          const error = yield* Effect.flip(Effect.scoped(storeFrom([["REDIS_URL", url]])))
          expect(ConfigError.isConfigError(error), url).toBe(true)
          expect(String(error)).toContain("REDIS_URL")
          expect(String(error)).not.toContain(url)
          expect(JSON.stringify(error)).not.toContain("hunter2")
        }
      }))

    it.live(
      "REDIS_WAIT_REPLICAS makes revocations wait for replicas (none here: they time out)",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const server = yield* startRedis()
          const store = yield* storeFrom([
            ["REDIS_URL", server.url],
            ["REDIS_WAIT_REPLICAS", "1"],
            ["REDIS_WAIT_TIMEOUT", "100 millis"]
          ])
          const key = { user: "u", session: "s" }
          expect(yield* store.save(key, entry, "create")).toBe(true)
          const error = yield* Effect.flip(store.deleteUser("u"))
          expect(error.reason).toBe("Timeout")
          expect(yield* store.fetch(key)).toEqual(Option.none())
        })),
      { timeout: 30_000 }
    )
  })
})
