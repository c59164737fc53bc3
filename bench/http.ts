/**
 * The HTTP benchmark: bench/http-server.ts in `base` and `session` mode (in-memory and Redis stores, the
 * Redis store with and without its near-cache), with Effect's default tracer on and off, and in `floor`
 * modes (a constant session, with and without the caching headers' hook). The bars come from paired runs
 * (`runPaired`): the two servers of a comparison at once, pinned to one CPU, each under its own autocannon
 * process, so that the shared machine's noise lands on both. The same configurations then run one after
 * the other (`run`), for absolute figures. Every server is a fresh process on a free port, stopped
 * afterwards; the order alternates from round to round.
 */
import autocannon from "autocannon"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Transport from "../src/Transport.js"
import type { RedisServer } from "../test/support/redis.js"
import { cookieOptions } from "./app.js"
import {
  awaitHttp,
  type Child,
  ChildError,
  freePort,
  median,
  n,
  promise,
  quantile,
  range,
  spawnChild,
  table,
  x
} from "./support.js"

// -----------------------------------------------------------------------------
// servers
// -----------------------------------------------------------------------------

const cookieName = Transport.cookieName(cookieOptions)

export interface Configuration {
  readonly id: string
  readonly mode: "base" | "session" | "floor" | "floor-vary"
  readonly store: "memory" | "redis"
  readonly tracer: "on" | "off"
  /** The Redis store's near-cache (`--near-cache on`). */
  readonly nearCache?: boolean
  /** Measured in the paired runs only. */
  readonly pairedOnly?: boolean
}

export const label = (c: Configuration) =>
  `${
    c.mode === "base"
      ? "base"
      : c.mode === "floor"
      ? "floor (constant session, no lookup)"
      : c.mode === "floor-vary"
      ? "floor + the Vary/Cache-Control hook"
      : `session/${c.store}`
  }${c.nearCache === true ? " + near-cache" : ""}, tracer ${c.tracer}`

export const configurations: ReadonlyArray<Configuration> = [
  { id: "A", mode: "base", store: "memory", tracer: "on" },
  { id: "B", mode: "session", store: "memory", tracer: "on" },
  { id: "C", mode: "session", store: "redis", tracer: "on" },
  // The Redis store with its near-cache: after its first request every read is a hit. Run beside A and B.
  { id: "H", mode: "session", store: "redis", tracer: "on", nearCache: true },
  { id: "D", mode: "base", store: "memory", tracer: "off" },
  { id: "E", mode: "session", store: "memory", tracer: "off" },
  { id: "F", mode: "session", store: "redis", tracer: "off" },
  // Not a bar: what the structure of a session middleware costs with nothing to look up.
  { id: "G", mode: "floor", store: "memory", tracer: "on" },
  // The floor with the caching headers' hook: with G and B, where a session's cost goes.
  { id: "V", mode: "floor-vary", store: "memory", tracer: "on", pairedOnly: true }
]

export interface Server {
  readonly url: string
  readonly child: Child
  /** The `Cookie` header of the one session issued for the run. */
  readonly cookie: string
}

const text = (url: string, headers: Record<string, string> = {}) =>
  Effect.tryPromise({
    try: async () => {
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(5_000) })
      return {
        status: response.status,
        body: await response.text(),
        setCookie: response.headers.getSetCookie(),
        caching: `vary ${response.headers.get("vary")}, cache-control ${response.headers.get("cache-control")}`
      }
    },
    catch: (cause) => new ChildError({ message: `GET ${url}: ${String(cause)}` })
  })

/**
 * Starts bench/http-server.ts for `config` (with `nodeArgs` before the script, e.g. `--cpu-prof`), waits
 * until it answers, checks that its tracer setting took effect, issues one session and checks that
 * `/check` accepts it (in session mode with the caching headers of a response that depends on the session,
 * and refusing a request without it). The scope stops the server.
 */
