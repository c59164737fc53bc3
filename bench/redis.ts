/**
 * The Redis store under load: round trips per operation, bytes per session, and the throughput of
 * `Sessions.get` and `Sessions.issue` with and without ioredis auto-pipelining, each against raw ioredis
 * `GET`s on the same server in the same run.
 *
 * ```sh
 * npm run bench:redis            # rewrites the "redis" section of bench/RESULTS.md
 * BENCH_ROUNDS=2 BENCH_ROUND_SECONDS=0.5 npm run bench:redis   # a quick look
 * ```
 *
 * `npm run bench` (bench/main.ts) writes its own sections of the same file and reuses
 * {@link bytesPerSession} from here; neither program touches the other's sections.
 *
 * It starts its own `redis-server` (from PATH, on a free 127.0.0.1 port, no persistence) and stops it
 * whatever happens; it never touches another Redis. The whole run is bounded (`BENCH_DEADLINE`, default
 * 175 seconds).
 */
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import { pathToFileURL } from "node:url"
import * as Auth from "../src/Auth.js"
import * as Memory from "../src/layers/Memory.js"
import * as RedisStore from "../src/layers/Redis.js"
import * as Session from "../src/Session.js"
import { Store } from "../src/Store.js"
import { startRedis } from "../test/support/redis.js"
import {
  effectRound,
  machine as machineInfo,
  median,
  promise,
  rawGetRound,
  resultsFile,
  setupTable,
  writeSection
} from "./support.js"

const Data = Schema.Struct({ csrf: Schema.String })
type Data = typeof Data.Type

/** A small payload, as the CSRF example stores: 22 random base64url characters. */
const payload = (): Data => ({ csrf: Auth.randomId(16) })

// -----------------------------------------------------------------------------
// redis introspection
// -----------------------------------------------------------------------------

/** `INFO <section>` as a map of field to value. */
const info = (admin: Redis, section: string) =>
  Effect.map(promise(() => admin.info(section)), (text) => {
    const fields = new Map<string, string>()
    for (const line of text.split("\r\n")) {
      const at = line.indexOf(":")
      if (at > 0 && !line.startsWith("#")) fields.set(line.slice(0, at), line.slice(at + 1))
    }
    return fields
  })

/** Calls per command since the last `CONFIG RESETSTAT` (`INFO commandstats`), without the admin's own. */
const commandCalls = (admin: Redis) =>
  Effect.map(info(admin, "commandstats"), (fields) => {
    const calls = new Map<string, number>()
    for (const [field, value] of fields) {
      const command = field.replace(/^cmdstat_/, "")
      if (command === "info" || command.startsWith("config")) continue
      const match = /calls=(\d+)/.exec(value)
      if (match !== null) calls.set(command, Number(match[1]))
    }
    return calls
  })

const resetStats = (admin: Redis) => promise(() => admin.config("RESETSTAT"))

const memoryUsage = (admin: Redis, key: string) =>
  // SAMPLES 0: measure every element of an aggregate, not an estimate from a sample
  Effect.map(promise(() => admin.call("MEMORY", "USAGE", key, "SAMPLES", "0")), Number)

/** What one session costs Redis, measured by Redis itself. */
export interface BytesPerSession {
  readonly valueLength: number
  readonly sessionBytes: number
  readonly index1: number
  readonly index10: number
  readonly population: number
  /** `used_memory` growth per session over `population` one-session users. */
  readonly allIn: number
}

/**
 * Bytes per session (`MEMORY USAGE … SAMPLES 0`, `STRLEN`, `used_memory`), with the payload
 * `{ csrf: <22 chars> }`, on a Redis the caller owns: it is flushed first and left holding what was
 * issued.
 */
export const bytesPerSession = (
  admin: Redis,
  sessions: Session.Sessions<Data>,
  population: number
): Effect.Effect<BytesPerSession, Session.StoreError> =>
  Effect.gen(function*() {
    yield* promise(() => admin.flushdb())
    const first = yield* sessions.issue("user-bytes", payload())
    const keys = redisKeys(first.session)
    const valueLength = yield* promise(() => admin.strlen(keys.session))
    const sessionBytes = yield* memoryUsage(admin, keys.session)
    const index1 = yield* memoryUsage(admin, keys.index)
    for (let i = 1; i < 10; i++) yield* sessions.issue("user-bytes", payload())
    const index10 = yield* memoryUsage(admin, keys.index)
    // all-in: what one-session users add to used_memory (dict entries, expires, allocator overhead)
    yield* promise(() => admin.flushdb())
    const usedBefore = Number((yield* info(admin, "memory")).get("used_memory"))
    yield* Effect.forEach(
      Array.from({ length: population }, (_, i) => i),
      (i) => sessions.issue(`user-${i}`, payload()),
      { concurrency: 64, discard: true }
    )
    const usedAfter = Number((yield* info(admin, "memory")).get("used_memory"))
    return { valueLength, sessionBytes, index1, index10, population, allIn: (usedAfter - usedBefore) / population }
  })

