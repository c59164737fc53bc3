import { describe, expect, it } from "@effect/vitest"
import { Config, ConfigError, ConfigProvider, Effect, Either, FastCheck as fc, Layer, Option, Redacted } from "effect"
import * as ChildProcess from "node:child_process"
import * as Auth from "../src/Auth.js"

const newKey = () => Redacted.make(Auth.randomId(48))
const k1 = newKey()
const k2 = newKey()

// The synchronous property tests below need a signer outside of an effect.
const signer = Effect.runSync(Auth.make({ keys: [k1] }))
const domain = "app/Session"

const reasonOf = (result: Either.Either<Auth.Verified, Auth.BadSignature>) =>
  Either.match(result, { onLeft: (error) => `${error._tag}:${error.reason}`, onRight: () => "verified" })

const base64UrlAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

const replaceAt = (s: string, index: number, char: string) => s.slice(0, index) + char + s.slice(index + 1)

// Another base64url character for position `index` of `s`, so the string keeps its alphabet and shape.
const otherCharAt = (s: string, index: number) => {
  const position = base64UrlAlphabet.indexOf(s[index]!)
  return replaceAt(s, index, base64UrlAlphabet[(position + 1) % 64]!)
}

describe("Auth", () => {
  describe("randomId", () => {
    it("carries at least 128 bits and never repeats", () => {
      const ids = Array.from({ length: 2000 }, () => Auth.randomId())
      for (const id of ids) {
        expect(id).toMatch(/^[A-Za-z0-9_-]+$/)
        expect(Buffer.from(id, "base64url").length * 8).toBeGreaterThanOrEqual(128)
      }
      expect(new Set(ids).size).toBe(ids.length)
    })

    it("honours the requested byte length", () => {
      expect(Buffer.from(Auth.randomId(48), "base64url").length).toBe(48)
      expect(Buffer.from(Auth.randomId(16), "base64url").length).toBe(16)
    })
  })

  describe("sign and verify", () => {
    it.effect("a signed id verifies to itself with the signing key", () =>
      Effect.gen(function*() {
        const auth = yield* Auth.make({ keys: [k1] })
        const id = Auth.randomId()
        const token = auth.sign(id, domain)
        expect(token.startsWith(`${id}.`)).toBe(true)
        expect(yield* auth.verify(token, domain)).toEqual({ id, keyIndex: 0 })
      }))

    it.effect("signing is deterministic per key and differs between keys", () =>
      Effect.gen(function*() {
        const a = yield* Auth.make({ keys: [k1] })
        const b = yield* Auth.make({ keys: [k2] })
        const id = Auth.randomId()
        expect(a.sign(id, domain)).toBe(a.sign(id, domain))
        expect(a.sign(id, domain)).not.toBe(b.sign(id, domain))
      }))

    it.effect("a Uint8Array key signs like the same bytes given as a string", () =>
      Effect.gen(function*() {
        const text = Redacted.value(k1) as string
        const fromBytes = yield* Auth.make({ keys: [Redacted.make(new Uint8Array(Buffer.from(text, "utf8")))] })
        const id = Auth.randomId()
        expect(fromBytes.sign(id, domain)).toBe(signer.sign(id, domain))
      }))

    it.effect("a token of one domain never verifies in another, whatever the keys share", () =>
      Effect.gen(function*() {
        const auth = yield* Auth.make({ keys: [k1, k2] })
        const id = Auth.randomId()
        const token = auth.sign(id, "app/UserSession")
        expect(yield* auth.verify(token, "app/UserSession")).toEqual({ id, keyIndex: 0 })
        for (const other of ["app/AdminSession", "", "app/UserSessio", "app/UserSession ", "app/UserSession:"]) {
          expect((yield* Effect.flip(auth.verify(token, other))).reason).toBe("Signature")
        }
      }))

    it.prop(
      "domain and id are bound unambiguously: no other (domain, id) pair shares a signature",
      [fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), fc.integer({ min: 1, max: 8 })],
      ([left, right, cut]) => {
        // moving characters between the domain and the value must never give the same MAC
        const value = `${right}${"A".repeat(cut)}`
        const a = signer.fingerprint(value, left)[0]
        const b = signer.fingerprint(value.slice(cut), `${left}${value.slice(0, cut)}`)[0]
        expect(a).not.toBe(b)
      }
    )

    describe("rejections", () => {
      const token = signer.sign(Auth.randomId(), domain)
      const dot = token.indexOf(".")

      const cases: ReadonlyArray<readonly [string, string, "Malformed" | "Signature"]> = [
        ["a tampered id", otherCharAt(token, 0), "Signature"],
        ["a tampered signature", otherCharAt(token, dot + 10), "Signature"],
        ["a truncated token", token.slice(0, -1), "Malformed"],
        ["a token without its signature", token.slice(0, dot), "Malformed"],
        ["a token without its id", token.slice(dot), "Malformed"],
        ["the empty string", "", "Malformed"],
        ["an id outside the base64url alphabet", replaceAt(token, 0, "+"), "Malformed"],
        ["a signature outside the base64url alphabet", replaceAt(token, dot + 1, "/"), "Malformed"],
        ["padded base64", `${token}=`, "Malformed"],
        ["whitespace around the token", ` ${token} `, "Malformed"],
        ["a 10 kB token", "A".repeat(10_000 - 87) + token.slice(dot), "Malformed"],
        ["a 10 kB prefix on a valid token", "A".repeat(10_000) + token, "Malformed"]
      ]

      it("the unaltered token verifies (control)", () => {
        expect(reasonOf(signer.verify(token, domain))).toBe("verified")
      })

      for (const [name, input, reason] of cases) {
        it(`${name} is BadSignature (${reason})`, () => {
          expect(input).not.toBe(token)
          const result = signer.verify(input, domain)
          expect(Either.isLeft(result)).toBe(true)
          if (Either.isLeft(result)) {
            expect(result.left).toBeInstanceOf(Auth.BadSignature)
            expect(result.left._tag).toBe("BadSignature")
            expect(result.left.reason).toBe(reason)
          }
        })
      }

      it.effect("a token signed with another key is BadSignature (Signature)", () =>
        Effect.gen(function*() {
          const other = yield* Auth.make({ keys: [k2] })
          const error = yield* Effect.flip(other.verify(token, domain))
          expect(error._tag).toBe("BadSignature")
          expect(error.reason).toBe("Signature")
        }))

      it("a non-canonical signature that decodes to the same bytes is rejected", () => {
        const signature = token.slice(dot + 1)
        // 64 bytes take 86 characters; the last one carries 2 bits of the digest and 4 spare bits.
        const last = base64UrlAlphabet.indexOf(signature[signature.length - 1]!)
        const variant = signature.slice(0, -1) + base64UrlAlphabet[last ^ 1]!
        expect(variant).not.toBe(signature)
        expect(Buffer.from(variant, "base64url")).toEqual(Buffer.from(signature, "base64url"))
        const result = signer.verify(`${token.slice(0, dot)}.${variant}`, domain)
        expect(reasonOf(result)).toBe("BadSignature:Signature")
      })

      it("the longest accepted token is still verified, one character more is Malformed", () => {
        const id = "A".repeat(Auth.maxTokenLength - 87)
        const longest = signer.sign(id, domain)
        expect(longest.length).toBe(Auth.maxTokenLength)
        expect(reasonOf(signer.verify(longest, domain))).toBe("verified")
        expect(reasonOf(signer.verify(signer.sign(`${id}A`, domain), domain))).toBe("BadSignature:Malformed")
      })
    })

    describe("properties", () => {
      const token = signer.sign(Auth.randomId(), domain)
      const isBadSignature = (input: string) => {
        const result = signer.verify(input, domain)
        return Either.isLeft(result) && result.left instanceof Auth.BadSignature
      }

      it.prop("arbitrary strings never verify", [fc.string({ maxLength: 700 })], ([input]) => {
        expect(isBadSignature(input)).toBe(true)
      }, { fastCheck: { numRuns: 2000 } })

      it.prop("arbitrary binary strings never verify", [fc.string({ unit: "binary", maxLength: 700 })], ([input]) => {
        expect(isBadSignature(input)).toBe(true)
      }, { fastCheck: { numRuns: 2000 } })

      it.prop(
        "strings shaped like tokens never verify",
        [fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/), fc.stringMatching(/^[A-Za-z0-9_-]{86}$/)],
        ([id, signature]) => {
          expect(reasonOf(signer.verify(`${id}.${signature}`, domain))).toBe("BadSignature:Signature")
        },
        { fastCheck: { numRuns: 2000 } }
      )

      it.prop(
        "a bit flip anywhere in a valid token never verifies",
        [fc.nat({ max: token.length - 1 }), fc.integer({ min: 0, max: 15 })],
        ([index, bit]) => {
          const flipped = replaceAt(token, index, String.fromCharCode(token.charCodeAt(index) ^ (1 << bit)))
          expect(flipped).not.toBe(token)
          expect(isBadSignature(flipped)).toBe(true)
        },
        { fastCheck: { numRuns: 2000 } }
      )
    })
  })

  describe("key rotation", () => {
    it.effect("a token signed by an old key verifies with its index after rotation", () =>
      Effect.gen(function*() {
        const before = yield* Auth.make({ keys: [k1] })
        const after = yield* Auth.make({ keys: [k2, k1] })
        const id = Auth.randomId()
        expect(yield* after.verify(before.sign(id, domain), domain)).toEqual({ id, keyIndex: 1 })
      }))

    it.effect("the first key signs: the new key alone verifies, the old key alone does not", () =>
      Effect.gen(function*() {
        const rotated = yield* Auth.make({ keys: [k2, k1] })
        const newOnly = yield* Auth.make({ keys: [k2] })
        const oldOnly = yield* Auth.make({ keys: [k1] })
        const id = Auth.randomId()
        const token = rotated.sign(id, domain)
        expect(yield* rotated.verify(token, domain)).toEqual({ id, keyIndex: 0 })
        expect(yield* newOnly.verify(token, domain)).toEqual({ id, keyIndex: 0 })
        expect((yield* Effect.flip(oldOnly.verify(token, domain))).reason).toBe("Signature")
      }))
  })

  describe("fingerprint", () => {
    it.effect("is a 128-bit keyed digest per key, the signing key's first, that needs the key to compute", () =>
      Effect.gen(function*() {
        const one = yield* Auth.make({ keys: [k1] })
        const rotated = yield* Auth.make({ keys: [k2, k1] })
        const prints = rotated.fingerprint("alice@example.com", domain)
        expect(prints).toHaveLength(2)
        for (const print of prints) expect(print).toMatch(/^[A-Za-z0-9_-]{22}$/)
        // the old key's fingerprint is found again after rotation, in second place
        expect(prints[1]).toBe(one.fingerprint("alice@example.com", domain)[0])
        expect(prints[0]).not.toBe(prints[1])
        // deterministic, and different per value and per domain
        expect(one.fingerprint("alice@example.com", domain)).toEqual(one.fingerprint("alice@example.com", domain))
        expect(one.fingerprint("bob@example.com", domain)[0]).not.toBe(prints[1])
        expect(one.fingerprint("alice@example.com", "app/Other")[0]).not.toBe(prints[1])
        // not an unkeyed function of the value: another secret gives another digest
        const other = yield* Auth.make({ keys: [newKey()] })
        expect(other.fingerprint("alice@example.com", domain)[0]).not.toBe(prints[1])
      }))
  })

  describe("keys", () => {
    it.effect("a key shorter than the minimum fails with InvalidKey naming its position only", () =>
      Effect.gen(function*() {
        const short = "s".repeat(Auth.minimumKeyBytes - 1)
        const error = yield* Effect.flip(Auth.make({ keys: [k1, Redacted.make(short)] }))
        expect(error).toBeInstanceOf(Auth.InvalidKey)
        expect(error._tag).toBe("InvalidKey")
        expect(error.message).toContain("#2")
        expect(error.message).not.toContain(short)
        expect(error.message).not.toContain(Redacted.value(k1))
      }))

    it.effect("a short key fails the layer, not only make", () =>
      Effect.gen(function*() {
        const short = "secret-but-short"
        const error = yield* Effect.flip(Layer.build(Auth.layer({ keys: [Redacted.make(short)] })))
        expect(error._tag).toBe("InvalidKey")
        expect(error.message).toContain("#1")
        expect(error.message).not.toContain(short)
      }).pipe(Effect.scoped))

    it.effect("a short Uint8Array key fails", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(
          Auth.make({ keys: [Redacted.make(new Uint8Array(Auth.minimumKeyBytes - 1))] })
        )
        expect(error._tag).toBe("InvalidKey")
      }))

    it.effect("key length is counted in UTF-8 bytes", () =>
      Effect.gen(function*() {
        // 16 two-byte characters are 32 bytes; 31 one-byte characters are not enough.
        yield* Auth.make({ keys: [Redacted.make("é".repeat(Auth.minimumKeyBytes / 2))] })
        yield* Auth.make({ keys: [Redacted.make("x".repeat(Auth.minimumKeyBytes))] })
        const error = yield* Effect.flip(Auth.make({ keys: [Redacted.make("x".repeat(Auth.minimumKeyBytes - 1))] }))
        expect(error._tag).toBe("InvalidKey")
      }))

    it.effect("an empty key list fails with InvalidKey", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Auth.make({ keys: [] }))
        expect(error._tag).toBe("InvalidKey")
      }))
  })

  describe("config", () => {
    const withEnv = (entries: ReadonlyArray<readonly [string, string]>) =>
      Effect.withConfigProvider(ConfigProvider.fromMap(new Map(entries)))

    it.effect("keysConfig parses a comma-separated SESSION_KEYS, newest first", () =>
      Effect.gen(function*() {
        const a = Redacted.value(k1) as string
        const b = Redacted.value(k2) as string
        const keys = yield* Auth.keysConfig().pipe(withEnv([["SESSION_KEYS", `${a}, ${b}`]]))
        expect(keys.map(Redacted.value)).toEqual([a, b])
      }))

    it.effect("layerConfig signs with the first configured key and verifies with all", () =>
      Effect.gen(function*() {
        const a = Redacted.value(k1) as string
        const b = Redacted.value(k2) as string
        const configured = yield* Auth.Auth.pipe(
          Effect.provide(Auth.layerConfig()),
          withEnv([["SESSION_KEYS", `${a},${b}`]])
        )
        const first = yield* Auth.make({ keys: [k1] })
        const second = yield* Auth.make({ keys: [k2] })
        const id = Auth.randomId()
        expect(yield* first.verify(configured.sign(id, domain), domain)).toEqual({ id, keyIndex: 0 })
        expect(yield* configured.verify(second.sign(id, domain), domain)).toEqual({ id, keyIndex: 1 })
      }))

    it.effect("a short key in SESSION_KEYS is a ConfigError naming the variable", () =>
      Effect.gen(function*() {
        const short = "too-short"
        const error = yield* Effect.flip(
          Auth.keysConfig().pipe(withEnv([["SESSION_KEYS", `${Redacted.value(k1) as string},${short}`]]))
        )
        expect(ConfigError.isConfigError(error)).toBe(true)
        expect(String(error)).toContain("SESSION_KEYS")
        expect(String(error)).not.toContain(short)
      }))

    it.effect("an empty SESSION_KEYS or an empty key in the list is a ConfigError naming the variable", () =>
      Effect.gen(function*() {
        const a = Redacted.value(k1) as string
        for (const value of ["", `${a},,${a}`, `${a},`]) {
          const error = yield* Effect.flip(Auth.keysConfig().pipe(withEnv([["SESSION_KEYS", value]])))
          expect(ConfigError.isConfigError(error)).toBe(true)
          expect(String(error)).toContain("SESSION_KEYS")
        }
      }))

    // Before the fix: `(Missing data at SESSION_KEYS: "<redacted>")`.
    it.effect("a missing SESSION_KEYS fails layerConfig with a ConfigError saying what is needed and how to make a key", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Auth.Auth.pipe(Effect.provide(Auth.layerConfig()), withEnv([])))
        expect(ConfigError.isConfigError(error)).toBe(true)
        // still "missing", so that `Config.option` / `Config.withDefault` around it fall back as before
        expect(ConfigError.isMissingDataOnly(error as ConfigError.ConfigError)).toBe(true)
        const message = String(error)
        expect(message).toContain("SESSION_KEYS is not set")
        expect(message).toContain("at least 32 bytes")
        expect(message).toContain("randomBytes(64).toString('base64url')")
        expect(message).not.toContain("<redacted>")
        const keys = yield* Config.option(Auth.keysConfig()).pipe(withEnv([]))
        expect(keys).toEqual(Option.none())
      }))

    it.effect("the command the message gives makes a key that SESSION_KEYS accepts", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Auth.keysConfig().pipe(withEnv([])))
        expect(String(error)).toContain(Auth.makeKeyCommand)
        const script = /^node -e "(.+)"$/.exec(Auth.makeKeyCommand)![1]!
        const key = ChildProcess.execFileSync(process.execPath, ["-e", script], { encoding: "utf8" }).trim()
        expect(key).toMatch(/^[A-Za-z0-9_-]{86}$/)
        const keys = yield* Auth.keysConfig().pipe(withEnv([["SESSION_KEYS", key]]))
        expect(keys).toHaveLength(1)
      }))

    it.effect("a short key's error says how to make a key too, and shows no key", () =>
      Effect.gen(function*() {
        const error = yield* Effect.flip(Auth.keysConfig().pipe(withEnv([["SESSION_KEYS", "too-short-secret"]])))
        expect(String(error)).toContain("SESSION_KEYS")
        expect(String(error)).toContain("randomBytes(64)")
        expect(String(error)).not.toContain("too-short-secret")
      }))

    it.effect("keysConfig reads another variable when named", () =>
      Effect.gen(function*() {
        const a = Redacted.value(k1) as string
        const keys = yield* Auth.keysConfig("APP_KEYS").pipe(withEnv([["APP_KEYS", a]]))
        expect(keys.map(Redacted.value)).toEqual([a])
      }))
  })
})
