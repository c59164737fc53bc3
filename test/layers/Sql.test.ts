/**
 * The SQL store against real databases: SQLite (a temp file, and `:memory:` on better-sqlite3's single
 * connection), a throwaway PostgreSQL started by the harness (test/support/postgres.ts; `DATABASE_URL`
 * replaces it) and a throwaway MariaDB (test/support/mariadb.ts; `MYSQL_URL` replaces it). The shipped Store contract on each, then what the contract does not cover: migrations,
 * garbage rows, a missing table, a hung database, and the `Sessions` service end to end.
 *
 * Tests that need their own table make one with a random name; the contract's cases write under random
 * users. Every test runs live: the contract runs on the real clock, and so do the timeouts here.
 */
import * as MysqlClient from "@effect/sql-mysql2/MysqlClient"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as SqlClient from "@effect/sql/SqlClient"
import * as Statement from "@effect/sql/Statement"
import { afterAll, describe, expect, it } from "@effect/vitest"
import {
  ConfigError,
  ConfigProvider,
  Context,
  Duration,
  Effect,
  Layer,
  ManagedRuntime,
  Option,
  Redacted,
  Schedule,
  type Scope
} from "effect"
import * as Crypto from "node:crypto"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import * as SessionsConfig from "../../src/layers/Config.js"
import * as Sql from "../../src/layers/Sql.js"
import { encodeEntry, expiredRetention, Store, StoreError } from "../../src/Store.js"
import * as StoreContract from "../../src/testing/StoreContract.js"
import { makeEntry } from "../../src/testing/StoreContract.js"
import { MariadbTest } from "../support/mariadb.js"
import { PostgresTest } from "../support/postgres.js"
import { type Data, sessionsOn } from "../support/redisStore.js"

// -----------------------------------------------------------------------------
// the databases
// -----------------------------------------------------------------------------

