/**
 * What the database harnesses (postgres.ts, mariadb.ts) answer for a server the test owns, so that a fault
 * test can take it down and bring it back.
 */
import type { Effect } from "effect"

/** A database process owned by the test; `stop` and `start` keep its data dir and port. */
export interface DatabaseServer<E> {
  /** The URL of its test database (superuser, no password). */
  readonly url: string
  /** The server's pid, `undefined` while stopped. */
  readonly pid: Effect.Effect<number | undefined>
  /** Stops it by its pid, waiting for the exit (SIGKILL after a bounded wait). A no-op when stopped. */
  readonly stop: Effect.Effect<void>
  /** The server again on the same data dir and port, waiting until it accepts connections. */
  readonly start: Effect.Effect<void, E>
}
