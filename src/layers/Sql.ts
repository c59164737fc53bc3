/**
 * The SQL store, on `@effect/sql` (0.52, the Effect 3 line): PostgreSQL, SQLite and MySQL/MariaDB, on
 * the `SqlClient` the application already has (`@effect/sql-pg`, `@effect/sql-sqlite-node`,
 * `@effect/sql-mysql2`). It keeps the guarantees of the Redis store: compare-and-set updates, creates
 * that never overwrite, the per-user cap in the create's own transaction, and a `deleteUser` that no
 * session saved before it survives.
 *
 * One table (default `effect_sessions`), one row per session:
 *
 * ```sql
 * -- PostgreSQL (SQLite: INTEGER for BIGINT, and WITHOUT ROWID)
 * CREATE TABLE IF NOT EXISTS effect_sessions (
 *   user_key TEXT NOT NULL,
 *   session_key TEXT NOT NULL,
 *   version BIGINT NOT NULL,
 *   expires_at BIGINT NOT NULL,
 *   last_seen_at BIGINT NOT NULL,
 *   created_at BIGINT NOT NULL,
 *   entry TEXT NOT NULL,
 *   PRIMARY KEY (user_key, session_key)
 * );
 * CREATE INDEX IF NOT EXISTS effect_sessions_expires_at ON effect_sessions (expires_at);
 * -- MySQL/MariaDB: the keys VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin (case-sensitive),
 * -- entry MEDIUMTEXT, the index inside the CREATE TABLE, ENGINE = InnoDB
 * ```
 *
 * - The keys are the `Sessions` service's opaque key parts; a user's sessions are the primary key's
 *   prefix, so every per-user statement is an index range. `entry` is `Store.encodeEntry`'s text; the
 *   numbers statements compare are columns beside it. Times are epoch milliseconds from Effect's `Clock`,
 *   never the database's.
 * - `fetch` is one `SELECT` by primary key; `update` one `UPDATE … WHERE version = ?`; a create one
 *   `INSERT` if absent, and with a cap a transaction that takes the user's lock (an advisory lock on
 *   PostgreSQL, the user's rows `FOR UPDATE` on MySQL; SQLite serialises writers), inserts, and deletes
 *   the least recently seen live sessions over the cap; `deleteUser` one `DELETE` of the user's range.
 * - Rows dead for longer than `Store.expiredRetention` are pruned in the background in bounded batches
 *   by the expiry index (every minute, 1000 rows a statement; see {@link PruneOptions}); `fetch` never
 *   answers them meanwhile.
 * - `migrate` creates the table and index if they are missing: run it at start, or pass `migrate: true`
 *   to {@link layer}, or run the SQL above in your own migrations. Migrate before the store's first
 *   query on SQLite: `@effect/sql-sqlite-node` caches a failed prepare (a missing table) for its
 *   `prepareCacheTTL`, 10 minutes by default, so a client that queried too early keeps failing until then.
 *
 * Failures map to `StoreError` (a missing table says so, and how to create it); its message keeps the
 * driver error's class and code, never its text (which can quote a row). Every operation is bounded by
 * `queryTimeout`.
 *
 * @since 0.1.0
 * @module
 */
