/**
 * The SQL store (`npm run bench -- sql`): `Sessions.get` on PostgreSQL and on SQLite (a temp file), 1 and
 * 64 in flight, against the raw indexed `SELECT` of the same row (the one statement a `get` sends, by
 * primary key) through the same `SqlClient`, in interleaved rounds; and one pruning pass of 100k dead rows
 * in batches of 1000 while a client keeps reading and writing, timed batch by batch.
 *
 * It starts its own throwaway PostgreSQL (test/support/postgres.ts: a temp data dir, a free loopback port,
 * stopped by pid) and never touches another database.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type * as Scope from "effect/Scope"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as Auth from "../src/Auth.js"
import { pruneBatch, type Statements } from "../src/internal/sqlBackend.js"
import * as Sql from "../src/layers/Sql.js"
import * as Session from "../src/Session.js"
import { expiredRetention, Store, StoreError } from "../src/Store.js"
// the contract's fixtures, without the suite (which imports vitest)
import { makeEntry, nextVersion } from "../src/testing/contract/fixtures.js"
import { startPostgres } from "../test/support/postgres.js"
import { effectRound, median, n, perSecond, quantile, range, table, x } from "./support.js"

export interface Settings {
  readonly rounds: number
  readonly seconds: number
}

const Data = Schema.Struct({ csrf: Schema.String })

interface Pair {
  readonly database: string
  readonly concurrency: number
  readonly raw: Array<number>
  readonly get: Array<number>
}

interface Pruned {
  readonly database: string
  readonly rows: number
  readonly batchSize: number
  readonly batches: ReadonlyArray<number>
  readonly served: ReadonlyArray<number>
  readonly millis: number
}

export interface SqlResults {
  readonly pairs: ReadonlyArray<Pair>
  readonly pruned: ReadonlyArray<Pruned>
}

const sqliteFile: Layer.Layer<SqlClient.SqlClient, unknown> = Layer.unwrapScoped(
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-bench-sqlite-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => SqliteClient.layer({ filename: Path.join(dir, "sessions.db") })
  )
)

/** The store, the service on it, one issued session and the raw `SELECT` of its row. */
const setup = (client: Context.Context<SqlClient.SqlClient>) =>
  Effect.gen(function*() {
    const sql = Context.get(client, SqlClient.SqlClient)
    const store = yield* Layer.build(
      Layer.provide(Sql.layer({ migrate: true, prune: false }), Layer.succeedContext(client))
    ).pipe(Effect.map(Context.get(Store)))
    const auth = yield* Auth.make({ keys: [Redacted.make(Auth.randomId(48))] })
    const sessions = yield* Session.make(Data, {}).pipe(
      Effect.provideService(Store, store),
      Effect.provideService(Auth.Auth, auth)
    )
    const issued = yield* sessions.issue("u1", { csrf: Auth.randomId(16) })
    const { session: sessionKey, user } = issued.session.key
    const raw = sql<{ readonly entry: string }>`SELECT entry FROM ${
      sql(Sql.defaultTable)
    } WHERE user_key = ${user} AND session_key = ${sessionKey}`
    // the raw statement finds the row the service reads
    if ((yield* raw).length !== 1) return yield* Effect.dieMessage("the raw SELECT does not find the session's row")
    return { sql, store, get: sessions.get(issued.token), raw }
  })

/** Interleaved rounds: each round runs the pair once, the raw query first in even rounds, last in odd ones. */
const measure = (
  database: string,
  concurrency: number,
  subject: { readonly get: Effect.Effect<unknown, unknown>; readonly raw: Effect.Effect<unknown, unknown> },
  settings: Settings
) =>
  Effect.gen(function*() {
    const pair: Pair = { database, concurrency, raw: [], get: [] }
    const seconds = Duration.seconds(settings.seconds)
    const rawRound = effectRound(() => subject.raw, concurrency, seconds)
    const getRound = effectRound(() => subject.get, concurrency, seconds)
    yield* effectRound(() => Effect.zip(subject.raw, subject.get), concurrency, "300 millis") // warm-up
    for (let round = 0; round < settings.rounds; round++) {
      if (round % 2 === 0) {
        pair.raw.push(perSecond(yield* rawRound))
        pair.get.push(perSecond(yield* getRound))
      } else {
        pair.get.push(perSecond(yield* getRound))
        pair.raw.push(perSecond(yield* rawRound))
      }
      yield* Effect.logInfo(`sql: ${database}, ${concurrency} in flight, round ${round + 1}/${settings.rounds}`)
    }
    return pair
  })

/** Inserts `count` dead rows in multi-row INSERTs of 1000 (portable across the dialects). */
const insertDead = (sql: SqlClient.SqlClient, count: number) =>
  Effect.forEach(
    Array.from({ length: Math.ceil(count / 1_000) }, (_, chunk) => chunk),
    (chunk) =>
      sql`INSERT INTO ${sql(Sql.defaultTable)} ${
        sql.insert(Array.from({ length: 1_000 }, (_, i) => ({
          user_key: `dead${chunk * 1_000 + i}`,
          session_key: "s",
          version: 0,
          expires_at: 1_000,
          last_seen_at: 0,
          created_at: 0,
          entry: "x"
        })))
      }`,
    { discard: true }
  )

/**
 * One pruning pass over `rows` dead rows, batch by batch (the statement `Sql.prune` runs, timed one at a
 * time), while one client keeps doing a fetch, an update and a create of its own sessions; answers each
 * batch's time and each of the client's rounds' time.
 */
