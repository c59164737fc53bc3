/**
 * Ids as the `Sessions` service makes them, for tests that write a store entry themselves and then read
 * it through the service (src/internal/ids.ts describes the format).
 */
import type * as Auth from "../../src/Auth.js"
import { lineageKey, newFamily, newSecret, secretDigest } from "../../src/internal/ids.js"
import type { Key } from "../../src/Store.js"

export interface MadeId {
  /** The session id (what the token signs). */
  readonly id: string
  /** Where the service looks the session up. */
  readonly key: Key
  /** What the entry must hold as `secret` for the id to be its current one. */
  readonly secret: string
}

/** A fresh id for `userId`, as the service named `domain` would issue it under `auth`'s signing key. */
export const makeId = (auth: Auth.AuthService, domain: string, userId: string): MadeId => {
  const tag = auth.fingerprint(userId, domain)[0]!
  const family = newFamily()
  const secret = newSecret()
  return { id: tag + family + secret, key: { user: tag, session: lineageKey(family) }, secret: secretDigest(secret) }
}
