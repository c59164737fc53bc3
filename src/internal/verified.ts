/**
 * The signature check of a token, remembered: a token whose signature verified once is looked up here on
 * its next requests instead of being hashed again (HMAC-SHA512, then the digests of its parts). Only
 * verified tokens get in, so a forger pays the full check on every guess and cannot fill the map; it is
 * bounded (the oldest entry leaves first). Validity is untouched: every read still asks the store, so a
 * cleared, revoked or expired session is refused at once.
 *
 * @internal
 */
import * as Either from "effect/Either"
import * as Redacted from "effect/Redacted"
import type { BadSignature } from "../Auth.js"
import type { NotFound, Session } from "../Session.js"
import type { Entry, Key } from "../Store.js"
import type { Core } from "./core.js"
import { lineageKey, parseId, secretDigest } from "./ids.js"

/**
 * A token whose signature verified: its session id (raw and `Redacted`), the key that verified it, the
 * session's store key and secret digest, and the last entry read for it with the session made from it
 * (reused while the store answers that same entry: no decode, no new object), and the user id that entry
 * was checked to belong to the token's user.
 */
export interface Checked<A> {
  readonly id: Redacted.Redacted<string>
  readonly raw: string
  readonly keyIndex: number
  readonly key: Key
  readonly secret: string
  entry: Entry | undefined
  session: Session<A> | undefined
  owner: string | undefined
}

export interface VerifiedTokens<A> {
  readonly size: number
  /** By the token (a copy of its own: see `check`). */
  readonly map: Map<string, Checked<A>>
  /** Anything longer than a token can be is refused by `verify` without being hashed, and not looked up. */
  readonly maxTokenLength: number
}

export const make = <A>(size: number, maxTokenLength: number): VerifiedTokens<A> => ({
  size,
  map: new Map(),
  maxTokenLength
})

/** Whether `u` is a checked token rather than a refusal. */
export const isChecked = <A>(u: Checked<A> | BadSignature | NotFound): u is Checked<A> =>
  (u as Checked<A>).raw !== undefined

// A flat copy of an ASCII string (a verified token and its parts are), which shares nothing with it.
const copy = (ascii: string): string => Buffer.from(ascii, "latin1").toString("latin1")

/** The token checked: found, or verified now (and remembered), or refused. */
export const check = <A>(core: Core<A>, token: string): Checked<A> | BadSignature | NotFound => {
  const tokens = core.tokens
  const cached = typeof token === "string" && token.length <= tokens.maxTokenLength
    ? tokens.map.get(token)
    : undefined
  if (cached !== undefined) return cached
  const verified = core.auth.verify(token, core.domain)
  if (Either.isLeft(verified)) return verified.left
  // A copy of its own, so that the map never keeps alive the request header the token was cut from.
  const own = tokens.size > 0 ? copy(token) : token
  const raw = own.slice(0, verified.right.id.length)
  const parts = parseId(raw)
  if (parts === undefined) return core.refusals.notFound
  const result: Checked<A> = {
    id: Redacted.make(raw),
    raw,
    keyIndex: verified.right.keyIndex,
    // The user a copy of its own too: a slice would keep the whole token (or the header) alive in whatever
    // is keyed by it after this entry has left the map (the near-cache, the in-memory store).
    key: { user: copy(parts.tag), session: lineageKey(parts.family) },
    secret: secretDigest(parts.secret),
    entry: undefined,
    session: undefined,
    owner: undefined
  }
  if (tokens.size > 0) {
    if (tokens.map.size >= tokens.size) tokens.map.delete(tokens.map.keys().next().value!)
    tokens.map.set(own, result)
  }
  return result
}