export const startServer = (
  config: Configuration,
  redis: RedisServer,
  options: {
    readonly nodeArgs?: ReadonlyArray<string>
    readonly stopGrace?: Duration.DurationInput
    /** A directory from `compileServer`: run its plain JavaScript instead of the TypeScript under tsx. */
    readonly compiled?: string | undefined
    /** The CPU to pin the server to (`taskset -c`), when the machine has `taskset`. */
    readonly pin?: number | undefined
  } = {}
): Effect.Effect<Server, ChildError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = yield* freePort
    const pinned = options.pin === undefined ? [] : ["-c", String(options.pin), process.execPath]
    const child = yield* spawnChild(options.pin === undefined ? process.execPath : "taskset", [
      ...pinned,
      ...(options.nodeArgs ?? []),
      ...(options.compiled === undefined
        ? ["--import", "tsx", "bench/http-server.ts"]
        : [Path.join(options.compiled, "bench", "http-server.js")]),
      ...["--port", String(port), "--mode", config.mode, "--store", config.store, "--tracer", config.tracer],
      ...(config.store === "redis" ? ["--redis-url", redis.url] : []),
      ...(config.nearCache === true ? ["--near-cache", "on"] : [])
    ], options.stopGrace)
    const url = `http://127.0.0.1:${port}`
    yield* awaitHttp(`${url}/span`, child)
    const span = (yield* text(`${url}/span`)).body
    if (span !== (config.tracer === "on" ? "span" : "none")) {
      return yield* new ChildError({ message: `${label(config)}: /span answered "${span}"` })
    }
    const issued = yield* text(`${url}/issue`)
    const cookie = issued.setCookie.map((line) => line.split(";")[0]!).find((pair) => pair.startsWith(`${cookieName}=`))
    if (issued.status !== 200 || cookie === undefined) {
      return yield* new ChildError({ message: `${label(config)}: /issue answered ${issued.status} without a cookie` })
    }
    const checked = yield* text(`${url}/check`, { cookie })
    if (checked.status !== 200 || checked.body !== "u1") {
      return yield* new ChildError({ message: `${label(config)}: /check answered ${checked.status} ${checked.body}` })
    }
    if (config.mode === "session") {
      const caching = "vary Cookie, cache-control private"
      if (checked.caching !== caching) {
        return yield* new ChildError({
          message: `${label(config)}: /check answered ${checked.caching}, not ${caching}`
        })
      }
      const anonymous = yield* text(`${url}/check`)
      if (anonymous.status !== 401) {
        return yield* new ChildError({
          message: `${label(config)}: /check without a cookie answered ${anonymous.status}`
        })
      }
    }
    return { url, child, cookie }
  }).pipe(
    // a port taken between the probe and the bind: try again on another
    Effect.retry({ times: 2, while: (error) => /EADDRINUSE/.test(error.message) })
  )

// -----------------------------------------------------------------------------
// load
// -----------------------------------------------------------------------------

export interface Load {
  readonly requestsPerSecond: number
  /** Milliseconds, from every response (autocannon's own histogram keeps whole milliseconds only). */
  readonly p50: number
  readonly p99: number
  readonly responses: number
  readonly non2xx: number
  readonly errors: number
  readonly timeouts: number
}

/** autocannon on `GET /check` with the session cookie, `connections` connections, for `seconds`. */
export const load = (server: Server, seconds: number, connections = 50): Effect.Effect<Load> =>
  promise(async () => {
    const latencies: Array<number> = []
    const instance = autocannon({
      url: `${server.url}/check`,
      connections,
      duration: seconds,
      timeout: 10,
      headers: { cookie: server.cookie }
    })
    instance.on("response", (_client, _status, _bytes, responseTime) => {
      latencies.push(responseTime)
    })
    const start = performance.now()
    const result = await instance
    const elapsed = (performance.now() - start) / 1e3
    const sorted = Float64Array.from(latencies).sort()
    return {
      requestsPerSecond: latencies.length / elapsed,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      responses: latencies.length,
      non2xx: result.non2xx,
      errors: result.errors,
      timeouts: result.timeouts
    }
  })

// -----------------------------------------------------------------------------
// the benchmark
// -----------------------------------------------------------------------------

export interface Settings {
  readonly rounds: number
  readonly seconds: number
  readonly warmup: number
  readonly connections: number
  /** A directory from `compileServer`, to serve plain JavaScript; tsx otherwise. */
  readonly compiled?: string | undefined
}

