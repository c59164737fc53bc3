/**
 * A throwaway MariaDB (or MySQL) for the SQL store's tests: `mariadb-install-db` (or `mysql_install_db`)
 * into a fresh temp dir, then `mariadbd` (or `mysqld`) from PATH or /usr/sbin as a child process on a free
 * loopback port, `--skip-grant-tables`, the socket in the temp dir; as root the server runs as the user
 * `mysql`, which owns the dir. The scope stops it by its pid (SIGTERM; SIGKILL after a bounded wait) and
 * removes the dir. `MYSQL_URL` replaces the local server. `startMariadbServer` also answers `stop` and `start`
 * (same data dir, same port), for the fault tests.
 */
import { Clock, Context, Data, Effect, Layer, Schedule, type Scope } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import type { DatabaseServer } from "./databaseServer.js"
import { freePort } from "./ports.js"

export class MariadbHarnessError extends Data.TaggedError("MariadbHarnessError")<{ readonly message: string }> {}

/** A MariaDB the tests may use: the URL of its database `sessions` (user root, no password). */
export class MariadbTest extends Context.Tag("effect-sessions/test/MariadbTest")<MariadbTest, {
  readonly url: string
}>() {
  static readonly layer: Layer.Layer<MariadbTest, MariadbHarnessError> = Layer.scoped(
    MariadbTest,
    Effect.suspend(() => {
      const url = process.env["MYSQL_URL"]
      return url !== undefined && url !== ""
        ? Effect.succeed(MariadbTest.of({ url }))
        : Effect.map(startMariadb, (url) => MariadbTest.of({ url }))
    })
  )
}

const find = (names: ReadonlyArray<string>) => {
  const dirs = [...(process.env["PATH"] ?? "").split(Path.delimiter), "/usr/sbin", "/usr/local/sbin", "/usr/bin"]
  for (const name of names) {
    for (const dir of dirs) if (dir !== "" && Fs.existsSync(Path.join(dir, name))) return Path.join(dir, name)
  }
  return undefined
}

const missing = (what: string) =>
  new MariadbHarnessError({
    message: `${what} was not found on PATH or in /usr/sbin. The MySQL/MariaDB tests start their own throwaway ` +
      "server: install it (Debian/Ubuntu: `apt-get install mariadb-server`; macOS: `brew install mariadb`), or " +
      "set MYSQL_URL to a mysql:// URL of a database the tests may fill."
  })

const exec = (binary: string, args: ReadonlyArray<string>, what: string) =>
  Effect.async<void, MariadbHarnessError>((resume) => {
    const child = execFile(binary, args, { timeout: 60_000 }, (error, stdout, stderr) =>
      resume(
        error === null
          ? Effect.void
          : Effect.fail(new MariadbHarnessError({ message: `${what} failed: ${error.message}\n${stdout}${stderr}` }))
      ))
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** Connects (mysql2) until the server answers, then creates the database `sessions`. */
const awaitReady = (port: number, log: () => string) =>
  Effect.tryPromise(async () => {
    const Mysql = await import("mysql2/promise")
    const connection = await Mysql.createConnection({ host: "127.0.0.1", port, user: "root" })
    await connection.query("CREATE DATABASE IF NOT EXISTS sessions")
    await connection.end()
  }).pipe(
    Effect.retry(Schedule.intersect(Schedule.spaced("100 millis"), Schedule.recurs(150))),
    Effect.mapError(() => new MariadbHarnessError({ message: `the server did not start:\n${log()}` }))
  )

/** A server the test may stop and start (see DatabaseServer). */
export type MariadbServer = DatabaseServer<MariadbHarnessError>

/** Starts a MariaDB on a free loopback port; the scope stops it by pid and removes its dir. */
export const startMariadbServer: Effect.Effect<MariadbServer, MariadbHarnessError, Scope.Scope> = Effect.gen(
  function*() {
    const server = find(["mariadbd", "mysqld"])
    if (server === undefined) return yield* missing("mariadbd (or mysqld)")
    const install = find(["mariadb-install-db", "mysql_install_db"])
    if (install === undefined) return yield* missing("mariadb-install-db (or mysql_install_db)")
    const root = process.getuid?.() === 0
    const dir = yield* Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-mariadb-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    )
    if (root) yield* exec("chown", ["mysql:", dir], `chown ${dir} to mysql`)
    const data = Path.join(dir, "data")
    const user = root ? ["--user=mysql"] : []
    yield* exec(install, ["--no-defaults", `--datadir=${data}`, ...user, "--skip-test-db"], "mariadb-install-db")
    const port = yield* freePort
    let log = ""
    let child: ChildProcess | undefined
    const running = () => child !== undefined && child.exitCode === null && child.signalCode === null
    const spawnServer = Effect.sync(() => {
      child = spawn(server, [
        "--no-defaults",
        `--datadir=${data}`,
        `--socket=${Path.join(dir, "sock")}`,
        `--port=${port}`,
        "--bind-address=127.0.0.1",
        "--skip-grant-tables",
        "--innodb-flush-log-at-trx-commit=0",
        `--pid-file=${Path.join(dir, "pid")}`,
        ...user
      ], { stdio: ["ignore", "pipe", "pipe"] })
      const append = (chunk: Buffer) => {
        log = (log + chunk.toString("utf8")).slice(-8_000)
      }
      child.stdout?.on("data", append)
      child.stderr?.on("data", append)
      child.on("error", () => {})
    })
    const stop = Effect.suspend(() => {
      const current = child
      if (current === undefined || !running()) return Effect.void
      const exited = Effect.async<void>((resume) => {
        if (current.exitCode !== null || current.signalCode !== null) return resume(Effect.void)
        current.once("exit", () => resume(Effect.void))
      })
      current.kill("SIGTERM")
      return Effect.timeout(exited, "10 seconds").pipe(
        Effect.catchAll(() => Effect.zipRight(Effect.sync(() => current.kill("SIGKILL")), exited))
      )
    }).pipe(Effect.withClock(Clock.make()))
    // the harness's own ready check: it also creates the database `sessions` (kept across restarts)
    const start = Effect.suspend(() =>
      running() ? Effect.void : Effect.zipRight(spawnServer, awaitReady(port, () => log))
    )
      .pipe(Effect.withClock(Clock.make()))
    yield* Effect.addFinalizer(() => stop)
    yield* start
    return {
      url: `mysql://root@127.0.0.1:${port}/sessions`,
      pid: Effect.sync(() => running() ? child?.pid : undefined),
      stop,
      start
    }
  }
).pipe(Effect.withClock(Clock.make()))

/** Starts a MariaDB on a free loopback port and answers its URL; the scope stops it and removes its dir. */
export const startMariadb: Effect.Effect<string, MariadbHarnessError, Scope.Scope> = Effect.map(
  startMariadbServer,
  (server) => server.url
)