/** A SQLite database in a fresh temp file, removed with the layer. */
const sqliteFile: Layer.Layer<SqlClient.SqlClient> = Layer.unwrapScoped(
  Effect.map(
    Effect.acquireRelease(
      Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-sqlite-"))),
      (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
    ),
    (dir) => Layer.orDie(SqliteClient.layer({ filename: Path.join(dir, "sessions.db") }))
  )
)

const sqliteMemory: Layer.Layer<SqlClient.SqlClient> = Layer.orDie(SqliteClient.layer({ filename: ":memory:" }))

/**
 * One server for the whole file, started on first use and stopped after it, and a pool on it (20
 * connections). The MariaDB's contract suite runs in SqlMysql.test.ts.
 */
const serverOf = <I>(
  harness: Layer.Layer<I, unknown>,
  url: (context: Context.Context<I>) => string,
  client: (url: Redacted.Redacted<string>) => Layer.Layer<SqlClient.SqlClient, unknown>
) => {
  const runtime = ManagedRuntime.make(harness)
  afterAll(() => runtime.dispose(), 60_000)
  const layer = Layer.unwrapEffect(Effect.map(runtime.runtimeEffect, (rt) => client(Redacted.make(url(rt.context)))))
  return { runtime, client: layer }
}

const postgres = serverOf(
  PostgresTest.layer,
  (context) => Context.get(context, PostgresTest).url,
  (url) => PgClient.layer({ url, maxConnections: 20 })
)
const postgresClient = postgres.client
const mariadbClient = serverOf(
  MariadbTest.layer,
  (context) => Context.get(context, MariadbTest).url,
  (url) => MysqlClient.layer({ url, maxConnections: 20 })
).client

const databases: ReadonlyArray<readonly [string, Layer.Layer<SqlClient.SqlClient, unknown>]> = [
  ["SQLite (temp file)", sqliteFile],
  ["PostgreSQL", postgresClient],
  ["MariaDB", mariadbClient]
]

const storeOn = (client: Layer.Layer<SqlClient.SqlClient, unknown>, options: Sql.LayerOptions = {}) =>
  Layer.provide(Sql.layer({ migrate: true, ...options }), client)

StoreContract.suite("SQL on SQLite (temp file)", storeOn(sqliteFile))
StoreContract.suite("SQL on SQLite (:memory:)", storeOn(sqliteMemory))
StoreContract.suite("SQL on PostgreSQL", storeOn(postgresClient))

// -----------------------------------------------------------------------------
// what the contract does not cover
// -----------------------------------------------------------------------------

const randomTable = () => `t_${Crypto.randomBytes(6).toString("hex")}`

/** A store on a fresh table of its own, migrated. */
const freshStore = Effect.gen(function*() {
  const table = randomTable()
  yield* Sql.migrate({ table })
  return { table, store: yield* Sql.make({ table }) }
})
const hour = 3_600_000
const data: Data = { csrf: "csrf-token", visits: 3 }

/** Runs `self` with the client (built for the test and released after it). */
const on = (
  client: Layer.Layer<SqlClient.SqlClient, unknown>,
  self: Effect.Effect<void, unknown, SqlClient.SqlClient | Scope.Scope>
) => Effect.scoped(Effect.provide(self, client))

for (const [name, client] of databases) {
  describe(`SQL store on ${name}`, () => {
    it.live("migrate is idempotent, also run concurrently, and keeps what is stored", () =>
      on(
        client,
        Effect.gen(function*() {
          const { store, table } = yield* freshStore
          const key = { user: "u", session: "s" }
          const entry = makeEntry({ expiresAt: Date.now() + hour })
          expect(yield* store.save(key, entry, "create")).toBe(true)
          yield* Effect.all(Array.from({ length: 4 }, () => Sql.migrate({ table })), { concurrency: "unbounded" })
          expect(yield* store.fetch(key)).toEqual(Option.some(entry))
        })
      ), 30_000)

    it.live("migrate creates a fresh table from several instances at once", () =>
      on(
        client,
        Effect.gen(function*() {
          // each migrate on its own connection of the pool, as instances starting together would be; several
          // fresh databases (tables), as a race on the catalog does not lose every time
          for (let round = 0; round < 10; round++) {
            const table = randomTable()
            yield* Effect.all(Array.from({ length: 8 }, () => Sql.migrate({ table })), { concurrency: "unbounded" })
            const store = yield* Sql.make({ table })
            expect(
              yield* store.save({ user: "u", session: "s" }, makeEntry({ expiresAt: Date.now() + hour }), "create")
            ).toBe(true)
          }
        })
      ), 60_000)

    it.live("garbage in the table is no session, and list leaves it out", () =>
      on(
        client,
        Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const { store, table } = yield* freshStore
          const good = makeEntry({ expiresAt: Date.now() + hour })
          const rows = [
            ["junk", "not json"],
            ["shape", "[3,0,1]"],
            ["huge", `[3,0,${Date.now() + hour},0,0,0,0,0,"u","s",null,null,null,"${"x".repeat(70_000)}"]`],
            ["good", encodeEntry(good)]
          ] as const
          for (const [session, entry] of rows) {
            yield* sql`INSERT INTO ${sql(table)} ${
              sql.insert({
                user_key: "u",
                session_key: session,
                version: 0,
                expires_at: Date.now() + hour,
                last_seen_at: 0,
                created_at: 0,
                entry
              })
            }`
          }
          for (const [session] of rows.slice(0, 3)) {
            expect(yield* store.fetch({ user: "u", session })).toEqual(Option.none())
          }
          expect(yield* store.fetch({ user: "u", session: "good" })).toEqual(Option.some(good))
          expect((yield* store.list("u", 0)).map((listed) => listed.key.session)).toEqual(["good"])
          // deleteUser removes the garbage with the rest
          expect(yield* store.deleteUser("u")).toBe(4)
          expect(yield* sql`SELECT session_key FROM ${sql(table)}`).toEqual([])
        })
      ), 30_000)

    it.live("a missing table is a StoreError that says so and how to create it, and never quotes a key", () =>
      on(
        client,
        Effect.gen(function*() {
          const table = randomTable()
          const store = yield* Sql.make({ table })
          const key = { user: "user-part-secret", session: "session-part-secret" }
          const errors = [
            yield* Effect.flip(store.fetch(key)),
            yield* Effect.flip(store.save(key, makeEntry({ expiresAt: Date.now() + hour }), "create")),
            yield* Effect.flip(store.deleteUser(key.user))
          ]
          for (const error of errors) {
            expect(error).toBeInstanceOf(StoreError)
            expect(error.reason).toBe("Schema")
            expect(error.message).toContain(`the table "${table}" does not exist`)
            expect(error.message).toContain("Sql.migrate")
            expect(JSON.stringify(error)).not.toContain("secret")
            expect(Object.keys(error)).not.toContain("cause")
          }
          // and the store works once the table exists, without being made again, on PostgreSQL. On SQLite
          // @effect/sql-sqlite-node caches a statement's failed prepare for its prepareCacheTTL (10 minutes
          // by default), so the same client keeps failing until then: migrate before the first query.
          yield* Sql.migrate({ table })
          const sql = yield* SqlClient.SqlClient
          if (sql.onDialectOrElse({ sqlite: () => false, orElse: () => true })) {
            expect(yield* store.fetch(key)).toEqual(Option.none())
          }
        })
      ), 30_000)

    it.live("an invalid table name is a StoreError, never a query", () =>
      on(
        client,
        Effect.gen(function*() {
          for (const table of ["", "x; DROP TABLE y", "a.b", "1abc", "x".repeat(49)]) {
            const error = yield* Effect.flip(Sql.make({ table }))
            expect(error).toBeInstanceOf(StoreError)
            expect(error.message).toContain("plain identifier")
          }
        })
      ), 30_000)

    it.live("an entry past its expiry and the retention is no session, though the row is still there", () =>
      on(
        client,
        Effect.gen(function*() {
          const { store, table } = yield* freshStore
          const retention = Duration.toMillis(expiredRetention)
          const key = { user: "u", session: "s" }
          const entry = makeEntry({ expiresAt: Date.now() - retention + 300 })
          expect(yield* store.save(key, entry, "create")).toBe(true)
          expect(yield* store.fetch(key)).toEqual(Option.some(entry))
          yield* Effect.sleep("400 millis")
          expect(yield* store.fetch(key)).toEqual(Option.none())
          const sql = yield* SqlClient.SqlClient
          expect(yield* sql`SELECT session_key FROM ${sql(table)}`).toHaveLength(1)
        })
      ), 30_000)

    it.live("the Sessions service end to end: issue, get, rotate, list and clearAll", () =>
      Effect.gen(function*() {
        const sessions = yield* sessionsOn(storeOn(client, { table: randomTable() }), "1 hour")
        const { session, token } = yield* sessions.issue("alice", data)
        const got = yield* sessions.get(token)
        expect(got.userId).toBe("alice")
        expect(got.data).toEqual(data)
        const rotated = yield* sessions.rotate(got)
        expect(rotated.token).not.toBe(token)
        expect((yield* sessions.get(rotated.token)).data).toEqual(data)
        expect((yield* Effect.flip(sessions.get(token)))._tag).toBe("NotFound")
        const other = yield* sessions.issue("alice", { csrf: "other", visits: 1 })
        expect((yield* sessions.list("alice")).map((listed) => listed.key.session).sort()).toEqual(
          [session.key.session, other.session.key.session].sort()
        )
        expect(yield* sessions.clearAll("alice")).toBe(2)
        expect((yield* Effect.flip(sessions.get(rotated.token)))._tag).toBe("NotFound")
        expect((yield* Effect.flip(sessions.get(other.token)))._tag).toBe("NotFound")
        expect(yield* sessions.list("alice")).toEqual([])
      }).pipe(Effect.scoped), 30_000)
  })
}

