/**
 * `npm run bench:compare`: the read path of the working tree against a baseline revision, both measured in
 * this one run, interleaved, and reported as ratios (current ÷ baseline), so that a claim of "no regression"
 * does not rest on two runs hours apart on a shared, noisy machine. Results go to the marked section
 * `compare` of bench/RESULTS.md.
 *
 * The baseline is checked out into a throwaway `git worktree add --detach` (with this tree's node_modules),
 * removed at the end whatever happens. Each round runs one child process per tree,
 * `node --import tsx bench/readpath.ts <tree>`: this tree's harness on that tree's `src/`; which tree goes
 * first alternates from round to round, and so does the order of the cases within the children.
 *
 * ```sh
 * npm run bench:compare                                  # 6 rounds of 2 s per case, about 4 minutes
 * BENCH_BASELINE=HEAD~1 npm run bench:compare            # against another revision
 * BENCH_ROUNDS=2 BENCH_SECONDS=1 npm run bench:compare   # a smoke run (figures meaningless), about a minute
 * ```
 *
 * | variable          | meaning                                                    | default      |
 * | ----------------- | ---------------------------------------------------------- | ------------ |
 * | `BENCH_BASELINE`  | the baseline revision (anything `git rev-parse` takes)     | `1b80d23`    |
 * | `BENCH_ROUNDS`    | rounds (each runs one child per tree)                      | 6            |
 * | `BENCH_SECONDS`   | measured seconds per case per child                        | 2            |
 * | `BENCH_WARMUP`    | untimed seconds per case per child, before measuring       | 0.5          |
 * | `BENCH_DEADLINE`  | the whole run is stopped (children too) after this         | 10 minutes   |
 *
 * It starts its own `redis-server` (from PATH, on a free 127.0.0.1 port, no persistence) for the Redis case
 * and stops it, and every child, whatever happens; it never touches another Redis.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { execFile } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Os from "node:os"
import * as Path from "node:path"
import { type RedisServer, startRedis } from "../test/support/redis.js"
import {
  ChildError,
  machine,
  median,
  n,
  promise,
  range,
  resultsFile,
  root,
  setupTable,
  spawnChild,
  table,
  writeSection,
  x
} from "./support.js"

const packages = ["effect", "@effect/platform", "@effect/platform-node", "ioredis", "tsx"]

const settings = Config.all({
  baseline: Config.withDefault(Config.string("BENCH_BASELINE"), "1b80d23"),
  rounds: Config.withDefault(Config.integer("BENCH_ROUNDS"), 6),
  seconds: Config.withDefault(Config.number("BENCH_SECONDS"), 2),
  warmup: Config.withDefault(Config.number("BENCH_WARMUP"), 0.5),
  deadline: Config.withDefault(Config.duration("BENCH_DEADLINE"), Duration.minutes(10))
})
type Settings = Omit<Config.Config.Success<typeof settings>, "deadline">

/** The command as run, with the variables that were set, for the setup table. */
const command = () => {
  const vars = Object.entries(process.env).filter(([name]) => name.startsWith("BENCH_")).map(([k, v]) => `${k}=${v}`)
  return `\`${[...vars, "npm run bench:compare"].join(" ")}\``
}

// -----------------------------------------------------------------------------
// git and the baseline tree
// -----------------------------------------------------------------------------

const git = (args: ReadonlyArray<string>) =>
  Effect.async<string, ChildError>((resume) => {
    execFile("git", args, { cwd: root }, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.succeed(stdout.trim())
          : Effect.fail(new ChildError({ message: `git ${args.join(" ")}: ${stderr.trim() || error.message}` }))
      ))
  })

interface Tree {
  readonly name: "baseline" | "current"
  /** The directory whose `src/` the child imports. */
  readonly root: string
  /** What was measured, for the setup table. */
  readonly describe: string
}

/**
 * The baseline revision in a throwaway detached worktree with this tree's node_modules (symlinked), so
 * that both trees run on the same packages. The scope removes the worktree, its directory and git's
 * record of it.
 */
const baselineTree = (revision: string) =>
  Effect.gen(function*() {
    const commit = yield* git(["rev-parse", "--verify", `${revision}^{commit}`])
    const parent = yield* Effect.acquireRelease(
      promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), "effect-sessions-baseline-"))),
      (dir) => promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    const dir = Path.join(parent, "tree")
    yield* Effect.acquireRelease(
      git(["worktree", "add", "--detach", dir, commit]),
      () =>
        // the symlink first, so that nothing below can reach into the shared node_modules
        promise(() => Fs.rm(Path.join(dir, "node_modules"), { force: true })).pipe(
          Effect.zipRight(git(["worktree", "remove", "--force", dir])),
          Effect.catchAll((error) =>
            Effect.logWarning(`${error.message}; removing ${dir} by hand`).pipe(
              Effect.zipRight(promise(() => Fs.rm(dir, { recursive: true, force: true }))),
              Effect.zipRight(Effect.ignore(git(["worktree", "prune"])))
            )
          )
        )
    )
    yield* promise(() => Fs.symlink(Path.join(root, "node_modules"), Path.join(dir, "node_modules"), "dir"))
    yield* Effect.logInfo(`baseline ${revision} (${commit}) checked out in ${dir}`)
    return { name: "baseline", root: dir, describe: `\`${revision}\` = ${commit}` } satisfies Tree
  })