export interface Run extends Load {
  readonly config: Configuration
  readonly round: number
  /** The server process's CPU time (user + system) per response during the measured load, µs. */
  readonly cpuPerRequest: number
}

/** The server process's CPU time so far (user + system), µs, from its `/cpu` route. */
export const cpuTime = (server: Server) =>
  Effect.flatMap(text(`${server.url}/cpu`), ({ body }) =>
    Effect.sync(() => {
      const { system, user } = JSON.parse(body) as { readonly user: number; readonly system: number }
      return user + system
    }))

export const run = (redis: RedisServer, settings: Settings) =>
  Effect.gen(function*() {
    const runs: Array<Run> = []
    for (let round = 0; round < settings.rounds; round++) {
      const sequential = configurations.filter((c) => c.pairedOnly !== true)
      const order = round % 2 === 0 ? sequential : [...sequential].reverse()
      for (const config of order) {
        const measured = yield* Effect.scoped(Effect.gen(function*() {
          const server = yield* startServer(config, redis, { compiled: settings.compiled })
          if (settings.warmup > 0) yield* load(server, settings.warmup, settings.connections)
          const before = yield* cpuTime(server)
          const measured = yield* load(server, settings.seconds, settings.connections)
          const after = yield* cpuTime(server)
          return { ...measured, cpuPerRequest: (after - before) / measured.responses }
        })).pipe(
          Effect.timeoutFail({
            duration: Duration.seconds(settings.warmup + settings.seconds + 60),
            onTimeout: () => new ChildError({ message: `${label(config)}: the run did not finish in time` })
          })
        )
        runs.push({ ...measured, config, round })
        yield* Effect.logInfo(
          `http: round ${round + 1}/${settings.rounds} ${config.id} ${label(config)}: ${
            n(measured.requestsPerSecond)
          } req/s, ${x(measured.cpuPerRequest)} µs CPU/req, p50 ${x(measured.p50)} ms, p99 ${
            x(measured.p99)
          } ms, non-2xx ${measured.non2xx}, errors ${measured.errors}`
        )
      }
    }
    return runs
  })

// -----------------------------------------------------------------------------
// paired runs
// -----------------------------------------------------------------------------

/**
 * The comparisons the bars are made of, each measured as a pair: `of` and its `against`, both servers
 * running at once.
 */
export const pairs: ReadonlyArray<{ readonly of: string; readonly against: string }> = [
  { of: "B", against: "A" },
  { of: "C", against: "A" },
  { of: "H", against: "A" },
  { of: "H", against: "B" },
  { of: "G", against: "A" },
  { of: "V", against: "G" },
  { of: "B", against: "V" },
  { of: "E", against: "D" },
  { of: "F", against: "D" }
]

export interface PairedRun {
  readonly of: Configuration
  readonly against: Configuration
  readonly round: number
  readonly pinned: number | undefined
  /** `of`'s load, CPU µs per request, then `against`'s. */
  readonly results: readonly [Load & { readonly cpuPerRequest: number }, Load & { readonly cpuPerRequest: number }]
}

/** The last CPU, when `taskset` can pin a process to it and another CPU is left for the load. */
export const pinnableCpu: Effect.Effect<number | undefined> = promise(async () => {
  const cores = Os.availableParallelism()
  if (cores < 2) return undefined
  const { spawnSync } = await import("node:child_process")
  return spawnSync("taskset", ["-c", String(cores - 1), "true"]).status === 0 ? cores - 1 : undefined
})

const byId = (id: string) => configurations.find((c) => c.id === id)!

/**
 * autocannon as a process of its own (one per server of a pair, pinned off the servers' CPU when `pin`
 * is set): one load generator in the bench process could not keep two servers busy, and the pair's ratio
 * would then measure the generator. Its latency percentiles are autocannon's own (whole milliseconds).
 */