// -----------------------------------------------------------------------------
// the README's table is what migrate runs
// -----------------------------------------------------------------------------

/** The README's ```sql block that starts with `-- <dialect>`, as its statements. */
const readmeStatements = (dialect: string): ReadonlyArray<string> => {
  const readme = Fs.readFileSync(Path.join(import.meta.dirname, "../../README.md"), "utf8")
  const block = readme.split("```sql\n").slice(1).map((rest) => rest.slice(0, rest.indexOf("```")))
    .find((block) => block.startsWith(`-- ${dialect}\n`))
  expect(block, `README: a sql block starting with -- ${dialect}`).toBeDefined()
  return block!.split("\n").filter((line) => !line.startsWith("--")).join("\n").split(";").map(normalise)
    .filter((statement) => statement !== "")
}

/** Whitespace collapsed, identifier quotes dropped: the README shows the statements unquoted. */
const normalise = (statement: string) => statement.replace(/["`]/g, "").replace(/\s+/g, " ").trim()

const dialects = ["SQLite", "PostgreSQL", "MySQL/MariaDB"] as const

describe("README: the table per dialect", () => {
  databases.forEach(([name, client], i) => {
    it.live(`is what migrate executes on ${name}`, () =>
      on(
        client,
        Effect.gen(function*() {
          const executed: Array<string> = []
          yield* Sql.migrate().pipe(
            Statement.withTransformer((statement) =>
              Effect.sync(() => {
                const [text] = statement.compile()
                if (/^CREATE /.test(text)) executed.push(normalise(text))
                return statement
              })
            )
          )
          expect(executed).toEqual(readmeStatements(dialects[i]!))
        })
      ), 30_000)
  })
})

// -----------------------------------------------------------------------------
// pruning
// -----------------------------------------------------------------------------

/**
 * Inserts `count` rows of user `dead<i>` that expired at `expiresAt`: one statement on PostgreSQL and
 * SQLite; on MySQL multi-row INSERTs of 2000 (MySQL 8 caps a recursive CTE at 1000 iterations, and `||` is
 * OR there).
 */
const insertDead = (table: string, count: number, expiresAt: number) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const columns = sql.literal("(user_key, session_key, version, expires_at, last_seen_at, created_at, entry)")
    yield* sql.onDialectOrElse({
      pg: () =>
        sql`INSERT INTO ${
          sql(table)
        } ${columns} SELECT 'dead' || i, 's', 0, ${expiresAt}, 0, 0, 'x' FROM generate_series(1, ${count}) AS i`,
      mysql: () =>
        Effect.forEach(Array.from({ length: Math.ceil(count / 2_000) }, (_, chunk) => chunk), (chunk) =>
          sql`INSERT INTO ${sql(table)} ${
            sql.insert(
              Array.from({ length: Math.min(2_000, count - chunk * 2_000) }, (_, i) => ({
                user_key: `dead${chunk * 2_000 + i + 1}`,
                session_key: "s",
                version: 0,
                expires_at: expiresAt,
                last_seen_at: 0,
                created_at: 0,
                entry: "x"
              }))
            )
          }`, { discard: true }),
      orElse: () =>
        sql`WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ${count}) INSERT INTO ${
          sql(table)
        } ${columns} SELECT 'dead' || i, 's', 0, ${expiresAt}, 0, 0, 'x' FROM c`
    })
  })

