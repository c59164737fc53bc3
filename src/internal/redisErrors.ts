/**
 * What the Redis store says of a failure: the reason of its `StoreError` and a message a log may keep.
 * ioredis errors keep the failed command with its arguments (the session's contents) and Redis echoes
 * arguments in a few replies ("unknown command …, with args beginning with: …"): neither is kept.
 *
 * This module answers plain {@link Failure} records; the store makes its `StoreError`s from them.
 *
 * @internal
 */
import { Cluster, type Redis } from "ioredis"
import type { StoreError } from "../Store.js"

/** The fields of a `StoreError`. */
export interface Failure {
  readonly reason: StoreError["reason"]
  readonly message: string
}

const longestDetail = 160

/** What may be said of a driver's error: its name, its code and the first line of its message, bounded. */
const describe = (cause: unknown): { readonly name: string; readonly text: string } => {
  const error = cause instanceof Error ? cause : undefined
  const name = error !== undefined && /^\w{1,40}$/.test(error.name) ? error.name : "Error"
  const code = (error as { readonly code?: unknown } | undefined)?.code
  const raw = error !== undefined ? error.message : typeof cause === "string" ? cause : ""
  let text = (raw.split(/\r?\n/, 1)[0] ?? "").replace(/,? with args beginning with:.*$/i, "")
  if (text.length > longestDetail) text = `${text.slice(0, longestDetail)}…`
  return { name: typeof code === "string" && /^[A-Z0-9_]{1,40}$/.test(code) ? `${name} ${code}` : name, text }
}

const isAuthenticationFailure = (text: string) =>
  /^(NOAUTH|WRONGPASS)\b|invalid password|invalid username-password/i.test(text)

const isTimeout = (text: string) => /timed? ?out|ETIMEDOUT/i.test(text)

const isOutage = (text: string) =>
  /closed|writeable|ECONN|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|MaxRetries|CLUSTERDOWN|TRYAGAIN|LOADING|MASTERDOWN|READONLY|connect|startup nodes|isn't ready|slots cache|Connection/i
    .test(text)

/** Someone else's value of another type at a user's key is garbage, not an outage. */
export const isWrongType = (cause: unknown) => cause instanceof Error && cause.message.startsWith("WRONGTYPE")

/**
 * What the store knows of its connection: the last authentication refusal seen since it was last ready.
 * ioredis reports a refused AUTH only as an "error" event and then fails every command with "Connection
 * is closed" or "Stream isn't writeable" while it retries: this tells those apart from an outage.
 */
export interface Connection {
  refused: string | undefined
}

/** Listens to a client the store owns (a client's "error" listener silences ioredis's own logging). */
export const watch = (client: Redis | Cluster, connection: Connection) => {
  const onError = (cause: unknown) => {
    const { name, text } = describe(cause)
    if (isAuthenticationFailure(text)) connection.refused = `${name}: ${text}`
  }
  client.on("error", onError)
  // a Cluster reports its nodes' connections apart
  if (client instanceof Cluster) client.on("node error", onError)
  client.on("ready", () => {
    connection.refused = undefined
  })
}

const refusedCredentials = (operation: string, detail: string): Failure => ({
  reason: "Authentication",
  message: `Redis ${operation} failed: the credentials were refused (${detail}); check the password (and ` +
    `user) in the URL or options`
})

/** Why `operation` failed with `cause`, told apart by the error's text and what `connection` saw. */
export const classify = (operation: string, cause: unknown, connection: Connection | undefined): Failure => {
  const { name, text } = describe(cause)
  if (isAuthenticationFailure(text)) return refusedCredentials(operation, `${name}: ${text}`)
  if (isTimeout(text)) return { reason: "Timeout", message: `Redis ${operation} timed out (${name}: ${text})` }
  if (/^OOM\b/.test(text)) {
    return { reason: "Capacity", message: `Redis ${operation} failed: Redis is full (${name}: ${text})` }
  }
  if (isOutage(text)) {
    const refused = connection?.refused
    if (refused !== undefined) return refusedCredentials(`${operation} (reconnecting)`, refused)
    return { reason: "Unavailable", message: `Redis ${operation} failed (${name}: ${text})` }
  }
  return { reason: "Unknown", message: `Redis ${operation} failed (${name}: ${text})` }
}
