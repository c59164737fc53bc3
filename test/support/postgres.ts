/**
 * A throwaway PostgreSQL for the test suite.
 *
 * `initdb` and `pg_ctl` from PATH or the usual install directories (/usr/lib/postgresql/<version>/bin,
 * /usr/local/pgsql/bin, Homebrew's), a fresh temp data dir, a free loopback port, no TCP beyond
 * 127.0.0.1, the socket in the data dir, fsync off. PostgreSQL refuses to run as root: as root the
 * harness runs both as the unprivileged user `postgres` (`runuser -u postgres --`), which owns the temp
 * dir. The scope stops the server by its pid (SIGINT, a fast shutdown; SIGKILL after a bounded wait)
 * and removes the dir. `DATABASE_URL` (a postgres:// URL) replaces the local server. `startPostgresServer`
 * also answers `stop` and `start` (same data dir, same port), for the fault tests.
 *
 * The harness runs on the live clock even inside `it.effect`, whose TestClock would freeze its waits.
 */
import { Clock, Context, Data, Effect, Layer, type Scope } from "effect"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { DatabaseServer } from "./databaseServer.js"
import { freePort } from "./ports.js"

/** Why PostgreSQL could not be started; `message` says what is missing and how to get it. */
export class PostgresHarnessError extends Data.TaggedError("PostgresHarnessError")<{
  readonly message: string
}> {}

/** A PostgreSQL the tests may use: its URL (database `postgres`, user `postgres`, no password). */
export class PostgresTest extends Context.Tag("effect-sessions/test/PostgresTest")<PostgresTest, {
  readonly url: string
}>() {
  static readonly layer: Layer.Layer<PostgresTest, PostgresHarnessError> = Layer.scoped(
    PostgresTest,
    Effect.suspend(() => {
      const url = process.env["DATABASE_URL"]
      return url !== undefined && /^postgres(ql)?:\/\//.test(url)
        ? Effect.succeed(PostgresTest.of({ url }))
        : Effect.map(startPostgres, (url) => PostgresTest.of({ url }))
    })
  )
}

const searchDirs = (): Array<string> => {
  const dirs = (process.env["PATH"] ?? "").split(Path.delimiter).filter((dir) => dir !== "")
  for (const root of ["/usr/lib/postgresql", "/opt/homebrew/opt", "/usr/local/opt"]) {
    try {
      const versions = Fs.readdirSync(root).filter((name) => /^(\d+|postgresql(@\d+)?)$/.test(name))
      versions.sort((a, b) => Number(b.replace(/\D/g, "")) - Number(a.replace(/\D/g, "")))
      for (const version of versions) dirs.push(Path.join(root, version, "bin"))
    } catch {
      // not installed there
    }
  }
  dirs.push("/usr/local/pgsql/bin")
  return dirs
}

const findBinaries = (): { readonly initdb: string; readonly pgCtl: string } | undefined => {
  for (const dir of searchDirs()) {
    const initdb = Path.join(dir, "initdb")
    const pgCtl = Path.join(dir, "pg_ctl")
    if (Fs.existsSync(initdb) && Fs.existsSync(pgCtl)) return { initdb, pgCtl }
  }
  return undefined
}

const missing = (what: string) =>
  new PostgresHarnessError({
    message: `${what}. The SQL store tests start their own throwaway PostgreSQL and need its server binaries ` +
      "(initdb and pg_ctl on PATH or in /usr/lib/postgresql/<version>/bin): install them (Debian/Ubuntu: " +
      "`apt-get install postgresql`; macOS: `brew install postgresql`), or set DATABASE_URL to a postgres:// " +
      "URL of a database the tests may fill."
  })

/** `[binary, args]` as the unprivileged user when the tests run as root (PostgreSQL refuses root). */
const asServerUser = (user: string | undefined, binary: string, args: ReadonlyArray<string>) =>
  user === undefined ? [binary, args] as const : ["runuser", ["-u", user, "--", binary, ...args]] as const

