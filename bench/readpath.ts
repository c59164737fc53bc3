/**
 * The child of bench/compare.ts: the read path of the tree at `<root>`, measured by this harness (always
 * the current tree's) on that tree's `src/`, imported dynamically, so that two revisions run the very
 * same measuring code. It prints one line, `readpath: {"cases":[…]}`, with the ops per second of each case,
 * by the wall clock and per second of this process's CPU time.
 *
 * ```sh
 * node --import tsx bench/readpath.ts <root> '{"redisUrl":"redis://127.0.0.1:…","seconds":2,"warmup":0.5,"reverse":false}'
 * ```
 *
 * Only API that both sides of a comparison export alike is used: `Session.Tag`, `Session.layer`,
 * `Auth.layer({ keys })`, `Auth.randomId`, `Memory.layer()`, `Redis.layer({ url })`,
 * `Transport.layerCookie`, `Transport.cookieName`, `SessionHttp.make(tag)` (`middleware`, `require`).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as HttpApp from "@effect/platform/HttpApp"
import * as HttpRouter from "@effect/platform/HttpRouter"
import * as HttpServerResponse from "@effect/platform/HttpServerResponse"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Path from "node:path"
import { pathToFileURL } from "node:url"
import type { Options } from "../src/Session.js"
import type { Store } from "../src/Store.js"
import { effectRound, perSecond, promise, promiseRound, type Round } from "./support.js"

// The modules are typed as this tree's; at run time they are `<root>`'s.
type AuthModule = typeof import("../src/Auth.js")
type SessionModule = typeof import("../src/Session.js")
type TransportModule = typeof import("../src/Transport.js")
type MemoryModule = typeof import("../src/layers/Memory.js")
type RedisModule = typeof import("../src/layers/Redis.js")
type HttpModule = typeof import("../src/layers/Http.js")

/** The start of the line compare.ts reads. */
const marker = "readpath: "

const Settings = Schema.Struct({
  redisUrl: Schema.String,
  seconds: Schema.Number,
  warmup: Schema.Number,
  /** Run the cases in reverse order (compare.ts alternates it by round). */
  reverse: Schema.Boolean
})
type Settings = typeof Settings.Type

const Data = Schema.Struct({ csrf: Schema.String })

/** The cookie transport as bench/app.ts serves it: plain http on loopback, so not `Secure`. */
const cookieOptions = { secure: false } as const

const load = (root: string) =>
  promise(async () => {
    const module = <M>(file: string): Promise<M> => import(pathToFileURL(Path.join(root, "src", file)).href)
    const [Auth, Session, Transport, Memory, Redis, SessionHttp] = await Promise.all([
      module<AuthModule>("Auth.ts"),
      module<SessionModule>("Session.ts"),
      module<TransportModule>("Transport.ts"),
      module<MemoryModule>("layers/Memory.ts"),
      module<RedisModule>("layers/Redis.ts"),
      module<HttpModule>("layers/Http.ts")
    ])
    return { Auth, Session, Transport, Memory, Redis, SessionHttp }
  })

interface Case {
  readonly id: string
  readonly label: string
  readonly inFlight: number
  readonly run: (duration: Duration.Duration) => Effect.Effect<Round, unknown>
}

