/**
 * The request path without sockets: the apps of bench/app.ts run in-process through
 * `HttpApp.toWebHandlerRuntime` (the same `toHandled` wrapper, server span included, that the Node server
 * uses), one request at a time, so the cost of the session middleware can be read per request without the
 * noise of TCP, autocannon and a second process. Variants take one thing away (or add one) at a time,
 * through public options, the request's cookies or a bench-written middleware, to show what each costs.
 */
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Auth from "../src/Auth.js"
import * as Memory from "../src/layers/Memory.js"
import * as Session from "../src/Session.js"
import * as Transport from "../src/Transport.js"
import {
  baseRouter,
  BenchHttp,
  BenchSession,
  constantSession,
  constantSessionWithVary,
  cookieOptions,
  fakeToken,
  sessionRouter
} from "./app.js"
import { median, promiseRound, range, type Round, table, x } from "./support.js"

const cookieName = Transport.cookieName(cookieOptions)

/** The ports and the sessions service. */
const ports = (options: Session.Options) =>
  Session.layer(BenchSession, options).pipe(
    Layer.provideMerge(Layer.mergeAll(
      Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }),
      Memory.layer(),
      Transport.layerCookie(cookieOptions)
    ))
  )

type Middleware = (app: HttpApp.Default<unknown, unknown>) => HttpApp.Default<unknown, unknown>

/** The shipped lookup (`BenchHttp.load`), but the session provided around the app with `provideService`. */
const provided: Middleware = (app) =>
  Effect.flatMap(BenchHttp.load, (session) => Effect.provideService(app, BenchSession.Current, session)) as never

const firstRead =
  "session, `verifiedTokenCache: 0` (signature, id digests, fingerprint, decode and a new session object on every request)"

export interface Variant {
  readonly name: string
  readonly run: (duration: Duration.Duration) => Effect.Effect<Round>
}

/**
 * Builds every variant's handler (scoped) and checks that each answers `/check` with 200 `u1`, and with
 * the caching headers of a response that depends on the session exactly where a session middleware (or the
 * bench's copy of its hook) ran.
 */
export const variants = Effect.gen(function*() {
  const handler = (
    router: HttpRouter.HttpRouter<unknown, unknown>,
    options: Session.Options,
    middleware: (issued: Session.Issued<{ readonly csrf: string }>) => Middleware | undefined,
    request: { readonly cookie: (token: string) => string; readonly private: boolean }
  ) =>
    Effect.gen(function*() {
      const runtime = yield* Layer.toRuntime(ports(options))
      const app = yield* HttpRouter.toHttpApp(router)
      // the session this variant's requests carry
      const issued = yield* Effect.provide(BenchSession, runtime).pipe(
        Effect.flatMap((sessions) => sessions.issue("u1", { csrf: Auth.randomId(16) }))
      )
      const handle = HttpApp.toWebHandlerRuntime(runtime)(
        app as HttpApp.Default<unknown, never>,
        middleware(issued) as never
      )
      const cookie = request.cookie(issued.token)
      const make = () => new Request("http://127.0.0.1/check", { headers: { cookie } })
      const check = yield* Effect.promise(async () => {
        const response = await handle(make())
        const headers = `vary: ${response.headers.get("vary")}, cache-control: ${response.headers.get("cache-control")}`
        return `${response.status} ${await response.text()}; ${headers}`
      })
      const expected = `200 u1; ${
        request.private ? "vary: Cookie, cache-control: private" : "vary: null, cache-control: null"
      }`
      if (check !== expected) return yield* Effect.dieMessage(`in-process /check answered ${check}, not ${expected}`)
      return () => handle(make()).then((response) => response.arrayBuffer())
    })
  const shipped = () => BenchHttp.middleware as Middleware
  const one = { cookie: (token: string) => `${cookieName}=${token}` }
  const list: Array<readonly [string, () => Promise<unknown>]> = [
    [
      "base (no session middleware)",
      yield* handler(baseRouter as never, {}, () => undefined, { ...one, private: false })
    ],
    ["session, as shipped", yield* handler(sessionRouter as never, {}, shipped, { ...one, private: true })],
    [
      "floor: a constant session added to the context, no lookup",
      yield* handler(sessionRouter as never, {}, ({ session }) => constantSession(session) as Middleware, {
        ...one,
        private: false
      })
    ],
    [
      "floor + the `Vary`/`Cache-Control` pre-response hook the shipped middleware adds",
      yield* handler(sessionRouter as never, {}, ({ session }) => constantSessionWithVary(session) as Middleware, {
        ...one,
        private: true
      })
    ],
    [
      firstRead,
      yield* handler(sessionRouter as never, { verifiedTokenCache: 0 }, shipped, { ...one, private: true })
    ],
    [
      "session, a forged cookie of the same name ahead of the valid one (refused, then the valid one is served)",
      yield* handler(sessionRouter as never, {}, shipped, {
        cookie: (token) => `${cookieName}=${fakeToken()}; ${cookieName}=${token}`,
        private: true
      })
    ],
    [
      "session, `metrics: false`",
      yield* handler(sessionRouter as never, { metrics: false }, shipped, { ...one, private: true })
    ],
    [
      "session, the same lookup with the session given to the app by `Effect.provideService`",
      yield* handler(sessionRouter as never, {}, () => provided, { ...one, private: true })
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

/**
 * What the first request of a token costs over the next ones, CPU µs: the `verifiedTokenCache: 0` variant
 * (every request pays what a first one does) over the shipped one.
 */
export const firstReadCost = (results: ReadonlyMap<string, Measured>): number => {
  const shippedName = [...results.keys()][1]!
  return median(results.get(firstRead)?.cpu ?? []) - median(results.get(shippedName)?.cpu ?? [])
}

export const report = (results: ReadonlyMap<string, Measured>, slices: number, slice: Duration.Duration): string => {
  const [baseName, shippedName] = [...results.keys()] as [string, string]
  const signed = (value: number) => `${value >= 0 ? "+" : ""}${x(value)}`
  const cpu = (name: string) => median(results.get(name)?.cpu ?? [])
  const wall = (name: string) => median(results.get(name)?.wall ?? [])
  const rows = [...results].map(([name, m]) => [
    name,
    x(median(m.cpu)),
    name === baseName ? "" : signed(median(m.cpu) - cpu(baseName)),
    name === shippedName || name === baseName ? "" : x(cpu(shippedName) - median(m.cpu)),
    x(cpu(baseName) / median(m.cpu)),
    x(median(m.wall)),
    range(m.cpu, x)
  ])
  return `The apps of bench/app.ts without sockets: \`GET /check\` with a valid session cookie through the same
\`toHandled\` wrapper (and server span, tracer on) as the Node server, from web \`Request\` to web
\`Response\`, one request at a time. Medians of ${slices} slices of ${Duration.format(slice)} per variant, the
variants alternating. "CPU" is this process's CPU time per request (\`process.cpuUsage()\`), which time spent
descheduled by the rest of the machine does not inflate; the wall-clock figure is beside it. The floor is a
bench-written middleware that adds a constant session to the context as \`src/\` does, with no lookup at all:
what the middleware-and-\`require\` structure costs by itself. The shipped middleware also registers, on
every request that carries a token, a pre-response hook that adds \`Vary: Cookie\` and \`Cache-Control:
private\` (the harness checks that exactly the session variants and the floor with that hook answer with
them); the floor with the hook shows what it costs without a lookup. The cookie transport hands the middleware
every cookie of its name (at most 4), tried in order until one is valid: the planted-cookie variant sends a
forged token of the same name ahead of the valid one. "saved vs shipped" is negative where a variant costs
more than what ships.

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