export const loadProcess = (
  server: Server,
  seconds: number,
  connections: number,
  pin: number | undefined
): Effect.Effect<Load, ChildError> =>
  Effect.tryPromise({
    try: async () => {
      const { execFile } = await import("node:child_process")
      const args = [
        Path.join("node_modules", "autocannon", "autocannon.js"),
        ...["-j", "-c", String(connections), "-d", String(seconds), "-t", "10"],
        ...["-H", `cookie: ${server.cookie}`, `${server.url}/check`]
      ]
      // `pinnableCpu` pins the servers to the last CPU: the load runs on the others
      const [command, argv] = pin === undefined
        ? [process.execPath, args]
        : ["taskset", ["-c", `0-${pin - 1}`, process.execPath, ...args]]
      const stdout = await new Promise<string>((resolve, reject) =>
        execFile(command, argv, { maxBuffer: 1 << 24 }, (error, out) => error === null ? resolve(out) : reject(error))
      )
      const result = JSON.parse(stdout) as {
        readonly duration: number
        readonly requests: { readonly total: number }
        readonly latency: { readonly p50: number; readonly p99: number }
        readonly non2xx: number
        readonly errors: number
        readonly timeouts: number
      }
      return {
        requestsPerSecond: result.requests.total / result.duration,
        p50: result.latency.p50,
        p99: result.latency.p99,
        responses: result.requests.total,
        non2xx: result.non2xx,
        errors: result.errors,
        timeouts: result.timeouts
      }
    },
    catch: (cause) => new ChildError({ message: `autocannon against ${server.url}: ${String(cause)}` })
  })

/**
 * Each pair's two servers run at the same time, pinned to the same CPU (when `taskset` can; the load
 * generator and redis-server get the others), each under half the connections, measured over the same
 * seconds, each loaded by an autocannon process of its own. The kernel shares that CPU between the two busy servers, so each one's req/s is what its own CPU
 * cost per request allows, and whatever the rest of a shared machine does in those seconds (other tenants,
 * frequency changes, the host's own scheduling) lands on both (bench/RESULTS.md keeps the ranges of both
 * measurements, so the two can be compared).
 */
export const runPaired = (redis: RedisServer, settings: Settings) =>
  Effect.gen(function*() {
    const pin = yield* pinnableCpu
    const runs: Array<PairedRun> = []
    const half = Math.max(1, Math.floor(settings.connections / 2))
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? pairs : [...pairs].reverse()
      for (const pair of order) {
        const of = byId(pair.of)
        const against = byId(pair.against)
        const results = yield* Effect.scoped(Effect.gen(function*() {
          const servers = yield* Effect.all(
            [of, against].map((config) => startServer(config, redis, { compiled: settings.compiled, pin }))
          )
          const both = <A>(f: (server: Server) => Effect.Effect<A, ChildError>) =>
            Effect.all(servers.map(f), { concurrency: "unbounded" })
          if (settings.warmup > 0) yield* both((server) => loadProcess(server, settings.warmup, half, pin))
          const before = yield* both(cpuTime)
          const measured = yield* both((server) => loadProcess(server, settings.seconds, half, pin))
          const after = yield* both(cpuTime)
          return measured.map((m, i) => ({ ...m, cpuPerRequest: (after[i]! - before[i]!) / m.responses }))
        })).pipe(
          Effect.timeoutFail({
            duration: Duration.seconds(settings.warmup + settings.seconds + 60),
            onTimeout: () => new ChildError({ message: `${of.id} with ${against.id}: the run did not finish in time` })
          })
        )
        const [a, b] = results as [PairedRun["results"][0], PairedRun["results"][1]]
        runs.push({ of, against, round, pinned: pin, results: [a, b] })
        yield* Effect.logInfo(
          `http paired: round ${round + 1}/${settings.rounds} ${of.id} with ${against.id}: ${
            n(a.requestsPerSecond)
          } and ${n(b.requestsPerSecond)} req/s (${x(a.requestsPerSecond / b.requestsPerSecond)}), ${
            x(a.cpuPerRequest)
          } and ${x(b.cpuPerRequest)} µs CPU/req`
        )
      }
    }
    return runs
  })

// -----------------------------------------------------------------------------
// report
// -----------------------------------------------------------------------------

export interface Bar {
  readonly name: string
  readonly value: string
  readonly bar: string
  readonly pass: boolean
}

// a ratio that must reach `target`
const atLeast = (name: string, value: number, target: number): Bar => ({
  name,
  value: x(value),
  bar: `≥ ${target.toFixed(2)}`,
  pass: value >= target
})

