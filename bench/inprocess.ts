/**
 * The request path without sockets: the apps of bench/app.ts run in-process through
 * `HttpApp.toWebHandlerRuntime` (the same `toHandled` wrapper, server span included, that the Node server
 * uses), one request at a time, so the cost of the session middleware can be read per request without the
 * noise of TCP, autocannon and a second process. Variants take one thing away at a time, through public
 * options or a bench-written middleware, to show what each costs.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Auth from "../src/Auth.js"
import * as Memory from "../src/layers/Memory.js"
import * as Session from "../src/Session.js"
import { Store } from "../src/Store.js"
import * as Transport from "../src/Transport.js"
import { baseRouter, BenchHttp, BenchSession, sessionRouter } from "./app.js"
import { promiseRound, type Round } from "./support.js"

/** The ports and the sessions service, with the ports also exposed for the bench-written middleware. */
const ports = (options: Session.Options) =>
  Session.layer(BenchSession, options).pipe(
    Layer.provideMerge(Layer.mergeAll(
      Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }),
      Memory.layer(),
      Transport.layerCookie({ secure: false })
    ))
  )

/**
 * The least a session check can do on this request path: read the cookie, verify it, hash the id, fetch
 * the entry in one Effect, check the expiry, decode the data, build the same `Session` object, provide
 * it. No metrics, no span annotation, no nested generators.
 */
const leanMiddleware = (auth: Auth.AuthService, store: Store["Type"]) => {
  const decode = Schema.decodeUnknownEither(BenchSession.data)
  const none = Option.none<Session.Session<{ readonly csrf: string }>>()
  return <E, R>(app: HttpApp.Default<E, R>) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const token = request.cookies[Transport.defaultCookieName]
      const verified = token === undefined ? undefined : auth.verify(token)
      const key = verified === undefined || Either.isLeft(verified) ? undefined : Session.storeKey(verified.right.id)
      if (key === undefined) return Effect.provideService(app, BenchSession.Current, none)
      return Effect.flatMap(store.fetch(key), (stored) => {
        const entry = Option.getOrUndefined(stored)
        const data = entry === undefined || Date.now() >= entry.expiresAt ? undefined : decode(entry.data)
        if (entry === undefined || data === undefined || Either.isLeft(data)) {
          return Effect.provideService(app, BenchSession.Current, none)
        }
        const session: Session.Session<{ readonly csrf: string }> = {
          id: Redacted.make((verified as Either.Right<never, Auth.Verified>).right.id),
          key,
          userId: entry.userId,
          createdAt: DateTime.unsafeMake(entry.createdAt),
          renewedAt: DateTime.unsafeMake(entry.renewedAt),
          expiresAt: DateTime.unsafeMake(entry.expiresAt),
          lastSeenAt: DateTime.unsafeMake(entry.lastSeenAt),
          userAgent: entry.userAgent,
          address: entry.address,
          data: data.right
        }
        return Effect.provideService(app, BenchSession.Current, Option.some(session))
      })
    })
}

export interface Variant {
  readonly name: string
  readonly run: (duration: Duration.Duration) => Effect.Effect<Round>
}

/** Builds every variant's handler (scoped) and checks that each answers `/check` with 200 `u1`. */
export const variants = Effect.gen(function*() {
  const handler = (router: HttpRouter.HttpRouter<unknown, unknown>, options: Session.Options, lean = false) =>
    Effect.gen(function*() {
      const runtime = yield* Layer.toRuntime(ports(options))
      const app = yield* HttpRouter.toHttpApp(router)
      const middleware = lean
        ? leanMiddleware(yield* Effect.provide(Auth.Auth, runtime), yield* Effect.provide(Store, runtime))
        : BenchHttp.middleware
      const handle = HttpApp.toWebHandlerRuntime(runtime)(
        app as HttpApp.Default<unknown, never>,
        router === baseRouter ? undefined : middleware as never
      )
      // the session this variant's requests carry
      const issued = yield* Effect.provide(BenchSession, runtime).pipe(
        Effect.flatMap((sessions) => sessions.issue("u1", { csrf: Auth.randomId(16) }))
      )
      const cookie = `${Transport.defaultCookieName}=${issued.token}`
      const request = () => new Request("http://127.0.0.1/check", { headers: { cookie } })
      const check = yield* Effect.promise(async () => {
        const response = await handle(request())
        return `${response.status} ${await response.text()}`
      })
      if (check !== "200 u1") return yield* Effect.dieMessage(`in-process /check answered ${check}`)
      return () => handle(request()).then((response) => response.arrayBuffer())
    })
  const list: Array<readonly [string, () => Promise<unknown>]> = [
    ["base (no session middleware)", yield* handler(baseRouter as never, {})],
    ["session, as shipped (metrics on)", yield* handler(sessionRouter as never, {})],
    ["session, `metrics: false`", yield* handler(sessionRouter as never, { metrics: false })],
    ["session, lean bench middleware (floor)", yield* handler(sessionRouter as never, {}, true)]
  ]
  return list.map(([name, run]): Variant => ({ name, run: (duration) => promiseRound(run, 1, duration) }))
})