const rowCount = (table: string) =>
  Effect.flatMap(
    SqlClient.SqlClient,
    (sql) =>
      Effect.map(sql<{ readonly n: unknown }>`SELECT COUNT(*) AS n FROM ${sql(table)}`, (rows) => Number(rows[0]!.n))
  )

for (const [name, client] of databases) {
  describe(`SQL store on ${name}: pruning`, () => {
    it.live("prune deletes only the rows dead for longer than the retention, in bounded batches", () =>
      on(
        client,
        Effect.gen(function*() {
          const { store, table } = yield* freshStore
          const retention = Duration.toMillis(expiredRetention)
          yield* insertDead(table, 25, Date.now() - retention - 1_000)
          const recent = { user: "u", session: "recent" }
          const recentEntry = makeEntry({ expiresAt: Date.now() - 1_000 })
          const live = { user: "u", session: "live" }
          const liveEntry = makeEntry({ expiresAt: Date.now() + hour })
          yield* store.save(recent, recentEntry, "create")
          yield* store.save(live, liveEntry, "create")
          expect(yield* Sql.prune({ table, batchSize: 10 })).toBe(25)
          expect(yield* rowCount(table)).toBe(2)
          // an entry within the retention is still answered (the service says Expired), a live one too
          expect(yield* store.fetch(recent)).toEqual(Option.some(recentEntry))
          expect(yield* store.fetch(live)).toEqual(Option.some(liveEntry))
          expect(yield* Sql.prune({ table, batchSize: 10 })).toBe(0)
        })
      ), 30_000)

    it.live("reads and writes are served throughout while 100k dead rows are pruned", () =>
      on(
        client,
        Effect.gen(function*() {
          const { store, table } = yield* freshStore
          const total = 100_000
          yield* insertDead(table, total, 1_000)
          const live = { user: "live", session: "s" }
          let entry = makeEntry({ expiresAt: Date.now() + hour })
          yield* store.save(live, entry, "create")

          let pruning = true
          const latencies: Array<number> = []
          const load = Effect.gen(function*() {
            let i = 0
            while (pruning) {
              const started = performance.now()
              expect(yield* store.fetch(live)).toEqual(Option.some(entry))
              const next = StoreContract.nextVersion(entry, { lastSeenAt: entry.lastSeenAt + 1 })
              expect(yield* store.save(live, next, "update")).toBe(true)
              entry = next
              expect(
                yield* store.save(
                  { user: "live", session: `new${i++}` },
                  makeEntry({ expiresAt: Date.now() + hour }),
                  "create"
                )
              )
                .toBe(true)
              latencies.push(performance.now() - started)
            }
          })
          const started = performance.now()
          const [deleted] = yield* Effect.all([
            Effect.ensuring(
              Sql.prune({ table, batchSize: 1_000 }),
              Effect.sync(() => {
                pruning = false
              })
            ),
            load
          ], { concurrency: "unbounded" })
          const elapsed = performance.now() - started
          expect(deleted).toBe(total)
          expect(yield* rowCount(table)).toBe(1 + latencies.length)
          // served throughout: many rounds while pruning (a single DELETE of 100k rows would hold SQLite's
          // writer for its whole duration), none of them waiting long
          expect(latencies.length).toBeGreaterThan(20)
          expect(Math.max(...latencies)).toBeLessThan(Math.max(500, elapsed / 4))
          console.log(
            `${name}: pruned ${total} rows in ${
              Math.round(elapsed)
            } ms; ${latencies.length} rounds of fetch+update+create ` +
              `meanwhile, the slowest ${Math.round(Math.max(...latencies))} ms`
          )
        })
      ), 120_000)

    it.live(
      "the layer prunes in the background on its schedule, and not at all with prune: false",
      () =>
        Effect.gen(function*() {
          const table = randomTable()
          // one client (one SQLite file) under both stores
          const database = yield* Layer.build(client)
          const layerOn = (prune: Sql.LayerOptions["prune"]) =>
            Layer.build(Layer.provide(Sql.layer({ table, migrate: true, prune }), Layer.succeedContext(database)))
          yield* layerOn(false)
          yield* Effect.provide(insertDead(table, 50, 1_000), database)
          yield* Effect.sleep("500 millis")
          expect(yield* Effect.provide(rowCount(table), database)).toBe(50)
          yield* layerOn({ interval: "100 millis", batchSize: 7 })
          const left = yield* Effect.provide(rowCount(table), database).pipe(
            Effect.filterOrFail((n) => n === 0),
            Effect.retry(Schedule.spaced("50 millis")),
            Effect.timeout("10 seconds")
          )
          expect(left).toBe(0)
        }).pipe(Effect.scoped),
      30_000
    )
  })
}

