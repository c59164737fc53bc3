/**
 * The Redis store under load: round trips per operation, bytes per session, and the throughput of
 * `Sessions.get` and `Sessions.issue` with and without ioredis auto-pipelining, each against raw ioredis
 * `HGET`s (the one command a session read sends) on the same server in the same run.
 *
 * ```sh
 * npm run bench:redis            # rewrites the "redis" section of bench/RESULTS.md
 * BENCH_ROUNDS=2 BENCH_ROUND_SECONDS=0.5 npm run bench:redis   # a quick look
 * BENCH_ROUNDS=1 BENCH_ROUND_SECONDS=0.2 BENCH_GETS=100 npm run bench:redis   # a smoke run, about 20 seconds
 * ```
 *
 * `npm run bench` (bench/main.ts) writes its own sections of the same file and reuses
 * {@link bytesPerSession} and {@link bytesTable} from here; neither program touches the other's sections.
 *
 * It starts its own `redis-server` (from PATH, on a free 127.0.0.1 port, no persistence) and stops it
 * whatever happens; it never touches another Redis. The whole run is bounded (`BENCH_DEADLINE`, default
 * 240 seconds; a run with the defaults takes about 2.5 minutes).
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
  n,
  promise,
  rawHgetRound,
  resultsFile,
  setupTable,
  table,
  writeSection,
  x
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
  /** The stored value (`HSTRLEN`): the encoded entry. */
  readonly valueLength: number
  /** `MEMORY USAGE` and `OBJECT ENCODING` of the user's hash with 1 session, then with 10. */
  readonly hash1: number
  readonly encoding1: string
  readonly hash10: number
  readonly encoding10: string
  /** The server's `hash-max-listpack-entries` and `hash-max-listpack-value`. */
  readonly listpackEntries: string
  readonly listpackValue: string
  readonly population: number
  /** `used_memory` growth per session over `population` one-session users. */
  readonly allIn: number
  /** `used_memory` growth per session over `population / 10` users of 10 sessions each. */
  readonly allIn10: number
}

/** `used_memory` growth per session when `users` users issue `each` sessions each, from an empty db. */
const usedPerSession = (admin: Redis, sessions: Session.Sessions<Data>, users: number, each: number) =>
  Effect.gen(function*() {
    yield* promise(() => admin.flushdb())
    const usedBefore = Number((yield* info(admin, "memory")).get("used_memory"))
    yield* Effect.forEach(
      Array.from({ length: users * each }, (_, i) => i),
      (i) => sessions.issue(`user-${i % users}`, payload()),
      { concurrency: 64, discard: true }
    )
    const usedAfter = Number((yield* info(admin, "memory")).get("used_memory"))
    return (usedAfter - usedBefore) / (users * each)
  })

/**
 * Bytes per session (`MEMORY USAGE … SAMPLES 0`, `HSTRLEN`, `used_memory`), with the payload
 * `{ csrf: <22 chars> }`, on a Redis the caller owns: it is flushed first and left holding what was
 * issued. A user's sessions are the fields of one hash, so what a session costs is what it adds to its
 * user's hash, and the hash itself (key, expiry) is paid once per user.
 */
export const bytesPerSession = (
  admin: Redis,
  sessions: Session.Sessions<Data>,
  population: number
): Effect.Effect<BytesPerSession, Session.StoreError> =>
  Effect.gen(function*() {
    yield* promise(() => admin.flushdb())
    const first = yield* sessions.issue("user-bytes", payload())
    const { field, key } = redisKey(first.session)
    const encoding = () => Effect.map(promise(() => admin.object("ENCODING", key)), String)
    const valueLength = yield* promise(() => admin.hstrlen(key, field))
    const hash1 = yield* memoryUsage(admin, key)
    const encoding1 = yield* encoding()
    for (let i = 1; i < 10; i++) yield* sessions.issue("user-bytes", payload())
    if ((yield* promise(() => admin.hlen(key))) !== 10) {
      return yield* Effect.dieMessage("bytes per session: the user's hash does not hold 10 sessions")
    }
    const hash10 = yield* memoryUsage(admin, key)
    const encoding10 = yield* encoding()
    // all-in: what sessions add to used_memory (dict entries, expiries, allocator overhead)
    const allIn = yield* usedPerSession(admin, sessions, population, 1)
    const allIn10 = yield* usedPerSession(admin, sessions, Math.max(1, Math.round(population / 10)), 10)
    const setting = (name: string) =>
      Effect.map(promise(() => admin.config("GET", name)), (reply) => String((reply as Array<unknown>)[1]))
    return {
      valueLength,
      hash1,
      encoding1,
      hash10,
      encoding10,
      listpackEntries: yield* setting("hash-max-listpack-entries"),
      listpackValue: yield* setting("hash-max-listpack-value"),
      population,
      allIn,
      allIn10
    }
  })

/** What the bytes-per-session table shows, as both programs print it. */
export const bytesIntro = (b: BytesPerSession) =>
  `A user's sessions are the fields of one hash (\`<prefix>{<user tag>}\`, field: the session's lineage digest,
value: the encoded entry), so the hash's key, its expiry and its dict entry are paid once per user and each
further session adds one field. Redis keeps a hash as a \`listpack\` while it has at most
\`hash-max-listpack-entries\` fields of at most \`hash-max-listpack-value\` bytes (${b.listpackEntries} and ${b.listpackValue} on this server), as a \`hashtable\` otherwise; the encoded entry here is ${b.valueLength} bytes.`

