/**
 * Ready-made layers for the unit tests of applications that use sessions: the in-memory store, a fresh
 * random signing key and the cookie transport (not `Secure`, so plain-http test clients send it back),
 * with no configuration to read.
 *
 * ```ts
 * it.effect("logs in", () =>
 *   Effect.gen(function*() {
 *     const { token } = yield* (yield* AppSession).issue("u1", { csrf: "x" })
 *     // ...
 *   }).pipe(Effect.provide(SessionsTest.layer(AppSession))))
 * ```
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Auth from "../Auth.js"
import * as Session from "../Session.js"
import type { Store } from "../Store.js"
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
 * The sessions service declared by `tag` with everything it and the HTTP middleware need. Each build
 * gets a new empty store and a new key.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <Self, A, I>(
  tag: Session.SessionsTag<Self, A, I>,
  options: Options = {}
): Layer.Layer<Self | Store | Auth.Auth | Transport.Transport> => {
  const ports = Layer.mergeAll(
    Memory.layer(options.memory),
    Layer.orDie(Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })),
    Layer.orDie(Transport.layerCookie({ secure: false, ...options.cookie }))
  )
  return Layer.provideMerge(Session.layer(tag, options), ports)
}