const redisKeys = (session: Session.Session<Data>) => {
  const key = Session.storeKey(Redacted.value(session.id))!
  return {
    session: `${RedisStore.defaultPrefix}{${key.user}}:${key.session}`,
    index: `${RedisStore.defaultPrefix}{${key.user}}`
  }
}

// -----------------------------------------------------------------------------
// the run
// -----------------------------------------------------------------------------

type Operation = "raw GET" | "Sessions.get" | "Sessions.issue" | "Sessions.get, memory store"
const operations: ReadonlyArray<Operation> = ["raw GET", "Sessions.get", "Sessions.issue"]
const concurrencies = [1, 64] as const
const pipelining = [true, false] as const

const program = Effect.gen(function*() {
  const rounds = yield* Config.integer("BENCH_ROUNDS").pipe(Config.withDefault(5))
  const roundDuration = Duration.seconds(yield* Config.number("BENCH_ROUND_SECONDS").pipe(Config.withDefault(2)))
  const gets = yield* Config.integer("BENCH_GETS").pipe(Config.withDefault(1000))

  const info0 = yield* machineInfo(["effect", "ioredis"])
  const server = yield* startRedis()
  yield* Effect.logInfo(`redis-server on ${server.host}:${server.port}`)

  const client = (autoPipelining: boolean) =>
    Effect.acquireRelease(
      promise(async () => {
        const redis = new Redis(server.url, { lazyConnect: true, enableAutoPipelining: autoPipelining })
        await redis.connect()
        return redis
      }),
      (redis) => promise(() => redis.quit()).pipe(Effect.timeout("2 seconds"), Effect.ignore)
    )
  const admin = yield* client(false)
  const raw = { true: yield* client(true), false: yield* client(false) }

  const auth = yield* Auth.make({ keys: [Redacted.make(Auth.randomId(48))] })
  const sessionsOn = (autoPipelining: boolean) =>
    Effect.gen(function*() {
      const store = yield* RedisStore.makeSingle({ url: server.url, autoPipelining })
      return yield* Session.make(Data, { ttl: "1 hour" }).pipe(
        Effect.provideService(Store, store),
        Effect.provideService(Auth.Auth, auth)
      )
    })
  const sessions = { true: yield* sessionsOn(true), false: yield* sessionsOn(false) }
  // the same service on the in-memory store: what verifying, hashing and decoding cost without a network
  const inMemory = yield* Session.make(Data, { ttl: "1 hour" }).pipe(
    Effect.provideService(Store, yield* Memory.make()),
    Effect.provideService(Auth.Auth, auth)
  )
  const memoryToken = (yield* inMemory.issue("user-get", payload())).token
  // --- round trips -----------------------------------------------------------------------------------------------

  yield* promise(() => admin.flushdb())
  const issued = yield* sessions.true.issue("user-rt", payload())
  // the first script call may need EVAL after a NOSCRIPT; count from a warm client
  yield* sessions.false.issue("user-rt", payload())
  yield* resetStats(admin)
  for (let i = 0; i < gets; i++) yield* sessions.true.get(issued.token)
  const getCalls = yield* commandCalls(admin)
  yield* resetStats(admin)
  for (let i = 0; i < gets; i++) yield* sessions.true.issue(`user-rt-${i % 100}`, payload())
  const issueCalls = yield* commandCalls(admin)

  // --- bytes per session -----------------------------------------------------------------------------------------

  const { valueLength, sessionBytes, index1, index10, population, allIn: allInBytes } = yield* bytesPerSession(
    admin,
    sessions.true,
    10_000
  )

  // --- throughput --------------------------------------------------------------------------------------------------

  const fixture = Effect.gen(function*() {
    yield* promise(() => admin.flushdb())
    const { session, token } = yield* sessions.true.issue("user-get", payload())
    return { token, key: redisKeys(session).session }
  })
  const measure = (operation: Operation, concurrency: number, autoPipelining: boolean, duration: Duration.Duration) =>
    Effect.gen(function*() {
      const { key, token } = yield* fixture
      const side = autoPipelining ? "true" : "false"
      switch (operation) {
        case "raw GET":
          return yield* rawGetRound(raw[side], key, concurrency, duration)
        case "Sessions.get":
          return yield* effectRound(() => sessions[side].get(token), concurrency, duration)
        case "Sessions.get, memory store":
          return yield* effectRound(() => inMemory.get(memoryToken), concurrency, duration)
        case "Sessions.issue":
          // a pool of users, so indexes hold a few sessions each as in real use
          return yield* effectRound(
            (w, i) => sessions[side].issue(`user-${(w * 7919 + i) % 1000}`, payload()),
            concurrency,
            duration
          )
      }
    })

  // warm up every path once, untimed
  for (const concurrency of concurrencies) {
    for (const operation of operations) {
      for (const autoPipelining of pipelining) {
        yield* measure(operation, concurrency, autoPipelining, Duration.millis(300))
      }
    }
    yield* measure("Sessions.get, memory store", concurrency, false, Duration.millis(300))
  }

  const results = new Map<string, Array<number>>()
  const id = (operation: Operation, concurrency: number, autoPipelining: boolean) =>
    `${operation}|${concurrency}|${autoPipelining}`
  for (const concurrency of concurrencies) {
    for (let round = 0; round < rounds; round++) {
      for (const operation of operations) {
        // A B A B: auto-pipelining on then off, back to back, in every round
        for (const autoPipelining of pipelining) {
          const { ops, seconds } = yield* measure(operation, concurrency, autoPipelining, roundDuration)
          const key = id(operation, concurrency, autoPipelining)
          results.set(key, [...(results.get(key) ?? []), ops / seconds])
        }
      }
      const { ops, seconds } = yield* measure("Sessions.get, memory store", concurrency, false, roundDuration)
      const key = id("Sessions.get, memory store", concurrency, false)
      results.set(key, [...(results.get(key) ?? []), ops / seconds])
      yield* Effect.logInfo(`concurrency ${concurrency}: round ${round + 1}/${rounds} done`)
    }
  }
  const medianOf = (operation: Operation, concurrency: number, autoPipelining: boolean) =>
    median(results.get(id(operation, concurrency, autoPipelining)) ?? [])
  const spread = (operation: Operation, concurrency: number, autoPipelining: boolean) => {
    const values = results.get(id(operation, concurrency, autoPipelining)) ?? []
    return `${Math.round(Math.min(...values)).toLocaleString("en-US")}–${
      Math.round(Math.max(...values)).toLocaleString("en-US")
    }`
  }

  // --- the cost of a span ---------------------------------------------------------------------------------------
  // Every public operation is an `Effect.fn` (a span, here with Effect's default no-op tracer): its price
  // per call, next to `Effect.fnUntraced`, to read the in-memory figure against.
  const perCall = (make: () => Effect.Effect<number>) =>
    Effect.gen(function*() {
      const calls = 50_000
      const start = yield* Clock.currentTimeNanos
      for (let i = 0; i < calls; i++) yield* make()
      return Number((yield* Clock.currentTimeNanos) - start) / 1e3 / calls
    })
  const traced = Effect.fn("bench.traced")(function*() {
    return 1
  })
  const untraced = Effect.fnUntraced(function*() {
    return 1
  })
  yield* perCall(traced)
  yield* perCall(untraced)
  const tracedMicros = yield* perCall(traced)
  const untracedMicros = yield* perCall(untraced)

  // --- report --------------------------------------------------------------------------------------------------------

  const redisInfo = yield* info(admin, "server")
  const redisVersion = redisInfo.get("redis_version") ?? "unknown"

  const n = (value: number) => Math.round(value).toLocaleString("en-US")
  const x = (value: number) => value.toFixed(2)
  const writes = (calls: ReadonlyMap<string, number>) =>
    [...calls].filter(([command]) => command !== "get").reduce((sum, [, count]) => sum + count, 0)
  const callList = (calls: ReadonlyMap<string, number>) =>
    [...calls].sort(([a], [b]) => a.localeCompare(b)).map(([command, count]) => `${command} ${n(count)}`).join(", ")

  const throughputRows: Array<string> = []
  for (const concurrency of concurrencies) {
    for (const operation of operations) {
      const on = medianOf(operation, concurrency, true)
      const off = medianOf(operation, concurrency, false)
      const rawOn = medianOf("raw GET", concurrency, true)
      const rawOff = medianOf("raw GET", concurrency, false)
      throughputRows.push(
        `| ${operation} | ${concurrency} | ${n(on)} | ${n(off)} | ${x(on / off)} | ${x(on / rawOn)} | ${
          x(off / rawOff)
        } | ${spread(operation, concurrency, true)} | ${spread(operation, concurrency, false)} |`
      )
    }
  }

  const memoryRows = concurrencies.map((concurrency) => {
    const memory = medianOf("Sessions.get, memory store", concurrency, false)
    return `| Sessions.get, memory store | ${concurrency} | ${n(memory)} | ${
      x(memory / medianOf("raw GET", concurrency, true))
    } | ${x(medianOf("Sessions.get", concurrency, true) / memory)} | ${
      spread("Sessions.get, memory store", concurrency, false)
    } |`
  })

  const report = `## Redis store (\`npm run bench:redis\`)

Round trips, bytes per session and throughput with and without ioredis auto-pipelining, from one run of
\`npm run bench:redis\` (\`tsx bench/redis.ts\`).

### Setup

${
    setupTable(
      info0,
      `\`npm run bench:redis\` (${rounds} rounds × ${Duration.format(roundDuration)} per configuration)`,
      [["redis-server", `${redisVersion}, started by the bench on 127.0.0.1, no persistence`]]
    )
  }

