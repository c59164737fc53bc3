/**
 * Throwaway Redis processes for the test suite.
 *
 * Every test that needs Redis starts its own `redis-server` from PATH on a free loopback port, with no
 * persistence and a fresh temp dir, and the enclosing `Scope` kills it by pid. `REDIS_URL` replaces the
 * single node (`redisUrl`, `RedisTest.layer`); a cluster is always started locally.
 *
 * The harness runs on the live clock even inside `it.effect` / `layer(...)`, whose TestClock would
 * otherwise freeze every poll and timeout in here.
 */
import { Clock, Context, Data, Duration, Effect, Layer, Schedule, type Scope } from "effect"
import { Redis } from "ioredis"
import { type ChildProcess, spawn } from "node:child_process"
import * as Fs from "node:fs/promises"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"

// ---------------------------------------------------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------------------------------------------------

/** A `redis-server` process owned by the test; `stop` and `start` keep the same port and data dir. */
export interface RedisServer {
  readonly host: "127.0.0.1"
  readonly port: number
  readonly url: string
  /** The pid of the running process, `undefined` while stopped. */
  readonly pid: Effect.Effect<number | undefined>
  /** SIGTERM, wait for exit, SIGKILL after a bounded wait. A no-op when already stopped. */
  readonly stop: Effect.Effect<void>
  /** Starts the process again on the same port and waits until it answers PING. A no-op when running. */
  readonly start: Effect.Effect<void, RedisHarnessError>
}

/** Cluster nodes are full `RedisServer` handles, so a test can stop and restart a single node. */
export interface RedisCluster {
  readonly nodes: ReadonlyArray<RedisServer>
  /** Stops every node. */
  readonly stop: Effect.Effect<void>
}

export interface StartOptions {
  /** The server binary, looked up on PATH unless it contains a slash. Default `redis-server`. */
  readonly binary?: string
  /** Environment of the spawned processes (including the PATH used to find them). Default `process.env`. */
  readonly env?: NodeJS.ProcessEnv
  /** Extra `redis-server` arguments, appended after the harness's own. */
  readonly args?: ReadonlyArray<string>
  /** How long to wait for the first PONG. Default 10 seconds. */
  readonly startTimeout?: Duration.DurationInput
}

export interface ClusterOptions extends StartOptions {
  /** Number of masters, at least 3 (what `redis-cli --cluster create` accepts). Default 3. */
  readonly masters?: number
  /** The `redis-cli` binary. Default `redis-cli`. */
  readonly cli?: string
  /** How long to wait for `cluster create` and for `cluster_state:ok` on every node. Default 30 seconds. */
  readonly clusterTimeout?: Duration.DurationInput
}

/** Why Redis could not be started; `message` says what to do about it (install a binary, read the server's log). */
export class RedisHarnessError extends Data.TaggedError("RedisHarnessError")<{
  readonly reason: "MissingBinary" | "SpawnFailed" | "EarlyExit" | "Timeout" | "NoFreePort" | "ClusterCreate"
  readonly message: string
}> {}

// ---------------------------------------------------------------------------------------------------------------------
// constructors
// ---------------------------------------------------------------------------------------------------------------------

/** Starts a single `redis-server` on a free loopback port; the scope kills it and removes its temp dir. */
export const startRedis = (options: StartOptions = {}): Effect.Effect<RedisServer, RedisHarnessError, Scope.Scope> =>
  live(startNode(options, [], freePort, "redis"))

/** `REDIS_URL` when set (nothing is started), otherwise the url of a fresh `startRedis()`. */
export const redisUrl: Effect.Effect<string, RedisHarnessError, Scope.Scope> = Effect.suspend(() => {
  const url = process.env["REDIS_URL"]
  return url !== undefined && url !== "" ? Effect.succeed(url) : Effect.map(startRedis(), (server) => server.url)
})

/**
 * Starts a replica of `primary` (`--replicaof`) on a free loopback port and waits until its link to the
 * primary is up (initial sync done). Stopping and starting it again keeps it a replica of `primary`.
 */
