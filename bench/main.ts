/**
 * `npm run bench`: the micro benchmarks, the HTTP benchmark and the CPU profile of the HTTP servers, as
 * one Effect program. Results go to their own marked sections of bench/RESULTS.md (`micro`, `http`; the
 * `redis` section belongs to `npm run bench:redis`) and the profile to bench/PROFILE.md.
 *
 * ```sh
 * npm run bench                        # everything, about 12 minutes
 * npm run bench -- http                # only some steps: micro, http, profile, sql
 * BENCH_ROUNDS=1 BENCH_SECONDS=3 BENCH_WARMUP=1 BENCH_MICRO_ROUNDS=1 BENCH_PROFILE_SECONDS=3 npm run bench
 * # a smoke run (every program path, figures meaningless), about 1.5 minutes:
 * BENCH_ROUNDS=1 BENCH_SECONDS=1 BENCH_WARMUP=1 BENCH_MICRO_ROUNDS=1 BENCH_MICRO_SECONDS=0.2 BENCH_PROFILE_SECONDS=1 npm run bench
 * ```
 *
 * | variable                | meaning                                              | default |
 * | ----------------------- | ---------------------------------------------------- | ------- |
 * | `BENCH_ROUNDS`          | HTTP rounds (each runs the 8 configurations)         | 5       |
 * | `BENCH_SECONDS`         | measured seconds per HTTP run                        | 10      |
 * | `BENCH_WARMUP`          | warm-up seconds before each HTTP run                 | 2       |
 * | `BENCH_CONNECTIONS`     | autocannon connections                               | 50      |
 * | `BENCH_MICRO_ROUNDS`    | rounds of the micro benchmarks                       | 5       |
 * | `BENCH_MICRO_SECONDS`   | seconds per micro benchmark per round                | 1       |
 * | `BENCH_SERVER`          | `compiled`: HTTP runs serve TypeScript's output with plain node, as an application runs the published package; or `tsx` | compiled |
 * | `BENCH_PROFILE_SECONDS` | profiled seconds per server                          | 8       |
 * | `BENCH_SQL_ROUNDS`      | interleaved rounds of the SQL step                   | 5       |
 * | `BENCH_SQL_SECONDS`     | seconds per SQL benchmark per round                  | 2       |
 * | `BENCH_DEADLINE`        | the whole run is stopped (children too) after this   | 16 minutes |
 *
 * It starts its own `redis-server` (from PATH, on a free 127.0.0.1 port, no persistence) and one server
 * process per HTTP run, and stops all of them whatever happens; it never touches another Redis. The `sql`
 * step starts its own throwaway PostgreSQL (test/support/postgres.ts) and writes the `sql` section.
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Fs from "node:fs/promises"
import { parseArgs } from "node:util"
import { startRedis } from "../test/support/redis.js"
import * as Http from "./http.js"
import * as InProcess from "./inprocess.js"
import * as Micro from "./micro.js"
import * as Profile from "./profile.js"
import * as Sql from "./sql.js"
import { compileServer, machine, profileFile, promise, resultsFile, setupTable, writeSection } from "./support.js"

const steps = ["micro", "http", "profile", "sql"] as const
type Step = typeof steps[number]

const packages = ["effect", "@effect/platform", "@effect/platform-node", "ioredis", "autocannon", "tsx"]

const settings = Config.all({
  http: Config.all({
    rounds: Config.withDefault(Config.integer("BENCH_ROUNDS"), 5),
    seconds: Config.withDefault(Config.number("BENCH_SECONDS"), 10),
    warmup: Config.withDefault(Config.number("BENCH_WARMUP"), 2),
    connections: Config.withDefault(Config.integer("BENCH_CONNECTIONS"), 50)
  }),
  server: Config.withDefault(Config.literal("tsx", "compiled")("BENCH_SERVER"), "compiled"),
  micro: Config.all({
    rounds: Config.withDefault(Config.integer("BENCH_MICRO_ROUNDS"), 5),
    seconds: Config.withDefault(Config.number("BENCH_MICRO_SECONDS"), 1)
  }),
  sql: Config.all({
    rounds: Config.withDefault(Config.integer("BENCH_SQL_ROUNDS"), 5),
    seconds: Config.withDefault(Config.number("BENCH_SQL_SECONDS"), 2)
  }),
  profileSeconds: Config.withDefault(Config.number("BENCH_PROFILE_SECONDS"), 8),
  deadline: Config.withDefault(Config.duration("BENCH_DEADLINE"), Duration.minutes(16))
})

/** The command as run, with the variables that were set, for the setup tables. */
const command = () => {
  const vars = Object.entries(process.env).filter(([name]) => name.startsWith("BENCH_")).map(([k, v]) => `${k}=${v}`)
  const args = process.argv.slice(2)
  return `\`${[...vars, "npm run bench", ...(args.length > 0 ? ["--", ...args] : [])].join(" ")}\``
}

