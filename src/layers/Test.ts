/**
 * Ready-made layers for the unit tests of applications that use sessions: the in-memory store, a fresh
 * random signing key and the cookie transport (not `Secure`, so plain-http test clients send it back, and
 * therefore named `session`, not `__Host-session`), with no configuration to read; and a switch that takes the store down, to test what an application does
 * during a store outage.
 *
 * ```ts
 * import { expect, it } from "@effect/vitest"
 * import { Effect, Schema } from "effect"
 * import * as SessionsTest from "effect-sessions/layers/Test"
 * import * as Session from "effect-sessions/Session"
 *
 * class AppSession extends Session.Tag<AppSession>()("app/Session", { data: Schema.Struct({ csrf: Schema.String }) }) {}
 *
 * it.effect("logs in", () =>
 *   Effect.gen(function*() {
 *     const sessions = yield* AppSession
 *     const { token } = yield* sessions.issue("u1", { csrf: "x" })
 *     expect((yield* sessions.get(token)).userId).toBe("u1")
 *   }).pipe(Effect.provide(SessionsTest.layer(AppSession))))
 * ```
 *
 * @since 0.1.0
 * @module
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Auth from "../Auth.js"
import * as Session from "../Session.js"
import { around, Store, StoreError } from "../Store.js"
import * as Transport from "../Transport.js"
import * as Memory from "./Memory.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface Options extends Session.Options {
  readonly memory?: Memory.Options | undefined
  readonly cookie?: Transport.CookieOptions | undefined
}

/**
 * Takes the test store down and brings it back. While it is down, every store operation fails with
 * `StoreError` (reason `Unavailable`), as a real backend does when it cannot be reached.
 *
 * @since 0.1.0
 * @category tags
 */
export class Outage extends Context.Tag("effect-sessions/Test/Outage")<Outage, {
  readonly start: Effect.Effect<void>
  readonly end: Effect.Effect<void>
}>() {}

const down = new StoreError({ reason: "Unavailable", message: "the test store is down (Outage.start)" })

const layerStore = (options: Memory.Options | undefined): Layer.Layer<Store | Outage> =>
  Layer.scopedContext(Effect.gen(function*() {
    let isDown = false
    const store = around(
      yield* Memory.make(options),
      (_, effect) => Effect.suspend(() => isDown ? Effect.fail(down) : effect)
    )
    const outage = Outage.of({
      start: Effect.sync(() => {
        isDown = true
      }),
      end: Effect.sync(() => {
        isDown = false
      })
    })
    return Context.make(Store, store).pipe(Context.add(Outage, outage))
  }))

/**
 * The sessions service declared by `tag` with everything it and the HTTP middleware need, and the
 * `Outage` switch of its store. Each build gets a new empty store and a new key.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Self, A, I>(
  tag: Session.SessionsTag<Self, A, I>,
  options: Options = {}
): Layer.Layer<Self | Store | Outage | Auth.Auth | Transport.Transport> => {
  const ports = Layer.mergeAll(
    layerStore(options.memory),
    Layer.orDie(Layer.suspend(() => Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }))),
    Layer.orDie(Transport.layerCookie({ secure: false, ...options.cookie }))
  )
  return Layer.provideMerge(Layer.orDie(Session.layer(tag, options)), ports)
}