/** The bars, from the ratios of either measurement. */
const barsOf = (m: {
  readonly memoryOn: number
  readonly redisOn: number
  readonly nearCacheOn: number
  readonly nearCacheMemory: number
  readonly redisOff: number
  readonly p99RedisOn: number
  readonly clean: number
  readonly runs: number
  readonly what: string
}): ReadonlyArray<Bar> => [
  atLeast("session/memory ÷ base (tracer on), req/s", m.memoryOn, 0.95),
  atLeast("session/Redis ÷ base (tracer on), req/s", m.redisOn, 0.80),
  atLeast("session/Redis + near-cache ÷ base (tracer on), req/s", m.nearCacheOn, 0.90),
  atLeast("session/Redis + near-cache ÷ session/memory (tracer on), req/s", m.nearCacheMemory, 0.95),
  atLeast("session/Redis ÷ base (tracer off, both), req/s", m.redisOff, 0.75),
  {
    name: "p99 session/Redis ÷ p99 base (tracer on)",
    value: x(m.p99RedisOn),
    bar: "≤ 1.50",
    pass: m.p99RedisOn <= 1.5
  },
  {
    name: `${m.what} with zero non-2xx and zero errors`,
    value: `${m.clean} of ${m.runs}`,
    bar: "all",
    pass: m.clean === m.runs
  }
]

export const evaluate = (runs: ReadonlyArray<Run>) => {
  const of = (id: string) => runs.filter((r) => r.config.id === id)
  const rps = (id: string) => median(of(id).map((r) => r.requestsPerSecond))
  const p99 = (id: string) => median(of(id).map((r) => r.p99))
  const cpu = (id: string) => median(of(id).map((r) => r.cpuPerRequest))
  const sessionRuns = runs.filter((r) => r.config.mode === "session")
  const clean = sessionRuns.filter((r) => r.non2xx === 0 && r.errors === 0 && r.timeouts === 0).length
  const ratios = {
    memoryOn: rps("B") / rps("A"),
    redisOn: rps("C") / rps("A"),
    nearCacheOn: rps("H") / rps("A"),
    nearCacheMemory: rps("H") / rps("B"),
    memoryOff: rps("E") / rps("D"),
    redisOff: rps("F") / rps("D"),
    p99RedisOn: p99("C") / p99("A"),
    p99RedisOff: p99("F") / p99("D"),
    tracerOffBase: rps("D") / rps("A"),
    floorOn: rps("G") / rps("A"),
    cpuFloorOn: cpu("A") / cpu("G"),
    cpuMemoryOn: cpu("A") / cpu("B"),
    cpuRedisOn: cpu("A") / cpu("C"),
    cpuRedisOff: cpu("D") / cpu("F")
  }
  const bars = barsOf({ ...ratios, clean, runs: sessionRuns.length, what: "session runs" })
  // The same ratios round by round: a ratio of one round compares servers that ran a minute apart at most (A
  // and B one after the other, G at the round's other end), so they saw nearly the same machine; the median
  // and range of those ratios say how far the ratio of medians above can be trusted on a shared machine.
  const paired = (id: string, baseId: string, pick: (run: Run) => number) => {
    const rounds = [...new Set(runs.map((r) => r.round))]
    const values = rounds.flatMap((round) => {
      const a = runs.find((r) => r.round === round && r.config.id === id)
      const b = runs.find((r) => r.round === round && r.config.id === baseId)
      return a === undefined || b === undefined ? [] : [pick(a) / pick(b)]
    })
    return { median: median(values), range: range(values, x) }
  }
  const rate = (r: Run) => r.requestsPerSecond
  // base CPU ÷ session CPU, as a rate: above 1.00 the session server spent less CPU per request
  const cpuRate = (r: Run) => 1 / r.cpuPerRequest
  const rounds = {
    memoryOn: paired("B", "A", rate),
    nearCacheOn: paired("H", "A", rate),
    nearCacheMemory: paired("H", "B", rate),
    floorOn: paired("G", "A", rate),
    cpuMemoryOn: paired("B", "A", cpuRate),
    cpuFloorOn: paired("G", "A", cpuRate),
    cpuMemoryFloor: paired("B", "G", cpuRate)
  }
  return { ratios, bars, rps, p99, cpu, of, rounds }
}

