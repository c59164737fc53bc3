/**
 * Races over real HTTP (a Node server on a loopback port, `NodeHttpServer.layerTest`), on every backend
 * (test/support/backends.ts): an attacker who keeps a stolen session alive by renewing its id, against
 * the victim's "log out everywhere" (issue 10, item 1).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as HttpClient from "@effect/platform/HttpClient"
import type * as HttpClientResponse from "@effect/platform/HttpClientResponse"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServer from "@effect/platform/HttpServer"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer, Redacted, Schema } from "effect"
import * as Crypto from "node:crypto"
import * as Auth from "../../src/Auth.js"
import * as SessionHttp from "../../src/layers/Http.js"
import * as Session from "../../src/Session.js"
import { Store } from "../../src/Store.js"
import * as Transport from "../../src/Transport.js"
import { backends } from "../support/backends.js"

class AppSession extends Session.Tag<AppSession>()("test/HttpRaces/AppSession", {
  data: Schema.Struct({ n: Schema.Number })
}) {}

const AppHttp = SessionHttp.make(AppSession)

const app = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/login/:user",
    Effect.gen(function*() {
      const { user } = yield* HttpRouter.params
      yield* AppHttp.issue(user!, { n: 0 })
      return HttpServerResponse.text("in")
    })
  ),
  HttpRouter.get("/me", Effect.map(AppHttp.require, (session) => HttpServerResponse.text(session.userId))),
  // an endpoint that renews the id on every call, as a privilege change does
  HttpRouter.get(
    "/rotate",
    Effect.gen(function*() {
      yield* AppHttp.rotate(yield* AppHttp.require)
      return HttpServerResponse.text("rotated")
    })
  ),
  HttpRouter.get(
    "/logout-all",
    Effect.gen(function*() {
      return HttpServerResponse.text(String(yield* AppHttp.clearAll(yield* AppHttp.require)))
    })
  )
)

const cookieName = "session"

const tokenSet = (response: HttpClientResponse.HttpClientResponse): string | undefined => {
  const header = response.headers["set-cookie"] as string | ReadonlyArray<string> | undefined
  const lines = header === undefined ? [] : typeof header === "string" ? [header] : header
  const line = lines.find((l) => l.startsWith(`${cookieName}=`))
  const value = line?.slice(cookieName.length + 1, line.indexOf(";"))
  return value === undefined || value === "" ? undefined : value
}

const request = (path: string, token: string) =>
  HttpClient.get(path, { headers: { cookie: `${cookieName}=${token}` } }).pipe(Effect.scoped)

const login = (user: string) =>
  Effect.flatMap(HttpClient.get(`/login/${user}`).pipe(Effect.scoped), (response) => {
    expect(response.status).toBe(200)
    return Effect.succeed(tokenSet(response)!)
  })

for (const backend of backends().all) {
  describe(`on ${backend.name}`, () => {
    it.live(
      "an attacker renewing a stolen session's id never outlives the victim's log out everywhere (60 trials)",
      () =>
        Effect.gen(function*() {
          const store = yield* backend.store
          const server = HttpServer.serve(app, AppHttp.middleware).pipe(
            Layer.provideMerge(NodeHttpServer.layerTest),
            Layer.provide(Session.layer(AppSession, { ttl: "1 hour" })),
            Layer.provide(Layer.succeed(Store, store)),
            Layer.provide(Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })),
            Layer.provide(Transport.layerCookie({ secure: false, name: cookieName }))
          )
          yield* Effect.gen(function*() {
            let survived = 0
            let rotations = 0
            for (let trial = 0; trial < 60; trial++) {
              const user = `victim-${Crypto.randomUUID()}`
              const victim = yield* login(user)
              // the attacker holds a copy of another of the victim's sessions
              let stolen = yield* login(user)
              const seen: Array<string> = [stolen]
              let stop = false
              const renewed = yield* Deferred.make<void>()
              const attacker = yield* Effect.fork(Effect.gen(function*() {
                while (!stop) {
                  const response = yield* request("/rotate", stolen)
                  if (response.status !== 200) return
                  const next = tokenSet(response)
                  if (next !== undefined) {
                    stolen = next
                    seen.push(next)
                    rotations++
                    yield* Deferred.succeed(renewed, undefined)
                  }
                }
              }))
              // The victim logs out once the attacker has renewed its stolen id at least once (so that on a
              // loaded machine too, every trial races a renewing attacker), at a random moment of the renewals
              // that follow.
              yield* Effect.raceFirst(Deferred.await(renewed), Fiber.await(attacker))
              yield* Effect.sleep(Crypto.randomInt(1, 6))
              const out = yield* request("/logout-all", victim)
              expect(out.status).toBe(200)
              // whatever the attacker holds once its requests in flight are answered
              stop = true
              yield* Fiber.join(attacker)
              for (const token of seen) {
                if ((yield* request("/me", token)).status === 200) survived++
              }
              expect((yield* request("/me", victim)).status).toBe(401)
            }
            expect(survived).toBe(0)
            // the attacker really renewed its ids, and went on renewing them while the victim logged out
            expect(rotations).toBeGreaterThan(60)
          }).pipe(Effect.provide(server))
        }).pipe(Effect.scoped),
      120_000
    )
  })
}
