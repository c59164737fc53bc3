/**
 * The SQL client a `DATABASE_URL` names, for `Sql.layerConfig`: `postgres://` / `postgresql://` on
 * `@effect/sql-pg`, `mysql://` / `mariadb://` on `@effect/sql-mysql2`, `sqlite:<path>` on
 * `@effect/sql-sqlite-node`. Each driver is loaded only when its URL is given, so an application installs
 * only the one it uses. The URL stays `Redacted`: no message repeats it.
 *
 * @internal
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import type { StoreError } from "../Store.js"
import { classify, type Failure } from "./sqlErrors.js"

/** The database a URL names, or why it names none (in words that never repeat the URL). */
export type Target =
  | { readonly _tag: "pg"; readonly url: Redacted.Redacted<string> }
  | { readonly _tag: "mysql"; readonly url: Redacted.Redacted<string> }
  | { readonly _tag: "sqlite"; readonly filename: string }
  | { readonly _tag: "invalid"; readonly message: string }

/** Reads a `DATABASE_URL`. */
export const parse = (url: Redacted.Redacted<string>): Target => {
  const value = Redacted.value(url).trim()
  if (/^postgres(ql)?:\/\/[^/]/i.test(value)) return { _tag: "pg", url: Redacted.make(value) }
  if (/^(mysql|mariadb):\/\/[^/]/i.test(value)) {
    return { _tag: "mysql", url: Redacted.make(value.replace(/^mariadb:/i, "mysql:")) }
  }
  const sqlite = /^sqlite:(?:\/\/)?(.+)$/i.exec(value)
  if (sqlite !== null) return { _tag: "sqlite", filename: sqlite[1]! }
  return {
    _tag: "invalid",
    message: "must be a postgres://, postgresql://, mysql:// or mariadb:// URL, or sqlite:<path> (sqlite::memory: " +
      "for an in-memory database)"
  }
}

const missingDriver = (driver: string, error: (failure: Failure) => StoreError) => () =>
  error({
    reason: "Unknown",
    message: `SQL store: DATABASE_URL names a database whose driver is not installed: npm install ${driver}`
  })

/** The client of `target` (never `invalid`), opened with the layer and closed with it. */
export const clientLayer = (
  target: Exclude<Target, { readonly _tag: "invalid" }>,
  error: (failure: Failure) => StoreError
): Layer.Layer<SqlClient.SqlClient, StoreError> => {
  const connectFailed = (cause: unknown) => error(classify("connect", "(none)", cause))
  // the driver is loaded only when the URL names it: the other drivers need not be installed
  const open = <M>(
    load: () => Promise<M>,
    driver: string,
    layer: (module: M) => Layer.Layer<SqlClient.SqlClient, unknown>
  ) =>
    Layer.unwrapEffect(
      Effect.map(
        Effect.tryPromise({ try: load, catch: missingDriver(driver, error) }),
        (module) => Layer.mapError(layer(module), connectFailed)
      )
    )
  switch (target._tag) {
    case "pg":
      return open(
        () => import("@effect/sql-pg/PgClient"),
        "@effect/sql-pg@^0.53",
        (Pg) => Pg.layer({ url: target.url })
      )
    case "mysql":
      return open(
        () => import("@effect/sql-mysql2/MysqlClient"),
        "@effect/sql-mysql2@^0.53",
        (Mysql) => Mysql.layer({ url: target.url })
      )
    case "sqlite":
      return open(
        () => import("@effect/sql-sqlite-node/SqliteClient"),
        "@effect/sql-sqlite-node@^0.53 better-sqlite3@^12",
        (Sqlite) => Sqlite.layer({ filename: target.filename })
      )
  }
}