/** The bars, from the paired runs: medians over the rounds of each pair's ratio. */
export const evaluatePaired = (paired: ReadonlyArray<PairedRun>, runs: ReadonlyArray<Run>) => {
  const of = (id: string, against: string) => paired.filter((r) => r.of.id === id && r.against.id === against)
  const ratio = (id: string, against: string, pick: (load: PairedRun["results"][0]) => number) => {
    const values = of(id, against).map(({ results: [a, b] }) => pick(a) / pick(b))
    return { median: median(values), range: range(values, x) }
  }
  const rate = (load: Load) => load.requestsPerSecond
  const cpuRate = (load: { readonly cpuPerRequest: number }) => 1 / load.cpuPerRequest
  const p99 = (load: Load) => 1 / load.p99
  const rows = pairs.map(({ against, of: id }) => ({
    id,
    against,
    rps: ratio(id, against, rate),
    cpu: ratio(id, against, cpuRate),
    // p99 of `of` over p99 of `against` (the inverse of the rate-like ratio above)
    p99: 1 / ratio(id, against, p99).median
  }))
  const get = (id: string, against: string) => rows.find((r) => r.id === id && r.against === against)!
  const loads = [...paired.flatMap((r) => r.results), ...runs]
  const clean = loads.filter((r) => r.non2xx === 0 && r.errors === 0 && r.timeouts === 0).length
  const bars = barsOf({
    memoryOn: get("B", "A").rps.median,
    redisOn: get("C", "A").rps.median,
    nearCacheOn: get("H", "A").rps.median,
    nearCacheMemory: get("H", "B").rps.median,
    redisOff: get("F", "D").rps.median,
    p99RedisOn: get("C", "A").p99,
    clean,
    runs: loads.length,
    what: "runs (paired and sequential, every server)"
  })
  return { bars, rows }
}

/**
 * `firstReadMicros`: what the first request of a token costs over the next ones (CPU µs), from the
 * in-process table of the same run, when the micro step ran.
 */
