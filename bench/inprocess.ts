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
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Auth from "../src/Auth.js"
import * as Memory from "../src/layers/Memory.js"
import * as Session from "../src/Session.js"
import * as Store from "../src/Store.js"
import * as Transport from "../src/Transport.js"
import { baseRouter, BenchHttp, BenchSession, sessionRouter } from "./app.js"
import { median, promiseRound, range, type Round, table, x } from "./support.js"

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
const leanMiddleware = (auth: Auth.AuthService, store: Store.StoreService, cacheVerified: boolean) => {
  const decode = Schema.decodeUnknownEither(BenchSession.data)
  const none = Option.none<Session.Session<{ readonly csrf: string }>>()
  // What a cache of verified tokens (token → id and store key, filled only after a valid signature) would
  // save: the HMAC and the SHA-256 of every request after a token's first.
  const verifiedTokens = new Map<string, { readonly id: string; readonly key: Store.Key }>()
  const check = (token: string) => {
    const cached = cacheVerified ? verifiedTokens.get(token) : undefined
    if (cached !== undefined) return cached
    const verified = auth.verify(token)
    const key = Either.isLeft(verified) ? undefined : Session.storeKey(verified.right.id)
    if (key === undefined || Either.isLeft(verified)) return undefined
    const result = { id: verified.right.id, key }
    if (cacheVerified) verifiedTokens.set(token, result)
    return result
  }
  return <E, R>(app: HttpApp.Default<E, R>) =>
    Effect.flatMap(HttpServerRequest.HttpServerRequest, (request) => {
      const token = request.cookies[Transport.defaultCookieName]
      const checked = token === undefined ? undefined : check(token)
      if (checked === undefined) return Effect.provideService(app, BenchSession.Current, none)
      const { id, key } = checked
      return Effect.flatMap(store.fetch(key), (stored) => {
        const entry = Option.getOrUndefined(stored)
        const data = entry === undefined || Date.now() >= entry.expiresAt ? undefined : decode(entry.data)
        if (entry === undefined || data === undefined || Either.isLeft(data)) {
          return Effect.provideService(app, BenchSession.Current, none)
        }
        const session: Session.Session<{ readonly csrf: string }> = {
          id: Redacted.make(id),
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
  const handler = (
    router: HttpRouter.HttpRouter<unknown, unknown>,
    options: Session.Options,
    lean?: { readonly cacheVerified: boolean }
  ) =>
    Effect.gen(function*() {
      const runtime = yield* Layer.toRuntime(ports(options))
      const app = yield* HttpRouter.toHttpApp(router)
      const middleware = lean !== undefined
        ? leanMiddleware(
          yield* Effect.provide(Auth.Auth, runtime),
          yield* Effect.provide(Store.Store, runtime),
          lean.cacheVerified
        )
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
    ["session, lean bench middleware (floor)", yield* handler(sessionRouter as never, {}, { cacheVerified: false })],
    [
      "session, lean, verified tokens cached (no HMAC, no SHA-256 after the first request)",
      yield* handler(sessionRouter as never, {}, { cacheVerified: true })
    ]
  ]
  return list.map(([name, run]): Variant => ({ name, run: (duration) => promiseRound(run, 1, duration) }))
})

export interface Measured {
  /** Wall time per request, µs, one value per slice. */
  readonly wall: ReadonlyArray<number>
  /** This process's CPU time per request, µs, one value per slice. */
  readonly cpu: ReadonlyArray<number>
}

/**
 * Runs the variants in short slices, forwards then backwards, `slices` times each: drift on a shared
 * machine then lands on every variant alike, and medians of many slices shrug off a bad one.
 */
export const measure = (list: ReadonlyArray<Variant>, slices: number, slice: Duration.Duration) =>
  Effect.gen(function*() {
    const results = new Map(list.map((v) => [v.name, { wall: [] as Array<number>, cpu: [] as Array<number> }]))
    for (const variant of list) yield* variant.run(slice) // warm-up
    for (let i = 0; i < slices; i++) {
      for (const variant of i % 2 === 0 ? list : [...list].reverse()) {
        const round = yield* variant.run(slice)
        const result = results.get(variant.name)!
        result.wall.push(1e6 * round.seconds / round.ops)
        result.cpu.push(1e6 * (round.cpuSeconds ?? NaN) / round.ops)
      }
    }
    return results as ReadonlyMap<string, Measured>
  })

export const report = (results: ReadonlyMap<string, Measured>, slices: number, slice: Duration.Duration): string => {
  const [baseName, shippedName] = [...results.keys()] as [string, string]
  const cpu = (name: string) => median(results.get(name)?.cpu ?? [])
  const wall = (name: string) => median(results.get(name)?.wall ?? [])
  const rows = [...results].map(([name, m]) => [
    name,
    x(median(m.cpu)),
    name === baseName ? "" : `+${x(median(m.cpu) - cpu(baseName))}`,
    name === shippedName || name === baseName ? "" : x(cpu(shippedName) - median(m.cpu)),
    x(cpu(baseName) / median(m.cpu)),
    x(median(m.wall)),
    range(m.cpu, x)
  ])
  return `The apps of bench/app.ts without sockets: \`GET /check\` with a valid session cookie through the same
\`toHandled\` wrapper (and server span, tracer on) as the Node server, from web \`Request\` to web
\`Response\`, one request at a time. Medians of ${slices} slices of ${Duration.format(slice)} per variant, the
variants alternating. "CPU" is this process's CPU time per request (\`process.cpuUsage()\`), which time spent
descheduled by the rest of the machine does not inflate; the wall-clock figure is beside it. "lean" is a
middleware written in the bench that does the same checks with one \`flatMap\` and no metrics or span
annotation: a floor for what \`src/\` could reach, not a replacement; its "cached" form also keeps each
verified token's id and store key in a map, to show what the HMAC and the SHA-256 cost on this path.

${
    table(
      [
        "variant",
        "CPU µs/req",
        "over base",
        "saved vs shipped",
        "base ÷ variant (rate)",
        "wall µs/req",
        "range (CPU µs)"
      ],
      rows
    )
  }

Session overhead over base: ${x(cpu(shippedName) - cpu(baseName))} µs of CPU per request (${
    x(wall(shippedName) - wall(baseName))
  } µs of wall time).
`
}
