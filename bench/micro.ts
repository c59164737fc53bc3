/**
 * Micro benchmarks, no HTTP: signing and verifying against a bare HMAC, `Sessions.get` on the in-memory
 * store and on Redis (1 and 64 in flight) against raw ioredis `HGET`s, `Sessions.extend` on Redis, the
 * price of session data that cannot be frozen and shared (a `Date`), the parts a `get` is made of, and
 * bytes per session in Redis. Each figure is a median of several rounds; the order of the benchmarks
 * alternates from round to round.
 */
import * as Cookies from "@effect/platform/Cookies"
import type * as HttpServerRequest from "@effect/platform/HttpServerRequest"
import * as Clock from "effect/Clock"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"
import type * as MetricKeyType from "effect/MetricKeyType"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { Redis } from "ioredis"
import * as Crypto from "node:crypto"
import * as Auth from "../src/Auth.js"
import { freezeData } from "../src/internal/freeze.js"
import { idLength, lineageKey, parseId, secretDigest } from "../src/internal/ids.js"
import * as Memory from "../src/layers/Memory.js"
import * as RedisStore from "../src/layers/Redis.js"
import * as Session from "../src/Session.js"
import { decodeEntry, encodeEntry, Store } from "../src/Store.js"
import * as Transport from "../src/Transport.js"
import type { RedisServer } from "../test/support/redis.js"
import * as InProcess from "./inprocess.js"
import { bytesIntro, type BytesPerSession, bytesPerSession, bytesTable, redisKey as redisKeyOf } from "./redis.js"
import {
  effectRound,
  median,
  n,
  perSecond,
  promise,
  range,
  rawHgetRound,
  type Round,
  syncRound,
  table,
  x
} from "./support.js"

const Data = Schema.Struct({ csrf: Schema.String })
type Data = typeof Data.Type

const payload = (): Data => ({ csrf: Auth.randomId(16) })

// The price of data that cannot be frozen: one timestamp more, stored as the same ISO string either way,
// kept as a string (plain data: frozen once and shared) or decoded to a `Date` (decoded every request).
const Stamped = Schema.Struct({ csrf: Schema.String, since: Schema.String })
const Dated = Schema.Struct({ csrf: Schema.String, since: Schema.Date })

/** The services' name (`Session.make`'s default), which `Auth` binds signatures and fingerprints to. */
const domain = "effect-sessions"

// Row names the report refers to.
const memoryGet = "Sessions.get, memory"
const rawHget = "raw ioredis HGET (baseline)"
const stampedGet = "Sessions.get, memory, data { csrf, since: string } (plain: frozen once, shared)"
const datedGet = "Sessions.get, memory, data { csrf, since: Date } (not shared: decoded every request)"
const deriveName = "parseId + lineageKey + secretDigest (the store key and secret digest: two SHA-256)"
const fingerprintName = "Auth.fingerprint(userId) (the ownership check: one HMAC-SHA512 per key)"
const decodeName = "Schema.decodeUnknownEither(data), { csrf }"
const freezeName = "freezeData on a fresh { csrf } (the object literal included)"
const decodeDatedName = "decode + freezeData, { csrf, since: Date } (what every read of such data pays)"

export interface Settings {
  readonly rounds: number
  readonly seconds: number
}

// The in-process request path: the same time budget as a benchmark above, in slices of a quarter of it.
const slices = (settings: Settings) => settings.rounds * 4
const slice = (settings: Settings) => Duration.millis(settings.seconds * 250)

interface Benchmark {
  readonly name: string
  readonly run: (duration: Duration.Duration) => Effect.Effect<Round, unknown>
}

/** Runs every benchmark once per round, forwards in even rounds and backwards in odd ones. */
const rounds = (benchmarks: ReadonlyArray<Benchmark>, settings: Settings) =>
  Effect.gen(function*() {
    const results = new Map<string, Array<number>>(benchmarks.map((b) => [b.name, []]))
    for (const benchmark of benchmarks) yield* benchmark.run(Duration.millis(200)) // warm-up, untimed
    for (let round = 0; round < settings.rounds; round++) {
      const order = round % 2 === 0 ? benchmarks : [...benchmarks].reverse()
      for (const benchmark of order) {
        results.get(benchmark.name)!.push(perSecond(yield* benchmark.run(Duration.seconds(settings.seconds))))
      }
      yield* Effect.logInfo(`micro: round ${round + 1}/${settings.rounds}`)
    }
    return results
  })

