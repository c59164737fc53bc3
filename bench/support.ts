/**
 * What every benchmark shares: statistics, the machine and version report, the marked sections of
 * RESULTS.md, load loops, and child processes that never outlive the run.
 */
import * as Clock from "effect/Clock"
import * as Data from "effect/Data"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import type { Redis } from "ioredis"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

export const root = fileURLToPath(new URL("../", import.meta.url))
export const resultsFile = fileURLToPath(new URL("RESULTS.md", import.meta.url))
export const profileFile = fileURLToPath(new URL("PROFILE.md", import.meta.url))

export const promise = <A>(evaluate: () => Promise<A>) => Effect.promise(evaluate)

// -----------------------------------------------------------------------------
// statistics and formatting
// -----------------------------------------------------------------------------

export const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  if (sorted.length === 0) return NaN
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** The `q` quantile (0..1) of already sorted values, nearest rank. */
export const quantile = (sorted: ArrayLike<number>, q: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!

/** Thousands-separated integer. */
export const n = (value: number) => Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "–"
/** Two decimals. */
export const x = (value: number) => Number.isFinite(value) ? value.toFixed(2) : "–"
/** The range of a series, as `min–max`. */
export const range = (values: ReadonlyArray<number>, format: (value: number) => string = n) =>
  values.length === 0 ? "–" : `${format(Math.min(...values))}–${format(Math.max(...values))}`

/** A markdown table. */
export const table = (header: ReadonlyArray<string>, rows: ReadonlyArray<ReadonlyArray<string>>): string =>
  [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => "---").join("|")}|`,
    ...rows.map((row) => `| ${row.join(" | ")} |`)
  ]
    .join("\n")

// -----------------------------------------------------------------------------
// the machine
// -----------------------------------------------------------------------------

export const packageVersion = (name: string) =>
  promise(async () => {
    const text = await Fs.readFile(`${root}node_modules/${name}/package.json`, "utf8").catch(() => undefined)
    return text === undefined ? "not installed" : (JSON.parse(text) as { version: string }).version
  })

const cpuModel = promise(async () => {
  const text = await Fs.readFile("/proc/cpuinfo", "utf8").catch(() => "")
  return /^model name\s*:\s*(.+)$/m.exec(text)?.[1]?.trim() ?? Os.cpus()[0]?.model ?? "unknown"
})

const loadAverage = () => Os.loadavg().map((load) => load.toFixed(2)).join(" ")

/** The machine, Node and package versions, and the date, as the first rows of a setup table. */
export interface Machine {
  readonly date: string
  readonly cpu: string
  readonly cores: number
  readonly node: string
  readonly packages: ReadonlyArray<readonly [string, string]>
  /** The commit measured, and whether src/ differed from it. */
  readonly source: string
  readonly loadBefore: string
}

const gitSource = promise(async () => {
  const git = (args: ReadonlyArray<string>) =>
    new Promise<string>((resolve) =>
      execFile("git", args, { cwd: root }, (error, stdout) => resolve(error === null ? stdout.trim() : ""))
    )
  const commit = await git(["rev-parse", "--short", "HEAD"])
  if (commit === "") return "unknown (not a git checkout)"
  const changed = await git(["status", "--porcelain", "--", "src"])
  return changed === "" ? `${commit}, src/ as committed` : `${commit}, with uncommitted changes in src/`
})

export const machine = (packages: ReadonlyArray<string>): Effect.Effect<Machine> =>
  Effect.gen(function*() {
    return {
      date: DateTime.formatIso(yield* DateTime.now),
      cpu: yield* cpuModel,
      cores: Os.availableParallelism(),
      node: process.version,
      packages: yield* Effect.forEach(packages, (name) => Effect.map(packageVersion(name), (v) => [name, v] as const)),
      source: yield* gitSource,
      loadBefore: loadAverage()
    }
  })

/** The setup table of a section: what ran, where, with which versions. `extra` rows go after the versions. */
export const setupTable = (
  info: Machine,
  command: string,
  extra: ReadonlyArray<readonly [string, string]> = []
): string =>
  table(["", ""], [
    ["date", info.date],
    ["command", command],
    ["source", info.source],
    ["machine", `${info.cpu}, ${info.cores} cores (load generator, servers and redis-server share them)`],
    ["Node", info.node],
    ...info.packages.map(([name, version]) => [name, version]),
    ...extra.map(([k, v]) => [k, v]),
    ["load average (1, 5, 15 min)", `${info.loadBefore} before, ${loadAverage()} after`]
  ])

// -----------------------------------------------------------------------------
// RESULTS.md, in marked sections
// -----------------------------------------------------------------------------

const resultsHeader = `# Benchmarks

