/**
 * What the SQL store says of a failure: the reason of its `StoreError` and a message a log may keep. A
 * driver's error can quote the statement's values (PostgreSQL's "invalid input syntax for type bigint:
 * …", a row in a constraint's detail): the message keeps only the error's class and code, never its
 * text. The text is read to tell a missing table apart, and then dropped.
 *
 * This module answers plain {@link Failure} records; the store makes its `StoreError`s from them.
 *
 * @internal
 */
import type { StoreError } from "../Store.js"

/** The fields of a `StoreError`. */
export interface Failure {
  readonly reason: StoreError["reason"]
  readonly message: string
}

interface DriverError {
  readonly name: string
  /** SQLSTATE (PostgreSQL), `ER_…` (mysql2), `SQLITE_…` (better-sqlite3), `E…` (Node sockets). */
  readonly code: string
  readonly errno: number | undefined
  readonly text: string
}

/** The innermost error of an `SqlError`'s chain of causes (the driver's). */
const driverError = (cause: unknown): DriverError => {
  let error: unknown = cause
  for (let depth = 0; depth < 4; depth++) {
    const inner = (error as { readonly cause?: unknown } | null | undefined)?.cause
    if (inner === undefined || inner === null) break
    error = inner
  }
  const record = (typeof error === "object" && error !== null ? error : {}) as Record<string, unknown>
  const name = typeof record["name"] === "string" && /^\w{1,40}$/.test(record["name"]) ? record["name"] : "Error"
  const code = typeof record["code"] === "string" && /^[A-Za-z0-9_]{1,40}$/.test(record["code"])
    ? record["code"]
    : ""
  const errno = typeof record["errno"] === "number" ? record["errno"] : undefined
  const text = typeof record["message"] === "string" ? record["message"] : ""
  return { name, code, errno, text }
}

/** A deadlock or serialisation failure: the transaction was rolled back and may be run again. */
export const isRetryable = (cause: unknown): boolean => {
  const error = driverError(cause)
  return error.code === "ER_LOCK_DEADLOCK" || error.errno === 1213 || error.code === "40P01" ||
    error.code === "40001"
}

/** A duplicate key (MySQL has no `ON CONFLICT DO NOTHING` that answers whether it inserted). */
export const isDuplicateKey = (cause: unknown): boolean => {
  const error = driverError(cause)
  return error.code === "ER_DUP_ENTRY" || error.errno === 1062
}

const missingTable = (error: DriverError) =>
  error.code === "42P01" || error.code === "ER_NO_SUCH_TABLE" || error.errno === 1146 ||
  (error.code.startsWith("SQLITE_ERROR") && /no such table/i.test(error.text))

const refused = (error: DriverError) =>
  error.code === "28P01" || error.code === "28000" || error.code === "ER_ACCESS_DENIED_ERROR" ||
  error.code === "ER_DBACCESS_DENIED_ERROR" || error.code === "SQLITE_AUTH" || error.errno === 1045

const timedOut = (error: DriverError) =>
  error.code === "57014" || error.code === "ETIMEDOUT" || error.code === "CONNECT_TIMEOUT" ||
  error.code === "ER_LOCK_WAIT_TIMEOUT" || error.code === "PROTOCOL_SEQUENCE_TIMEOUT" || error.errno === 1205

const outage = (error: DriverError) =>
  /^(08|53|57P0)/.test(error.code) || /^E(CONN|PIPE|NOTFOUND|AI_AGAIN|HOSTUNREACH|NETUNREACH)/.test(error.code) ||
  /^(CONNECTION_|PROTOCOL_CONNECTION_LOST|ER_CON_COUNT_ERROR|ER_SERVER_SHUTDOWN)/.test(error.code) ||
  /^SQLITE_(BUSY|LOCKED|CANTOPEN|READONLY|IOERR|FULL)/.test(error.code) ||
  /connect|closed|terminat|shut ?down/i.test(error.name === "Error" ? error.text : "")

/** Why `operation` on `table` failed with `cause` (an `SqlError`, or what it wraps). */
export const classify = (operation: string, table: string, cause: unknown): Failure => {
  const error = driverError(cause)
  const what = error.code === "" ? error.name : `${error.name} ${error.code}`
  if (missingTable(error)) {
    return {
      reason: "Schema",
      message: `SQL store ${operation} failed: the table "${table}" does not exist; run Sql.migrate (or the ` +
        `layer with migrate: true), or create it with the SQL in the documentation of effect-sessions/layers/Sql`
    }
  }
  if (refused(error)) {
    return {
      reason: "Authentication",
      message: `SQL store ${operation} failed: the database refused the credentials or access (${what})`
    }
  }
  if (timedOut(error)) return { reason: "Timeout", message: `SQL store ${operation} timed out (${what})` }
  if (outage(error)) return { reason: "Unavailable", message: `SQL store ${operation} failed (${what})` }
  return { reason: "Unknown", message: `SQL store ${operation} failed (${what})` }
}