export interface MicroResults {
  readonly crypto: ReadonlyMap<string, ReadonlyArray<number>>
  readonly sessions: ReadonlyMap<string, ReadonlyArray<number>>
  readonly parts: ReadonlyMap<string, ReadonlyArray<number>>
  readonly requestPath: ReadonlyMap<string, InProcess.Measured>
  readonly bytes: BytesPerSession
}

export const run = (redis: RedisServer, settings: Settings) =>
  Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      promise(async () => {
        const client = new Redis(redis.url, { lazyConnect: true, enableAutoPipelining: true })
        await client.connect()
        return client
      }),
      (client) => promise(() => client.quit()).pipe(Effect.timeout("2 seconds"), Effect.ignore)
    )
    yield* promise(() => client.flushdb())

    const keyBytes = Crypto.randomBytes(48)
    const auth = yield* Auth.make({ keys: [Redacted.make(new Uint8Array(keyBytes))] })
    const withPorts = <A, E>(effect: Effect.Effect<A, E, Store | Auth.Auth>, store: Store["Type"]) =>
      effect.pipe(Effect.provideService(Store, store), Effect.provideService(Auth.Auth, auth))
    const memoryStore = yield* Memory.make()
    const redisStore = yield* RedisStore.makeSingle({ url: redis.url })
    const memory = yield* withPorts(Session.make(Data, { name: domain }), memoryStore)
    const memoryNoMetrics = yield* withPorts(Session.make(Data, { name: domain, metrics: false }), memoryStore)
    const memoryNoCache = yield* withPorts(Session.make(Data, { name: domain, verifiedTokenCache: 0 }), memoryStore)
    const memoryStamped = yield* withPorts(Session.make(Stamped, { name: domain }), memoryStore)
    const memoryDated = yield* withPorts(Session.make(Dated, { name: domain }), memoryStore)
    const redisNoCache = yield* withPorts(Session.make(Data, { name: domain, verifiedTokenCache: 0 }), redisStore)
    const onRedis = yield* withPorts(Session.make(Data, { name: domain }), redisStore)
    // the same store with its near-cache: after a token's first read, its reads are answered in process
    const nearCacheStore = yield* RedisStore.makeSingle({ url: redis.url, nearCache: { capacity: 10_000 } })
    const onRedisNear = yield* withPorts(Session.make(Data, { name: domain }), nearCacheStore)

    // --- signing ---------------------------------------------------------------------------------------------------

    const client0 = { userAgent: "autocannon", address: "127.0.0.1" }
    const issued = yield* memory.issue("u1", payload(), client0)
    const id = Redacted.value(issued.session.id)
    const token = issued.token
    const crypto = yield* rounds([
      {
        name: "bare HMAC-SHA512 digest (baseline)",
        run: (d) => syncRound(() => Crypto.createHmac("sha512", keyBytes).update(id).digest(), d)
      },
      { name: "Auth.sign", run: (d) => syncRound(() => auth.sign(id, domain), d) },
      { name: "Auth.verify (valid token)", run: (d) => syncRound(() => auth.verify(token, domain), d) },
      { name: "Auth.fingerprint (one key)", run: (d) => syncRound(() => auth.fingerprint("u1", domain), d) }
    ], settings)

    // --- sessions ----------------------------------------------------------------------------------------------------

    const redisIssued = yield* onRedis.issue("u1", payload())
    const { field: redisField, key: redisKey } = redisKeyOf(redisIssued.session)
    // the same payload and the same stored bytes, once as plain data and once decoded to a `Date`
    const since = new Date().toISOString()
    const stampedToken = (yield* memoryStamped.issue("u1", { ...payload(), since })).token
    const datedToken = (yield* memoryDated.issue("u1", { ...payload(), since: new Date(since) })).token
    // one session per worker, each extended from the session the previous extend returned
    const chains = yield* Effect.forEach(
      Array.from({ length: 64 }, (_, i) => i),
      (i) => Effect.map(onRedis.issue(`extend-${i}`, payload()), ({ session }) => session)
    )
    const extendRound = (concurrency: number) => (d: Duration.Duration) =>
      effectRound(
        (w) => Effect.map(onRedis.extend(chains[w]!), (next) => void (chains[w] = next)),
        concurrency,
        d
      )
    const sessions = yield* rounds(
      [1, 64].flatMap((c): ReadonlyArray<Benchmark> => [
        { name: `${memoryGet}|${c}`, run: (d) => effectRound(() => memory.get(token), c, d) },
        { name: `${rawHget}|${c}`, run: (d) => rawHgetRound(client, redisKey, redisField, c, d) },
        { name: `Sessions.get, Redis|${c}`, run: (d) => effectRound(() => onRedis.get(redisIssued.token), c, d) },
        {
          name: `Sessions.get, Redis + near-cache|${c}`,
          run: (d) => effectRound(() => onRedisNear.get(redisIssued.token), c, d)
        },
        { name: `Sessions.extend, Redis|${c}`, run: extendRound(c) }
      ]).concat([
        {
          name: `${stampedGet}|1`,
          run: (d) => effectRound(() => memoryStamped.get(stampedToken), 1, d)
        },
        {
          name: `${datedGet}|1`,
          run: (d) => effectRound(() => memoryDated.get(datedToken), 1, d)
        },
        {
          name: "Sessions.get, memory, metrics: false|1",
          run: (d) => effectRound(() => memoryNoMetrics.get(token), 1, d)
        },
        {
          name: "Sessions.get, memory, verifiedTokenCache: 0|1",
          run: (d) => effectRound(() => memoryNoCache.get(token), 1, d)
        },
        {
          name: "Sessions.get, Redis, verifiedTokenCache: 0|64",
          run: (d) => effectRound(() => redisNoCache.get(redisIssued.token), 64, d)
        }
      ]),
      settings
    )

    // --- the parts of a get, per call ------------------------------------------------------------------------------

    // the entry as the store holds it, and its string form as the Redis store keeps it
    const entry = Option.getOrThrow(yield* memoryStore.fetch(issued.session.key))
    const stored = encodeEntry(entry)
    const decodeData = Schema.decodeUnknownEither(Data)
    const decodeDated = Schema.decodeUnknownEither(Dated)
    const datedEncoded = { ...payload(), since }
    // HMAC(K, m) = H((K ^ opad) || H((K ^ ipad) || m)) for a key no longer than the block (128 bytes):
    // the keyed states are hashed once and copied per call instead of re-keying an Hmac every time.
    const pad = (byte: number) =>
      Buffer.from(Buffer.concat([keyBytes, Buffer.alloc(128 - keyBytes.length)]).map((b) => b ^ byte))
    const inner = Crypto.createHash("sha512").update(pad(0x36))
    const outer = Crypto.createHash("sha512").update(pad(0x5c))
    const precomputed = (message: string) => outer.copy().update(inner.copy().update(message).digest()).digest()
    if (!precomputed(id).equals(Crypto.createHmac("sha512", keyBytes).update(id).digest())) {
      return yield* Effect.dieMessage("the precomputed HMAC does not match createHmac")
    }
    // What a first read derives from the id (src/Session.ts `check`): its parts, the store key's session
    // part and the digest of its secret, as src/internal/ids.ts computes them, and the same two digests
    // with one-shot `Crypto.hash` for comparison.
    const derive = (raw: string) => {
      const parts = parseId(raw)!
      return { key: lineageKey(parts.family), secret: secretDigest(parts.secret) }
    }
    const oneShot = (purpose: string, value: string) =>
      Crypto.hash("sha256", purpose + value, "buffer").subarray(0, 16).toString("base64url")
    const deriveOneShot = (raw: string) => {
      const parts = parseId(raw)!
      return {
        key: oneShot("effect-sessions/lineage:", parts.family),
        secret: oneShot("effect-sessions/secret:", parts.secret)
      }
    }
    const derived = derive(id)
    if (derived.key !== issued.session.key.session || JSON.stringify(deriveOneShot(id)) !== JSON.stringify(derived)) {
      return yield* Effect.dieMessage("the bench's derivation of the store key does not match src/")
    }
    const transport = yield* Transport.makeCookie({ secure: false })
    const cookieHeader = `theme=dark; ${Transport.cookieName({ secure: false })}=${token}; lang=en`
    // `read` looks at the request's headers only
    const request = { headers: { cookie: cookieHeader } } as unknown as HttpServerRequest.HttpServerRequest
    if (transport.read(request)[0] !== token) return yield* Effect.dieMessage("the cookie transport misread the token")
    const times = [entry.createdAt, entry.renewedAt, entry.expiresAt, entry.lastSeenAt] as const
    const owners = new WeakMap<object, unknown>()
    const redactedId = Redacted.make(id)
    const data = payload()
    const traced = Effect.fn("bench.traced")(function*() {
      return 1
    })
    const untraced = Effect.fnUntraced(function*() {
      return 1
    })
    const spanned = Effect.withSpan(Effect.sync(() => 1), "bench.span")
    // the latency timer tagged per update (as Session.ts did before it kept constant label arrays), and the
    // same metric with its tags in the key
    const boundaries = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000]
    const taggedTimer = Metric.timerWithBoundaries("bench_latency", boundaries).pipe(
      Metric.tagged("operation", "fetch")
    )
    const keyedTimer = Metric.fromMetricKey(
      MetricKey.histogram("bench_latency_keyed", MetricBoundaries.fromIterable(boundaries)).pipe(
        MetricKey.tagged("time_unit", "milliseconds"),
        MetricKey.tagged("operation", "fetch")
      )
    ).pipe(Metric.mapInput(Duration.toMillis))
    const counter = Metric.counter("bench_total", { incremental: true })
    const elapsed = Duration.nanos(250_000n)
    const runSync = <A>(effect: Effect.Effect<A>) => Effect.runSync(effect)
    // The shape src/Session.ts first timed store operations with (`instrument`, a Metric.tagged timer)
    // around an in-memory fetch, and two cheaper shapes of the same measurement.
    const noTags: ReadonlyArray<never> = []
    const fetchLike = Effect.sync(() => 1)
    const timedOnExit = (timer: Metric.Metric<MetricKeyType.MetricKeyType.Histogram, Duration.Duration, unknown>) =>
      Effect.suspend(() => {
        const start = performance.now()
        return Effect.onExit(fetchLike, () => {
          timer.unsafeUpdate(Duration.millis(performance.now() - start), noTags)
          return Effect.void
        })
      })
    const timedMatch = Effect.suspend(() => {
      const start = performance.now()
      const record = () => keyedTimer.unsafeUpdate(Duration.millis(performance.now() - start), noTags)
      return Effect.matchCauseEffect(fetchLike, {
        onFailure: (cause) => {
          record()
          return Effect.failCause(cause)
        },
        onSuccess: (value) => {
          record()
          return Effect.succeed(value)
        }
      })
    })
    const timedShipped = timedOnExit(taggedTimer)
    const timedKeyed = timedOnExit(keyedTimer)
    const parts = yield* rounds([
      { name: "Auth.verify", run: (d) => syncRound(() => auth.verify(token, domain), d) },
      {
        name: "alternative: HMAC-SHA512 from precomputed ipad/opad states (Hash.copy)",
        run: (d) => syncRound(() => precomputed(id), d)
      },
      { name: deriveName, run: (d) => syncRound(() => derive(id), d) },
      {
        name: "alternative: the same two digests with Crypto.hash(\"sha256\", …) (one-shot)",
        run: (d) => syncRound(() => deriveOneShot(id), d)
      },
      { name: fingerprintName, run: (d) => syncRound(() => auth.fingerprint(entry.userId, domain), d) },
      {
        name: "the cookie transport's read: the candidates of a 3-cookie header",
        run: (d) => syncRound(() => transport.read(request), d)
      },
      {
        name: "for comparison: Cookies.parseHeader (what request.cookies does; the transport does not use it)",
        run: (d) => syncRound(() => Cookies.parseHeader(cookieHeader), d)
      },
      { name: "Store.decodeEntry (JSON.parse + checks)", run: (d) => syncRound(() => decodeEntry(stored), d) },
      { name: decodeName, run: (d) => syncRound(() => decodeData(data), d) },
      { name: freezeName, run: (d) => syncRound(() => freezeData({ csrf: data.csrf }), d) },
      {
        name: "decode + freezeData, { csrf } (what a first read of plain data pays)",
        run: (d) => syncRound(() => freezeData(Either.getOrThrow(decodeData(data))), d)
      },
      {
        name: decodeDatedName,
        run: (d) => syncRound(() => freezeData(Either.getOrThrow(decodeDated(datedEncoded))), d)
      },
      {
        name: "a new session object as toSession makes it (4 × DateTime.unsafeMake, Object.freeze, a WeakMap entry)",
        run: (d) =>
          syncRound(() => {
            const session = Object.freeze({
              id: redactedId,
              key: issued.session.key,
              userId: entry.userId,
              createdAt: DateTime.unsafeMake(times[0]),
              renewedAt: DateTime.unsafeMake(times[1]),
              expiresAt: DateTime.unsafeMake(times[2]),
              lastSeenAt: DateTime.unsafeMake(times[3]),
              userAgent: entry.userAgent,
              address: entry.address,
              data
            })
            owners.set(session, entry)
            return session
          }, d)
      },
      { name: "Effect.runSync(Effect.sync) (baseline)", run: (d) => syncRound(() => runSync(Effect.sync(() => 1)), d) },
      { name: "Effect.runSync(empty Effect.fnUntraced)", run: (d) => syncRound(() => runSync(untraced()), d) },
      { name: "Effect.runSync(empty Effect.fn, a span)", run: (d) => syncRound(() => runSync(traced()), d) },
      { name: "Effect.runSync(Effect.withSpan(sync))", run: (d) => syncRound(() => runSync(spanned), d) },
      {
        name: "Effect.runSync(Clock.currentTimeNanos)",
        run: (d) => syncRound(() => runSync(Clock.currentTimeNanos), d)
      },
      {
        name: "Effect.runSync(Metric.increment(counter))",
        run: (d) => syncRound(() => runSync(Metric.increment(counter)), d)
      },
      {
        name: "Effect.runSync(Metric.update(timer, …)), timer from Metric.tagged (tags per update)",
        run: (d) => syncRound(() => runSync(Metric.update(taggedTimer, elapsed)), d)
      },
      {
        name: "Effect.runSync(Metric.update(timer, …)), tags in the MetricKey",
        run: (d) => syncRound(() => runSync(Metric.update(keyedTimer, elapsed)), d)
      },
      {
        name: "timed fetch, the first shape of src/Session.ts `instrument`: suspend + onExit + a Metric.tagged timer",
        run: (d) => syncRound(() => runSync(timedShipped), d)
      },
      {
        name: "timed fetch: the same with the tags in the timer's MetricKey",
        run: (d) => syncRound(() => runSync(timedKeyed), d)
      },
      {
        name: "timed fetch: tags in the MetricKey, matchCauseEffect instead of onExit",
        run: (d) => syncRound(() => runSync(timedMatch), d)
      }
    ], { rounds: settings.rounds, seconds: Math.min(settings.seconds, 0.25) })

    // --- the request path in-process -------------------------------------------------------------------------

    const requestPath = yield* InProcess.measure(yield* InProcess.variants, slices(settings), slice(settings))

    // --- bytes per session ---------------------------------------------------------------------------------------

    const bytes = yield* bytesPerSession(client, onRedis, 2_000)
    yield* promise(() => client.flushdb())

    return { crypto, sessions, parts, requestPath, bytes } satisfies MicroResults
  })