import * as SqlClient from "@effect/sql/SqlClient"
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import {
  makeBackend,
  migrate as migrateTable,
  prune as pruneRows,
  type Statements,
  validTable
} from "../internal/sqlBackend.js"
import { clientLayer, parse } from "../internal/sqlConfig.js"
import type { Failure } from "../internal/sqlErrors.js"
import { expiredRetention, makeStringOnly, Store, StoreError, type StoreService } from "../Store.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** The table: a plain identifier (letters, digits, `_`; at most 48). Default `effect_sessions`. */
  readonly table?: string | undefined
  /**
   * How long one operation (its statements, a transaction's wait for its lock included) may take before
   * it fails with a `"Timeout"` `StoreError`. Default 2 seconds.
   */
  readonly queryTimeout?: Duration.DurationInput | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface LayerOptions extends Options {
  /** Run {@link migrate} when the layer is built. Default `false`: the schema is the application's. */
  readonly migrate?: boolean | undefined
  /**
   * Prune the rows dead for longer than `Store.expiredRetention` every `interval`, in batches of
   * `batchSize` (see {@link prune}). Default: every minute, 1000 rows a batch; `false` turns it off (run
   * {@link prune} on your own schedule, or not at all: dead rows are never answered).
   */
  readonly prune?: PruneOptions | false | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PruneOptions {
  /** Between the end of one pass and the start of the next. Default 1 minute. */
  readonly interval?: Duration.DurationInput | undefined
  /** The most rows one statement deletes. Default 1000. */
  readonly batchSize?: number | undefined
}

/**
 * What {@link layerConfig} reads.
 *
 * @since 0.1.0
 * @category models
 */
export interface ConfigOptions extends LayerOptions {
  /**
   * `postgres://…` / `postgresql://…` (`@effect/sql-pg`), `mysql://…` / `mariadb://…`
   * (`@effect/sql-mysql2`), or `sqlite:<path>` (`@effect/sql-sqlite-node`; `sqlite::memory:` in memory).
   */
  readonly url: Redacted.Redacted<string>
}

// -----------------------------------------------------------------------------
// constants
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultTable = "effect_sessions"

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultPruneInterval: Duration.Duration = Duration.minutes(1)

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultPruneBatchSize = 1_000

/**
 * @since 0.1.0
 * @category constants
 */
export const defaultQueryTimeout: Duration.Duration = Duration.seconds(2)

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * The store on the `SqlClient` in context. It fails only on an invalid table name.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<StoreService, StoreError, SqlClient.SqlClient> =>
  Effect.map(statementsOf(options), (statements) => makeStringOnly(makeBackend(statements)))

/**
 * Creates the store's table and its expiry index if they do not exist, on the `SqlClient` in context.
 * Safe to run at every start, and from several instances at once.
 *
 * @since 0.1.0
 * @category constructors
 */
export const migrate = (options: Options = {}): Effect.Effect<void, StoreError, SqlClient.SqlClient> =>
  Effect.flatMap(statementsOf(options), migrateTable)

/**
 * One pruning pass: deletes the rows dead for longer than `Store.expiredRetention` by Effect's `Clock`,
 * by the expiry index, in statements of at most `batchSize` rows (default 1000) until one finds fewer,
 * never one unbounded `DELETE`; the store's operations are served between the batches. Answers how many
 * rows it deleted. Each batch is bounded by the query timeout.
 *
 * @since 0.1.0
 * @category constructors
 */
export const prune = (
  options: Options & { readonly batchSize?: number | undefined } = {}
): Effect.Effect<number, StoreError, SqlClient.SqlClient> =>
  Effect.flatMap(
    statementsOf(options),
    (statements) =>
      pruneRows(
        statements,
        Duration.toMillis(expiredRetention),
        Math.max(1, Math.floor(options.batchSize ?? defaultPruneBatchSize))
      )
  )

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * The store on the `SqlClient` the application provides (and keeps owning), migrated first when
 * `options.migrate` is `true`, pruned in the background unless `options.prune` is `false` (a failed pass
 * is logged and the next one runs on schedule).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: LayerOptions = {}): Layer.Layer<Store, StoreError, SqlClient.SqlClient> =>
  Layer.scoped(
    Store,
    Effect.gen(function*() {
      if (options.migrate === true) yield* migrate(options)
      const store = yield* make(options)
      const pruning = options.prune
      if (pruning !== false) {
        const pass = prune({ ...options, batchSize: pruning?.batchSize }).pipe(
          Effect.catchAll((error) => Effect.logWarning(`SQL store: pruning failed: ${error.message}`))
        )
        yield* Effect.forkScoped(
          Effect.repeat(pass, Schedule.spaced(pruning?.interval ?? defaultPruneInterval))
        )
      }
      return store
    })
  )

