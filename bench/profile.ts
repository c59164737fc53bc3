/**
 * Where a request's time goes: the HTTP servers under `node --cpu-prof` with autocannon load, and a
 * summary of each `.cpuprofile` (self time by function, time by package, inclusive time of this library's
 * functions), written to bench/PROFILE.md.
 *
 * Only the samples taken while the measured load ran count: the profile's timestamps and
 * `process.hrtime` read the same monotonic clock, so start-up, module loading and the warm-up are left out.
 */
import * as Effect from "effect/Effect"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import type { RedisServer } from "../test/support/redis.js"
import { type Configuration, cpuTime, label, type Load, load, startServer } from "./http.js"
import { ChildError, compileServer, type Machine, n, promise, root, setupTable, table, x } from "./support.js"

// -----------------------------------------------------------------------------
// the .cpuprofile format (what V8 writes)
// -----------------------------------------------------------------------------

interface CallFrame {
  readonly functionName: string
  readonly url: string
  readonly lineNumber: number
  readonly columnNumber: number
}

interface ProfileNode {
  readonly id: number
  readonly callFrame: CallFrame
  readonly children?: ReadonlyArray<number>
}

interface CpuProfile {
  readonly nodes: ReadonlyArray<ProfileNode>
  /** Microseconds, on the clock of `process.hrtime`. */
  readonly startTime: number
  readonly endTime: number
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

// -----------------------------------------------------------------------------
// analysis
// -----------------------------------------------------------------------------

/** Shortens a script URL to what a reader recognises: `effect/internal/fiberRuntime.js`, `src/Session.ts`. */
const shortUrl = (url: string): string => {
  if (url === "") return ""
  const path = url.replace(/^file:\/\//, "")
  const modules = path.lastIndexOf("/node_modules/")
  if (modules >= 0) {
    return path.slice(modules + "/node_modules/".length).replace("/dist/esm/", "/").replace("/dist/", "/")
  }
  if (path.startsWith(root)) return path.slice(root.length)
  // the transpiled server (see `compileServer`): src/Session.js, bench/http-server.js
  return path.replace(/^.*\/effect-sessions-bench-[^/]+\//, "")
}

/** The package (or area) a frame belongs to, for the per-package table. */
const area = (frame: CallFrame): string => {
  const { functionName, url } = frame
  if (url === "") {
    if (functionName.startsWith("(")) return functionName // (garbage collector), (program), (idle)
    return "native (V8 builtins, C++: crypto, JSON, …)"
  }
  const short = shortUrl(url)
  if (short.startsWith("node:") || short.startsWith("internal/")) return "Node.js core (http, net, streams, …)"
  if (short.startsWith("src/")) return "effect-sessions (src/)"
  if (short.startsWith("bench/")) return "bench/http-server.ts"
  const scoped = /^(@[^/]+\/[^/]+|[^/]+)/.exec(short)
  return scoped?.[1] ?? short
}

/** Function name + URL; anonymous functions also by line, or they would all merge per file. */
const frameKey = (frame: CallFrame): string => {
  const name = frame.functionName === "" ? `(anonymous):${frame.lineNumber + 1}` : frame.functionName
  const url = shortUrl(frame.url)
  return url === "" ? name : `${name} ${url}`
}

export interface Summary {
  readonly samples: number
  /** The wall time the counted samples cover, µs. */
  readonly micros: number
  readonly windowed: boolean
  readonly idle: number
  readonly self: ReadonlyArray<readonly [string, number]>
  readonly areas: ReadonlyArray<readonly [string, number]>
  readonly inclusive: ReadonlyArray<readonly [string, number]>
}

/** Self time by frame and by area, and inclusive time of `src/` frames, over samples in `[from, to]` µs. */
export const summarise = (profile: CpuProfile, from: number, to: number): Summary => {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
  const parent = new Map<number, number>()
  for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id)
  const hits = new Map<number, number>()
  let time = profile.startTime
  let inWindow = 0
  for (let i = 0; i < profile.samples.length; i++) {
    time += profile.timeDeltas[i] ?? 0
    if (time >= from && time <= to) {
      hits.set(profile.samples[i]!, (hits.get(profile.samples[i]!) ?? 0) + 1)
      inWindow++
    }
  }
  // A window that matches nothing means the clocks disagree: fall back to the whole profile, and say so.
  const windowed = inWindow > 0
  if (!windowed) { for (const id of profile.samples) hits.set(id, (hits.get(id) ?? 0) + 1) }
  const micros = windowed ? to - from : profile.endTime - profile.startTime
  const add = (map: Map<string, number>, key: string, count: number) => map.set(key, (map.get(key) ?? 0) + count)
  const self = new Map<string, number>()
  const areas = new Map<string, number>()
  const inclusive = new Map<string, number>()
  let samples = 0
  let idle = 0
  for (const [id, count] of hits) {
    const frame = nodes.get(id)!.callFrame
    samples += count
    if (frame.functionName === "(idle)") idle += count
    add(self, frameKey(frame), count)
    add(areas, area(frame), count)
    // each src/ frame once per stack, however deeply it recurses
    const seen = new Set<string>()
    for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
      const f = nodes.get(at)!.callFrame
      if (shortUrl(f.url).startsWith("src/")) seen.add(frameKey(f))
    }
    for (const key of seen) add(inclusive, key, count)
  }
  const sorted = (map: Map<string, number>) => [...map].sort((a, b) => b[1] - a[1])
  return { samples, micros, windowed, idle, self: sorted(self), areas: sorted(areas), inclusive: sorted(inclusive) }
}

// -----------------------------------------------------------------------------
// the runs
// -----------------------------------------------------------------------------

export interface Settings {
  readonly seconds: number
  readonly warmup: number
  readonly connections: number
  /** `--cpu-prof-interval`, µs. */
  readonly interval: number
}

export interface Profiled {
  readonly config: Configuration
  readonly load: Load
  /** The server process's CPU time per request during the window (profiler included), µs. */
  readonly cpuPerRequest: number
  readonly summary: Summary
}

export const profiled: ReadonlyArray<Configuration> = [
  { id: "C", mode: "session", store: "redis", tracer: "on" },
  { id: "B", mode: "session", store: "memory", tracer: "on" },
  { id: "A", mode: "base", store: "memory", tracer: "on" },
  { id: "G", mode: "floor", store: "memory", tracer: "on" }
]

// Which profiles are compared: each session server against base, then the session servers against the
// floor (what the lookup costs beyond the middleware's structure), then the floor against base (what
// that structure costs by itself).
const compared: ReadonlyArray<readonly [string, string]> = [["C", "A"], ["B", "A"], ["B", "G"], ["C", "G"], ["G", "A"]]

const profileOne = (config: Configuration, redis: RedisServer, settings: Settings, compiled: string) =>
  Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(
      promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-sessions-cpuprof-"))),
      (dir) => promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    const window = yield* Effect.scoped(Effect.gen(function*() {
      const server = yield* startServer(config, redis, {
        nodeArgs: ["--cpu-prof", "--cpu-prof-dir", dir, "--cpu-prof-interval", String(settings.interval)],
        // the profile is written as the process exits: give it time
        stopGrace: "20 seconds",
        compiled
      })
      if (settings.warmup > 0) yield* load(server, settings.warmup, settings.connections)
      const cpuBefore = yield* cpuTime(server)
      const from = Number(process.hrtime.bigint() / 1000n)
      const measured = yield* load(server, settings.seconds, settings.connections)
      const to = Number(process.hrtime.bigint() / 1000n)
      const cpuPerRequest = ((yield* cpuTime(server)) - cpuBefore) / measured.responses
      return { from, to, measured, cpuPerRequest }
    }))
    // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: tsx's module hooks run on a thread of their own,
    // which writes a profile too; the main thread is thread 0.
    const files = (yield* promise(() => Fs.readdir(dir))).filter((file) => /\.\d+\.0\.\d+\.cpuprofile$/.test(file))
    if (files.length !== 1) {
      return yield* new ChildError({
        message: `${label(config)}: expected one main-thread .cpuprofile, found ${files.length}`
      })
    }
    const profile = JSON.parse(yield* promise(() => Fs.readFile(Path.join(dir, files[0]!), "utf8"))) as CpuProfile
    const summary = summarise(profile, window.from, window.to)
    yield* Effect.logInfo(`profile: ${label(config)}: ${n(summary.samples)} samples`)
    return { config, load: window.measured, cpuPerRequest: window.cpuPerRequest, summary } satisfies Profiled
  }).pipe(Effect.scoped)

