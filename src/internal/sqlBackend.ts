/**
 * The SQL store's statements, per dialect, as a `Store.StringBackend`: `Store.makeStringOnly` derives the
 * rest (the codec, garbage as no session, the reuse of an unchanged entry, expiry by Effect's `Clock`).
 *
 * One row per session, keyed by `(user_key, session_key)`: a user's sessions are the primary key's prefix,
 * so every per-user statement is an index range. The numbers a statement compares (`version`,
 * `expires_at`, `last_seen_at`, `created_at`) are columns beside the encoded entry.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type { Cap, Entry, Key, StoreError, StringBackend } from "../Store.js"
import { classify, type Failure, isDuplicateKey, isRetryable } from "./sqlErrors.js"

/** What the statements share. */
export interface Statements {
  readonly sql: SqlClient.SqlClient
  readonly table: string
  /** How long one operation may take before it fails with a `"Timeout"` `StoreError`. */
  readonly timeoutMillis: number
  /** Makes the `StoreError` of a failure. */
  readonly error: (failure: Failure) => StoreError
}

/** The names a table name may take: a plain identifier, so that it needs no quoting rules of its own. */
export const validTable = /^[A-Za-z_][A-Za-z0-9_]{0,47}$/

/** Runs `effect` (one operation's statements) bounded by the timeout, its failures as `StoreError`s. */
export const run = <A>(
  statements: Statements,
  operation: string,
  effect: Effect.Effect<A, SqlError>
): Effect.Effect<A, StoreError> =>
  effect.pipe(
    Effect.mapError((cause) => statements.error(classify(operation, statements.table, cause))),
    Effect.timeoutFail({
      duration: statements.timeoutMillis,
      onTimeout: () =>
        statements.error({
          reason: "Timeout",
          message: `SQL store ${operation} did not answer within ${statements.timeoutMillis} ms`
        })
    })
  )

/** The backend on `statements.sql`. */
export const makeBackend = (statements: Statements): StringBackend => {
  const { sql } = statements
  const table = sql(statements.table)
  return {
    fetch: (key, decode) =>
      run(
        statements,
        "fetch",
        Effect.map(
          sql<
            { readonly entry: string }
          >`SELECT entry FROM ${table} WHERE user_key = ${key.user} AND session_key = ${key.session}`,
          (rows) => decode(typeof rows[0]?.entry === "string" ? rows[0].entry : undefined)
        )
      ),
    save: (key, value, entry, mode, cap) =>
      run(
        statements,
        "save",
        mode === "update"
          ? update(statements, key, value, entry)
          : cap === undefined
          ? insert(statements, key, value, entry)
          : transaction(statements, createCapped(statements, key, value, entry, cap))
      ),
    delete: (key) =>
      run(
        statements,
        "delete",
        sql`DELETE FROM ${table} WHERE user_key = ${key.user} AND session_key = ${key.session}`
      ),
    list: (user) =>
      run(
        statements,
        "list",
        Effect.map(
          sql<
            { readonly session_key: string; readonly entry: string }
          >`SELECT session_key, entry FROM ${table} WHERE user_key = ${user}`,
          (rows) => rows.map((row) => [String(row.session_key), String(row.entry)] as const)
        )
      ),
    deleteUser: (user, except) => run(statements, "deleteUser", deleteUser(statements, user, except))
  }
}

/** How many rows a write changed: its `RETURNING` rows (PostgreSQL, SQLite), its affected rows (MySQL). */
const changed = (
  sql: SqlClient.SqlClient,
  statement: (returning: boolean) => Effect.Effect<unknown, SqlError>
): Effect.Effect<number, SqlError> =>
  sql.onDialectOrElse({
    mysql: () =>
      Effect.map(
        statement(false),
        (result) => Number((result as { readonly affectedRows?: unknown }).affectedRows ?? 0)
      ),
    orElse: () => Effect.map(statement(true), (rows) => (rows as ReadonlyArray<unknown>).length)
  })