/**
 * The store and its own client from `Config`: by default `DATABASE_URL` (required, kept `Redacted`; the
 * driver it names is loaded only then, and must be installed), and the optional `SESSION_SQL_TABLE`,
 * `SESSION_SQL_QUERY_TIMEOUT`, `SESSION_SQL_MIGRATE` (`true` to create the table at start),
 * `SESSION_SQL_PRUNE_INTERVAL`, `SESSION_SQL_PRUNE_BATCH_SIZE` and `SESSION_SQL_PRUNE` (`false` to turn
 * pruning off). The client
 * is closed with the layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<ConfigOptions> = defaultConfig
): Layer.Layer<Store, StoreError | ConfigError.ConfigError> =>
  Layer.unwrapEffect(
    Effect.map(Config.unwrap(config), (options) => {
      const target = parse(options.url)
      if (target._tag === "invalid") {
        return Layer.fail(
          new StoreError({ reason: "Unknown", message: `SQL store: the database URL ${target.message}` })
        )
      }
      return Layer.provide(layer(options), clientLayer(target, toStoreError))
    })
  )

// -----------------------------------------------------------------------------
// config
// -----------------------------------------------------------------------------

const optional = <A>(config: Config.Config<A>): Config.Config<A | undefined> =>
  Config.map(Config.option(config), Option.getOrUndefined)

// checked here so that a malformed URL is a ConfigError naming the variable, and never repeated
const urlConfig: Config.Config<Redacted.Redacted<string>> = Config.redacted("DATABASE_URL").pipe(
  Config.mapOrFail((url) => {
    const target = parse(url)
    return target._tag === "invalid"
      ? Either.left(ConfigError.InvalidData(["DATABASE_URL"], `DATABASE_URL ${target.message}`))
      : Either.right(url)
  })
)

/**
 * What {@link layerConfig} reads by default, to change one field and keep the rest:
 * `Sql.layerConfig({ ...Sql.defaultConfig, migrate: Config.withDefault(Config.boolean("SESSION_SQL_MIGRATE"), true) })`.
 *
 * @since 0.1.0
 * @category config
 */
export const defaultConfig: Config.Config.Wrap<ConfigOptions> = {
  url: urlConfig,
  table: optional(Config.string("SESSION_SQL_TABLE")),
  queryTimeout: optional(Config.duration("SESSION_SQL_QUERY_TIMEOUT")),
  migrate: optional(Config.boolean("SESSION_SQL_MIGRATE")),
  prune: Config.all({
    enabled: Config.withDefault(Config.boolean("SESSION_SQL_PRUNE"), true),
    interval: optional(Config.duration("SESSION_SQL_PRUNE_INTERVAL")),
    batchSize: optional(
      Config.integer("SESSION_SQL_PRUNE_BATCH_SIZE").pipe(
        Config.validate({ message: "SESSION_SQL_PRUNE_BATCH_SIZE must be 1 or more", validation: (n) => n >= 1 })
      )
    )
  }).pipe(Config.map(({ batchSize, enabled, interval }) => enabled ? { interval, batchSize } : false))
}

// -----------------------------------------------------------------------------
// internals
// -----------------------------------------------------------------------------

const toStoreError = (failure: Failure) => new StoreError(failure)

const statementsOf = (options: Options): Effect.Effect<Statements, StoreError, SqlClient.SqlClient> =>
  Effect.gen(function*() {
    const table = options.table ?? defaultTable
    if (!validTable.test(table)) {
      return yield* new StoreError({
        reason: "Unknown",
        message: "SQL store: the table name must be a plain identifier (letters, digits and _, at most 48)"
      })
    }
    const millis = Duration.toMillis(options.queryTimeout ?? defaultQueryTimeout)
    return {
      sql: yield* SqlClient.SqlClient,
      table,
      timeoutMillis: Number.isFinite(millis) ? Math.max(1, Math.ceil(millis)) : 2 ** 31 - 1,
      error: toStoreError
    }
  })