// The servers run as plain JavaScript transpiled by TypeScript: under tsx, src/ is minified onto one line and
// its functions wrapped by esbuild's `__name`, so the profile would name none of them.
export const run = (redis: RedisServer, settings: Settings) =>
  Effect.flatMap(
    compileServer,
    (compiled) => Effect.forEach(profiled, (config) => profileOne(config, redis, settings, compiled))
  ).pipe(Effect.scoped)

// -----------------------------------------------------------------------------
// report
// -----------------------------------------------------------------------------

const top = 25

/** µs of wall time per request that `count` samples stand for. */
const perRequest = ({ load, summary }: Profiled, count: number) =>
  count * summary.micros / summary.samples / load.responses

const differential = (
  session: Profiled,
  base: Profiled,
  pick: (summary: Summary) => ReadonlyArray<readonly [string, number]>
) => {
  const before = new Map(pick(base.summary))
  const after = new Map(pick(session.summary))
  return [...new Set([...before.keys(), ...after.keys()])].map((key) => {
    const b = perRequest(base, before.get(key) ?? 0)
    const a = perRequest(session, after.get(key) ?? 0)
    return [key, a - b, b, a] as const
  }).sort((x, y) => y[1] - x[1])
}

export const report = (
  results: ReadonlyArray<Profiled>,
  settings: Settings,
  info: Machine,
  command: string
): string => {
  const pct = (count: number, total: number) => `${(100 * count / total).toFixed(1)}%`
  const us = (value: number) => value.toFixed(1)
  const sections = results.map((result) => {
    const { config, load, summary } = result
    const per = (count: number) => us(perRequest(result, count))
    return `## ${label(config)}

${n(summary.samples)} samples${
      summary.windowed ? " taken while the measured load ran" : " (whole profile: the load window matched no sample)"
    } (${us(summary.micros / 1e6)} s), ${
      pct(summary.idle, summary.samples)
    } idle; under the profiler the server answered ${n(load.requestsPerSecond)} req/s (p99 ${
      x(load.p99)
    } ms, non-2xx ${load.non2xx}, errors ${load.errors}), i.e. ${
      us(summary.micros / load.responses)
    } µs of wall time and ${us(result.cpuPerRequest)} µs of the server process's CPU time per request.

### Self time by area

${
      table(
        ["area", "samples", "% of all", "µs per request"],
        summary.areas.map(([a, c]) => [a, n(c), pct(c, summary.samples), per(c)])
      )
    }

### Top ${top} frames by self time

${
      table(
        ["#", "function (file)", "self samples", "% of all", "µs per request"],
        summary.self.slice(0, top).map(([key, c], i) => [
          String(i + 1),
          `\`${key}\``,
          n(c),
          pct(c, summary.samples),
          per(c)
        ])
      )
    }