const update = (statements: Statements, key: Key, value: string, entry: Entry) => {
  const { sql } = statements
  return Effect.map(
    changed(sql, (returning) => {
      const statement = sql`UPDATE ${
        sql(statements.table)
      } SET version = ${entry.version}, expires_at = ${entry.expiresAt}, last_seen_at = ${entry.lastSeenAt}, created_at = ${entry.createdAt}, entry = ${value} WHERE user_key = ${key.user} AND session_key = ${key.session} AND version = ${
        entry.version - 1
      }${sql.literal(returning ? " RETURNING session_key" : "")}`
      return returning ? statement : statement.raw
    }),
    (rows) => rows > 0
  )
}

/** Inserts the row if its key is absent; answers whether it did. */
const insert = (statements: Statements, key: Key, value: string, entry: Entry) => {
  const { sql } = statements
  const row = {
    user_key: key.user,
    session_key: key.session,
    version: entry.version,
    expires_at: entry.expiresAt,
    last_seen_at: entry.lastSeenAt,
    created_at: entry.createdAt,
    entry: value
  }
  return sql.onDialectOrElse({
    // MySQL's upserts answer affected rows that depend on the connection's flags: a plain INSERT whose
    // duplicate key is the answer "absent: no"
    mysql: () =>
      sql`INSERT INTO ${sql(statements.table)} ${sql.insert(row)}`.raw.pipe(
        Effect.as(true),
        Effect.catchIf((error) => isDuplicateKey(error), () => Effect.succeed(false))
      ),
    orElse: () =>
      Effect.map(
        sql`INSERT INTO ${sql(statements.table)} ${sql.insert(row)} ON CONFLICT DO NOTHING RETURNING session_key`,
        (rows) => rows.length > 0
      )
  })
}

/** Runs a transaction again when the database rolled it back for a deadlock (InnoDB's gap locks). */
export const transaction = <A>(
  statements: Statements,
  effect: Effect.Effect<A, SqlError>
): Effect.Effect<A, SqlError> =>
  Effect.retry(statements.sql.withTransaction(effect), {
    while: isRetryable,
    times: 10,
    schedule: Schedule.jittered(Schedule.exponential("2 millis"))
  })

/**
 * Takes the user's lock for the rest of the transaction, so that capped creates of one user run one after
 * the other (two at once would each count without the other's row and together overshoot the cap).
 * PostgreSQL: a transaction-scoped advisory lock on (the table, the user). MySQL: the user's rows and the
 * gap after them, `FOR UPDATE`. SQLite serialises every write transaction: nothing to take.
 */
const lockUser = (statements: Statements, user: string): Effect.Effect<unknown, SqlError> => {
  const { sql } = statements
  return sql.onDialectOrElse({
    pg: () => sql`SELECT pg_advisory_xact_lock(hashtext(${`effect-sessions:${statements.table}`}), hashtext(${user}))`,
    mysql: () => sql`SELECT session_key FROM ${sql(statements.table)} WHERE user_key = ${user} FOR UPDATE`,
    orElse: () => Effect.void
  })
}

/**
 * A create under the user's cap, in one transaction: insert if absent, then delete the user's live
 * sessions (`expires_at > cap.now`) but the `cap.maxPerUser - 1` most recently seen (`last_seen_at`, then
 * `created_at`, then the key), as the Redis store's script does.
 */
const createCapped = (statements: Statements, key: Key, value: string, entry: Entry, cap: Cap) =>
  Effect.gen(function*() {
    const { sql } = statements
    const table = sql(statements.table)
    yield* lockUser(statements, key.user)
    if (!(yield* insert(statements, key, value, entry))) return false
    const keep = Math.max(1, Math.floor(cap.maxPerUser)) - 1
    const others = yield* sql<
      { readonly session_key: string }
    >`SELECT session_key FROM ${table} WHERE user_key = ${key.user} AND session_key <> ${key.session} AND expires_at > ${cap.now} ORDER BY last_seen_at DESC, created_at DESC, session_key DESC`
    const evicted = others.slice(keep).map((row) => String(row.session_key))
    if (evicted.length > 0) {
      yield* sql`DELETE FROM ${table} WHERE user_key = ${key.user} AND ${sql.in("session_key", evicted)}`
    }
    return true
  })