export const report = (results: MicroResults, settings: Settings): string => {
  const med = (map: ReadonlyMap<string, ReadonlyArray<number>>, name: string) => median(map.get(name) ?? [])
  const micros = (map: ReadonlyMap<string, ReadonlyArray<number>>, name: string) => 1e6 / med(map, name)
  const hmac = med(results.crypto, "bare HMAC-SHA512 digest (baseline)")
  const cryptoRows = [...results.crypto].map(([name, values]) => [
    name,
    n(median(values)),
    x(median(values) / hmac),
    (1e6 / median(values)).toFixed(2),
    range(values)
  ])
  const sessionRows = [...results.sessions].map(([key, values]) => {
    const [name, c] = key.split("|") as [string, string]
    const raw = med(results.sessions, `${rawHget}|${c}`)
    return [
      name,
      c,
      n(median(values)),
      name === rawHget ? "1.00" : x(median(values) / raw),
      x(median(values) / hmac),
      range(values)
    ]
  })
  const emptyRunSync = med(results.parts, "Effect.runSync(Effect.sync) (baseline)")
  const partRows = [...results.parts].map(([name, values]) => [
    name,
    (1e6 / median(values)).toFixed(2),
    (name.startsWith("Effect.runSync(") || name.startsWith("timed fetch")) && !name.includes("(baseline)")
      ? (1e6 / median(values) - 1e6 / emptyRunSync).toFixed(2)
      : ""
  ])
  const memory1 = med(results.sessions, `${memoryGet}|1`)
  const memoryOff = med(results.sessions, "Sessions.get, memory, metrics: false|1")
  const stamped = med(results.sessions, `${stampedGet}|1`)
  const dated = med(results.sessions, `${datedGet}|1`)
  const b = results.bytes
  return `## Micro benchmarks (\`npm run bench\`, no HTTP)

Medians of ${settings.rounds} rounds of ${settings.seconds} s per benchmark, the order reversed every other
round. One process: the load loops, the service and (for Redis) a raw ioredis client share it; the
redis-server started for the run is on the same machine.

### Signing (per second; baseline: a bare \`createHmac("sha512", key).update(id).digest()\` in the same rounds)

\`Auth.sign\` and \`Auth.verify\` MAC the id (${idLength} characters: user tag, lineage, secret) together with a purpose
and the service's name (\`${domain}\` here), so that a token of one sessions service never verifies at another;
\`Auth.fingerprint\` is the keyed digest of a user id that the id's tag is, and that a read checks the stored
entry's user id against.

${table(["operation", "ops/s", "÷ bare HMAC", "µs per call", "range"], cryptoRows)}

### \`Sessions.get\` and \`Sessions.extend\` (ops/s; default options, metrics on, Redis auto-pipelining on)

"÷ raw HGET" is against plain \`async\` loops of ioredis \`HGET\` of the same session (its field in its user's
hash: the one command \`Sessions.get\` sends), same number in flight; "÷ HMAC" against the bare HMAC above.
Each loop reads one token over and over: the best case of the verified-token cache (no HMAC, no SHA-256, no
fingerprint after the first read) and of the reuse of an unchanged session (no decode, no freeze, no new
object). The near-cache rows read the same session through the Redis store with its near-cache on
(\`nearCache: { capacity: 10_000 }\`): after the first read, Redis is not asked again while nothing writes
the session, so they run near the in-memory rows. The \`verifiedTokenCache: 0\` rows pay on every read what a first request with a token pays: the
signature check, the two digests of the id's parts, the fingerprint check of the entry's user, the decode of
the data and a new session object.

${table(["operation", "in flight", "ops/s", "÷ raw HGET", "÷ HMAC", "range"], sessionRows)}

Metrics (\`metrics: false\` against the default): ${x(memoryOff / memory1)}× the in-memory \`get\` rate at 1 in
flight, i.e. ${(1e6 / memory1 - 1e6 / memoryOff).toFixed(2)} µs of ${(1e6 / memory1).toFixed(2)} µs per call.

### Immutable sessions: what data that cannot be frozen costs

Sessions handed out are frozen, so that no handler can change what another request sees. Plain session data
(objects with no prototype but \`Object\`'s, arrays, primitives) is deep-frozen once, when an entry is decoded,
and the session object made from it is then shared by every request of that token for as long as the store
answers the same entry: such a read decodes nothing and allocates no session (the \`${memoryGet}\` rows, and
\`since: string\`). Data holding anything else (a \`Date\`, a \`Map\`, a class instance) cannot be made immutable
by freezing, so it is never shared: every request decodes it again and gets a session object of its own (the
\`since: Date\` row). Both rows store the same bytes (\`since\` is the same ISO string); the \`Date\` row runs at
${x(dated / stamped)}× the rate of the plain one, i.e. ${(1e6 / dated - 1e6 / stamped).toFixed(2)} µs more per read
(${(1e6 / stamped).toFixed(2)} → ${(1e6 / dated).toFixed(2)} µs). For scale, from the parts below: \`freezeData\`
on the typical payload \`{ csrf }\` costs ${micros(results.parts, freezeName).toFixed(2)} µs and its decode ${
    micros(results.parts, decodeName).toFixed(2)
  } µs, both paid once per entry for plain data; the decode and freeze attempt of \`{ csrf, since: Date }\` ${
    micros(results.parts, decodeDatedName).toFixed(2)
  } µs, paid on every read with a new session object besides.

### The parts of a request (µs per call, medians; Effect's default tracer)

Synchronous parts are called in a plain loop; Effect parts through \`Effect.runSync\`, whose own cost (a
fiber per call) is the baseline row and is subtracted in the last column. A first read of a token pays the
signature check, the derivation of the store key and secret digest from the id, and the fingerprint check of
the entry's user (all three are then remembered with the token), the entry's decode (Redis; the memory store
keeps decoded entries), the data's decode and freeze, and a new session object. The "timed fetch" rows wrap
\`Effect.sync\` (an in-memory fetch) in the store-latency timing src/Session.ts first had and in two cheaper
shapes of the same measurement (written here, for comparison). The service now keeps constant label arrays
(the cost of the "tags in the MetricKey" rows) and times its read's fetch inline.

${table(["part", "µs per call", "µs over the runSync baseline"], partRows)}

### The request path in-process (\`HttpApp.toWebHandlerRuntime\`, memory store)

${InProcess.report(results.requestPath, slices(settings), slice(settings))}
### Bytes per session in Redis (\`MEMORY USAGE … SAMPLES 0\`; payload \`{ csrf: <22 chars> }\`)

${bytesIntro(b)}

${bytesTable(b)}
`
}