export const report = (
  runs: ReadonlyArray<Run>,
  paired: ReadonlyArray<PairedRun>,
  settings: Settings,
  firstReadMicros?: number
): string => {
  const signed = (value: number) => `${value >= 0 ? "+" : ""}${x(value)}`
  const { cpu, of, ratios, rounds } = evaluate(runs)
  const sequentialBars = evaluate(runs).bars
  const { bars, rows } = evaluatePaired(paired, runs)
  const pinned = paired[0]?.pinned
  const pairedRatio = (id: string, against: string) =>
    rows.find((r) => r.id === id && r.against === against)?.rps.median ?? NaN
  const pairedRows = rows.map((r) => [
    `${label(byId(r.id))} ÷ ${label(byId(r.against))}`,
    x(r.rps.median),
    r.rps.range,
    x(r.cpu.median),
    r.cpu.range,
    x(r.p99)
  ])
  const everyPair = paired.map(({ against, of: ofConfig, results: [a, b], round }) => [
    String(round + 1),
    `${ofConfig.id} with ${against.id}`,
    n(a.requestsPerSecond),
    n(b.requestsPerSecond),
    x(a.requestsPerSecond / b.requestsPerSecond),
    x(a.cpuPerRequest),
    x(b.cpuPerRequest),
    x(a.p99),
    x(b.p99),
    String(a.non2xx + b.non2xx),
    String(a.errors + b.errors)
  ])
  const perConfig = configurations.filter((c) => c.pairedOnly !== true).map((c) => {
    const rs = of(c.id)
    return [
      c.id,
      label(c),
      n(median(rs.map((r) => r.requestsPerSecond))),
      range(rs.map((r) => r.requestsPerSecond)),
      x(median(rs.map((r) => r.p50))),
      x(median(rs.map((r) => r.p99))),
      x(median(rs.map((r) => r.cpuPerRequest))),
      String(rs.reduce((sum, r) => sum + r.non2xx, 0)),
      String(rs.reduce((sum, r) => sum + r.errors, 0))
    ]
  })
  const perRun = runs.map((r) => [
    String(r.round + 1),
    r.config.id,
    label(r.config),
    n(r.requestsPerSecond),
    x(r.p50),
    x(r.p99),
    x(r.cpuPerRequest),
    String(r.non2xx),
    String(r.errors),
    String(r.timeouts)
  ])
  const order = configurations.filter((c) => c.pairedOnly !== true).map((c) => c.id).join("")
  return `## HTTP (\`npm run bench\`, autocannon against bench/http-server.ts)

\`GET /check\` with the cookie of one session issued by \`GET /issue\` at the start of each run; \`base\` answers
200 \`u1\` without reading anything, \`session\` runs the session middleware and \`require\` (default options:
metrics on, reads without a span of their own, verified-token cache on; Redis with auto-pipelining). All
connections carry the one session, so after its first request every request finds its token verified and
its session unchanged (plain data, frozen once and shared): the steady state of a signed-in user, not the first
request of a token, which also pays the signature check (HMAC-SHA512), two SHA-256 digests of the id's parts,
the fingerprint check of the entry's user (HMAC-SHA512), the data's decode and a new session object${
    firstReadMicros === undefined
      ? " (the `verifiedTokenCache: 0` row of the in-process table in the micro section)"
      : ` (${
        x(firstReadMicros)
      } µs of CPU in this run: the \`verifiedTokenCache: 0\` row of the in-process table above)`
  }. A session response also carries \`Vary: Cookie\` and \`Cache-Control: private\` (a pre-response hook the
middleware registers on every request with a token; the harness checks them before measuring), which base and
the floor do not. ${settings.connections} connections,
${settings.warmup} s warm-up then ${settings.seconds} s measured, ${settings.rounds} rounds in the order ${order}, ${
    order.split("").reverse().join("")
  }, …; every run is a fresh ${
    settings.compiled === undefined
      ? "`node --import tsx bench/http-server.ts`"
      : "`node bench/http-server.js` (transpiled by TypeScript, `BENCH_SERVER=compiled`)"
  } on a free 127.0.0.1 port. autocannon runs
in the bench process on the same ${Os.availableParallelism()} cores as the server and redis-server: absolute figures
are what this machine gives a single-threaded server with its load generator beside it; the ratios are the claims.
Latency percentiles are computed from every response's time (autocannon's own histogram keeps whole
milliseconds only).

### Bars (paired runs: medians over the rounds of each pair's ratio; Effect's default tracer on unless stated)

${table(["bar", "measured", "target", "result"], bars.map((b) => [b.name, b.value, b.bar, b.pass ? "PASS" : "FAIL"]))}

### Paired runs

Each comparison is measured as a pair: both servers at once, ${
    pinned === undefined
      ? "unpinned (`taskset` was not available, or the machine has one CPU)"
      : `both pinned to CPU ${pinned} with \`taskset\` (the load generators and redis-server run on the other${
        Os.availableParallelism() > 2 ? "s" : ""
      })`
  }, each loaded by an autocannon process of its own with ${
    Math.max(1, Math.floor(settings.connections / 2))
  } of the ${settings.connections} connections (its latency percentiles are autocannon's, in whole milliseconds), ${settings.warmup} s
warm-up then ${settings.seconds} s measured over the same seconds, ${settings.rounds} rounds (pairs in the order below, then
reversed). The two busy servers share one CPU, so each one's req/s is what its CPU cost per request allows;
whatever else the machine does in those seconds lands on both. Each ratio's range over the rounds is beside
it; the runs one after the other (further below) give their own, round by round, for comparison. The CPU rate is the other server's CPU time per request over this one's, the p99 ratio this
one's over the other's.

${table(["pair", "req/s ratio", "range", "CPU rate", "range", "p99 ratio"], pairedRows)}

Where session/memory's cost goes (tracer on, req/s ratios of the pairs above): the structure any session
middleware of this shape has (the floor ÷ base) ${x(pairedRatio("G", "A"))}, the pre-response hook with the
caching headers (the floor with it ÷ the floor) ${x(pairedRatio("V", "G"))}, the lookup itself (session/memory ÷
the floor with the hook) ${x(pairedRatio("B", "V"))}; their product, ${
    x(pairedRatio("G", "A") * pairedRatio("V", "G") * pairedRatio("B", "V"))
  }, against session/memory ÷ base measured directly, ${x(pairedRatio("B", "A"))}.

Every pair run:

${
    table([
      "round",
      "pair",
      "req/s",
      "req/s (the other)",
      "ratio",
      "CPU µs/req",
      "CPU µs/req (the other)",
      "p99 ms",
      "p99 ms (the other)",
      "non-2xx",
      "errors"
    ], everyPair)
  }

### Runs one after the other (each server alone, unpinned)

The same configurations measured one at a time, as this benchmark measured them before the pairs: absolute
figures on this machine, and how far apart two runs of the same server land. Their ratios, for comparison
with the bars: ${sequentialBars.slice(0, 5).map((b) => `${b.name} ${b.value}`).join("; ")}.

Also: session/memory ÷ base with the tracer off ${x(ratios.memoryOff)}; p99 session/Redis ÷ p99 base with
the tracer off ${x(ratios.p99RedisOff)}; base with the tracer off ÷ base with it on ${x(ratios.tracerOffBase)}.

The server process's own CPU time per request (\`process.cpuUsage()\` before and after each measured run, over the
responses; redis-server's CPU not included), which the shared machine distorts less than req/s: base ${x(cpu("A"))} µs,
session/memory ${x(cpu("B"))} µs (${signed(cpu("B") - cpu("A"))}), session/Redis ${x(cpu("C"))} µs (${
    signed(cpu("C") - cpu("A"))
  }) with the tracer on; base ${x(cpu("D"))} µs, session/Redis ${x(cpu("F"))} µs (${
    signed(cpu("F") - cpu("D"))
  }) with it off. As rates (base CPU ÷ session CPU, the ratio a CPU-bound server would reach): session/memory
${x(ratios.cpuMemoryOn)}, session/Redis ${x(ratios.cpuRedisOn)} (tracer on), ${x(ratios.cpuRedisOff)} (tracer off).

The floor (G: the same routes behind a middleware that adds one constant session to every request's context,
without reading a cookie or looking anything up) answers ${x(ratios.floorOn)} of base's req/s (CPU rate ${
    x(ratios.cpuFloorOn)
  }, ${x(cpu("G"))} µs per request): the share that any session middleware of this shape leaves before it does
