/**
 * Session ids and what is derived from them.
 *
 * An id is `tag + family + secret`, base64url:
 *
 * - `tag` (22 characters): the user's keyed fingerprint (`Auth.fingerprint`), shared by all of a user's
 *   sessions, so that a sharded store keeps them together; it reveals nothing about the user to whoever
 *   lacks the signing keys.
 * - `family` (22 characters, 128 random bits): the session's lineage, kept when the id is renewed.
 * - `secret` (43 characters, 256 random bits): replaced at every renewal.
 *
 * The store never sees a part of an id: it keys a session by the tag and a digest of the family, and
 * keeps a digest of the secret.
 *
 * @internal
 */
import * as Crypto from "node:crypto"

export const tagLength = 22
const familyLength = 22
const secretLength = 43
export const idLength = tagLength + familyLength + secretLength

export interface ParsedId {
  readonly tag: string
  readonly family: string
  readonly secret: string
}

const random = (bytes: number) => Buffer.from(Crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url")

/** 128 random bits, for a new lineage. */
export const newFamily = (): string => random(16)

/** 256 random bits, for a new id of a lineage. */
export const newSecret = (): string => random(32)

/** The parts of an id this library made, or `undefined` (the signature check already vouched for its alphabet). */
export const parseId = (id: string): ParsedId | undefined =>
  id.length === idLength
    ? {
      tag: id.slice(0, tagLength),
      family: id.slice(tagLength, tagLength + familyLength),
      secret: id.slice(tagLength + familyLength)
    }
    : undefined

const digest = (purpose: string, value: string) =>
  Crypto.createHash("sha256").update(purpose).update(value).digest().subarray(0, 16).toString("base64url")

/** The store's name for a lineage: `Key.session`. */
export const lineageKey = (family: string): string => digest("effect-sessions/lineage:", family)

/** What the store keeps of a secret: `Entry.secret` / `Entry.previous`. */
export const secretDigest = (secret: string): string => digest("effect-sessions/secret:", secret)