const pruneUnderLoad = (database: string, sql: SqlClient.SqlClient, store: Store["Type"], rows: number) =>
  Effect.gen(function*() {
    const batchSize = Sql.defaultPruneBatchSize
    yield* insertDead(sql, rows)
    const statements: Statements = {
      sql,
      table: Sql.defaultTable,
      timeoutMillis: Duration.toMillis(Sql.defaultQueryTimeout),
      error: (failure) => new StoreError(failure)
    }
    const live = { user: "live", session: "s" }
    let entry = makeEntry({ expiresAt: Date.now() + 3_600_000 })
    yield* store.save(live, entry, "create")
    let pruning = true
    const served: Array<number> = []
    const load = Effect.gen(function*() {
      for (let i = 0; pruning; i++) {
        const started = performance.now()
        yield* store.fetch(live)
        const next = nextVersion(entry, { lastSeenAt: entry.lastSeenAt + 1 })
        if (yield* store.save(live, next, "update")) entry = next
        yield* store.save(
          { user: "live", session: `new${i}` },
          makeEntry({ expiresAt: Date.now() + 3_600_000 }),
          "create"
        )
        served.push(performance.now() - started)
      }
    })
    const cutoff = Date.now() - Duration.toMillis(expiredRetention)
    const batches: Array<number> = []
    const started = performance.now()
    const pass = Effect.gen(function*() {
      for (;;) {
        const begun = performance.now()
        const deleted = yield* pruneBatch(statements, cutoff, batchSize)
        batches.push(performance.now() - begun)
        if (deleted < batchSize) return
        yield* Effect.yieldNow()
      }
    }).pipe(Effect.ensuring(Effect.sync(() => void (pruning = false))))
    yield* Effect.all([pass, load], { concurrency: "unbounded", discard: true })
    return { database, rows, batchSize, batches, served, millis: performance.now() - started }
  })

export const run = (settings: Settings): Effect.Effect<SqlResults, unknown, Scope.Scope> =>
  Effect.gen(function*() {
    const url = yield* startPostgres
    const databases = [
      ["PostgreSQL", PgClient.layer({ url: Redacted.make(url), maxConnections: 64 })],
      ["SQLite (temp file)", sqliteFile]
    ] as const
    const pairs: Array<Pair> = []
    const pruned: Array<Pruned> = []
    for (const [database, layer] of databases) {
      const client = yield* Layer.build(layer)
      const subject = yield* setup(client)
      for (const concurrency of [1, 64]) pairs.push(yield* measure(database, concurrency, subject, settings))
      pruned.push(yield* pruneUnderLoad(database, subject.sql, subject.store, 100_000))
      yield* Effect.logInfo(`sql: ${database} pruned`)
    }
    return { pairs, pruned }
  })

const ms = (value: number) => Number.isFinite(value) ? value.toFixed(1) : "–"

export const report = (results: SqlResults, settings: Settings): string => {
  const sessions = table(
    ["database", "in flight", "raw SELECT (ops/s)", "Sessions.get (ops/s)", "get ÷ raw (median)", "get ÷ raw (range)"],
    results.pairs.map((pair) => [
      pair.database,
      String(pair.concurrency),
      n(median(pair.raw)),
      n(median(pair.get)),
      x(median(pair.get) / median(pair.raw)),
      range(pair.get.map((get, i) => get / pair.raw[i]!), x)
    ])
  )
  const pruning = table(
    [
      "database",
      "rows pruned",
      "rows a batch",
      "batches",
      "batch p50 / longest (ms)",
      "pass (ms)",
      "client rounds served meanwhile",
      "round p50 / p99 / slowest (ms)"
    ],
    results.pruned.map((pruned) => {
      const batches = [...pruned.batches].sort((a, b) => a - b)
      const served = [...pruned.served].sort((a, b) => a - b)
      return [
        pruned.database,
        n(pruned.rows),
        n(pruned.batchSize),
        String(batches.length),
        `${ms(quantile(batches, 0.5))} / ${ms(batches.at(-1) ?? NaN)}`,
        n(pruned.millis),
        n(served.length),
        `${ms(quantile(served, 0.5))} / ${ms(quantile(served, 0.99))} / ${ms(served.at(-1) ?? NaN)}`
      ]
    })
  )
  return `### The SQL store (\`npm run bench -- sql\`)

\`Sessions.get\` (default options) on the SQL store against the raw indexed \`SELECT entry … WHERE user_key = ?
AND session_key = ?\` of the same row through the same \`SqlClient\` (the one statement a \`get\` sends), the
same number in flight, ${settings.rounds} interleaved rounds of ${settings.seconds} s each (the raw query first
in even rounds, last in odd ones). "get ÷ raw" is the share of the raw query's throughput the whole read
path keeps (1.00: no cost beyond the query); the range is over the rounds, each round's pair measured
back to back. PostgreSQL: a throwaway server on loopback (fsync off), a pool of 64; SQLite: a temp file on
better-sqlite3's one connection.

${sessions}

Pruning: ${n(results.pruned[0]?.rows ?? 0)} rows dead past the retention, deleted by the expiry index in
batches of ${n(Sql.defaultPruneBatchSize)} (the statement \`Sql.prune\` runs, timed one batch at a time), while
one client keeps doing a fetch, a compare-and-set update and a create (one "round") on the same store.

${pruning}
`
}