export const startReplica = (
  primary: RedisServer,
  options: StartOptions = {}
): Effect.Effect<RedisServer, RedisHarnessError, Scope.Scope> =>
  live(Effect.gen(function*() {
    // a diskless full sync waits 5 seconds for more replicas to join by default: there will be no others
    yield* command(primary.port, ["CONFIG", "SET", "repl-diskless-sync-delay", "0"]).pipe(Effect.ignore)
    const replica = yield* startNode(options, ["--replicaof", primary.host, String(primary.port)], freePort, "replica")
    yield* awaitReplicaLink(replica.port).pipe(
      Effect.timeoutFail({
        duration: options.startTimeout ?? "10 seconds",
        onTimeout: () =>
          new RedisHarnessError({
            reason: "Timeout",
            message: `the replica on port ${replica.port} did not sync with ${primary.port} in time`
          })
      })
    )
    return replica
  }))

/** Polls `INFO replication` on a replica until `master_link_status:up`. */
export const awaitReplicaLink = (port: number): Effect.Effect<void> =>
  command(port, ["INFO", "replication"]).pipe(
    Effect.filterOrFail((info) => /^master_link_status:up\r?$/m.test(info)),
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.asVoid,
    Effect.orDie,
    live
  )

/**
 * Starts `masters` cluster-enabled nodes, joins them with `redis-cli --cluster create` (no replicas) and
 * waits until every node reports `cluster_state:ok` and knows all the others.
 */
export const startCluster = (
  options: ClusterOptions = {}
): Effect.Effect<RedisCluster, RedisHarnessError, Scope.Scope> =>
  live(Effect.gen(function*() {
    const masters = options.masters ?? 3
    if (masters < 3) {
      return yield* new RedisHarnessError({
        reason: "ClusterCreate",
        message: `a Redis Cluster needs at least 3 masters, got ${masters}`
      })
    }
    const timeout = options.clusterTimeout ?? "30 seconds"
    const clusterArgs = [
      "--cluster-enabled",
      "yes",
      "--cluster-config-file",
      "nodes.conf",
      "--cluster-node-timeout",
      "2000"
    ]
    const nodes = yield* Effect.forEach(
      Array.from({ length: masters }),
      () => startNode(options, clusterArgs, freeClusterPort, "redis-cluster"),
      { concurrency: "unbounded" }
    )
    const created = yield* run(options.cli ?? "redis-cli", [
      "--cluster",
      "create",
      ...nodes.map((node) => `${node.host}:${node.port}`),
      "--cluster-replicas",
      "0",
      "--cluster-yes"
    ], options.env).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new RedisHarnessError({
            reason: "Timeout",
            message: `redis-cli --cluster create did not finish within ${Duration.format(timeout)}`
          })
      })
    )
    if (created.code !== 0) {
      return yield* new RedisHarnessError({
        reason: "ClusterCreate",
        message: `redis-cli --cluster create exited with ${created.code}:\n${created.output}`
      })
    }
    yield* Effect.forEach(nodes, (node) => awaitClusterOk(node.port, masters), { concurrency: "unbounded" }).pipe(
      Effect.timeoutFail({
        duration: timeout,
        onTimeout: () =>
          new RedisHarnessError({
            reason: "Timeout",
            message: `the cluster did not reach cluster_state:ok within ${Duration.format(timeout)}`
          })
      })
    )
    return {
      nodes,
      stop: Effect.forEach(nodes, (node) => node.stop, { concurrency: "unbounded", discard: true })
    } satisfies RedisCluster
  }))

// ---------------------------------------------------------------------------------------------------------------------
// clients
// ---------------------------------------------------------------------------------------------------------------------

/** A plain ioredis client to `url` (a server the test started), to look at and tamper with what a store wrote. */
export const rawClient = (url: string): Effect.Effect<Redis, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 })
      client.on("error", () => {})
      await client.connect()
      return client
    }),
    (client) => Effect.promise(() => client.quit().catch(() => client.disconnect()))
  )