const cases = (root: string, settings: Settings) =>
  Effect.gen(function*() {
    const { Auth, Memory, Redis, Session, SessionHttp, Transport } = yield* load(root)
    class ReadSession extends Session.Tag<ReadSession>()("bench/ReadSession", { data: Data }) {}
    const ReadHttp = SessionHttp.make(ReadSession)
    const keys = [Redacted.make(Auth.randomId(48))]

    /** The sessions service on `store`, with its ports and the cookie transport, as a runtime; a session of `u1`. */
    const build = <E>(store: Layer.Layer<Store, E>, options: Options = {}) =>
      Effect.gen(function*() {
        const runtime = yield* Layer.toRuntime(
          Session.layer(ReadSession, options).pipe(
            Layer.provideMerge(Layer.mergeAll(Auth.layer({ keys }), store, Transport.layerCookie(cookieOptions)))
          )
        )
        const sessions = yield* Effect.provide(ReadSession, runtime)
        const { token } = yield* sessions.issue("u1", { csrf: Auth.randomId(16) })
        const read = yield* sessions.get(token)
        if (read.userId !== "u1") return yield* Effect.dieMessage(`Sessions.get answered user ${read.userId}`)
        return { runtime, sessions, token }
      })

    const memory = yield* build(Memory.layer())
    const memoryNoCache = yield* build(Memory.layer(), { verifiedTokenCache: 0 })
    const onRedis = yield* build(Redis.layer({ url: settings.redisUrl }))

    // the in-process request path: `GET /check` with a valid session cookie, the shipped middleware
    const router = HttpRouter.empty.pipe(
      HttpRouter.get("/check", Effect.map(ReadHttp.require, (session) => HttpServerResponse.text(session.userId)))
    )
    const app = yield* HttpRouter.toHttpApp(router)
    const handle = HttpApp.toWebHandlerRuntime(memory.runtime)(
      app as HttpApp.Default<unknown, never>,
      ReadHttp.middleware as never
    )
    const cookie = `${Transport.cookieName(cookieOptions)}=${memory.token}`
    const request = () => new Request("http://127.0.0.1/check", { headers: { cookie } })
    const answer = yield* promise(async () => {
      const response = await handle(request())
      return `${response.status} ${await response.text()}`
    })
    if (answer !== "200 u1") return yield* Effect.dieMessage(`in-process GET /check answered ${answer}`)

    const list: ReadonlyArray<Case> = [
      {
        id: "memory",
        label: "`Sessions.get`, memory store, default options (one token over and over: the cache's best case)",
        inFlight: 1,
        run: (d) => effectRound(() => memory.sessions.get(memory.token), 1, d)
      },
      {
        id: "memory-no-cache",
        label: "`Sessions.get`, memory store, `verifiedTokenCache: 0` (what a first request with a token pays)",
        inFlight: 1,
        run: (d) => effectRound(() => memoryNoCache.sessions.get(memoryNoCache.token), 1, d)
      },
      {
        id: "redis",
        label: "`Sessions.get`, Redis store (`Redis.layer({ url })`), default options",
        inFlight: 64,
        run: (d) => effectRound(() => onRedis.sessions.get(onRedis.token), 64, d)
      },
      {
        id: "http",
        label: "in-process `GET /check`, shipped middleware + `require`, memory store (requests/s)",
        inFlight: 1,
        run: (d) => promiseRound(() => handle(request()).then((response) => response.arrayBuffer()), 1, d)
      }
    ]
    return settings.reverse ? [...list].reverse() : list
  })

const program = Effect.gen(function*() {
  const [root, json] = process.argv.slice(2)
  if (root === undefined || json === undefined) {
    return yield* Effect.dieMessage("usage: node --import tsx bench/readpath.ts <root> <settings as JSON>")
  }
  const settings = yield* Schema.decodeUnknown(Schema.parseJson(Settings))(json)
  const list = yield* cases(root, settings)
  for (const c of list) yield* c.run(Duration.seconds(settings.warmup)) // warm-up, untimed
  const measured: Array<{ id: string; label: string; inFlight: number; perSecond: number; perCpuSecond: number }> = []
  for (const c of list) {
    const cpu = process.cpuUsage()
    const round = yield* c.run(Duration.seconds(settings.seconds))
    // this process's CPU time over the case (every thread): what time spent descheduled does not inflate
    const { system, user } = process.cpuUsage(cpu)
    const perCpuSecond = round.ops / ((user + system) / 1e6)
    measured.push({ id: c.id, label: c.label, inFlight: c.inFlight, perSecond: perSecond(round), perCpuSecond })
  }
  console.log(`${marker}${JSON.stringify({ cases: measured })}`)
})

NodeRuntime.runMain(Effect.scoped(program))