const exec = (command: readonly [string, ReadonlyArray<string>], what: string) =>
  Effect.async<string, PostgresHarnessError>((resume) => {
    const child = execFile(command[0], command[1], { timeout: 60_000 }, (error, stdout, stderr) => {
      if (error === null) return resume(Effect.succeed(stdout))
      resume(Effect.fail(new PostgresHarnessError({ message: `${what} failed: ${error.message}\n${stdout}${stderr}` })))
    })
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const serverUser = (): Effect.Effect<string | undefined, PostgresHarnessError> =>
  Effect.suspend(() => {
    if (process.getuid?.() !== 0) return Effect.succeed(undefined)
    return exec(["id", ["-u", "postgres"]], "looking up the user postgres").pipe(
      Effect.as("postgres"),
      Effect.mapError(() =>
        missing(
          "The tests run as root, which PostgreSQL refuses, and there is no user `postgres` to run it as " +
            "(runuser -u postgres)"
        )
      )
    )
  })

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

const stopByPid = (pid: number) =>
  Effect.gen(function*() {
    if (!alive(pid)) return
    process.kill(pid, "SIGINT")
    for (let i = 0; i < 100 && alive(pid); i++) yield* Effect.sleep("50 millis")
    if (alive(pid)) process.kill(pid, "SIGKILL")
    for (let i = 0; i < 100 && alive(pid); i++) yield* Effect.sleep("50 millis")
  }).pipe(Effect.catchAllDefect(() => Effect.void))

/** A server the test may stop and start (see DatabaseServer). */
export type PostgresServer = DatabaseServer<PostgresHarnessError>

/** Starts a PostgreSQL on a free loopback port; the scope stops it by pid and removes its data dir. */
export const startPostgresServer: Effect.Effect<PostgresServer, PostgresHarnessError, Scope.Scope> = Effect.gen(
  function*() {
    const binaries = findBinaries()
    if (binaries === undefined) return yield* missing("initdb and pg_ctl were not found")
    const user = yield* serverUser()
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-pg-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    if (user !== undefined) yield* exec(["chown", ["-R", `${user}:`, dir]], `chown ${dir} to ${user}`)
    const data = Path.join(dir, "data")
    yield* exec(
      asServerUser(user, binaries.initdb, ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
      "initdb"
    )
    const port = yield* freePort
    const options = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off -c full_page_writes=off`
    const live = Clock.make()
    const pid = Effect.sync(() => {
      const pid = readPid(data)
      return pid !== undefined && alive(pid) ? pid : undefined
    })
    const stop = Effect.flatMap(pid, (pid) => pid === undefined ? Effect.void : stopByPid(pid)).pipe(
      Effect.withClock(live)
    )
    const start = exec(
      asServerUser(user, binaries.pgCtl, [
        "start",
        "-w",
        "-t",
        "30",
        "-D",
        data,
        "-l",
        Path.join(dir, "log"),
        "-o",
        options
      ]),
      "pg_ctl start"
    ).pipe(
      Effect.asVoid,
      Effect.mapError((error) =>
        new PostgresHarnessError({ message: `${error.message}\nserver log:\n${readLog(Path.join(dir, "log"))}` })
      )
    )
    // pg_ctl leaves the server running on its own: the finalizer stops it by the pid it recorded
    yield* Effect.addFinalizer(() => stop)
    yield* start
    return { url: `postgres://postgres@127.0.0.1:${port}/postgres`, pid, stop, start }
  }
).pipe(Effect.withClock(Clock.make()))

/** Starts a PostgreSQL on a free loopback port and answers its URL; the scope stops it and removes its dir. */
export const startPostgres: Effect.Effect<string, PostgresHarnessError, Scope.Scope> = Effect.map(
  startPostgresServer,
  (server) => server.url
)

const readPid = (data: string): number | undefined => {
  try {
    const pid = Number(Fs.readFileSync(Path.join(data, "postmaster.pid"), "utf8").split("\n", 1)[0])
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const readLog = (file: string) => {
  try {
    return Fs.readFileSync(file, "utf8").slice(-4_000)
  } catch {
    return "(none)"
  }
}