const currentTree = Effect.gen(function*() {
  const commit = yield* git(["rev-parse", "HEAD"])
  const changed = yield* git(["status", "--porcelain", "--", "src"])
  const state = changed === "" ? "src/ as committed" : "with uncommitted changes in src/"
  return { name: "current", root, describe: `the working tree at ${commit}, ${state}` } satisfies Tree
})

// -----------------------------------------------------------------------------
// the children
// -----------------------------------------------------------------------------

/** The start of the result line of bench/readpath.ts. */
const marker = "readpath: "

const Output = Schema.parseJson(Schema.Struct({
  cases: Schema.Array(Schema.Struct({
    id: Schema.String,
    label: Schema.String,
    inFlight: Schema.Number,
    perSecond: Schema.Number,
    perCpuSecond: Schema.Number
  }))
}))
type Output = typeof Output.Type
type Case = Output["cases"][number]

/** One child on `tree`: its ops/s per case. Interrupted, the child is stopped (SIGTERM, then SIGKILL). */
const measureTree = (tree: Tree, redis: RedisServer, settings: Settings, reverse: boolean) =>
  Effect.gen(function*() {
    const args = JSON.stringify({ redisUrl: redis.url, seconds: settings.seconds, warmup: settings.warmup, reverse })
    const child = yield* spawnChild(process.execPath, ["--import", "tsx", "bench/readpath.ts", tree.root, args])
    // four cases, warm-up and measurement, plus start-up time on a loaded machine
    const limit = Duration.seconds(4 * (settings.seconds + settings.warmup) + 60)
    yield* promise(() => child.exited).pipe(
      Effect.timeoutFail({
        duration: limit,
        onTimeout: () =>
          new ChildError({ message: `the ${tree.name} child did not finish in ${Duration.format(limit)}` })
      })
    )
    const line = child.output().split("\n").filter((l) => l.startsWith(marker)).at(-1)
    if (line === undefined) {
      return yield* new ChildError({ message: `the ${tree.name} child printed no result:\n${child.output().trim()}` })
    }
    return yield* Schema.decodeUnknown(Output)(line.slice(marker.length))
  }).pipe(Effect.scoped)

interface Rounds {
  /** The cases, in the children's forward order. */
  readonly cases: ReadonlyArray<Omit<Case, "perSecond" | "perCpuSecond">>
  /** Per case id, per tree: one result per round. */
  readonly results: ReadonlyMap<string, { readonly baseline: Array<Case>; readonly current: Array<Case> }>
}

const runRounds = (trees: { readonly baseline: Tree; readonly current: Tree }, redis: RedisServer, s: Settings) =>
  Effect.gen(function*() {
    let cases: Rounds["cases"] = []
    const results = new Map<string, { baseline: Array<Case>; current: Array<Case> }>()
    for (let round = 0; round < s.rounds; round++) {
      const order = round % 2 === 0 ? [trees.baseline, trees.current] : [trees.current, trees.baseline]
      const reverse = round % 2 === 1
      for (const tree of order) {
        const output = yield* measureTree(tree, redis, s, reverse)
        // the first round runs the cases forwards
        if (round === 0) cases = output.cases.map(({ perCpuSecond: _c, perSecond: _w, ...c }) => c)
        for (const c of output.cases) {
          const entry = results.get(c.id) ?? { baseline: [], current: [] }
          results.set(c.id, entry)
          entry[tree.name].push(c)
        }
      }
      yield* Effect.logInfo(`compare: round ${round + 1}/${s.rounds} (${order.map((t) => t.name).join(" then ")})`)
    }
    return { cases, results } satisfies Rounds
  })

// -----------------------------------------------------------------------------
// the report
// -----------------------------------------------------------------------------