Generated by the programs in \`bench/\`; every figure in a section comes from the one run that section
names. Each program rewrites only its own marked section(s): \`npm run bench\` (micro benchmarks and the HTTP
benchmark; its CPU profile goes to \`bench/PROFILE.md\`) and \`npm run bench:redis\` (the Redis store). Copy
nothing by hand: run them again to refresh this file. Claims rest on ratios to a baseline measured in the
same run, not on absolute figures (the machine is shared).
`

const begin = (name: string) => `<!-- bench:begin ${name} -->`
const end = (name: string) => `<!-- bench:end ${name} -->`

/**
 * Replaces the section `name` of `file` (between its markers), or appends it; everything else in the
 * file is kept. A file without any marker is started afresh.
 */
export const writeSection = (file: string, name: string, body: string) =>
  promise(async () => {
    const current = await Fs.readFile(file, "utf8").catch(() => "")
    const block = `${begin(name)}\n${body.trim()}\n${end(name)}`
    const base = current.includes("<!-- bench:begin ") ? current : resultsHeader
    const from = base.indexOf(begin(name))
    const to = base.indexOf(end(name))
    const next = from >= 0 && to > from
      ? base.slice(0, from) + block + base.slice(to + end(name).length)
      : `${base.trimEnd()}\n\n${block}\n`
    await Fs.writeFile(file, next)
  })

// -----------------------------------------------------------------------------
// load loops
// -----------------------------------------------------------------------------

export interface Round {
  readonly ops: number
  readonly seconds: number
  /** This process's CPU time (user + system) over the round, where measured. */
  readonly cpuSeconds?: number
}

export const perSecond = (round: Round) => round.ops / round.seconds

/** Runs `operation` from `concurrency` fibers for `duration`; answers how many completed and in how long. */
export const effectRound = <E>(
  operation: (worker: number, i: number) => Effect.Effect<unknown, E>,
  concurrency: number,
  duration: Duration.DurationInput
): Effect.Effect<Round, E> =>
  Effect.gen(function*() {
    let ops = 0
    const start = yield* Clock.currentTimeNanos
    // Each worker reads the clock rather than waiting for a timer: a store that answers synchronously (in
    // memory) would keep a timer fiber from ever running.
    const end = start + Duration.toNanos(Duration.decode(duration)).pipe(Option.getOrThrow)
    const worker = (w: number) =>
      Effect.gen(function*() {
        let i = 0
        while ((yield* Clock.currentTimeNanos) < end) {
          yield* operation(w, i++)
          ops++
        }
      })
    yield* Effect.forEach(Array.from({ length: concurrency }, (_, w) => w), worker, {
      concurrency: "unbounded",
      discard: true
    })
    const finished = yield* Clock.currentTimeNanos
    return { ops, seconds: Number(finished - start) / 1e9 }
  })

/** Runs `operation` from `concurrency` plain `async` loops for `duration`: no Effect in the measured path. */
export const promiseRound = (
  operation: () => Promise<unknown>,
  concurrency: number,
  duration: Duration.DurationInput
): Effect.Effect<Round> =>
  promise(async () => {
    const cpu = process.cpuUsage()
    const start = performance.now()
    // the clock, not a timer: an operation that settles in microtasks (in-process) would starve the timer
    const end = start + Duration.toMillis(duration)
    let ops = 0
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        await operation()
        ops++
      }
    }))
    const seconds = (performance.now() - start) / 1e3
    const { system, user } = process.cpuUsage(cpu)
    return { ops, seconds, cpuSeconds: (user + system) / 1e6 }
  })

/**
 * The Redis baseline: raw ioredis `HGET`s of `field` in the hash `key`, the one command a session read
 * (`fetch`) sends.
 */
export const rawHgetRound = (
  client: Redis,
  key: string,
  field: string,
  concurrency: number,
  duration: Duration.DurationInput
) => promiseRound(() => client.hget(key, field), concurrency, duration)

/** Calls a synchronous `f` in a plain loop for `duration`: no Effect in the measured path. */
export const syncRound = (f: (i: number) => unknown, duration: Duration.DurationInput): Effect.Effect<Round> =>
  Effect.sync(() => {
    const budget = Duration.toMillis(duration)
    const start = performance.now()
    let now = start
    let ops = 0
    let sink: unknown
    while (now - start < budget) {
      for (let i = 0; i < 256; i++) sink = f(ops + i)
      ops += 256
      now = performance.now()
    }
    if (sink === Symbol.for("never")) console.log(sink)
    return { ops, seconds: (now - start) / 1e3 }
  })

// -----------------------------------------------------------------------------
// child processes
// -----------------------------------------------------------------------------

export class ChildError extends Data.TaggedError("ChildError")<{ readonly message: string }> {}

// No child may outlive the bench: finalizers stop them in order, and this hook kills whatever is left
// when the process exits any other way.
const running = new Set<ChildProcess>()
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

export interface Child {
  readonly pid: number
  /** The last 16 KiB the process wrote to stdout and stderr. */
  readonly output: () => string
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>
  readonly hasExited: () => boolean
}