/** Forks a transaction on a connection of its own that takes a lock by `take`, then runs `hold`; answers once
 * the lock is held. */
const holding = (take: Effect.Effect<unknown, unknown>, hold: Effect.Effect<unknown, unknown>) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const held = yield* Effect.makeLatch(false)
    yield* Effect.forkScoped(sql.withTransaction(Effect.zipRight(Effect.zipRight(take, held.open), hold)))
    yield* held.await
  })

describe("SQL store on PostgreSQL: a hung database", () => {
  it.live("an operation behind a held lock fails with a Timeout StoreError within the query timeout", () =>
    on(
      postgresClient,
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const table = randomTable()
        yield* Sql.migrate({ table })
        const store = yield* Sql.make({ table, queryTimeout: "300 millis" })
        // another connection holds the table exclusively for 3 seconds
        yield* holding(sql`LOCK TABLE ${sql(table)} IN ACCESS EXCLUSIVE MODE`, Effect.sleep("3 seconds"))
        const started = Date.now()
        const error = yield* Effect.flip(store.fetch({ user: "u", session: "s" }))
        expect(error.reason).toBe("Timeout")
        expect(Date.now() - started).toBeLessThan(1_500)
      })
    ), 30_000)
})

describe("SQL store on MariaDB: migrate's lock", () => {
  it.live("migrate waits for the named lock another instance holds, and runs once it is released", () => {
    const table = randomTable()
    const lock = `effect-sessions:${table}`
    return on(
      mariadbClient,
      Effect.gen(function*() {
        const release = yield* Effect.makeLatch(false)
        const sql = yield* SqlClient.SqlClient
        // another instance, mid-migration: it holds the lock on a connection of its own
        yield* holding(
          sql`SELECT GET_LOCK(${lock}, 5)`,
          Effect.zipRight(release.await, sql`SELECT RELEASE_LOCK(${lock})`)
        )
        const error = yield* Effect.flip(Sql.migrate({ table, queryTimeout: "500 millis" }))
        expect(error.reason).toBe("Timeout")
        expect(
          yield* sql`SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = ${table}`
        ).toEqual([])
        yield* release.open
        yield* Sql.migrate({ table })
        expect(yield* rowCount(table)).toBe(0)
      })
    )
  }, 30_000)
})