/** The bytes-per-session table, as both programs print it. */
export const bytesTable = (b: BytesPerSession): string =>
  table(["what", "bytes"], [
    ["stored value (`HSTRLEN`: the encoded entry)", String(b.valueLength)],
    [`user's hash, 1 session (\`${b.encoding1}\` encoding)`, String(b.hash1)],
    [
      `user's hash, 10 sessions (\`${b.encoding10}\` encoding)`,
      `${b.hash10} (${x(b.hash10 / 10)} per session; each session after the first adds ${x((b.hash10 - b.hash1) / 9)})`
    ],
    [`all-in: \`used_memory\` growth per session, ${n(b.population)} one-session users`, n(b.allIn)],
    [
      `all-in: \`used_memory\` growth per session, ${
        n(Math.max(1, Math.round(b.population / 10)))
      } users of 10 sessions`,
      n(b.allIn10)
    ]
  ])

/** Where a session lives in Redis: its user's hash and its field there. */
export const redisKey = (session: Session.Session<unknown>) => ({
  key: `${RedisStore.defaultPrefix}{${session.key.user}}`,
  field: session.key.session
})

// -----------------------------------------------------------------------------
// the run
// -----------------------------------------------------------------------------

type Operation = "raw HGET" | "Sessions.get" | "Sessions.issue" | "Sessions.get, memory store"
const operations: ReadonlyArray<Operation> = ["raw HGET", "Sessions.get", "Sessions.issue"]
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
  // 10 users: after its first, each create lands in a user's existing hash (the cap's read of it included)
  for (let i = 0; i < gets; i++) yield* sessions.true.issue(`user-rt-${i % 10}`, payload())
  const issueCalls = yield* commandCalls(admin)

  // --- bytes per session -----------------------------------------------------------------------------------------

  const bytes = yield* bytesPerSession(admin, sessions.true, 10_000)

  // --- throughput --------------------------------------------------------------------------------------------------

  const fixture = Effect.gen(function*() {
    yield* promise(() => admin.flushdb())
    const { session, token } = yield* sessions.true.issue("user-get", payload())
    return { token, ...redisKey(session) }
  })
  const measure = (operation: Operation, concurrency: number, autoPipelining: boolean, duration: Duration.Duration) =>
    Effect.gen(function*() {
      const { field, key, token } = yield* fixture
      const side = autoPipelining ? "true" : "false"
      switch (operation) {
        case "raw HGET":
          return yield* rawHgetRound(raw[side], key, field, concurrency, duration)
        case "Sessions.get":
          return yield* effectRound(() => sessions[side].get(token), concurrency, duration)
        case "Sessions.get, memory store":
          return yield* effectRound(() => inMemory.get(memoryToken), concurrency, duration)
        case "Sessions.issue":
          // a pool of users, so that each user's hash holds a few sessions, as in real use
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

  const writes = (calls: ReadonlyMap<string, number>) =>
    [...calls].filter(([command]) => command !== "hget").reduce((sum, [, count]) => sum + count, 0)
  const callList = (calls: ReadonlyMap<string, number>) =>
    [...calls].sort(([a], [b]) => a.localeCompare(b)).map(([command, count]) => `${command} ${n(count)}`).join(", ")

  const throughputRows: Array<string> = []
  for (const concurrency of concurrencies) {
    for (const operation of operations) {
      const on = medianOf(operation, concurrency, true)
      const off = medianOf(operation, concurrency, false)
      const rawOn = medianOf("raw HGET", concurrency, true)
      const rawOff = medianOf("raw HGET", concurrency, false)
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
      x(memory / medianOf("raw HGET", concurrency, true))
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
| \`Sessions.get\` × ${n(gets)} | ${callList(getCalls)} → ${x((getCalls.get("hget") ?? 0) / gets)} HGET per get | ${
    writes(getCalls)
  } |
| \`Sessions.issue\` × ${n(gets)}, 10 users | ${callList(issueCalls)} → ${
    x(((issueCalls.get("evalsha") ?? 0) + (issueCalls.get("eval") ?? 0)) / gets)
  } script call (one round trip) per issue | the commands inside the script |

### Bytes per session (\`MEMORY USAGE … SAMPLES 0\`; payload \`{ csrf: <22 chars> }\`)

${bytesIntro(bytes)}

${bytesTable(bytes)}

### Throughput (ops/s, median of ${rounds} rounds; auto-pipelining on and off alternate in each round)

"raw HGET" is the baseline: plain \`async\` loops of ioredis \`HGET\` of a session's field in its user's hash
(the one command \`Sessions.get\` sends) on the same server, same concurrency, same pipelining setting. "÷ raw"
is the operation's median over the baseline's. \`Sessions.issue\` runs over a pool of 1,000 users, so that
each user's hash holds a few sessions (the database is flushed before every measurement): each create is one
script that reads the user's whole hash to keep the per-user cap (\`maxSessionsPerUser\`), so its cost grows
with the sessions a user has.

| operation | in flight | pipelining on | off | on ÷ off | on ÷ raw | off ÷ raw | range on | range off |
|---|---|---|---|---|---|---|---|---|
${throughputRows.join("\n")}

Where the time goes: the same \`Sessions.get\` on the in-memory store (no network; like the Redis rows, one
token read over and over, so its signature is verified once and remembered and the unchanged session is
reused: what is left is the service's own work and metrics), measured in the same rounds.

| operation | in flight | ops/s | ÷ raw HGET (pipelining on) | Redis \`Sessions.get\` (on) ÷ this | range |
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

const deadline = Config.duration("BENCH_DEADLINE").pipe(Config.withDefault(Duration.seconds(240)))

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