const hasExited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/**
 * Spawns `command args` in the repository root; the scope stops it (SIGTERM, then SIGKILL after
 * `grace`).
 */
export const spawnChild = (
  command: string,
  args: ReadonlyArray<string>,
  grace: Duration.DurationInput = "5 seconds"
): Effect.Effect<Child, ChildError, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<{ child: ChildProcess; handle: Child }, ChildError>((resume) => {
      const child = spawn(command, args, { cwd: root, stdio: ["ignore", "pipe", "pipe"] })
      let output = ""
      const append = (chunk: Buffer) => {
        output = (output + chunk.toString("utf8")).slice(-16_384)
      }
      child.stdout?.on("data", append)
      child.stderr?.on("data", append)
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
      child.once("spawn", () => {
        running.add(child)
        child.once("exit", () => running.delete(child))
        child.on("error", () => {})
        resume(Effect.succeed({
          child,
          handle: { pid: child.pid!, output: () => output, exited, hasExited: () => hasExited(child) }
        }))
      })
      child.once("error", (error) =>
        resume(Effect.fail(new ChildError({ message: `could not start ${command}: ${error.message}` }))))
    }),
    ({ child, handle }) =>
      Effect.suspend(() => {
        if (hasExited(child)) {
          return Effect.void
        }
        child.kill("SIGTERM")
        return promise(() =>
          handle.exited
        ).pipe(
          Effect.timeout(grace),
          Effect.catchTag("TimeoutException", () => {
            child.kill("SIGKILL")
            return promise(() => handle.exited).pipe(Effect.timeout("5 seconds"), Effect.ignore)
          })
        )
      })
  ).pipe(Effect.map(({ handle }) => handle))

/** A free TCP port on 127.0.0.1 (bound, then released: a caller that loses the race retries). */
export const freePort: Effect.Effect<number, ChildError> = Effect.async<number, ChildError>((resume) => {
  const server = Net.createServer()
  server.unref()
  server.once("error", (error) => resume(Effect.fail(new ChildError({ message: error.message }))))
  server.listen({ host: "127.0.0.1", port: 0, exclusive: true }, () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** GETs `url` until it answers (any status), failing if `child` exits first or after `timeout`. */
export const awaitHttp = (url: string, child: Child, timeout: Duration.DurationInput = "30 seconds") => {
  const exited = () => new ChildError({ message: `the server exited before answering:\n${child.output().trim()}` })
  const get = Effect.tryPromise({
    try: (signal) => fetch(url, { signal }).then((response) => response.text()),
    catch: (cause) => new ChildError({ message: String(cause) })
  }).pipe(Effect.timeoutFail({ duration: "1 second", onTimeout: () => new ChildError({ message: "timed out" }) }))
  return Effect.suspend(() => child.hasExited() ? Effect.fail(exited()) : get).pipe(
    Effect.retry({ schedule: Schedule.spaced("100 millis"), while: () => !child.hasExited() }),
    Effect.catchAll(() => Effect.fail(exited())),
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new ChildError({
          message: `${url} did not answer within ${Duration.format(Duration.decode(timeout))}:\n${child.output()}`
        })
    }),
    Effect.asVoid
  )
}

// -----------------------------------------------------------------------------
// the server, compiled
// -----------------------------------------------------------------------------

/**
 * Transpiles `src/`, bench/app.ts and bench/http-server.ts with TypeScript (no type check, no minification) into a
 * temporary directory that resolves `node_modules` from the repository, and answers that directory:
 * `node <dir>/bench/http-server.js` then runs the server as plain JavaScript, the way an application
 * built with `tsc` would. The scope removes it.
 */
export const compileServer: Effect.Effect<string, never, Scope.Scope> = Effect.acquireRelease(
  promise(async () => {
    const ts = (await import("typescript")).default
    const dir = await Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-sessions-bench-"))
    await Fs.writeFile(Path.join(dir, "package.json"), JSON.stringify({ type: "module" }))
    await Fs.symlink(Path.join(root, "node_modules"), Path.join(dir, "node_modules"), "dir")
    const sources = [
      ...(await Fs.readdir(Path.join(root, "src"), { recursive: true })).map((file) => Path.join("src", file)),
      "bench/app.ts",
      "bench/http-server.ts"
    ].filter((file) => file.endsWith(".ts"))
    for (const file of sources) {
      const { outputText } = ts.transpileModule(await Fs.readFile(Path.join(root, file), "utf8"), {
        fileName: file,
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true }
      })
      const out = Path.join(dir, file.replace(/\.ts$/, ".js"))
      await Fs.mkdir(Path.dirname(out), { recursive: true })
      await Fs.writeFile(out, outputText)
    }
    return dir
  }),
  (dir) => promise(() => Fs.rm(dir, { recursive: true, force: true }))
)
