/**
 * Signing and verifying session tokens, and the keyed digests that stand for a user in the store.
 *
 * A token is `<id>.<signature>`: the session id (base64url, random parts from a CSPRNG) and the
 * HMAC-SHA512 of that id under a server key, base64url-encoded. The signature is bound to a domain (the
 * sessions service's name), so a token of one service never verifies at another that shares the keys.
 * The server hands the token to the client; only a token whose signature verifies under one of the
 * configured keys is ever looked up in the store, so forged or guessed ids cost one HMAC and never a store
 * round trip.
 *
 * Keys rotate: the first key signs, every key verifies. To rotate, put the new key first and keep the old
 * one after it until the longest session lifetime has passed; tokens signed by an old key are re-signed
 * with the first key the next time they are written.
 *
 * @since 0.1.0
 * @module
 */
import * as Config from "effect/Config"
import * as ConfigError from "effect/ConfigError"
import * as Context from "effect/Context"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Crypto from "node:crypto"
import * as HttpError from "./internal/httpError.js"

// -----------------------------------------------------------------------------
// models
// -----------------------------------------------------------------------------

/**
 * The result of a successful verification: the session id the token carries, and which key verified it
 * (`0` is the signing key; a larger index means the token should be re-signed when next written).
 *
 * @since 0.1.0
 * @category models
 */
export interface Verified {
  readonly id: string
  readonly keyIndex: number
}

/**
 * The signing port.
 *
 * @since 0.1.0
 * @category models
 */
export interface AuthService {
  /** Signs a session id for `domain` with the first key and returns the token. */
  readonly sign: (id: string, domain: string) => string
  /**
   * Verifies a token of `domain` against every key, in constant time per key. Malformed, truncated,
   * oversized and badly signed tokens, and tokens signed for another domain, all fail with
   * `BadSignature`; verification never throws.
   */
  readonly verify: (token: string, domain: string) => Either.Either<Verified, BadSignature>
  /**
   * A keyed digest of `value` for `domain` under every key, the first key's first: 128 bits each,
   * base64url (22 characters). Whoever lacks the keys can neither compute nor test one, so it can stand
   * for a user id in tokens and store keys without revealing it.
   */
  readonly fingerprint: (value: string, domain: string) => ReadonlyArray<string>
}

/**
 * Options of the HMAC signer.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /**
   * Secret keys, newest first: the first signs, all verify. Each must be at least 32 bytes (64 are
   * recommended), for example `openssl rand -base64 48`.
   */
  readonly keys: ReadonlyArray<Redacted.Redacted<string | Uint8Array>>
}

// -----------------------------------------------------------------------------
// tags
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category tags
 */
export class Auth extends Context.Tag("effect-sessions/Auth")<Auth, AuthService>() {}

// -----------------------------------------------------------------------------
// errors
// -----------------------------------------------------------------------------

/**
 * The token could not be trusted: it is malformed (empty, oversized, wrong alphabet or shape) or its
 * signature does not verify under any key. Answered with 401 over HTTP.
 *
 * @since 0.1.0
 * @category errors
 */
export class BadSignature extends HttpError.TaggedError<BadSignature>("EffectSessionsBadSignature")(
  "BadSignature",
  { reason: Schema.Literal("Malformed", "Signature") },
  { status: 401 }
) {
  override get message(): string {
    return this.reason === "Malformed" ? "the session token is malformed" : "the session token signature is invalid"
  }
}

/**
 * A key given to the signer is unusable (too short, or no key at all). Raised when the layer is built,
 * never at request time. The message names the key by its position, never by its content.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidKey extends Data.TaggedError("InvalidKey")<{ readonly message: string }> {}

// -----------------------------------------------------------------------------
// constants
// -----------------------------------------------------------------------------

/**
 * The smallest accepted key, in bytes.
 *
 * @since 0.1.0
 * @category constants
 */
export const minimumKeyBytes = 32

/**
 * Bytes of randomness in a session id made by {@link randomId}: 256 bits.
 *
 * @since 0.1.0
 * @category constants
 */
export const idBytes = 32