const program = Effect.gen(function*() {
  const { positionals } = parseArgs({ allowPositionals: true })
  const unknown = positionals.filter((step) => !(steps as ReadonlyArray<string>).includes(step))
  if (unknown.length > 0) return yield* Effect.dieMessage(`unknown step(s) ${unknown.join(", ")}; steps: ${steps}`)
  const selected = new Set<Step>(positionals.length === 0 ? steps : positionals as Array<Step>)
  const config = yield* settings
  const redis = yield* startRedis()
  yield* Effect.logInfo(`redis-server on ${redis.host}:${redis.port}; steps: ${[...selected].join(", ")}`)
  const run = command()
  const summary: Array<string> = []

  let firstRead: number | undefined
  if (selected.has("micro")) {
    const info = yield* machine(packages)
    const results = yield* Micro.run(redis, config.micro).pipe(Effect.scoped)
    firstRead = InProcess.firstReadCost(results.requestPath)
    const body = `${Micro.report(results, config.micro)}\n#### Setup\n\n${setupTable(info, run)}\n`
    yield* writeSection(resultsFile, "micro", body)
    summary.push(body)
  }

  if (selected.has("http")) {
    const info = yield* machine(packages)
    const compiled = config.server === "compiled" ? yield* compileServer : undefined
    const httpSettings = { ...config.http, compiled }
    const paired = yield* Http.runPaired(redis, httpSettings)
    const runs = yield* Http.run(redis, httpSettings)
    const body = `${Http.report(runs, paired, httpSettings, firstRead)}\n#### Setup\n\n${setupTable(info, run)}\n`
    yield* writeSection(resultsFile, "http", body)
    summary.push(body)
  }

  if (selected.has("profile")) {
    const info = yield* machine(packages)
    const profileSettings = {
      seconds: config.profileSeconds,
      warmup: config.http.warmup,
      connections: config.http.connections,
      interval: 250
    }
    const results = yield* Profile.run(redis, profileSettings)
    yield* promise(() => Fs.writeFile(profileFile, Profile.report(results, profileSettings, info, run)))
    yield* Effect.logInfo(`wrote ${profileFile}`)
  }

  if (selected.has("sql")) {
    const info = yield* machine([...packages, "@effect/sql", "@effect/sql-pg", "@effect/sql-sqlite-node"])
    const results = yield* Sql.run(config.sql).pipe(Effect.scoped)
    const body = `${Sql.report(results, config.sql)}\n#### Setup\n\n${setupTable(info, run)}\n`
    yield* writeSection(resultsFile, "sql", body)
    summary.push(body)
  }

  console.log(summary.join("\n\n"))
  yield* Effect.logInfo(`wrote ${resultsFile}`)
})

NodeRuntime.runMain(
  Effect.flatMap(settings, ({ deadline }) =>
    program.pipe(
      Effect.scoped,
      Effect.timeoutFail({
        duration: deadline,
        onTimeout: () => new Error(`the benchmark did not finish within ${Duration.format(deadline)}`)
      })
    ))
)