any work, against the 0.95 bar for session/memory.

Round by round (each ratio between two runs of the same round: A and B ran one after the other, G at the
round's other end; the median, then the range over the ${settings.rounds} rounds): session/memory ÷ base ${
    x(rounds.memoryOn.median)
  } req/s (${rounds.memoryOn.range}), ${
    x(rounds.cpuMemoryOn.median)
  } as a CPU rate (${rounds.cpuMemoryOn.range}); the floor ÷ base ${
    x(rounds.floorOn.median)
  } req/s (${rounds.floorOn.range}), ${
    x(rounds.cpuFloorOn.median)
  } as a CPU rate (${rounds.cpuFloorOn.range}); session/memory ÷ the floor ${
    x(rounds.cpuMemoryFloor.median)
  } as a CPU rate (${rounds.cpuMemoryFloor.range}); session/Redis + near-cache ÷ base ${
    x(rounds.nearCacheOn.median)
  } req/s (${rounds.nearCacheOn.range}), ÷ session/memory ${
    x(rounds.nearCacheMemory.median)
  } req/s (${rounds.nearCacheMemory.range}). A range that spans 1.00, or the bar, is a difference this run
cannot tell from the machine's noise.

### Medians per configuration

${
    table(
      [
        "id",
        "configuration",
        "req/s",
        "range",
        "p50 ms",
        "p99 ms",
        "server CPU µs/req",
        "non-2xx (all runs)",
        "errors (all runs)"
      ],
      perConfig
    )
  }

### Every run

${
    table(
      [
        "round",
        "id",
        "configuration",
        "req/s",
        "p50 ms",
        "p99 ms",
        "server CPU µs/req",
        "non-2xx",
        "errors",
        "timeouts"
      ],
      perRun
    )
  }
`
}