/**
 * Deletes the user's rows (but `except`) in one statement, answering how many were live by Effect's
 * `Clock`. One `DELETE` is atomic with respect to every `save`: it sees every row committed before it
 * started, and an update racing it waits for its row lock and then finds the row gone. MySQL has no
 * `DELETE … RETURNING`: it counts the rows `FOR UPDATE` in the same transaction first.
 */
const deleteUser = (statements: Statements, user: string, except: string | undefined) =>
  Effect.gen(function*() {
    const { sql } = statements
    const table = sql(statements.table)
    const now = yield* Clock.currentTimeMillis
    const which = except === undefined
      ? sql`user_key = ${user}`
      : sql`user_key = ${user} AND session_key <> ${except}`
    return yield* sql.onDialectOrElse({
      mysql: () =>
        transaction(
          statements,
          Effect.gen(function*() {
            const live = yield* sql<
              { readonly live: unknown }
            >`SELECT COUNT(CASE WHEN expires_at > ${now} THEN 1 END) AS live FROM ${table} WHERE ${which} FOR UPDATE`
            yield* sql`DELETE FROM ${table} WHERE ${which}`
            return Number(live[0]?.live ?? 0)
          })
        ),
      orElse: () =>
        Effect.map(
          sql<{ readonly expires_at: unknown }>`DELETE FROM ${table} WHERE ${which} RETURNING expires_at`,
          (rows) => rows.reduce<number>((live, row) => Number(row.expires_at) > now ? live + 1 : live, 0)
        )
    })
  })

/**
 * Creates the table and its expiry index if they do not exist, under a lock named after the table, so
 * that instances starting at once run it one after the other: on PostgreSQL an advisory lock for the
 * transaction (`CREATE … IF NOT EXISTS` alone can fail there with a duplicate key in the catalog, 23505);
 * on MySQL a `GET_LOCK` (InnoDB's metadata locks already serialise one `CREATE TABLE IF NOT EXISTS`; the
 * lock keeps a migration of several statements safe too). SQLite serialises writers.
 */
export const migrate = (statements: Statements): Effect.Effect<void, StoreError> => {
  const { sql } = statements
  const table = sql(statements.table)
  const index = sql(`${statements.table}_expires_at`)
  return run(
    statements,
    "migrate",
    Effect.asVoid(sql.onDialectOrElse<
      Effect.Effect<unknown, SqlError>,
      Effect.Effect<unknown, SqlError>,
      Effect.Effect<unknown, SqlError>,
      Effect.Effect<unknown, SqlError>
    >({
      pg: () =>
        sql.withTransaction(Effect.gen(function*() {
          yield* sql`SELECT pg_advisory_xact_lock(hashtext(${`effect-sessions:${statements.table}`}), 0)`
          yield* sql`CREATE TABLE IF NOT EXISTS ${table} (
  user_key TEXT NOT NULL,
  session_key TEXT NOT NULL,
  version BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  entry TEXT NOT NULL,
  PRIMARY KEY (user_key, session_key)
)`
          yield* sql`CREATE INDEX IF NOT EXISTS ${index} ON ${table} (expires_at)`
        })),
      mysql: () =>
        withNamedLock(
          statements,
          sql`CREATE TABLE IF NOT EXISTS ${table} (
  user_key VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  session_key VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  version BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  last_seen_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  entry MEDIUMTEXT CHARACTER SET utf8mb4 NOT NULL,
  PRIMARY KEY (user_key, session_key),
  KEY ${index} (expires_at)
) ENGINE = InnoDB`
        ),
      orElse: () =>
        Effect.zipRight(
          sql`CREATE TABLE IF NOT EXISTS ${table} (
  user_key TEXT NOT NULL,
  session_key TEXT NOT NULL,
  version INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  entry TEXT NOT NULL,
  PRIMARY KEY (user_key, session_key)
) WITHOUT ROWID`,
          sql`CREATE INDEX IF NOT EXISTS ${index} ON ${table} (expires_at)`
        )
    }))
  )
}

