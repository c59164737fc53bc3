/**
 * The application the HTTP benchmark serves, in `base` and `session` mode: its routes and layers. The
 * server program (bench/http-server.ts) serves them over Node's HTTP server; bench/micro.ts runs the same
 * apps in-process, without sockets.
 *
 * - `GET /issue` — `session` mode: issues a session for user `u1` with `{ csrf: <22 chars> }` and sets the
 *   cookie (`SessionHttp.make(tag).issue`). `base` mode: sets a cookie of the same shape and length that
 *   nothing will read, so both modes receive the same request bytes.
 * - `GET /check` — `session` mode: 200 `u1` for a valid session (the session middleware and `require`),
 *   401 otherwise. `base` mode: 200 `u1` without reading anything.
 * - `floor` mode: the `session` routes behind {@link constantSession} instead of the session middleware;
 *   `floor-vary` behind {@link constantSessionWithVary}.
 * - `GET /span` — `span` or `none`: whether the request runs inside a span, so the harness can check
 *   that a disabled tracer really is. Never measured.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Config from "effect/Config"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as FiberRef from "effect/FiberRef"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Auth from "../src/Auth.js"
import { privateResponse } from "../src/internal/transport.js"
import * as SessionHttp from "../src/layers/Http.js"
import * as Memory from "../src/layers/Memory.js"
import * as RedisStore from "../src/layers/Redis.js"
import * as Sql from "../src/layers/Sql.js"
import * as Session from "../src/Session.js"
import * as Transport from "../src/Transport.js"

export class BenchSession extends Session.Tag<BenchSession>()("bench/BenchSession", {
  data: Schema.Struct({ csrf: Schema.String })
}) {}

export const BenchHttp = SessionHttp.make(BenchSession)

/**
 * The floor of any session middleware: no cookie read, no lookup; `session` is added to every request's
 * context the way `BenchHttp.middleware` adds the one it found. With the same routes (`require`), what it
 * costs over `base` is what the structure costs by itself.
 */
export const constantSession = (session: Session.Session<{ readonly csrf: string }>) => {
  const some = Option.some(session)
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, Exclude<R, Session.CurrentSession<BenchSession>>> =>
    Effect.withFiberRuntime((fiber) =>
      Effect.zipRight(
        FiberRef.set(FiberRef.currentContext, Context.add(fiber.currentContext, BenchSession.Current, some)),
        app as HttpApp.Default<E, Exclude<R, Session.CurrentSession<BenchSession>>>
      )
    )
}

/**
 * The floor plus what the shipped middleware adds to every request that carries a token before it looks
 * anything up: the pre-response hook that puts `Vary: Cookie` and `Cache-Control: private` on the response.
 */
export const constantSessionWithVary = (session: Session.Session<{ readonly csrf: string }>) => {
  const floor = constantSession(session)
  const vary = HttpApp.appendPreResponseHandler((_request, response) =>
    Effect.succeed(privateResponse(response, "Cookie"))
  )
  return <E, R>(app: HttpApp.Default<E, R>): HttpApp.Default<E, Exclude<R, Session.CurrentSession<BenchSession>>> =>
    Effect.zipRight(vary, floor(app))
}

const spanRoute = HttpRouter.get(
  "/span",
  Effect.map(
    Effect.option(Effect.currentSpan),
    (span) => HttpServerResponse.text(Option.isSome(span) ? "span" : "none")
  )
)

export const sessionRouter = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/issue",
    Effect.suspend(() => BenchHttp.issue("u1", { csrf: Auth.randomId(16) })).pipe(
      Effect.as(HttpServerResponse.text("issued"))
    )
  ),
  HttpRouter.get("/check", Effect.map(BenchHttp.require, (session) => HttpServerResponse.text(session.userId))),
  spanRoute
)

/** A token-shaped value: an 87-character id (tag, lineage, secret), a dot, an 86-character signature. */
export const fakeToken = () => `${Auth.randomId(66).slice(0, 87)}.${Auth.randomId(65).slice(0, 86)}`

/** The cookie transport as the bench serves it: plain http on loopback, so not `Secure` (and named `session`). */
export const cookieOptions = { secure: false } as const

export const baseRouter = HttpRouter.empty.pipe(
  HttpRouter.get(
    "/issue",
    Effect.sync(() =>
      HttpServerResponse.unsafeSetCookie(
        HttpServerResponse.text("issued"),
        Transport.cookieName(cookieOptions),
        fakeToken(),
        {
          path: "/",
          httpOnly: true,
          sameSite: "lax"
        }
      )
    )
  ),
  // built per request, as the session route's response is
  HttpRouter.get("/check", Effect.sync(() => HttpServerResponse.text("u1"))),
  spanRoute
)

/**
 * The sessions service (default options unless `options` says otherwise), a fixed random key for the
 * process, the store, and the cookie transport without `Secure` (plain http on loopback).
 */
export const sessionsLayer = (
  store:
    | { readonly _tag: "memory" }
    | { readonly _tag: "redis"; readonly url: string; readonly nearCache?: RedisStore.NearCacheOptions | undefined }
    | { readonly _tag: "postgres"; readonly url: string },
  options: Session.Options = {}
) =>
  Layer.merge(
    Session.layer(BenchSession, options).pipe(
      Layer.provide(Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] })),
      Layer.provide(storeLayer(store))
    ),
    Transport.layerCookie(cookieOptions)
  )

/** The store: `postgres` through `Sql.layerConfig` on that URL (its own pool, the table migrated at start). */
const storeLayer = (store: Parameters<typeof sessionsLayer>[0]) => {
  switch (store._tag) {
    case "memory":
      return Memory.layer()
    case "redis":
      return RedisStore.layer({ url: store.url, nearCache: store.nearCache })
    case "postgres":
      return Sql.layerConfig({ url: Config.succeed(Redacted.make(store.url)), migrate: Config.succeed(true) })
  }
}