/**
 * The longest token the verifier looks at; anything longer is `Malformed` without being hashed.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxTokenLength = 512

// An HMAC-SHA512 digest is 64 bytes: 86 base64url characters without padding.
const signatureLength = 86
const base64Url = /^[A-Za-z0-9_-]+$/

// Failures are values without fields that vary, so the hot rejection path allocates nothing.
const malformed = Either.left(new BadSignature({ reason: "Malformed" }))
const badSignature = Either.left(new BadSignature({ reason: "Signature" }))

// -----------------------------------------------------------------------------
// constructors
// -----------------------------------------------------------------------------

/**
 * A fresh session id: {@link idBytes} bytes from the platform CSPRNG, base64url-encoded.
 *
 * Effect's `Random` is a seeded PRNG and must never make secrets; this uses `crypto.getRandomValues`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const randomId = (bytes: number = idBytes): string =>
  Buffer.from(Crypto.getRandomValues(new Uint8Array(bytes))).toString("base64url")

const keyBytes = (key: Redacted.Redacted<string | Uint8Array>): Uint8Array => {
  const value = Redacted.value(key)
  return typeof value === "string" ? Buffer.from(value, "utf8") : value
}

/**
 * Builds the HMAC-SHA512 signer from its keys, failing with `InvalidKey` when there is no key or one is
 * shorter than {@link minimumKeyBytes}.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Effect.Effect<AuthService, InvalidKey> =>
  Effect.suspend(() => {
    if (options.keys.length === 0) {
      return Effect.fail(new InvalidKey({ message: "at least one session key is required" }))
    }
    const secrets: Array<Crypto.KeyObject> = []
    for (let i = 0; i < options.keys.length; i++) {
      const bytes = keyBytes(options.keys[i]!)
      if (bytes.length < minimumKeyBytes) {
        return Effect.fail(
          new InvalidKey({
            message: `session key #${i + 1} is ${bytes.length} bytes long; at least ${minimumKeyBytes} are required`
          })
        )
      }
      secrets.push(Crypto.createSecretKey(bytes))
    }
    return Effect.succeed(makeUnsafe(secrets))
  })

// What is MACed: a purpose, the domain (length-prefixed, so that no two (domain, value) pairs share an
// input), and the value.
const macInput = (purpose: string, domain: string, value: string) => `${purpose}:${domain.length}:${domain}:${value}`

const makeUnsafe = (secrets: ReadonlyArray<Crypto.KeyObject>): AuthService => {
  const hmac = (secret: Crypto.KeyObject, purpose: string, domain: string, value: string) =>
    Crypto.createHmac("sha512", secret).update(macInput(purpose, domain, value))
  const mac = (secret: Crypto.KeyObject, domain: string, id: string) =>
    hmac(secret, "effect-sessions/token", domain, id).digest("base64url")
  const signer = secrets[0]!
  return Auth.of({
    sign: (id, domain) => `${id}.${mac(signer, domain, id)}`,
    fingerprint: (value, domain) =>
      secrets.map((secret) =>
        hmac(secret, "effect-sessions/user", domain, value).digest().subarray(0, 16).toString("base64url")
      ),
    verify: (token, domain) => {
      if (typeof token !== "string" || token.length > maxTokenLength) return malformed
      const dot = token.length - signatureLength - 1
      if (dot < 1 || token.charCodeAt(dot) !== 46 /* . */) return malformed
      const id = token.slice(0, dot)
      const signature = token.slice(dot + 1)
      if (!base64Url.test(id) || !base64Url.test(signature)) return malformed
      // Compare the canonical encodings rather than decoded bytes: several base64url strings decode to the
      // same bytes (the last character carries spare bits), and a token must have exactly one valid form.
      const given = Buffer.from(signature, "latin1")
      for (let i = 0; i < secrets.length; i++) {
        if (Crypto.timingSafeEqual(Buffer.from(mac(secrets[i]!, domain, id), "latin1"), given)) {
          return Either.right({ id, keyIndex: i })
        }
      }
      return badSignature
    }
  })
}

// -----------------------------------------------------------------------------
// layers
// -----------------------------------------------------------------------------

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<Auth, InvalidKey> => Layer.effect(Auth, make(options))

/**
 * The signer with its keys read from `Config`. By default the keys come from `SESSION_KEYS`, a
 * comma-separated list, newest first.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  config: Config.Config.Wrap<Options> = { keys: keysConfig() }
): Layer.Layer<Auth, InvalidKey | ConfigError.ConfigError> =>
  Layer.effect(Auth, Effect.flatMap(Config.unwrap(config), make))

/**
 * A shell command that prints a fresh key of 64 random bytes, base64url-encoded (86 characters), which the
 * errors of {@link keysConfig} name.
 *
 * @since 0.1.0
 * @category config
 */
export const makeKeyCommand = `node -e "console.log(require('crypto').randomBytes(64).toString('base64url'))"`

const keysExpected =
  `one or more signing keys, comma-separated and newest first, each at least ${minimumKeyBytes} bytes ` +
  `(64 random bytes recommended); make one with: ${makeKeyCommand}`

/**
 * A `Config` for a comma-separated list of keys, newest first, as `Redacted` strings. An unset variable is
 * a `ConfigError` (missing data, so that `Config.option` and `Config.withDefault` still apply) and an empty
 * list or a key shorter than {@link minimumKeyBytes} one (invalid data); both name the variable, say what it
 * must hold and how to make a key ({@link makeKeyCommand}), and show no key.
 *
 * @since 0.1.0
 * @category config
 */
export const keysConfig = (name = "SESSION_KEYS"): Config.Config<ReadonlyArray<Redacted.Redacted<string>>> =>
  // Decided inside `nested` so that the error's path names the variable. `Config.option` keeps an unset
  // variable apart from a bad value, whose error would otherwise read `Missing data ... "<redacted>"`.
  Config.option(Config.array(Config.redacted())).pipe(
    Config.mapOrFail((keys) => {
      if (Option.isNone(keys)) {
        return Either.left(ConfigError.MissingData([], `${name} is not set: it must hold ${keysExpected}`))
      }
      return keys.value.length > 0 &&
          keys.value.every((key) => Buffer.byteLength(Redacted.value(key), "utf8") >= minimumKeyBytes)
        ? Either.right(keys.value)
        : Either.left(ConfigError.InvalidData([], `expected ${keysExpected}`))
    }),
    Config.nested(name)
  )