const report = (rounds: Rounds, trees: { readonly baseline: Tree; readonly current: Tree }, s: Settings) => {
  const rows = rounds.cases.map((c) => {
    const { baseline, current } = rounds.results.get(c.id)!
    const wall = current.map((value, i) => value.perSecond / baseline[i]!.perSecond)
    const cpu = current.map((value, i) => value.perCpuSecond / baseline[i]!.perCpuSecond)
    return [
      c.label,
      String(c.inFlight),
      n(median(baseline.map((r) => r.perSecond))),
      n(median(current.map((r) => r.perSecond))),
      x(median(wall)),
      range(wall, x),
      x(median(cpu)),
      range(cpu, x)
    ]
  })
  return `## The read path, current tree ÷ baseline (\`npm run bench:compare\`)

Both trees were measured in this one run, interleaved: ${s.rounds} rounds, each running one child process
per tree (\`node --import tsx bench/readpath.ts <tree>\`: the same harness, this tree's, importing that tree's
\`src/\`), the baseline first in odd rounds and the current tree first in even ones; within the children the
cases run in reversed order every other round. Each child warms every case up for ${s.warmup} s, then
measures each for ${s.seconds} s. The baseline is ${trees.baseline.describe}, checked out in a throwaway git
worktree on the current tree's node_modules; the current tree is ${trees.current.describe}. Both
use the same Node, packages and redis-server (started for the run, on the same machine). Each child issues
one session of \`u1\` per case (data \`{ csrf: <22 chars> }\`, a fresh random key) and reads it over and over
through public API only (\`Session.layer\` with \`Auth.layer\`, \`Memory.layer()\` or \`Redis.layer({ url })\`,
\`Transport.layerCookie\`, \`SessionHttp.make(tag)\`):

- \`Sessions.get\` on the memory store, default options, one call at a time: the verified-token cache's best
  case (no signature check, no digests, no decode after the first read);
- the same with \`verifiedTokenCache: 0\`: the signature check, the id's digests, the fingerprint check, the
  data's decode and a new session object on every read, what a first request with a token pays;
- \`Sessions.get\` on Redis, default options (auto-pipelining as the layer sets it), 64 calls in flight;
- the in-process request path: \`GET /check\` with a valid session cookie, as a web \`Request\`, through
  \`HttpApp.toWebHandlerRuntime\` around a router whose route \`require\`s the session, with the shipped
  \`middleware\` (memory store, one request at a time; as in the micro section's request path).

Figures are ops/s by the wall clock (requests/s for the last row), medians of the rounds. A ratio is the
median of the per-round ratios, current ÷ baseline of the same round (below 1.00: the current tree is
slower), beside the range of those per-round ratios; a range that spans 1.00 is a difference this run cannot
tell from noise. The CPU columns are the same ratio of operations per second of the child's own CPU time
(\`process.cpuUsage()\` over the case, every thread of the child): time the child spent descheduled by the
rest of the machine does not count there, so on a loaded machine they are the steadier of the two.

${
    table([
      "case",
      "in flight",
      "baseline ops/s",
      "current ops/s",
      "current ÷ baseline",
      "per-round ratios",
      "÷ by CPU time",
      "per-round (CPU)"
    ], rows)
  }
`
}

// -----------------------------------------------------------------------------
// the program
// -----------------------------------------------------------------------------

/**
 * On SIGINT or SIGTERM, runMain interrupts the program and removes its listener; the redis harness
 * (test/support/redis.ts) kills its servers and, when no listener is left, raises the signal again, which
 * would end the process before the finalizers remove the baseline worktree. This listener outlives the
 * first signal so that the interruption can finish, and lets a second one end the process at once.
 */
const finalizersOnSignal = Effect.acquireRelease(
  Effect.sync(() =>
    (["SIGINT", "SIGTERM"] as const).map((signal) => {
      let seen = false
      const listener = () => {
        if (!seen) {
          seen = true
          return
        }
        process.removeListener(signal, listener)
        process.kill(process.pid, signal)
      }
      process.on(signal, listener)
      return [signal, listener] as const
    })
  ),
  (listeners) =>
    Effect.sync(() => {
      for (const [signal, listener] of listeners) process.removeListener(signal, listener)
    })
)

const program = Effect.gen(function*() {
  yield* finalizersOnSignal
  const { deadline: _, ...config } = yield* settings
  const info = yield* machine(packages)
  const current = yield* currentTree
  const baseline = yield* baselineTree(config.baseline)
  const trees = { baseline, current }
  const redis = yield* startRedis()
  yield* Effect.logInfo(
    `redis-server on ${redis.host}:${redis.port}; ${config.rounds} rounds of ${config.seconds} s per case per tree`
  )
  const rounds = yield* runRounds(trees, redis, config)
  const body = `${report(rounds, trees, config)}\n#### Setup\n\n${
    setupTable(info, command(), [
      ["baseline", `${baseline.describe} (a throwaway git worktree)`],
      ["current", current.describe]
    ])
  }\n`
  yield* writeSection(resultsFile, "compare", body)
  console.log(body)
  yield* Effect.logInfo(`wrote ${resultsFile}`)
})

NodeRuntime.runMain(
  Effect.flatMap(settings, ({ deadline }) =>
    program.pipe(
      Effect.scoped,
      Effect.timeoutFail({
        duration: deadline,
        onTimeout: () => new Error(`the comparison did not finish within ${Duration.format(deadline)}`)
      })
    ))
)