/**
 * Runs `effect` holding MySQL's named lock `effect-sessions:<table>` (at most 64 characters: the table
 * name has at most 48), on one connection (a transaction reserves it; DDL commits implicitly, the lock is
 * the session's and outlives that), released after it. The wait for the lock gives up a little before the
 * operation's timeout, so that a lock is never granted to a connection whose operation was abandoned.
 */
const withNamedLock = <A>(statements: Statements, effect: Effect.Effect<A, SqlError>): Effect.Effect<A, SqlError> => {
  const { sql } = statements
  const name = `effect-sessions:${statements.table}`
  const wait = Math.max(0.1, (statements.timeoutMillis * 0.8) / 1_000)
  return sql.withTransaction(
    Effect.acquireUseRelease(
      sql<{ readonly locked: unknown }>`SELECT GET_LOCK(${name}, ${wait}) AS locked`,
      // GET_LOCK answers 0 when the wait ran out: the operation's timeout answers that shortly after
      (rows) => Number(rows[0]?.locked) === 1 ? effect : Effect.never,
      () => Effect.ignore(sql`SELECT RELEASE_LOCK(${name})`)
    )
  )
}

/**
 * Deletes up to `limit` rows dead for longer than the retention (`expires_at <= cutoff`), by the expiry
 * index, in one statement; answers how many it deleted. PostgreSQL skips rows another transaction holds
 * (`SKIP LOCKED`), so a prune never waits behind a session's write.
 */
export const pruneBatch = (statements: Statements, cutoff: number, limit: number): Effect.Effect<number, SqlError> => {
  const { sql } = statements
  const table = sql(statements.table)
  return sql.onDialectOrElse({
    pg: () =>
      Effect.map(
        sql`DELETE FROM ${table} WHERE (user_key, session_key) IN (SELECT user_key, session_key FROM ${table} WHERE expires_at <= ${cutoff} ORDER BY expires_at LIMIT ${limit} FOR UPDATE SKIP LOCKED) RETURNING 1 AS one`,
        (rows) => rows.length
      ),
    mysql: () =>
      Effect.map(
        sql`DELETE FROM ${table} WHERE expires_at <= ${cutoff} ORDER BY expires_at LIMIT ${limit}`.raw,
        (result) => Number((result as { readonly affectedRows?: unknown }).affectedRows ?? 0)
      ),
    orElse: () =>
      Effect.map(
        sql`DELETE FROM ${table} WHERE (user_key, session_key) IN (SELECT user_key, session_key FROM ${table} WHERE expires_at <= ${cutoff} ORDER BY expires_at LIMIT ${limit}) RETURNING 1 AS one`,
        (rows) => rows.length
      )
  })
}

/**
 * One pruning pass: batches of at most `batchSize` rows until a batch finds fewer, each batch its own
 * statement (bounded, never one unbounded `DELETE`), yielding between them so that the store's other
 * operations are served throughout. Answers how many rows it deleted.
 */
export const prune = (
  statements: Statements,
  retention: number,
  batchSize: number
): Effect.Effect<number, StoreError> =>
  Effect.gen(function*() {
    const cutoff = (yield* Clock.currentTimeMillis) - retention
    let total = 0
    for (;;) {
      const deleted = yield* run(statements, "prune", pruneBatch(statements, cutoff, batchSize))
      total += deleted
      if (deleted < batchSize) return total
      yield* Effect.yieldNow()
    }
  })