${
      summary.inclusive.length === 0 ? "" : `
### effect-sessions frames by inclusive time (on the stack)

Only synchronous work shows up under a \`src/\` frame: the Effect operations \`src/\` composes run later in
\`effect/internal/fiberRuntime.js\` frames, so their cost is in the differential tables below.

${
        table(
          ["function (file)", "samples", "% of all", "µs per request"],
          summary.inclusive.slice(0, 15).map(([key, c]) => [`\`${key}\``, n(c), pct(c, summary.samples), per(c)])
        )
      }
`
    }`
  })
  const byId = (id: string) => results.find((r) => r.config.id === id)
  const differentials = compared.flatMap(([sessionId, baseId]) => {
    const session = byId(sessionId)
    const base = byId(baseId)
    if (session === undefined || base === undefined) return []
    const rows = (pick: (summary: Summary) => ReadonlyArray<readonly [string, number]>, limit: number) =>
      differential(session, base, pick).slice(0, limit).map(([key, d, b, a]) => [`\`${key}\``, us(d), us(b), us(a)])
    return `## ${label(session.config)} − ${label(base.config)}, µs of wall time per request

${us(session.summary.micros / session.load.responses)} − ${us(base.summary.micros / base.load.responses)} = ${
      us(session.summary.micros / session.load.responses - base.summary.micros / base.load.responses)
    } µs of wall time per request in all (server CPU: ${us(session.cpuPerRequest)} − ${us(base.cpuPerRequest)} = ${
      us(session.cpuPerRequest - base.cpuPerRequest)
    } µs).

${table(["area", "difference", "base", "session"], rows((s) => s.areas, 20))}

Frames that grew most:

${table(["function (file)", "difference", "base", "session"], rows((s) => s.self, top))}
`
  })
  return `# CPU profile of the HTTP benchmark servers

Generated by \`npm run bench\` (the \`profile\` step of bench/main.ts); rewritten on every run that
includes it. Each server ran under \`node --cpu-prof --cpu-prof-interval ${settings.interval}\` with Effect's
default tracer on and ${settings.connections} autocannon connections on \`GET /check\`: ${settings.warmup} s of
warm-up, then ${settings.seconds} s whose samples are summarised here. The servers run as plain JavaScript
transpiled by TypeScript (\`compileServer\` in bench/support.ts), not under tsx, which minifies \`src/\` and
wraps its functions so that no frame would be named; \`src/*.js\` lines are those of that output.

Self time is aggregated by function name and file (anonymous functions by line too). Samples are wall-clock
ticks of the main thread: time the process spent descheduled (${info.cores} cores shared with autocannon, redis-server
and whatever else runs) lands on the frame it was in, mostly \`writev\` (the socket write). "µs per request"
divides the samples' wall time by the responses in the window. The profiler slows the server down, so the
request rates are not comparable with RESULTS.md; shares and differences are what count.

Each session server is compared with base (what a session costs), then with the floor (\`--mode floor\`: the
same routes behind a middleware that adds a constant session to the context; what the lookup costs beyond
that structure), and the floor with base (what the structure costs by itself). In each table the column
"base" is the server subtracted.

${setupTable(info, command)}

${differentials.join("\n")}
${sections.join("\n")}`
}