// ---------------------------------------------------------------------------------------------------------------------
// layers
// ---------------------------------------------------------------------------------------------------------------------

/** A single Redis for a test block: `REDIS_URL` when set, otherwise a throwaway `redis-server`. */
export class RedisTest extends Context.Tag("effect-sessions/test/RedisTest")<RedisTest, {
  readonly url: string
}>() {
  static readonly layer: Layer.Layer<RedisTest, RedisHarnessError> = Layer.scoped(
    RedisTest,
    Effect.map(redisUrl, (url) => RedisTest.of({ url }))
  )
}

/** A throwaway 3-master Redis Cluster for a test block. */
export class RedisClusterTest extends Context.Tag("effect-sessions/test/RedisClusterTest")<
  RedisClusterTest,
  RedisCluster
>() {
  // suspended: the internals `startCluster` uses are defined further down the module
  static readonly layer: Layer.Layer<RedisClusterTest, RedisHarnessError> = Layer.scoped(
    RedisClusterTest,
    Effect.suspend(() => startCluster())
  )
}

// ---------------------------------------------------------------------------------------------------------------------
// internals: processes
// ---------------------------------------------------------------------------------------------------------------------

const host = "127.0.0.1"
const stopGrace = Duration.seconds(5)
const portAttempts = 5

// No redis-server may outlive the test process. Children are spawned without `detached`, so a Ctrl-C in
// a terminal reaches them with the rest of the process group; the hooks below cover the other ways out.
// The set lives on globalThis so that a module re-evaluated per test file (vitest without isolation)
// still installs the hooks once.
const childrenKey = Symbol.for("effect-sessions/test/redis/children")
const children = (): Set<ChildProcess> => {
  const global = globalThis as Record<symbol, Set<ChildProcess> | undefined>
  const existing = global[childrenKey]
  if (existing !== undefined) return existing
  const running = new Set<ChildProcess>()
  global[childrenKey] = running
  const killAll = () => {
    for (const child of running) child.kill("SIGKILL")
  }
  process.once("exit", killAll)
  // vitest's main process exits on SIGINT/SIGTERM without stopping its fork workers, which then run on
  // as orphans: a worker notices through its IPC channel closing
  if (process.connected) process.once("disconnect", killAll)
  // a signal's default action skips "exit": kill the children, then let the signal take its course
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.once(signal, () => {
      killAll()
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
    })
  }
  return running
}

const track = (child: ChildProcess): void => {
  const running = children()
  running.add(child)
  child.once("exit", () => running.delete(child))
}

// `it.effect` and `layer(...)` run on a TestClock that only moves when a test adjusts it; the harness's
// polls and timeouts must use real time.
const live = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => Effect.withClock(effect, Clock.make())

const installHint = (name: string): string =>
  name === "redis-cli"
    ? "Debian/Ubuntu: `apt-get install redis-tools` (installed with redis-server); macOS: `brew install redis`"
    : "Debian/Ubuntu: `apt-get install redis-server`; macOS: `brew install redis`"

const missingBinary = (binary: string): RedisHarnessError => {
  const name = Path.basename(binary)
  return new RedisHarnessError({
    reason: "MissingBinary",
    message: `${binary} was not found${binary.includes("/") ? "" : " on PATH"}. The tests start their own throwaway ` +
      `Redis processes and need ${name}: install it (${installHint(name)})` +
      (name === "redis-cli" ? "." : ", or set REDIS_URL to a Redis the single-node tests may use.")
  })
}

interface Spawned {
  readonly child: ChildProcess
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>
  /** Resolves when the process has exited and its stdout and stderr are drained. */
  readonly closed: Promise<void>
  /** The last 16 KiB the process wrote to stdout and stderr. */
  readonly output: () => string
}

