/**
 * The request path without sockets: the apps of bench/app.ts run in-process through
 * `HttpApp.toWebHandlerRuntime` (the same `toHandled` wrapper, server span included, that the Node server
 * uses), one request at a time, so the cost of the session middleware can be read per request without the
 * noise of TCP, autocannon and a second process. Variants take one thing away at a time, through public
 * options or a bench-written middleware, to show what each costs.
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
import { baseRouter, BenchHttp, BenchSession, constantSession, sessionRouter } from "./app.js"
import { median, promiseRound, range, type Round, table, x } from "./support.js"

/** The ports and the sessions service. */
const ports = (options: Session.Options) =>
  Session.layer(BenchSession, options).pipe(
    Layer.provideMerge(Layer.mergeAll(
      Auth.layer({ keys: [Redacted.make(Auth.randomId(48))] }),
      Memory.layer(),
      Transport.layerCookie({ secure: false })
    ))
  )

type Middleware = (app: HttpApp.Default<unknown, unknown>) => HttpApp.Default<unknown, unknown>

/** The shipped lookup (`BenchHttp.load`), but the session provided around the app with `provideService`. */
const provided: Middleware = (app) =>
  Effect.flatMap(BenchHttp.load, (session) => Effect.provideService(app, BenchSession.Current, session)) as never

export interface Variant {
  readonly name: string
  readonly run: (duration: Duration.Duration) => Effect.Effect<Round>
}

/** Builds every variant's handler (scoped) and checks that each answers `/check` with 200 `u1`. */
export const variants = Effect.gen(function*() {
  const handler = (
    router: HttpRouter.HttpRouter<unknown, unknown>,
    options: Session.Options,
    middleware: (issued: Session.Issued<{ readonly csrf: string }>) => Middleware | undefined
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
      const cookie = `${Transport.defaultCookieName}=${issued.token}`
      const request = () => new Request("http://127.0.0.1/check", { headers: { cookie } })
      const check = yield* Effect.promise(async () => {
        const response = await handle(request())
        return `${response.status} ${await response.text()}`
      })
      if (check !== "200 u1") return yield* Effect.dieMessage(`in-process /check answered ${check}`)
      return () => handle(request()).then((response) => response.arrayBuffer())
    })
  const shipped = () => BenchHttp.middleware as Middleware
  const list: Array<readonly [string, () => Promise<unknown>]> = [
    ["base (no session middleware)", yield* handler(baseRouter as never, {}, () => undefined)],
    ["session, as shipped", yield* handler(sessionRouter as never, {}, shipped)],
    [
      "floor: a constant session added to the context, no lookup",
      yield* handler(sessionRouter as never, {}, ({ session }) => constantSession(session) as Middleware)
    ],
    [
      "session, `verifiedTokenCache: 0` (HMAC and SHA-256 on every request)",
      yield* handler(sessionRouter as never, { verifiedTokenCache: 0 }, shipped)
    ],
    ["session, `metrics: false`", yield* handler(sessionRouter as never, { metrics: false }, shipped)],
    [
      "session, the same lookup with the session given to the app by `Effect.provideService`",
      yield* handler(sessionRouter as never, {}, () => provided)
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
descheduled by the rest of the machine does not inflate; the wall-clock figure is beside it. The floor is a
bench-written middleware that adds a constant session to the context as \`src/\` does, with no lookup at all:
what the middleware-and-\`require\` structure costs by itself. "saved vs shipped" is negative where a
variant costs more than what ships.

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