### Round trips (\`INFO commandstats\`, counted by Redis)

| operation | calls to Redis per operation | writes |
|---|---|---|
| \`Sessions.get\` × ${n(gets)} | ${callList(getCalls)} → ${x((getCalls.get("get") ?? 0) / gets)} GET per get | ${
    writes(getCalls)
  } |
| \`Sessions.issue\` × ${n(gets)} | ${callList(issueCalls)} → ${
    x(((issueCalls.get("evalsha") ?? 0) + (issueCalls.get("eval") ?? 0)) / gets)
  } script call (one round trip) per issue | the commands inside the script |

### Bytes per session (\`MEMORY USAGE … SAMPLES 0\`; payload \`{ csrf: <22 chars> }\`)

| what | bytes |
|---|---|
| stored value (\`STRLEN\`) | ${valueLength} |
| session key | ${sessionBytes} |
| user's index, 1 session | ${index1} |
| user's index, 10 sessions | ${index10} (${x(index10 / 10)} per session; each session after the first adds ${
    x((index10 - index1) / 9)
  }) |
| session key + index, one-session user | ${sessionBytes + index1} |
| all-in: \`used_memory\` growth per session, ${n(population)} one-session users | ${n(allInBytes)} |

### Throughput (ops/s, median of ${rounds} rounds; auto-pipelining on and off alternate in each round)

"raw GET" is the baseline: plain \`async\` loops of ioredis \`GET\` of a session key on the same server,
same concurrency, same pipelining setting. "÷ raw" is the operation's median over the baseline's.

| operation | in flight | pipelining on | off | on ÷ off | on ÷ raw | off ÷ raw | range on | range off |
|---|---|---|---|---|---|---|---|---|
${throughputRows.join("\n")}

Where the time goes: the same \`Sessions.get\` on the in-memory store (no network; like the Redis rows, one
token read over and over, so its signature is verified once and remembered and the unchanged session is
reused: what is left is the service's own work and metrics), measured in the same rounds.

| operation | in flight | ops/s | ÷ raw GET (pipelining on) | Redis \`Sessions.get\` (on) ÷ this | range |
|---|---|---|---|---|---|
${memoryRows.join("\n")}

For scale, in the same process: one call of an empty \`Effect.fn("…")\` (a span, with Effect's default
tracer) costs ${tracedMicros.toFixed(2)} µs, an empty \`Effect.fnUntraced\` ${untracedMicros.toFixed(2)} µs; one
\`Sessions.get\` on the in-memory store at 1 in flight takes ${
    (1e6 / medianOf("Sessions.get, memory store", 1, false)).toFixed(1)
  } µs.
`

  yield* writeSection(resultsFile, "redis", report)
  console.log(report)
  yield* Effect.logInfo(`wrote ${resultsFile}`)
})

const deadline = Config.duration("BENCH_DEADLINE").pipe(Config.withDefault(Duration.seconds(175)))

// Run only as a program (`npm run bench:redis`), not when bench/micro.ts imports `bytesPerSession`.
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  NodeRuntime.runMain(
    Effect.flatMap(deadline, (deadline) =>
      program.pipe(
        Effect.scoped,
        Effect.timeoutFail({
          duration: deadline,
          onTimeout: () => new Error(`the benchmark did not finish within ${Duration.format(deadline)}`)
        })
      ))
  )
}