const spawnProcess = (
  binary: string,
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv | undefined
): Effect.Effect<Spawned, RedisHarnessError> =>
  Effect.async<Spawned, RedisHarnessError>((resume) => {
    const child = spawn(binary, args, { env: env ?? process.env, stdio: ["ignore", "pipe", "pipe"] })
    let output = ""
    const append = (chunk: Buffer) => {
      output = (output + chunk.toString("utf8")).slice(-16_384)
    }
    child.stdout?.on("data", append)
    child.stderr?.on("data", append)
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()))
    const closed = new Promise<void>((resolve) => child.once("close", () => resolve()))
    const onSpawn = () => {
      child.off("error", onError)
      // a later error (a failed kill) must not become an uncaught exception
      child.on("error", () => {})
      track(child)
      resume(Effect.succeed({ child, exited, closed, output: () => output }))
    }
    const onError = (error: NodeJS.ErrnoException) => {
      child.off("spawn", onSpawn)
      resume(Effect.fail(
        error.code === "ENOENT"
          ? missingBinary(binary)
          : new RedisHarnessError({ reason: "SpawnFailed", message: `could not start ${binary}: ${error.message}` })
      ))
    }
    child.once("spawn", onSpawn)
    child.once("error", onError)
    return Effect.sync(() => child.kill("SIGKILL"))
  })

const hasExited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

const awaitExit = (spawned: Spawned): Effect.Effect<void> => Effect.promise(() => spawned.exited)

const awaitClose = (spawned: Spawned): Effect.Effect<void> =>
  Effect.promise(() => spawned.closed).pipe(Effect.timeout("1 second"), Effect.ignore)

const kill = (spawned: Spawned): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (hasExited(spawned.child)) return Effect.void
    spawned.child.kill("SIGTERM")
    return awaitExit(spawned).pipe(
      Effect.timeout(stopGrace),
      Effect.catchTag("TimeoutException", () => {
        spawned.child.kill("SIGKILL")
        return awaitExit(spawned).pipe(
          Effect.timeout(stopGrace),
          Effect.catchTag("TimeoutException", () =>
            Effect.logWarning(
              `redis harness: pid ${spawned.child.pid} survived SIGKILL for ${Duration.format(stopGrace)}`
            ))
        )
      })
    )
  })

/** Runs a short-lived command to completion (killing it if interrupted) and returns its exit code and output. */
const run = (
  binary: string,
  args: ReadonlyArray<string>,
  env: NodeJS.ProcessEnv | undefined
): Effect.Effect<{ readonly code: number | null; readonly output: string }, RedisHarnessError> =>
  Effect.acquireUseRelease(
    spawnProcess(binary, args, env),
    (spawned) =>
      Effect.zipRight(awaitExit(spawned), awaitClose(spawned)).pipe(
        Effect.map(() => ({ code: spawned.child.exitCode, output: spawned.output() }))
      ),
    kill
  )

// ---------------------------------------------------------------------------------------------------------------------
// internals: servers
// ---------------------------------------------------------------------------------------------------------------------

const isPortTaken = (error: RedisHarnessError): boolean =>
  error.reason === "EarlyExit" && /address already in use/i.test(error.message)

const startNode = (
  options: StartOptions,
  extraArgs: ReadonlyArray<string>,
  pickPort: Effect.Effect<number, RedisHarnessError>,
  prefix: string
): Effect.Effect<RedisServer, RedisHarnessError, Scope.Scope> =>
  Effect.gen(function*() {
    // Scope finalizers run in reverse, so the process is stopped before its dir is removed.
    const dir = yield* Effect.acquireRelease(
      Effect.promise(() => Fs.mkdtemp(Path.join(Os.tmpdir(), `effect-sessions-${prefix}-`))),
      (dir) => Effect.promise(() => Fs.rm(dir, { recursive: true, force: true }))
    )
    const port = yield* pickPort
    const { server, startOnce } = yield* makeServer(options, extraArgs, dir, port)
    yield* Effect.addFinalizer(() => server.stop)
    yield* startOnce
    return server
  }).pipe(
    // Probing a port and binding it are two steps, so another process can take it in between: try again
    // on a fresh port (and a fresh dir, so a half-written nodes.conf is not reused).
    Effect.retry({ times: portAttempts - 1, while: isPortTaken })
  )