// -----------------------------------------------------------------------------
// layerConfig, and the whole-stack layer's pick
// -----------------------------------------------------------------------------

const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

/** Saves and fetches one session on the `Store` in context. */
const roundTrip = Effect.gen(function*() {
  const store = yield* Store
  const key = { user: `u${Crypto.randomBytes(8).toString("hex")}`, session: "s" }
  const entry = makeEntry({ expiresAt: Date.now() + hour })
  expect(yield* store.save(key, entry, "create")).toBe(true)
  expect(yield* store.fetch(key)).toEqual(Option.some(entry))
})

describe("SQL store: layerConfig", () => {
  it.live(
    "DATABASE_URL=sqlite:<path> opens that file, and SESSION_SQL_MIGRATE creates the table",
    () =>
      Effect.gen(function*() {
        const dir = yield* Effect.acquireRelease(
          Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-sqlite-"))),
          (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
        )
        const file = Path.join(dir, "config.db")
        yield* Effect.scoped(Effect.provide(roundTrip, Sql.layerConfig())).pipe(
          withEnv([["DATABASE_URL", `sqlite:${file}`], ["SESSION_SQL_MIGRATE", "true"], ["SESSION_SQL_TABLE", "mine"]])
        )
        expect(Fs.existsSync(file)).toBe(true)
      }).pipe(Effect.scoped),
    30_000
  )

  it.live("DATABASE_URL=postgres://… opens its own pool on PostgreSQL", () =>
    Effect.gen(function*() {
      const { url } = yield* PostgresTest
      yield* Effect.scoped(Effect.provide(roundTrip, Sql.layerConfig())).pipe(
        withEnv([["DATABASE_URL", url], ["SESSION_SQL_MIGRATE", "true"]])
      )
    }).pipe(Effect.provide(postgres.runtime)), 30_000)

  it.live(
    "an unreachable database fails the layer with an Unavailable StoreError that never repeats the URL",
    () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Effect.scoped(Effect.provide(roundTrip, Sql.layerConfig())).pipe(
            withEnv([["DATABASE_URL", "postgres://user:hunter2@127.0.0.1:1/db"]])
          )
        )
        expect(error).toBeInstanceOf(StoreError)
        expect((error as StoreError).reason).toBe("Unavailable")
        expect(JSON.stringify(error)).not.toContain("hunter2")
      }),
    30_000
  )

  it.live(
    "a role the database refuses fails the layer with an Authentication StoreError",
    () =>
      Effect.gen(function*() {
        const { url } = yield* PostgresTest
        const error = yield* Effect.flip(
          Effect.scoped(Effect.provide(roundTrip, Sql.layerConfig())).pipe(
            withEnv([["DATABASE_URL", url.replace("://postgres@", "://nobody-secret@")]])
          )
        )
        expect(error).toBeInstanceOf(StoreError)
        expect((error as StoreError).reason).toBe("Authentication")
        expect(JSON.stringify(error)).not.toContain("secret")
      }).pipe(Effect.provide(postgres.runtime)),
    30_000
  )

  it.live(
    "a malformed DATABASE_URL is a ConfigError naming the variable, never repeating the value",
    () =>
      Effect.gen(function*() {
        for (const url of ["redis://secret-host", "postgres:/x", "nonsense-secret"]) {
          const error = yield* Effect.flip(
            Effect.scoped(Effect.provide(roundTrip, Sql.layerConfig())).pipe(withEnv([["DATABASE_URL", url]]))
          )
          expect(ConfigError.isConfigError(error)).toBe(true)
          expect(String(error)).toContain("DATABASE_URL")
          expect(String(error)).not.toContain("secret")
        }
      }),
    30_000
  )

  it.live("the whole-stack layerStore picks the SQL store when DATABASE_URL is set", () =>
    Effect.gen(function*() {
      const dir = yield* Effect.acquireRelease(
        Effect.sync(() => Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-sessions-sqlite-"))),
        (dir) => Effect.sync(() => Fs.rmSync(dir, { recursive: true, force: true }))
      )
      const file = Path.join(dir, "stack.db")
      yield* Effect.scoped(Effect.provide(roundTrip, SessionsConfig.layerStore)).pipe(
        withEnv([["DATABASE_URL", `sqlite:${file}`], ["SESSION_SQL_MIGRATE", "true"]])
      )
      expect(Fs.existsSync(file)).toBe(true)
    }).pipe(Effect.scoped), 30_000)
})
