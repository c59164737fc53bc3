/**
 * Session data through its schema: encoded (and bounded) on every write, decoded (and frozen) on read.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import type * as ParseResult from "effect/ParseResult"
import * as Schema from "effect/Schema"
import type { Entry } from "../Store.js"
import { freezeData } from "./freeze.js"

/** The longest encoded session data the service stores (`Session.maxDataLength`). */
export const maxDataLength = 32_768

export interface Codec<A> {
  /** The stored (encoded) data as `A`, or why not. */
  readonly decode: (stored: unknown) => Either.Either<A, ParseResult.ParseError>
  /**
   * `data` encoded as the store keeps it. Data that cannot be encoded is a programming error (the value
   * contradicts its own type's refinements, or its encoded form is not JSON), and so is data too large to
   * store: session data is the application's, not the client's. So both are defects rather than errors
   * every caller would have to handle.
   */
  readonly encode: (data: A) => Effect.Effect<unknown>
  /**
   * The data a written entry stands for, decoded from what was stored (so a session just issued or
   * updated holds what a later `get` returns, and never the caller's own object), and frozen.
   */
  readonly decoded: (entry: Entry) => Either.Either<A, ParseResult.ParseError>
}

export const make = <A, I>(schema: Schema.Schema<A, I>): Codec<A> => {
  const decode = Schema.decodeUnknownEither(schema)
  const encodeSchema = Schema.encode(schema)
  // The encoded form goes through JSON here, once per write, so that every backend (in memory or a string
  // store) keeps and returns exactly the same value.
  const toJson = (encoded: I) =>
    Effect.suspend(() => {
      let json: string | undefined
      try {
        json = JSON.stringify(encoded)
      } catch {
        // reported below
      }
      if (json === undefined) {
        return Effect.dieMessage("session data must encode (through its schema) to a JSON value")
      }
      if (json.length > maxDataLength) {
        return Effect.dieMessage(
          `session data encodes to ${json.length} characters; at most ${maxDataLength} are stored`
        )
      }
      return Effect.succeed(JSON.parse(json) as unknown)
    })
  return {
    decode,
    encode: (data) => Effect.flatMap(Effect.orDie(encodeSchema(data)), toJson),
    decoded: (entry) => {
      const data = decode(entry.data)
      if (Either.isRight(data)) freezeData(data.right)
      return data
    }
  }
}