const makeServer = (
  options: StartOptions,
  extraArgs: ReadonlyArray<string>,
  dir: string,
  port: number
): Effect.Effect<{ readonly server: RedisServer; readonly startOnce: Effect.Effect<void, RedisHarnessError> }> =>
  Effect.gen(function*() {
    const binary = options.binary ?? "redis-server"
    const args = [
      ...["--port", String(port), "--bind", host, "--save", "", "--appendonly", "no", "--daemonize", "no"],
      ...["--dir", dir, "--protected-mode", "no", "--loglevel", "warning"],
      ...extraArgs,
      ...(options.args ?? [])
    ]
    const startTimeout = options.startTimeout ?? "10 seconds"
    const lock = yield* Effect.makeSemaphore(1)
    let current: Spawned | undefined

    const stopUnlocked = Effect.suspend(() => {
      const spawned = current
      current = undefined
      return spawned === undefined ? Effect.void : kill(spawned)
    })

    const startUnlocked = Effect.suspend(() =>
      current !== undefined && !hasExited(current.child)
        ? Effect.void
        : Effect.uninterruptibleMask((restore) =>
          Effect.gen(function*() {
            const spawned = yield* spawnProcess(binary, args, options.env)
            current = spawned
            yield* restore(awaitReady(spawned, port, binary, startTimeout)).pipe(Effect.onError(() => stopUnlocked))
          })
        )
    )

    const server: RedisServer = {
      host,
      port,
      url: `redis://${host}:${port}`,
      pid: Effect.sync(() => current !== undefined && !hasExited(current.child) ? current.child.pid : undefined),
      stop: live(lock.withPermits(1)(stopUnlocked)),
      // right after a stop the port can still be held for a moment: a restart that loses that race retries
      start: live(
        lock.withPermits(1)(startUnlocked).pipe(
          Effect.retry({ schedule: Schedule.spaced("100 millis"), times: 20, while: isPortTaken })
        )
      )
    }
    return { server, startOnce: live(lock.withPermits(1)(startUnlocked)) }
  })

/** Polls PING until PONG; fails with the process output if it exits first, or after `timeout`. */
const awaitReady = (
  spawned: Spawned,
  port: number,
  binary: string,
  timeout: Duration.DurationInput
): Effect.Effect<void, RedisHarnessError> => {
  const exited = Effect.zipRight(awaitExit(spawned), awaitClose(spawned)).pipe(
    Effect.zipRight(Effect.suspend(() =>
      new RedisHarnessError({
        reason: "EarlyExit",
        message: `${binary} on port ${port} exited (${spawned.child.exitCode ?? spawned.child.signalCode}) ` +
          `before answering PING:\n${spawned.output().trim()}`
      })
    ))
  )
  // a server started with --requirepass answers NOAUTH: it is up all the same
  const pong = command(port, ["PING"]).pipe(
    Effect.catchAll((error) => /^NOAUTH\b/.test(error.message) ? Effect.succeed("PONG") : Effect.fail(error)),
    Effect.filterOrFail((reply) => reply === "PONG"),
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.asVoid,
    Effect.orDie
  )
  return Effect.raceFirst(pong, exited).pipe(
    Effect.timeoutFail({
      duration: timeout,
      onTimeout: () =>
        new RedisHarnessError({
          reason: "Timeout",
          message: `${binary} on port ${port} did not answer PING within ${Duration.format(timeout)}:\n` +
            spawned.output().trim()
        })
    })
  )
}

const awaitClusterOk = (port: number, masters: number): Effect.Effect<void> =>
  command(port, ["CLUSTER", "INFO"]).pipe(
    Effect.filterOrFail((info) =>
      /^cluster_state:ok\r?$/m.test(info) && new RegExp(`^cluster_known_nodes:${masters}\\r?$`, "m").test(info)
    ),
    Effect.retry(Schedule.spaced("100 millis")),
    Effect.asVoid,
    Effect.orDie
  )

// ---------------------------------------------------------------------------------------------------------------------
// internals: ports
// ---------------------------------------------------------------------------------------------------------------------

/** Binds `port` (0: any) on the loopback address, closes it again and returns the port, or undefined if taken. */
const probe = (port: number): Effect.Effect<number | undefined> =>
  Effect.async<number | undefined>((resume) => {
    const server = Net.createServer()
    server.unref()
    server.once("error", () => resume(Effect.succeed(undefined)))
    server.listen({ host, port, exclusive: true }, () => {
      const address = server.address()
      const bound = typeof address === "object" && address !== null ? address.port : undefined
      server.close(() => resume(Effect.succeed(bound)))
    })
  })

const freePort: Effect.Effect<number, RedisHarnessError> = Effect.flatMap(probe(0), (port) =>
  port === undefined
    ? new RedisHarnessError({ reason: "NoFreePort", message: `could not bind a free port on ${host}` })
    : Effect.succeed(port))

// A cluster node also listens on port + 10000 (the cluster bus), so both must be free and below 65536.
const freeClusterPort: Effect.Effect<number, RedisHarnessError> = Effect.suspend(() => {
  const port = 20_000 + Math.floor(Math.random() * 30_000)
  return Effect.zip(probe(port), probe(port + 10_000)).pipe(
    Effect.flatMap(([a, b]) =>
      a !== undefined && b !== undefined
        ? Effect.succeed(port)
        : new RedisHarnessError({ reason: "NoFreePort", message: `no free port pair for a cluster node on ${host}` })
    )
  )
}).pipe(Effect.retry({ times: 50 }))

// ---------------------------------------------------------------------------------------------------------------------
// internals: a one-shot RESP client for readiness probes (no client library, no reconnect noise)
// ---------------------------------------------------------------------------------------------------------------------

const encode = (args: ReadonlyArray<string>): string =>
  `*${args.length}\r\n` + args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join("")

/** The reply in `buffer` once it is complete: a string, or an Error for an error reply. */
const decode = (buffer: Buffer): string | Error | undefined => {
  const eol = buffer.indexOf("\r\n")
  if (eol < 0) return undefined
  const line = buffer.subarray(1, eol).toString("utf8")
  switch (String.fromCharCode(buffer[0] ?? 0)) {
    case "+":
    case ":":
      return line
    case "-":
      return new Error(line)
    case "$": {
      const length = Number(line)
      if (length < 0) return ""
      const end = eol + 2 + length
      return buffer.length >= end + 2 ? buffer.subarray(eol + 2, end).toString("utf8") : undefined
    }
    default:
      return new Error(`unexpected reply: ${buffer.toString("utf8")}`)
  }
}

const command = (port: number, args: ReadonlyArray<string>): Effect.Effect<string, Error> =>
  Effect.async<string, Error>((resume) => {
    const socket = Net.connect({ host, port })
    let buffer = Buffer.alloc(0)
    let done = false
    const finish = (result: Effect.Effect<string, Error>) => {
      if (done) return
      done = true
      socket.destroy()
      resume(result)
    }
    socket.setTimeout(1_000, () => finish(Effect.fail(new Error("timed out"))))
    socket.once("error", (error) => finish(Effect.fail(error)))
    socket.once("close", () => finish(Effect.fail(new Error("connection closed"))))
    socket.once("connect", () => socket.write(encode(args)))
    socket.on("data", (chunk) => {
      buffer = Buffer.concat([buffer, chunk])
      const reply = decode(buffer)
      if (reply !== undefined) finish(reply instanceof Error ? Effect.fail(reply) : Effect.succeed(reply))
    })
    return Effect.sync(() => {
      done = true
      socket.destroy()
    })
  })
